# SPDX-License-Identifier: EUPL-1.2
"""Live properties: a registry from (namespace, name) to a getter. The Nextcloud adapter
registers its own (oc:, nc:) here; dead properties come from core.props."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cartable.common.timefmt import http_date, rfc3339
from cartable.core.model import Lock, Node, Usage
from cartable.dav.xml import DAV, escape

__all__ = ["LiveProp", "PropContext", "PropRegistry", "base_registry", "activelock_xml", "SUPPORTED_LOCK"]


@dataclass
class PropContext:
    """What getters may need beyond the node, computed at most once per request."""

    usage: Callable[[], Usage]
    locks: Callable[[Node], list[tuple[Lock, str]]]  # (lock, href of the lock's root)
    href: Callable[[Node], str]
    extra: dict[str, object] = field(default_factory=dict)


Getter = Callable[[PropContext, Node], "str | None"]


@dataclass(frozen=True)
class LiveProp:
    ns: str
    name: str
    get: Getter
    in_allprop: bool = True


class PropRegistry(dict[tuple[str, str], LiveProp]):
    """Live properties of one WebDAV app, by (namespace, name). Adapters that extend WebDAV
    (Nextcloud's oc:/nc:) register theirs into the app's registry while the app is built; each
    app has its own, so two apps in one process never see each other's properties.
    ``plans`` caches per-request-shape lookups (propfind.py) and is cleared on every change."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[tuple[tuple[str, str], ...], list[object]] = {}

    def register(self, prop: LiveProp) -> None:
        self[(prop.ns, prop.name)] = prop
        self.plans.clear()


SUPPORTED_LOCK = (
    "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
    "<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
)


def activelock_xml(lock: Lock, root_href: str) -> str:
    scope = "<d:exclusive/>" if lock.exclusive else "<d:shared/>"
    depth = "infinity" if lock.infinite else "0"
    return (f"<d:activelock><d:locktype><d:write/></d:locktype><d:lockscope>{scope}</d:lockscope>"
            f"<d:depth>{depth}</d:depth>{lock.owner_xml}<d:timeout>Second-{lock.timeout}</d:timeout>"
            f"<d:locktoken><d:href>{escape(lock.token)}</d:href></d:locktoken>"
            f"<d:lockroot><d:href>{escape(root_href)}</d:href></d:lockroot></d:activelock>")


def _file_only(fn: Callable[[Node], str]) -> Getter:
    return lambda _ctx, n: None if n.is_dir else fn(n)


def _dir_only(fn: Callable[[PropContext, Node], str]) -> Getter:
    return lambda ctx, n: fn(ctx, n) if n.is_dir else None


def _lockdiscovery(ctx: PropContext, n: Node) -> str:
    return "".join(activelock_xml(lk, root) for lk, root in ctx.locks(n))


def base_registry() -> PropRegistry:
    """The properties of RFC 4918 and RFC 4331 (quota)."""
    registry = PropRegistry()
    for prop in _BASE:
        registry.register(prop)
    return registry


_BASE = (
    LiveProp(DAV, "resourcetype", lambda _c, n: "<d:collection/>" if n.is_dir else ""),
    LiveProp(DAV, "getlastmodified", lambda _c, n: http_date(n.mtime)),
    LiveProp(DAV, "creationdate", lambda _c, n: rfc3339(n.ctime)),
    LiveProp(DAV, "getcontentlength", _file_only(lambda n: str(n.size))),
    LiveProp(DAV, "getcontenttype", _file_only(lambda n: escape(n.content_type or "application/octet-stream"))),
    LiveProp(DAV, "getetag", lambda _c, n: f'"{n.etag}"'),
    LiveProp(DAV, "displayname", lambda _c, n: escape(n.name)),
    LiveProp(DAV, "supportedlock", lambda _c, _n: SUPPORTED_LOCK),
    LiveProp(DAV, "lockdiscovery", _lockdiscovery),
    LiveProp(DAV, "quota-used-bytes", _dir_only(lambda c, _n: str(c.usage().used)), in_allprop=False),
    LiveProp(DAV, "quota-available-bytes", _dir_only(lambda c, _n: str(c.usage().free)), in_allprop=False),
)
