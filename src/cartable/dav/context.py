# SPDX-License-Identifier: EUPL-1.2
"""Per-request state shared by the WebDAV handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from cartable.common.paths import InvalidPath, decode_url_path, split_path
from cartable.common.timefmt import http_date
from cartable.core import bounds
from cartable.core.auth import Authenticator
from cartable.core.context import Core
from cartable.core.model import Node, Principal
from cartable.core.preconditions import Preconditions
from cartable.core.tree import Op
from cartable.dav.ifheader import IfHeader, predicate
from cartable.dav.props import PropRegistry, base_registry
from cartable.http.conditional import etag_list, quote_etag
from cartable.http.headers import bounded

__all__ = ["DavConfig", "DavRequest", "Dialect", "Handler", "PropSetter", "FolderGet", "run", "run_hot", "href_for",
           "client_op"]

T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call blocking core code in a worker thread."""
    if kwargs:
        return await to_thread.run_sync(lambda: fn(*args, **kwargs))
    return await to_thread.run_sync(fn, *args)


async def run_hot(core: Core, fn: Callable[..., T], *args: Any) -> T:
    """A hot-path read (a few indexed lookups on the raw driver): on the event loop where
    MetaDB.inline_reads says it is cheaper than a thread trip (SQLite), in a worker thread
    otherwise (PostgreSQL's round trips)."""
    if core.db.inline_reads:
        return fn(*args)
    return await run(fn, *args)


@dataclass(frozen=True)
class DavConfig:
    max_xml_body: int = 1024 * 1024


Handler = Callable[["DavRequest"], Awaitable[Response]]
HeaderHook = Callable[[Node], dict[str, str]]
# Sets one live property (PROPPATCH): the request and the serialised element, or None to remove.
PropSetter = Callable[["DavRequest", "str | None"], Awaitable[None]]
# GET on a folder: an extension's answer (a zip of it), or None for the default page.
FolderGet = Callable[["DavRequest", Node], Awaitable["Response | None"]]


@dataclass
class Dialect:
    """What one WebDAV app speaks: its method handlers, live properties, the properties a client
    may set, and extra response headers per node. Adapters that extend WebDAV (Nextcloud) add to
    the app's own dialect while the app is built; nothing here is process-global.

    A settable live property with a setter is stored by its setter (Nextcloud's oc:favorite);
    one without is stored as a dead property. ``folder_get`` may answer a GET on a folder."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    props: PropRegistry = field(default_factory=base_registry)
    settable: set[tuple[str, str]] = field(default_factory=set)
    setters: dict[tuple[str, str], PropSetter] = field(default_factory=dict)
    header_hooks: list[HeaderHook] = field(default_factory=list)
    folder_get: FolderGet | None = None

    def entity_headers(self, node: Node) -> dict[str, str]:
        """ETag, Last-Modified and every extension's headers for a node."""
        headers = {"ETag": quote_etag(node.etag), "Last-Modified": http_date(node.mtime)}
        for hook in self.header_hooks:
            headers.update(hook(node))
        return headers


def client_op(headers: Mapping[str, str], principal: Principal, tokens: frozenset[str]) -> Op:
    """The core Op of a request: who, the lock tokens it submitted, and the client's device and
    operation ids (X-Cartable-Device, X-Cartable-Operation; 400 when too long to be stored)."""
    return Op(principal, tokens,
              bounded("X-Cartable-Device", headers.get("x-cartable-device"), bounds.DEVICE_ID),
              bounded("X-Cartable-Operation", headers.get("x-cartable-operation"), bounds.OP_ID))


def href_for(base: str, parts: tuple[str, ...], is_dir: bool) -> str:
    path = base + "/" + "/".join(quote(p, safe="") for p in parts)
    if is_dir and not path.endswith("/"):
        path += "/"
    return path


@dataclass
class DavRequest:
    request: Request
    core: Core
    auth: Authenticator
    config: DavConfig
    principal: Principal
    parts: tuple[str, ...]
    base: str  # URL path of the user's root, percent-encoded, no trailing slash
    if_header: IfHeader
    op: Op
    dialect: Dialect
    raw_path: str = ""  # the request's path exactly as sent (percent-encoded), for its own href

    def entity_headers(self, node: Node) -> dict[str, str]:
        return self.dialect.entity_headers(node)

    def href(self, parts: tuple[str, ...], is_dir: bool) -> str:
        return href_for(self.base, parts, is_dir)

    def own_href(self, is_dir: bool) -> str:
        """The href of the requested resource, in the client's own spelling: clients check that
        listed hrefs start with the path they sent (an NFD name must come back NFD, not NFC)."""
        if not self.raw_path:
            return self.href(self.parts, is_dir)
        path = self.raw_path
        if is_dir and not path.endswith("/"):
            path += "/"
        if not is_dir:
            path = path.rstrip("/")
        return path

    def node_href(self, node: Node, parts: tuple[str, ...]) -> str:
        return self.href(parts, node.is_dir)

    def parts_in_tree(self, url_path: str) -> tuple[str, ...] | None:
        """The parts of a percent-encoded URL path (from a Destination or If header) inside this
        user's tree, or None when it points elsewhere. Compared decoded, so that a client may
        spell the user name as it likes ("bob@example.org" or "bob%40example.org").
        InvalidPath for a hostile path inside the tree."""
        decoded = decode_url_path(url_path.encode("latin-1", "replace"))
        base = decode_url_path(self.base.encode("latin-1"))
        if decoded != base and not decoded.startswith(base + "/"):
            return None
        return split_path(decoded[len(base):])

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def tagged_parts(self, url: str) -> tuple[str, ...] | None:
        """The parts of a URL named in an If header, or None when it is not in this user's tree
        (or not a valid path: such a resource has no state, so its lists simply fail)."""
        try:
            return self.parts_in_tree(urlsplit(url).path)
        except InvalidPath:
            return None

    def preconditions(self, *, etags: bool = True) -> Preconditions:
        """The request's If header and (unless etags is False) If-Match / If-None-Match, for core
        to check inside the write's transaction against the request's resource."""
        if_match = etag_list(self.header("if-match")) if etags else None
        if_none_match = etag_list(self.header("if-none-match")) if etags else None
        return Preconditions(if_match, if_none_match, predicate(self.if_header, self.parts, self.tagged_parts))
