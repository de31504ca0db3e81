# SPDX-License-Identifier: EUPL-1.2
"""Messages of the login pages in English and French; ``text`` escapes every interpolated value.

Messages are trusted HTML-free text with ``{name}`` placeholders; the result of ``text`` is safe
to put in an HTML element or attribute."""

from __future__ import annotations

import html

from cartable.http.language import pick as pick_language

__all__ = ["LANGUAGES", "DEFAULT", "pick", "text"]

DEFAULT = "en"

LANGUAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Connect to your account",
        "wants_access": "{client} wants access to your account.",
        "explain": "Log in to grant it an app password of its own; you can revoke it at any time.",
        "user": "User name",
        "password": "Password",
        "login": "Log in",
        "alt_heading": "Or use an existing app password",
        "alt_explain": "Paste an app password you already have; the client will use it.",
        "app_password": "App password",
        "alt_login": "Use this app password",
        "wrong_login": "Wrong user name or password.",
        "not_app_password": "This is not an app password; use the form above for your account password.",
        "throttled": "Too many failed attempts. Wait a few minutes, then try again.",
        "grant_title": "Grant access?",
        "grant_explain": "{client} will be able to read and change your files as {user}.",
        "grant": "Grant access",
        "expired_grant": "This page has expired. Reload the login link and log in again.",
        "done_title": "Access granted",
        "done": "Access granted, you may close this window.",
        "denied_title": "Link expired or invalid",
        "denied": "This login link is invalid, expired or already used. Start again from the client.",
        "deny": "Deny access",
        "refused_title": "Access denied",
        "refused": "Access was denied: {client} did not get access to your account. You may close this window.",
    },
    "fr": {
        "title": "Connexion à votre compte",
        "wants_access": "{client} demande l’accès à votre compte.",
        "explain": "Connectez-vous pour lui accorder son propre mot de passe d’application ; "
                   "vous pourrez le révoquer à tout moment.",
        "user": "Nom d’utilisateur",
        "password": "Mot de passe",
        "login": "Se connecter",
        "alt_heading": "Ou utiliser un mot de passe d’application existant",
        "alt_explain": "Collez un mot de passe d’application que vous avez déjà ; le client l’utilisera.",
        "app_password": "Mot de passe d’application",
        "alt_login": "Utiliser ce mot de passe d’application",
        "wrong_login": "Nom d’utilisateur ou mot de passe incorrect.",
        "not_app_password": "Ce n’est pas un mot de passe d’application ; utilisez le formulaire "
                            "ci-dessus pour le mot de passe de votre compte.",
        "throttled": "Trop de tentatives échouées. Patientez quelques minutes puis réessayez.",
        "grant_title": "Accorder l’accès ?",
        "grant_explain": "{client} pourra lire et modifier vos fichiers en tant que {user}.",
        "grant": "Accorder l’accès",
        "expired_grant": "Cette page a expiré. Rouvrez le lien de connexion et reconnectez-vous.",
        "done_title": "Accès accordé",
        "done": "Accès accordé, vous pouvez fermer cette fenêtre.",
        "denied_title": "Lien expiré ou invalide",
        "denied": "Ce lien de connexion est invalide, expiré ou déjà utilisé. Recommencez depuis le client.",
        "deny": "Refuser l’accès",
        "refused_title": "Accès refusé",
        "refused": "L’accès a été refusé : {client} n’a pas accès à votre compte. Vous pouvez fermer cette fenêtre.",
    },
}


def pick(accept_language: str | None) -> str:
    """The supported language the browser prefers most (by q-value, then order); else English."""
    return pick_language(accept_language, LANGUAGES, DEFAULT)


def text(lang: str, key: str, **values: str) -> str:
    """The message ``key`` in ``lang`` (English if missing), HTML-escaped, values included."""
    catalogue = LANGUAGES.get(lang, LANGUAGES[DEFAULT])
    template = catalogue.get(key, LANGUAGES[DEFAULT][key])
    return html.escape(template).format(**{k: html.escape(v) for k, v in values.items()})
