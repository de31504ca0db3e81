# SPDX-License-Identifier: EUPL-1.2
"""HTML of the Login Flow v2 browser pages: self-contained (inline CSS, no script, no external
resource), every interpolated value escaped (through ``locales.text`` or ``html.escape``)."""

from __future__ import annotations

from html import escape

from cartable.nextcloud.locales import text

__all__ = ["login_page", "grant_page", "message_page"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
          "form{margin:1rem 0}label{display:block;margin:.5rem 0}input[type=text],input[type=password]"
          "{width:100%;padding:.4rem;box-sizing:border-box}button{padding:.5rem 1rem;margin-top:.5rem}"
          ".error{color:#a00;font-weight:bold}hr{margin:2rem 0}")


def _page(lang: str, title_key: str, body: str) -> str:
    title = text(lang, title_key)
    return (f'<!DOCTYPE html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer">'
            f"<title>{title}</title><style>{_STYLE}</style></head>"
            f"<body><main><h1>{title}</h1>{body}</main></body></html>\n")


def _field(lang: str, label_key: str, name: str, kind: str, value: str = "") -> str:
    auto = "username" if kind == "text" else "current-password"
    return (f'<label>{text(lang, label_key)}<input type="{kind}" name="{escape(name)}" '
            f'value="{escape(value)}" autocomplete="{auto}" required></label>')


def login_page(lang: str, flow_url: str, client: str, user: str = "", error_key: str = "") -> str:
    """The first page: who asks, a login form, and the app-password alternative."""
    error = f'<p class="error" role="alert">{text(lang, error_key)}</p>' if error_key else ""
    action = escape(flow_url)
    body = (f"<p>{text(lang, 'wants_access', client=client)}</p><p>{text(lang, 'explain')}</p>{error}"
            f'<form method="post" action="{action}">'
            f"{_field(lang, 'user', 'user', 'text', user)}{_field(lang, 'password', 'password', 'password')}"
            f"<button type=\"submit\">{text(lang, 'login')}</button></form><hr>"
            f"<h2>{text(lang, 'alt_heading')}</h2><p>{text(lang, 'alt_explain')}</p>"
            f'<form method="post" action="{action}/apptoken">'
            f"{_field(lang, 'user', 'user', 'text', user)}"
            f"{_field(lang, 'app_password', 'password', 'password')}"
            f"<button type=\"submit\">{text(lang, 'alt_login')}</button></form>")
    return _page(lang, "title", body)


def grant_page(lang: str, flow_url: str, client: str, user: str, state: str) -> str:
    """The confirmation page: grant or deny; each form carries the user and the grant state token."""
    body = (f"<p>{text(lang, 'grant_explain', client=client, user=user)}</p>"
            f'<form method="post" action="{escape(flow_url)}/grant">'
            f'<input type="hidden" name="user" value="{escape(user)}">'
            f'<input type="hidden" name="state" value="{escape(state)}">'
            f"<button type=\"submit\">{text(lang, 'grant')}</button></form>"
            f'<form method="post" action="{escape(flow_url)}/deny">'
            f'<input type="hidden" name="user" value="{escape(user)}">'
            f'<input type="hidden" name="state" value="{escape(state)}">'
            f"<button type=\"submit\">{text(lang, 'deny')}</button></form>")
    return _page(lang, "grant_title", body)


def message_page(lang: str, title_key: str, message_key: str, **values: str) -> str:
    return _page(lang, title_key, f"<p>{text(lang, message_key, **values)}</p>")
