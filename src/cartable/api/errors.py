# SPDX-License-Identifier: EUPL-1.2
"""The native API's one error shape:

    {"error": {"code": "gone", "status": 410, "message": "<in the user's language>", "detail": "<what
    exactly, in English, from core>"}}

``code`` is stable (clients branch on it); ``message`` is a sentence in French or English chosen
from Accept-Language (French by default); ``detail`` says exactly what went wrong."""

from __future__ import annotations

from starlette.responses import JSONResponse

from cartable.core import errors as e
from cartable.http.language import pick

__all__ = ["error_response", "method_not_allowed", "CODES", "STATUS"]

DEFAULT_LANGUAGE = "fr"

# class → code (code_for walks the MRO: a subclass not listed takes its parent's code)
CODES: dict[type[e.CartableError], str] = {
    e.NotFound: "not_found", e.LinkExpired: "link_expired", e.InvalidName: "invalid_name",
    e.InvalidInput: "invalid_input", e.Conflict: "conflict", e.AlreadyExists: "already_exists",
    e.PreconditionFailed: "precondition_failed", e.Gone: "gone", e.Forbidden: "forbidden",
    e.Unauthenticated: "unauthenticated", e.Throttled: "throttled", e.Locked: "locked",
    e.QuotaExceeded: "quota_exceeded", e.TooLarge: "too_large", e.ChecksumMismatch: "checksum_mismatch",
    e.StorageUnavailable: "unavailable", e.DataMissing: "internal",
}
# code → HTTP status
STATUS: dict[str, int] = {
    "not_found": 404, "link_expired": 410, "invalid_name": 400, "invalid_input": 400, "conflict": 409,
    "already_exists": 409, "precondition_failed": 412, "gone": 410, "forbidden": 403, "unauthenticated": 401,
    "throttled": 429, "locked": 423, "quota_exceeded": 507, "too_large": 413, "checksum_mismatch": 400,
    "unavailable": 503, "internal": 500,
}
_MESSAGES: dict[str, dict[str, str]] = {
    "not_found": {"fr": "Élément introuvable.", "en": "Not found."},
    "link_expired": {"fr": "Ce lien a expiré : demandez-en un nouveau à son propriétaire.",
                     "en": "This link expired: ask its owner for a new one."},
    "invalid_name": {"fr": "Ce nom n'est pas accepté.", "en": "This name is not accepted."},
    "invalid_input": {"fr": "La requête contient une valeur non valide.", "en": "The request holds an invalid value."},
    "conflict": {"fr": "L'arborescence ne permet pas cette opération.", "en": "The tree does not allow this."},
    "already_exists": {"fr": "Un élément porte déjà ce nom.", "en": "Something already has this name."},
    "precondition_failed": {"fr": "L'élément a changé entre-temps.", "en": "The item changed in the meantime."},
    "gone": {"fr": "Cette référence n'est plus valable : recommencez depuis le début.",
             "en": "This reference is no longer valid: start over."},
    "forbidden": {"fr": "Vous n'avez pas le droit de faire cela.", "en": "You are not allowed to do this."},
    "unauthenticated": {"fr": "Identifiez-vous.", "en": "Please sign in."},
    "throttled": {"fr": "Trop d'essais : réessayez plus tard.", "en": "Too many attempts: try again later."},
    "locked": {"fr": "L'élément est verrouillé.", "en": "The item is locked."},
    "quota_exceeded": {"fr": "Votre espace est plein.", "en": "Your storage is full."},
    "too_large": {"fr": "C'est trop grand.", "en": "This is too large."},
    "checksum_mismatch": {"fr": "Le contenu reçu est altéré.", "en": "The content received is damaged."},
    "unavailable": {"fr": "Le stockage est momentanément indisponible : réessayez.",
                    "en": "Storage is unavailable for a moment: try again."},
    "internal": {"fr": "Erreur interne du serveur.", "en": "Internal server error."},
    "method_not_allowed": {"fr": "Cette méthode n'est pas acceptée ici.", "en": "This method is not allowed here."},
}


def code_for(exc: e.CartableError) -> str:
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]  # type: ignore[index]
    return "internal"


def error_response(exc: e.CartableError, accept_language: str | None) -> JSONResponse:
    code = code_for(exc)
    status = STATUS[code]
    lang = pick(accept_language, ("fr", "en"), DEFAULT_LANGUAGE)
    body = {"error": {"code": code, "status": status, "message": _MESSAGES[code][lang], "detail": str(exc)}}
    headers = {"Content-Language": lang}
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = 'Basic realm="cartable", charset="UTF-8"'
    if isinstance(exc, e.Throttled):
        headers["Retry-After"] = str(max(1, exc.retry_after))
    return JSONResponse(body, status_code=status, headers=headers)


def method_not_allowed(method: str, allowed: list[str], accept_language: str | None) -> JSONResponse:
    lang = pick(accept_language, ("fr", "en"), DEFAULT_LANGUAGE)
    body = {"error": {"code": "method_not_allowed", "status": 405, "message": _MESSAGES["method_not_allowed"][lang],
                      "detail": f"{method} is not allowed here; allowed: {', '.join(allowed)}"}}
    return JSONResponse(body, status_code=405, headers={"Allow": ", ".join(allowed), "Content-Language": lang})
