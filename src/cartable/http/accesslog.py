# SPDX-License-Identifier: EUPL-1.2
"""The request log: one line per request, and each server error with its traceback.

``AccessLog`` wraps the whole ASGI app. For every HTTP request it logs, on logger
``cartable.access`` at INFO, once the response is finished (or the client went away): method,
path (as sent, percent-encoded, WITHOUT the query string, and with the secret segment of the
paths named in ``secret_prefixes`` replaced by ``*``), status, body bytes sent, duration, the
user name when the request authenticated (adapters call ``note_user``), the client address and
the client's ``X-Request-ID`` if it sent a sane one. Never a header value otherwise, never a
credential, never a query string.

An exception that escapes the app is logged on ``cartable.error`` with its traceback; the client
gets a plain 500 if no response had started (otherwise the exception is re-raised so that the
server drops the connection, and logs it there).

Formats for a log collector: ``TextFormatter`` (one human line per record) and
``JsonFormatter`` (one JSON object per line; the request fields as keys). Both put a traceback on
the record that carries it, JSON as one escaped string.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["AccessLog", "note_user", "TextFormatter", "JsonFormatter", "USER_KEY"]

access_log = logging.getLogger("cartable.access")
error_log = logging.getLogger("cartable.error")

USER_KEY = "cartable.user"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def note_user(scope: Scope, name: str) -> None:
    """Record the authenticated user's name for the request log line."""
    state = scope.setdefault("state", {})
    if isinstance(state, dict):
        state[USER_KEY] = name


def _path(scope: Scope, secret_prefixes: tuple[str, ...]) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
    path = path.split("?", 1)[0]
    for prefix in secret_prefixes:
        if path.startswith(prefix) and len(path) > len(prefix):
            _, sep, rest = path[len(prefix):].partition("/")
            path = prefix + "*" + sep + rest
            break
    return _clean(path)


def _clean(text: str) -> str:
    """Percent-encode anything but printable ASCII (and the double quote): a path or method can
    never break or forge a log line."""
    return "".join(c if "!" <= c <= "~" and c != '"' else "".join(f"%{b:02X}" for b in c.encode())
                   for c in text)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else ""
    return ""


class AccessLog:
    """ASGI middleware: the request log and the last resort for unhandled exceptions."""

    def __init__(self, app: ASGIApp, secret_prefixes: tuple[str, ...] = ()) -> None:
        self.app, self.secret_prefixes = app, secret_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "bytes": 0, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if state["started"]:
                self._log(scope, state, start)
                raise
            error_log.exception("internal error on %s %s", scope.get("method"),
                                _path(scope, self.secret_prefixes))
            body = b"internal server error; the operation was not completed\n"
            await send_wrapper({"type": "http.response.start", "status": 500,
                                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                            (b"content-length", str(len(body)).encode())]})
            await send_wrapper({"type": "http.response.body", "body": body})
        self._log(scope, state, start)

    def _log(self, scope: Scope, state: dict[str, Any], start: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        user = scope.get("state", {}).get(USER_KEY, "") if isinstance(scope.get("state"), dict) else ""
        fields = {
            "method": _clean(str(scope.get("method", ""))),
            "path": _path(scope, self.secret_prefixes),
            "status": int(state["status"]),
            "bytes": int(state["bytes"]),
            "duration_ms": round((time.perf_counter() - start) * 1000, 1),
            "user": user,
            "client": client[0] if client else "",
            "request_id": _request_id(scope),
        }
        access_log.info('%s %s "%s %s" %d %d %.1fms%s', fields["client"] or "-", fields["user"] or "-",
                        fields["method"], fields["path"], fields["status"], fields["bytes"],
                        fields["duration_ms"], f" rid={fields['request_id']}" if fields["request_id"] else "",
                        extra={"request": fields})


class TextFormatter(logging.Formatter):
    """``2026-01-31 12:00:00,123 INFO cartable.access: 127.0.0.1 alice "GET /x" 200 5 1.2ms``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the request
    fields of a request log line, and ``traceback`` when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            out.update(request)
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)
