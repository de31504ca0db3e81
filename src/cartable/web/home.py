# SPDX-License-Identifier: EUPL-1.2
"""What a browser meets at the server's root until the web interface exists.

- ``GET /`` (and HEAD): a short self-contained page, French by default and English when the
  browser prefers it, that says what this server is and how to connect a client to it (the
  Nextcloud apps with this server's address, any WebDAV client with the files URL pattern). No
  script, no external resource; strict security headers. Other methods: 405.
- ``/.well-known/webdav``, ``/.well-known/caldav``, ``/.well-known/carddav`` (and anything below
  them) → ``301 /remote.php/dav/``, as Nextcloud's .htaccess does for CalDAV and CardDAV (RFC
  6764, RFC 8615). Other well-known names: 404.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from cartable.http.language import pick

__all__ = ["home_app", "well_known_app", "WELL_KNOWN_PREFIX", "DAV_ROOT"]

WELL_KNOWN_PREFIX = "/.well-known/"
DAV_ROOT = "/remote.php/dav/"
_REDIRECTED = frozenset({"webdav", "caldav", "carddav"})
DEFAULT_LANGUAGE = "fr"

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222;"
          "line-height:1.5}code{background:#f2f2f2;padding:.1rem .3rem;border-radius:.2rem;word-break:break-all}"
          "h2{font-size:1.1rem;margin-top:2rem}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Vary": "Accept-Language",
}

# {base} is this server's address, {dav} the WebDAV URL pattern; both are escaped before use.
TEXT = {
    "fr": {
        "title": "cartable : stockage de fichiers",
        "intro": "Ce serveur fait fonctionner cartable, un service libre de stockage, de synchronisation "
                 "et de partage de fichiers. Il n’a pas encore d’interface web : on s’y connecte avec "
                 "un client.",
        "nc_heading": "Applications Nextcloud (ordinateur, Android, iOS)",
        "nc": "Dans l’application, indiquez l’adresse de ce serveur : {base}. Le navigateur s’ouvre pour "
              "vous connecter, puis l’application reçoit son propre mot de passe d’application.",
        "dav_heading": "Clients WebDAV (rclone, davfs2, Finder, Explorateur Windows…)",
        "dav": "Adresse de vos fichiers : {dav}, en remplaçant IDENTIFIANT par votre nom d’utilisateur, "
               "avec votre mot de passe ou un mot de passe d’application.",
        "user": "IDENTIFIANT",
    },
    "en": {
        "title": "cartable: file storage",
        "intro": "This server runs cartable, free software to store, sync and share files. It has no web "
                 "interface yet: connect to it with a client.",
        "nc_heading": "Nextcloud apps (desktop, Android, iOS)",
        "nc": "In the app, enter this server's address: {base}. The browser opens for you to log in, then "
              "the app receives an app password of its own.",
        "dav_heading": "WebDAV clients (rclone, davfs2, Finder, Windows Explorer…)",
        "dav": "Address of your files: {dav}, with USERNAME replaced by your user name, and your password "
               "or an app password.",
        "user": "USERNAME",
    },
}


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def home_page(lang: str, base: str) -> str:
    t = TEXT[lang]
    code_base = f"<code>{escape(base)}/</code>"
    code_dav = f"<code>{escape(base)}{DAV_ROOT}files/{t['user']}/</code>"

    def para(key: str) -> str:
        return "<p>" + escape(t[key]).format(base=code_base, dav=code_dav) + "</p>"

    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{escape(t["title"])}</title>'
            f"<style>{_STYLE}</style></head><body><main><h1>{escape(t['title'])}</h1>{para('intro')}"
            f"<h2>{escape(t['nc_heading'])}</h2>{para('nc')}"
            f"<h2>{escape(t['dav_heading'])}</h2>{para('dav')}</main></body></html>\n")


async def home_app(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    response: Response
    if request.method not in ("GET", "HEAD"):
        response = PlainTextResponse("only GET and HEAD are supported here\n", status_code=405,
                                     headers={"Allow": "GET, HEAD"})
    else:
        lang = pick(request.headers.get("accept-language"), TEXT, DEFAULT_LANGUAGE)
        response = HTMLResponse(home_page(lang, _base(request)),
                                headers={**HEADERS, "Content-Language": lang})
    await response(scope, receive, send)


async def well_known_app(scope: Scope, receive: Receive, send: Send) -> None:
    name = str(scope["path"])[len(WELL_KNOWN_PREFIX):].split("/", 1)[0]
    response: Response
    if name in _REDIRECTED:
        response = RedirectResponse(DAV_ROOT, status_code=301)
    else:
        response = PlainTextResponse("Not found\n", status_code=404)
    await response(scope, receive, send)
