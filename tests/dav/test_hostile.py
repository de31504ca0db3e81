# SPDX-License-Identifier: EUPL-1.2
"""Hostile input: every case checks the status AND that nothing changed on the server."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import anyio
import httpx
import pytest
from lxml import etree
from starlette.testclient import TestClient

from cartable.core import accounts, tree
from cartable.core.context import Core
from cartable.server import build_app, open_core
from cartable.store.meta import journal
from cartable.store.meta import nodes as nodes_repo
from tests.conftest import DAV, PASSWORD, LiveServer, make_settings
from tests.core.conftest import principal

# ---------------------------------------------------------------------------------------------
# Helpers

XNS = "urn:example:cartable-test"
Snapshot = tuple[str, frozenset[tuple[str, str]], int]


def url(path: str) -> str:
    return DAV + "/" + path.lstrip("/")


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def snapshot(client: TestClient, path: str = "") -> Snapshot:
    """(etag of the folder, {(href, etag)} of its children, quota-used-bytes): any change below
    the folder changes at least one of them."""
    body = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:quota-used-bytes/>'
            b"</d:prop></d:propfind>")
    r = client.request("PROPFIND", url(path), headers={"Depth": "1"}, content=body)
    assert r.status_code == 207, r.text
    root = etree.fromstring(r.content)
    me = url(path).rstrip("/") + "/"
    etag, used, kids = "", -1, set()
    for resp in root.findall("{DAV:}response"):
        href = resp.findtext("{DAV:}href") or ""
        tag = resp.findtext(".//{DAV:}getetag") or ""
        if href == me:
            etag, used = tag, int(resp.findtext(".//{DAV:}quota-used-bytes") or -1)
        else:
            kids.add((href, tag))
    assert etag, "the folder itself is in the multistatus"
    return etag, frozenset(kids), used


def dead_props(client: TestClient, path: str) -> dict[str, str]:
    """All properties (allprop) of a resource as {clark: serialized}: dead ones included."""
    r = client.request("PROPFIND", url(path), headers={"Depth": "0"})
    assert r.status_code == 207
    found = etree.fromstring(r.content).find(".//{DAV:}prop")
    assert found is not None
    return {el.tag: etree.tostring(el) for el in found if isinstance(el.tag, str)}


def lockdiscovery(client: TestClient, path: str) -> str:
    body = b'<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/></d:prop></d:propfind>'
    r = client.request("PROPFIND", url(path), headers={"Depth": "0"}, content=body)
    assert r.status_code == 207
    return r.text


def assert_error_message(r: httpx.Response | RawResponse) -> None:
    """A DAV:error body with a human message in it."""
    content = r.content
    root = etree.fromstring(content)
    assert root.tag == "{DAV:}error", content
    message = root.findtext("{http://sabredav.org/ns}message")
    assert message and message.strip(), content


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes


def raw_request(client: TestClient, method: str, raw_path: bytes, body: bytes = b"",
                headers: dict[str, str] | None = None) -> RawResponse:
    """Call the ASGI app with this exact raw path (httpx would remove '.' and '..' segments)."""
    hdrs = {"host": "testserver", "authorization": basic("alice", PASSWORD),
            "content-length": str(len(body)), **(headers or {})}

    async def call() -> RawResponse:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": unquote(raw_path.decode("latin-1"), errors="replace"),
                 "raw_path": raw_path, "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
                 "client": ("testclient", 50000), "server": ("testserver", 80)}
        sent = False
        status, out_headers, chunks = 0, {}, []

        async def receive() -> dict[str, object]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
                for k, v in message.get("headers", []):  # type: ignore[attr-defined]
                    out_headers[k.decode("latin-1")] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await client.app(scope, receive, send)  # type: ignore[arg-type]
        return RawResponse(status, out_headers, b"".join(chunks))  # type: ignore[arg-type]

    return anyio.run(call)


@pytest.fixture
def populated(client: TestClient) -> TestClient:
    """alice's tree: a/, a/f.txt, top.txt (with a dead property)."""
    assert client.request("MKCOL", url("a")).status_code == 201
    assert client.put(url("a/f.txt"), content=b"inside a").status_code == 201
    assert client.put(url("top.txt"), content=b"top").status_code == 201
    body = (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{XNS}"><d:set><d:prop><x:color>blue</x:color>'
            "</d:prop></d:set></d:propertyupdate>").encode()
    assert client.request("PROPPATCH", url("top.txt"), content=body).status_code == 207
    return client


# ---------------------------------------------------------------------------------------------
# Hostile XML

LAUGHS = """<?xml version="1.0" encoding="{enc}"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
{root}"""

XXE = """<?xml version="1.0" encoding="{enc}"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
{root}"""

ROOTS = {
    "PROPFIND": '<d:propfind xmlns:d="DAV:"><d:prop><x:color xmlns:x="urn:x">{ent}</x:color></d:prop></d:propfind>',
    "PROPPATCH": ('<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x:color xmlns:x="urn:x">{ent}</x:color>'
                  "</d:prop></d:set></d:propertyupdate>"),
    "LOCK": ('<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/>'
             "</d:locktype><d:owner>{ent}</d:owner></d:lockinfo>"),
}
ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32"}


def hostile_body(template: str, method: str, entity: str, enc: str) -> bytes:
    return template.format(enc=enc.upper(), root=ROOTS[method].format(ent=entity)).encode(enc)


# Each method's target: an existing file with a dead property (PROPFIND, PROPPATCH, LOCK), and an
# unmapped name for LOCK (a successful LOCK there would create an empty file).
TARGETS = [("PROPFIND", "top.txt"), ("PROPPATCH", "top.txt"), ("LOCK", "top.txt"), ("LOCK", "new.txt")]


def assert_unchanged(client: TestClient, before: Snapshot, props_before: dict[str, str]) -> None:
    assert snapshot(client) == before
    assert dead_props(client, "top.txt") == props_before
    assert "activelock" not in lockdiscovery(client, "top.txt")
    assert client.get(url("new.txt")).status_code == 404
    assert client.put(url("top.txt"), content=b"top").status_code == 204, "no lock was left behind"


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize(("method", "target"), TARGETS)
def test_billion_laughs_is_400(populated: TestClient, method: str, target: str, enc: str) -> None:
    client = populated
    before, props = snapshot(client), dead_props(client, "top.txt")
    r = client.request(method, url(target), content=hostile_body(LAUGHS, method, "&lol9;", enc),
                       headers={"Content-Type": "application/xml", "Depth": "0"})
    assert r.status_code == 400, r.text[:500]
    assert_error_message(r)
    assert "lollol" not in r.text
    assert_unchanged(client, before, props)


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize(("method", "target"), TARGETS)
def test_external_entity_is_400_and_never_read(populated: TestClient, method: str, target: str,
                                                enc: str) -> None:
    client = populated
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    assert passwd
    before, props = snapshot(client), dead_props(client, "top.txt")
    r = client.request(method, url(target), content=hostile_body(XXE, method, "&e;", enc),
                       headers={"Content-Type": "application/xml", "Depth": "0"})
    assert r.status_code == 400, r.text[:500]
    assert passwd not in r.text
    assert_unchanged(client, before, props)
    for path in ("", "top.txt"):
        listing = client.request("PROPFIND", url(path), headers={"Depth": "1"})
        assert listing.status_code == 207
        assert passwd not in listing.text
        assert "&e;" not in listing.text


MALFORMED = [
    b"this is not xml",
    b'<d:propfind xmlns:d="DAV:"><d:prop>',
    b'<d:propfind xmlns:d="DAV:"></d:propstat>',
    b"<d:propfind><d:allprop/></d:propfind>",  # undeclared prefix
    b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"/><second/>',
    b'<d:propfind xmlns:d="DAV:"><d:prop><x:a xmlns:x="urn:x">&undefined;</x:a></d:prop></d:propfind>',
    b'<d:propfind xmlns:d="DAV:">\xff\xfe\x00</d:propfind>',
    b'<d:wrongroot xmlns:d="DAV:"/>',
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize(("method", "target"), TARGETS)
def test_malformed_xml_is_400(populated: TestClient, method: str, target: str, body: bytes) -> None:
    client = populated
    before, props = snapshot(client), dead_props(client, "top.txt")
    r = client.request(method, url(target), content=body, headers={"Depth": "0"})
    assert r.status_code == 400, r.text[:500]
    assert_error_message(r)
    assert_unchanged(client, before, props)


@pytest.mark.parametrize("levels", [100, 10_000])
@pytest.mark.parametrize(("method", "target"), TARGETS)
def test_deeply_nested_xml_is_400(populated: TestClient, method: str, target: str, levels: int) -> None:
    client = populated
    before, props = snapshot(client), dead_props(client, "top.txt")
    nested = "<x:n>" * levels + "</x:n>" * levels
    body = ROOTS[method].format(ent=nested).replace('xmlns:d="DAV:"', f'xmlns:d="DAV:" xmlns:x="{XNS}"', 1)
    r = client.request(method, url(target), content=body.encode(), headers={"Depth": "0"})
    assert r.status_code == 400, r.text[:500]
    assert_unchanged(client, before, props)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "target"), TARGETS)
def test_xml_body_over_the_limit_is_413(populated: TestClient, method: str, target: str, chunked: bool) -> None:
    client = populated
    before, props = snapshot(client), dead_props(client, "top.txt")
    body = ROOTS[method].format(ent="A" * (2 * 1024 * 1024)).encode()
    assert len(body) > 2 * 1024 * 1024

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = client.request(method, url(target), content=pieces() if chunked else body, headers={"Depth": "0"})
    assert r.status_code == 413, r.text[:500]
    assert_unchanged(client, before, props)


# ---------------------------------------------------------------------------------------------
# Hostile paths, from a table: (raw path below alice's root, expected status)

HOSTILE_PATHS: list[tuple[bytes, int] | object] = [
    (b"a/../../etc", 400),
    (b"a/..", 400),
    (b"..", 400),
    (b"a/./x", 400),
    (b"a/%2e%2e/%2e%2e/etc", 400),
    (b"%2E%2E/x", 400),
    (b"a/%2e", 400),
    (b"nul%00byte", 400),
    (b"%00", 400),
    (b"a/x%00.txt", 400),
    (b"ctl%01x", 400),
    (b"del%7f", 400),
    (b"line%0Abreak", 400),
    (b"cr%0D", 400),
    (b"tab%09", 400),
    (b"esc%1b%5b31m", 400),
    (b"bad%ff%feutf8", 400),
    (b"%c0%ae%c0%ae", 400),  # overlong UTF-8 for ".."
    (b"lone%ed%a0%80surrogate", 400),
    (b"lone%ed%b2%80low", 400),
    (b"truncated%e6%97", 400),
    (b"x" * 256, 400),
    (quote("é" * 128).encode(), 400),  # 128 characters, 256 bytes
    (b"a/" + b"y" * 300, 400),
    (b"nonchar%EF%BF%BF", 400),  # U+FFFF: not an XML character
    (b"%EF%BF%BEnonchar", 400),  # U+FFFE
    (b"x" * 255, 201),
    (quote("é" * 127 + "x").encode(), 201),  # 255 bytes
]


def disk_names(top: Path) -> set[str]:
    """Every name on disk under ``top`` (the test's folder, holding the data folder), apart from
    SQLite's journal files, which come and go as it pleases."""
    return {str(p.relative_to(top)) for p in top.rglob("*")
            if not p.name.endswith(("-wal", "-shm", "-journal"))}


@pytest.mark.parametrize("method", ["PUT", "MKCOL"])
@pytest.mark.parametrize(("raw", "expected"), HOSTILE_PATHS)
def test_hostile_paths(populated: TestClient, tmp_path: Path, method: str, raw: bytes, expected: int) -> None:
    client = populated
    before = snapshot(client)
    before_a = snapshot(client, "a")
    on_disk = disk_names(tmp_path)
    r = raw_request(client, method, DAV.encode() + b"/" + raw, b"payload" if method == "PUT" else b"")
    assert r.status_code == expected, r.content[:500]
    if expected == 400:
        assert_error_message(r)
        assert snapshot(client) == before
        assert snapshot(client, "a") == before_a
        # Nothing was created on disk, inside the data folder or next to it (where "a/../../etc"
        # would land if a name ever became a path): names never reach the file system.
        assert disk_names(tmp_path) == on_disk
        return
    name = unquote(raw.decode())
    r = client.request("PROPFIND", url(quote(name, safe="")), headers={"Depth": "0"})
    assert r.status_code == 207
    assert ("collection" in r.text) == (method == "MKCOL")
    assert quote(name, safe="") in r.text


def test_other_users_tree_is_403(populated: TestClient, core: Core) -> None:
    client = populated
    accounts.create_user(core, "bob", "bob-password-1")
    bob_dav = "/remote.php/dav/files/bob"
    assert client.put(bob_dav + "/secret.txt", content=b"bob's", auth=("bob", "bob-password-1")).status_code == 201
    bob = ("bob", "bob-password-1")
    bob_before = client.request("PROPFIND", bob_dav + "/", headers={"Depth": "1"}, auth=bob).text

    for method, path, body in [("PROPFIND", "/", b""), ("GET", "/secret.txt", b""), ("PUT", "/x.txt", b"x"),
                               ("PUT", "/secret.txt", b"overwritten"), ("MKCOL", "/d", b""),
                               ("DELETE", "/secret.txt", b""), ("PROPPATCH", "/secret.txt", b"<x/>"),
                               ("LOCK", "/secret.txt", b""), ("GET", "/", b"")]:
        r = client.request(method, bob_dav + path, content=body, headers={"Depth": "0"})
        assert r.status_code == 403, (method, path, r.status_code)
        assert b"bob's" not in r.content

    alice_before = snapshot(client)
    for method in ("MOVE", "COPY"):
        r = client.request(method, url("top.txt"), headers={"Destination": bob_dav + "/stolen.txt"})
        assert r.status_code == 403, (method, r.status_code)
        r = client.request(method, bob_dav + "/secret.txt", headers={"Destination": url("stolen.txt")})
        assert r.status_code == 403, (method, r.status_code)
    assert snapshot(client) == alice_before
    assert client.request("PROPFIND", bob_dav + "/", headers={"Depth": "1"}, auth=bob).text == bob_before
    assert client.get(bob_dav + "/secret.txt", auth=bob).content == b"bob's"


@pytest.mark.parametrize(("destination", "expected"), [
    (url("a/../../etc"), (400, 403)),
    (DAV + "/%2e%2e/x", (400,)),
    (DAV + "/x%00y", (400,)),
    (DAV + "/bad%ff", (400,)),
    ("http://evil.example" + url("x.txt"), (403, 502)),
    ("/somewhere/else/x.txt", (403, 502)),
    ("/remote.php/dav/files/alicex/x.txt", (403,)),
])
def test_hostile_destinations(populated: TestClient, destination: str, expected: tuple[int, ...]) -> None:
    client = populated
    before = snapshot(client)
    for method in ("MOVE", "COPY"):
        r = client.request(method, url("top.txt"), headers={"Destination": destination})
        assert r.status_code in expected, (method, destination, r.status_code, r.text)
        assert snapshot(client) == before


# ---------------------------------------------------------------------------------------------
# Authentication


def test_wrong_password_is_401_with_challenge(client: TestClient) -> None:
    r = client.request("PROPFIND", url(""), auth=("alice", "wrong-password"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    r = client.request("PROPFIND", url(""), auth=("nobody", "whatever-pw"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")


def test_no_credentials_is_401(client: TestClient) -> None:
    for method in ("GET", "PROPFIND", "PUT", "MKCOL", "DELETE"):
        r = client.request(method, url("x"), auth=None)
        assert r.status_code == 401, method
        assert r.headers["www-authenticate"].startswith("Basic ")
    assert client.get(url("x")).status_code == 404
    assert snapshot(client)[1] == frozenset()


@pytest.mark.parametrize("header", [
    "Basic",
    "Basic ",
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b":no-login").decode(),
    "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),
    "Bearer abcdef",
    "Digest username=\"alice\"",
    "basicYWxpY2U6eA==",
])
def test_malformed_authorization_is_401(client: TestClient, header: str) -> None:
    r = client.request("PUT", url("x.txt"), content=b"x", auth=None, headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert client.get(url("x.txt")).status_code == 404


def test_old_password_stops_working_at_once(client: TestClient, core: Core) -> None:
    assert client.request("PROPFIND", url("")).status_code == 207  # cached now
    assert client.request("PROPFIND", url("")).status_code == 207
    accounts.set_password(core, "alice", "a-new-password-2")
    r = client.request("PROPFIND", url(""))
    assert r.status_code == 401
    assert client.put(url("x.txt"), content=b"x").status_code == 401
    assert client.request("PROPFIND", url(""), auth=("alice", "a-new-password-2")).status_code == 207
    assert client.get(url("x.txt"), auth=("alice", "a-new-password-2")).status_code == 404


def test_disabled_account_is_401(client: TestClient, core: Core) -> None:
    assert client.request("PROPFIND", url("")).status_code == 207  # cached now
    accounts.set_disabled(core, "alice", True)
    assert client.request("PROPFIND", url("")).status_code == 401
    assert client.put(url("x.txt"), content=b"x").status_code == 401
    accounts.set_disabled(core, "alice", False)
    assert client.request("PROPFIND", url("")).status_code == 207
    assert client.get(url("x.txt")).status_code == 404


# ---------------------------------------------------------------------------------------------
# Quota


def test_put_over_quota_is_507_and_stores_nothing(populated: TestClient, core: Core) -> None:
    client = populated
    accounts.set_quota(core, "alice", 1000)
    before = snapshot(client)
    r = client.put(url("big.bin"), content=os.urandom(2000))
    assert r.status_code == 507
    assert "quota-not-exceeded" in r.text
    assert client.get(url("big.bin")).status_code == 404
    assert snapshot(client) == before


def test_chunked_put_over_quota_is_507_and_stores_nothing(populated: TestClient, core: Core) -> None:
    client = populated
    used = snapshot(client)[2]
    accounts.set_quota(core, "alice", used + 50_000)
    before = snapshot(client)

    def body() -> Iterator[bytes]:
        for _ in range(10):
            yield os.urandom(10_000)

    r = client.put(url("big.bin"), content=body())
    assert r.status_code == 507
    assert client.get(url("big.bin")).status_code == 404
    assert snapshot(client) == before


def test_replace_over_quota_keeps_the_old_content(populated: TestClient, core: Core) -> None:
    client = populated
    old = os.urandom(20_000)
    assert client.put(url("a/f.txt"), content=old).status_code == 204
    used = snapshot(client)[2]
    accounts.set_quota(core, "alice", used + 100)
    assert client.put(url("a/f.txt"), content=os.urandom(20_050)).status_code == 204, "replacing frees the old size"
    newer = client.get(url("a/f.txt")).content
    before = snapshot(client)
    assert client.put(url("a/f.txt"), content=os.urandom(20_200)).status_code == 507
    assert client.get(url("a/f.txt")).content == newer
    assert snapshot(client) == before


def test_copy_over_quota_is_507(populated: TestClient, core: Core) -> None:
    client = populated
    assert client.put(url("a/big.bin"), content=os.urandom(30_000)).status_code == 201
    accounts.set_quota(core, "alice", snapshot(client)[2] + 1000)
    before = snapshot(client)
    r = client.request("COPY", url("a"), headers={"Destination": url("b")})
    assert r.status_code == 507
    assert snapshot(client) == before


def _raw_http(server: LiveServer, head: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(head.encode("latin-1") + body)
    return sock


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    assert data.startswith(b"HTTP/1.1 "), data
    return int(data.split()[1])


def test_put_larger_than_quota_is_refused_before_the_body(live_server: LiveServer) -> None:
    r = live_server.admin("user", "quota", "alice", "1000")
    assert r.returncode == 0, r.stderr
    head = (f"PUT {DAV}/huge.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {basic('alice', PASSWORD)}\r\n"
            "Content-Length: 1000000000\r\n\r\n")
    # Only the headers and 10 bytes are sent: the answer must come without the rest of the body
    # (a socket timeout, not a timing assertion, fails the test if the server waits for it).
    with _raw_http(live_server, head, b"0123456789") as sock:
        assert _read_status(sock) == 507
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD)) as http:
        assert http.get(url("huge.bin")).status_code == 404
        assert http.put(url("small.bin"), content=b"x" * 500).status_code == 201


def test_concurrent_puts_never_exceed_the_quota(live_server: LiveServer) -> None:
    quota, size, n = 1_000_000, 100_000, 16
    r = live_server.admin("user", "quota", "alice", str(quota))
    assert r.returncode == 0, r.stderr
    payloads = {f"f{i:02d}.bin": os.urandom(size) for i in range(n)}

    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=120,
                      limits=httpx.Limits(max_connections=n)) as http:
        assert http.request("PROPFIND", url(""), headers={"Depth": "0"}).status_code == 207  # warm the credential cache

        def upload(name: str) -> int:
            return http.put(url(name), content=payloads[name]).status_code

        with ThreadPoolExecutor(n) as pool:
            statuses = dict(zip(payloads, pool.map(upload, payloads)))

        assert set(statuses.values()) <= {201, 507}, statuses
        ok = [name for name, s in statuses.items() if s == 201]
        assert len(ok) == quota // size, statuses
        body = b'<d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/></d:prop></d:propfind>'
        ms = http.request("PROPFIND", url(""), headers={"Depth": "0"}, content=body)
        used = int(etree.fromstring(ms.content).findtext(".//{DAV:}quota-used-bytes") or -1)
        assert used == len(ok) * size <= quota
        for name, s in statuses.items():
            g = http.get(url(name))
            if s == 201:
                assert g.status_code == 200 and hashlib.sha256(g.content).digest() == \
                    hashlib.sha256(payloads[name]).digest(), name
            else:
                assert g.status_code == 404, name


def test_client_disconnect_mid_body_leaves_nothing(live_server: LiveServer) -> None:
    head = (f"PUT {DAV}/partial.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {basic('alice', PASSWORD)}\r\n"
            "Content-Length: 1000000\r\n\r\n")
    sock = _raw_http(live_server, head, os.urandom(1000))
    sock.close()
    with httpx.Client(base_url=live_server.url, auth=("alice", PASSWORD), timeout=60) as http:
        assert http.get("/_cartable/health").status_code == 200
        assert http.put(url("after.bin"), content=b"still serving").status_code == 201
        assert http.get(url("after.bin")).content == b"still serving"
        assert http.get(url("partial.bin")).status_code == 404
        listing = http.request("PROPFIND", url(""), headers={"Depth": "1"})
        assert "partial.bin" not in listing.text
        body = b'<d:propfind xmlns:d="DAV:"><d:prop><d:quota-used-bytes/></d:prop></d:propfind>'
        ms = http.request("PROPFIND", url(""), headers={"Depth": "0"}, content=body)
        assert etree.fromstring(ms.content).findtext(".//{DAV:}quota-used-bytes") == str(len(b"still serving"))


# ---------------------------------------------------------------------------------------------
# Checksums


@pytest.mark.parametrize("size", [100, 200_000])
def test_checksum_mismatch_is_400_and_stores_nothing(populated: TestClient, size: int) -> None:
    client = populated
    before = snapshot(client)
    data = os.urandom(size)
    r = client.put(url("sum.bin"), content=data, headers={"OC-Checksum": "SHA1:" + "0" * 40})
    assert r.status_code == 400
    assert_error_message(r)
    assert client.get(url("sum.bin")).status_code == 404
    assert snapshot(client) == before
    r = client.put(url("top.txt"), content=data, headers={"OC-Checksum": "MD5:" + "0" * 32})
    assert r.status_code == 400
    assert client.get(url("top.txt")).content == b"top"
    assert snapshot(client) == before


@pytest.mark.parametrize("header", ["SHA1:xyz", "CRC99:abcd", "SHA1", "SHA1:", ":abcd"])
def test_malformed_checksum_is_400(populated: TestClient, header: str) -> None:
    client = populated
    before = snapshot(client)
    r = client.put(url("sum.bin"), content=b"data", headers={"OC-Checksum": header})
    assert r.status_code == 400
    assert client.get(url("sum.bin")).status_code == 404
    assert snapshot(client) == before


@pytest.mark.parametrize("size", [100, 200_000])
def test_correct_checksum_is_accepted(client: TestClient, size: int) -> None:
    data = os.urandom(size)
    for algo, digest in (("SHA1", hashlib.sha1(data).hexdigest()), ("MD5", hashlib.md5(data).hexdigest()),
                         ("SHA256", hashlib.sha256(data).hexdigest().upper())):
        name = f"{algo}.bin"
        r = client.put(url(name), content=data, headers={"OC-Checksum": f"{algo}:{digest}"})
        assert r.status_code == 201, r.text
        assert client.get(url(name)).content == data


# ---------------------------------------------------------------------------------------------
# Names no new file may take (Nextcloud's filename validator defaults), at every entry point

UP = "/remote.php/dav/uploads/alice"
LOCKINFO = (b'<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
            b"<d:locktype><d:write/></d:locktype><d:owner>attacker</d:owner></d:lockinfo>")


def _enter_put(client: TestClient, raw: bytes) -> RawResponse:
    return raw_request(client, "PUT", DAV.encode() + b"/" + raw, b"payload")


def _enter_mkcol(client: TestClient, raw: bytes) -> RawResponse:
    return raw_request(client, "MKCOL", DAV.encode() + b"/" + raw)


def _enter_move(client: TestClient, raw: bytes) -> RawResponse:
    return raw_request(client, "MOVE", DAV.encode() + b"/top.txt",
                       headers={"Destination": "http://testserver" + DAV + "/" + raw.decode("latin-1")})


def _enter_copy(client: TestClient, raw: bytes) -> RawResponse:
    return raw_request(client, "COPY", DAV.encode() + b"/a",
                       headers={"Destination": DAV + "/" + raw.decode("latin-1")})


def _enter_lock(client: TestClient, raw: bytes) -> RawResponse:
    return raw_request(client, "LOCK", DAV.encode() + b"/" + raw, LOCKINFO)


def _enter_upload(client: TestClient, raw: bytes) -> RawResponse:
    assert client.request("MKCOL", f"{UP}/up-1").status_code == 201
    assert client.put(f"{UP}/up-1/00001", content=b"chunk").status_code == 201
    r = raw_request(client, "MOVE", f"{UP}/up-1/.file".encode(),
                    headers={"Destination": DAV + "/" + raw.decode("latin-1")})
    if r.status_code >= 400:
        listing = client.request("PROPFIND", f"{UP}/up-1", headers={"Depth": "1"})
        assert listing.status_code == 207 and "00001" in listing.text, "a refused MOVE keeps the upload"
        assert client.request("DELETE", f"{UP}/up-1").status_code == 204
    return r


ENTRIES = {"PUT": _enter_put, "MKCOL": _enter_mkcol, "COPY": _enter_copy, "LOCK": _enter_lock,
           "upload MOVE": _enter_upload, "MOVE": _enter_move}

# (raw name as it appears in the URL, expected status)
NEW_NAMES: list[tuple[bytes, int]] = [
    (b"..%5C..%5Cwin.ini", 400),
    (b"..\\..\\win.ini", 400),  # not even percent-encoded
    (b"a%5Cb.txt", 400),
    (b"trailing%5C", 400),
    (b".htaccess", 400),
    (b".HTaccess", 400),
    (b"movie.part", 400),
    (b"movie.PART", 400),
    (b"x.filepart", 400),
    (b"%20%20", 400),
    (b"%20..%20", 400),
    (b"CON", 201),  # only refused with windows_compatible_names
    (b"a%3Ab.txt", 201),
    (b"trailing.", 201),
    (b"fine.txt", 201),
]


@pytest.mark.parametrize(("raw", "expected"), NEW_NAMES)
def test_new_names_are_checked_everywhere(populated: TestClient, raw: bytes, expected: int) -> None:
    client = populated
    for i, (entry, enter) in enumerate(ENTRIES.items()):
        before, before_a = snapshot(client), snapshot(client, "a")
        if expected == 400:
            r = enter(client, raw)
            assert r.status_code == 400, (entry, raw, r.status_code, r.content[:300])
            assert_error_message(r)
            assert b"cannot be created" in r.content, (entry, r.content)
            assert snapshot(client) == before, entry
            assert snapshot(client, "a") == before_a, entry
            continue
        # The same names are fine: each entry creates one in a folder of its own.
        assert client.request("MKCOL", url(f"e{i}")).status_code == 201
        r = enter(client, f"e{i}/".encode() + raw)
        assert r.status_code in (200, 201, 204), (entry, raw, r.status_code, r.content[:300])
        name = quote(unquote(raw.decode("latin-1")), safe="")
        assert client.request("PROPFIND", url(f"e{i}/{name}"), headers={"Depth": "0"}).status_code == 207


def _rename_row(core: Core, path: tuple[str, ...], new_name: str) -> None:
    """What a name stored before a stricter policy looks like: written straight into the table."""
    with core.db.write() as tx:
        space = tree.space_of(tx, principal(core))
        node = tree.resolve(tx, space.root_id, path)
        nodes_repo.update_node(tx, node.id, name=new_name)


def test_names_stored_before_stay_usable(populated: TestClient, core: Core) -> None:
    client = populated
    legacy = "..\\..\\win.ini"
    enc = quote(legacy, safe="")
    _rename_row(core, ("top.txt",), legacy)
    assert client.put(url("a/.htaccess"), content=b"x").status_code == 400
    assert client.put(url("a/plain.txt"), content=b"deny from all").status_code == 201
    _rename_row(core, ("a", "plain.txt"), ".htaccess")

    assert client.get(url(enc)).content == b"top"
    assert client.request("PROPFIND", url(""), headers={"Depth": "1"}).text.count(enc) == 1
    assert client.put(url(enc), content=b"overwritten").status_code == 204, "overwriting keeps the name"
    assert client.get(url(enc)).content == b"overwritten"
    body = (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{XNS}"><d:set><d:prop><x:color>red</x:color>'
            "</d:prop></d:set></d:propertyupdate>").encode()
    assert client.request("PROPPATCH", url(enc), content=body).status_code == 207
    before = snapshot(client)
    r = client.request("MOVE", url(enc), headers={"Destination": url("a/" + enc)})
    assert r.status_code == 400, "a stored name does not travel to a new place"
    assert snapshot(client) == before
    r = client.request("COPY", url(enc), headers={"Destination": url("a/" + enc)})
    assert r.status_code == 400
    assert snapshot(client) == before
    assert client.request("MOVE", url(enc), headers={"Destination": url("win.ini")}).status_code == 201
    assert client.get(url("win.ini")).content == b"overwritten"
    assert client.get(url("a/.htaccess")).content == b"deny from all"
    assert client.request("DELETE", url("a/.htaccess")).status_code == 204
    assert client.get(url("a/.htaccess")).status_code == 404


def test_windows_compatible_names_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", windows_compatible_names=True)
    core = open_core(settings)
    accounts.create_user(core, "alice", PASSWORD)
    with TestClient(build_app(settings, core), base_url="http://testserver") as tc:
        tc.auth = ("alice", PASSWORD)
        for name in ("CON", "con.txt", "LPT1.doc", "a%3Ab", "what%3F", "dot.", "space%20"):
            r = tc.put(url(name), content=b"x")
            assert r.status_code == 400, (name, r.status_code)
            assert tc.request("MKCOL", url(name)).status_code == 400
        assert tc.put(url("console.txt"), content=b"x").status_code == 201
        caps = tc.get("/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"]["capabilities"]
        files = caps["files"]
        assert "con" in files["forbidden_filename_basenames"] and "lpt9" in files["forbidden_filename_basenames"]
        assert set('\\/<>:"|?*') <= set(files["forbidden_filename_characters"])
        assert {" ", "."} <= set(files["forbidden_filename_extensions"])
    core.db.dispose()


def test_capabilities_advertise_the_naming_policy(client: TestClient) -> None:
    r = client.get("/ocs/v2.php/cloud/capabilities?format=json", auth=None)
    files = r.json()["ocs"]["data"]["capabilities"]["files"]
    assert files["forbidden_filenames"] == [".htaccess"] == files["blacklisted_files"]
    assert files["forbidden_filename_characters"] == ["\\", "/"]
    assert files["forbidden_filename_extensions"] == [".part", ".filepart"]
    assert files["forbidden_filename_basenames"] == []


# ---------------------------------------------------------------------------------------------
# Downloads: user content never runs as a page of the site

EVIL = {
    "evil.html": (b"<html><body><script>fetch('/ocs/v2.php/core/getapppassword')</script></body></html>",
                  "text/html"),
    "evil.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>',
                 "image/svg+xml"),
    "caf\u00e9 \"quoted\" \u65e5.htm": (b"<script>alert(1)</script>", "text/html"),
}


def _assert_download_headers(r: httpx.Response | RawResponse, name: str) -> None:
    h = {k.lower(): v for k, v in r.headers.items()}
    assert h["x-content-type-options"] == "nosniff"
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp.split(";")[-1]
    disp = h["content-disposition"]
    assert disp.startswith("attachment; ")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disp
    fallback = disp.split('filename="', 1)[1]
    assert fallback.endswith('"') and fallback[:-1].isascii() and '"' not in fallback[:-1]
    assert "\\" not in fallback


@pytest.mark.parametrize("name", EVIL)
def test_uploaded_pages_and_images_are_downloads(client: TestClient, name: str) -> None:
    data, ctype = EVIL[name]
    enc = quote(name, safe="")
    assert client.put(url(enc), content=data, headers={"Content-Type": ctype}).status_code == 201
    r = client.get(url(enc))
    assert r.status_code == 200 and r.content == data
    _assert_download_headers(r, name)
    head = client.head(url(enc))
    assert head.status_code == 200
    _assert_download_headers(head, name)
    part = client.get(url(enc), headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == data[:10]
    _assert_download_headers(part, name)


def test_ascii_fallback_of_a_unicode_name(client: TestClient) -> None:
    assert client.put(url("%C3%A9t%C3%A9%20r%C3%A9sum%C3%A9.pdf"), content=b"%PDF").status_code == 201
    disp = client.get(url("%C3%A9t%C3%A9%20r%C3%A9sum%C3%A9.pdf")).headers["content-disposition"]
    assert disp == ("attachment; filename*=UTF-8''%C3%A9t%C3%A9%20r%C3%A9sum%C3%A9.pdf; "
                    'filename="ete resume.pdf"')


def test_folder_page_is_safe_too(client: TestClient) -> None:
    name = "<img src=x onerror=alert(1)>"
    assert client.request("MKCOL", url("d")).status_code == 201
    assert client.put(url("d/" + quote(name, safe="")), content=b"x").status_code == 201
    r = client.get(url("d/"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert name not in r.text and "&lt;img" in r.text
    assert "content-disposition" not in r.headers


# ---------------------------------------------------------------------------------------------
# Routing: the URL names the caller's tree, or nothing


def test_files_root_without_credentials_is_401(client: TestClient) -> None:
    for path in ("/remote.php/dav/files/", "/remote.php/dav/files"):
        r = client.request("PROPFIND", path, auth=None, headers={"Depth": "0"})
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Basic ")
        r = client.request("PROPFIND", path, headers={"Depth": "0"})
        assert r.status_code == 404, path
        assert_error_message(r)
        assert "/remote.php/dav/files/alice/" in r.text


# (raw path, status): each would be a path shifted inside alice's tree if the prefix were matched
# on one decoding and the rest parsed on another.
SHIFTED: list[tuple[bytes, int]] = [
    (b"/remote.php/dav%2Ffiles/alice/top.txt", 404),
    (b"/remote.php/dav%2ffiles%2falice/top.txt", 404),
    (b"/remote.php/dav/files%2Falice/top.txt", 404),
    (b"/remote.php/dav/files/alice%2F..%2Fbob/top.txt", 404),
    (b"/remote.php/dav/files/alice%2Fa/f.txt", 404),
    (b"/remote.php/dav/files/ALICE/top.txt", 404),
    (b"/remote.php/dav/files/Alice/top.txt", 404),
    (b"/remote.php/dav/files/%61lice/top.txt", 200),  # an escaped letter is still "alice"
    (b"/remote.php/dav/files/bob/top.txt", 403),
    (b"/remote.php/webdavtop.txt", 404),
    (b"/remote.php/webdav%2Ftop.txt", 404),
    (b"/remote.php/webdav/top.txt", 200),
    (b"/remote.php/dav%2Fuploads/alice/x", 404),
    (b"/remote.php/dav/uploads%2Falice/x", 404),
    (b"/remote.php/dav/uploads/alice%2Fx/", 404),
]


@pytest.mark.parametrize(("raw", "expected"), SHIFTED)
def test_encoded_prefixes_never_shift_the_path(populated: TestClient, core: Core, raw: bytes,
                                               expected: int) -> None:
    client = populated
    accounts.create_user(core, "bob", "bob-password-1")
    before, before_a = snapshot(client), snapshot(client, "a")
    r = raw_request(client, "GET", raw)
    assert r.status_code == expected, (raw, r.status_code, r.content[:300])
    if expected == 200:
        assert r.content == b"top"
        return
    assert b"top" != r.content
    for method, body in (("PUT", b"shifted"), ("DELETE", b""), ("MKCOL", b"")):
        r = raw_request(client, method, raw, body)
        assert r.status_code == expected, (method, raw, r.status_code)
    assert snapshot(client) == before and snapshot(client, "a") == before_a
    assert client.get(url("top.txt")).content == b"top"


# ---------------------------------------------------------------------------------------------
# Values stored in bounded columns: refused at the edge with a 400 naming the header. SQLite would
# store them; PostgreSQL would refuse them with an error (a 500) if they got that far.

BOUNDED_HEADERS: list[tuple[str, str, str]] = [
    ("X-Cartable-Device", "d" * 129, "X-Cartable-Device"),
    ("X-Cartable-Operation", "o" * 129, "X-Cartable-Operation"),
    ("OC-Checksum", "SHA1:" + "a" * 1020, "OC-Checksum"),
    ("Content-Type", "text/" + "x" * 251, "Content-Type"),
]


@pytest.mark.parametrize(("header", "value", "named"), BOUNDED_HEADERS)
def test_overlong_header_values_are_400(populated: TestClient, header: str, value: str, named: str) -> None:
    client = populated
    before = snapshot(client)
    for method, path, extra in (("PUT", "new.txt", {}), ("PUT", "top.txt", {})):
        r = client.request(method, url(path), content=b"data", headers={header: value, **extra})
        assert r.status_code == 400, (header, method, r.status_code)
        assert_error_message(r)
        assert named in r.text
    if header.startswith("X-Cartable"):
        for method, path, extra in (("MKCOL", "d", {}), ("DELETE", "top.txt", {}),
                                    ("MOVE", "top.txt", {"Destination": url("moved.txt")})):
            r = client.request(method, url(path), headers={header: value, **extra})
            assert r.status_code == 400, (header, method, r.status_code)
            assert named in r.text
    assert snapshot(client) == before
    assert client.get(url("top.txt")).content == b"top"


def test_values_at_the_limit_are_stored(populated: TestClient, core: Core) -> None:
    client = populated
    with core.db.read() as tx:
        head = journal.head(tx)
    r = client.put(url("ok.txt"), content=b"data", headers={
        "X-Cartable-Device": "d" * 128, "X-Cartable-Operation": "o" * 128, "Content-Type": "text/" + "x" * 250,
        "OC-Checksum": "SHA1:" + hashlib.sha1(b"data").hexdigest()})
    assert r.status_code == 201, r.text
    with core.db.read() as tx:
        (entry,) = journal.since(tx, 1, head, 10)
    assert entry.device_id == "d" * 128 and entry.op_id == "o" * 128


@pytest.mark.parametrize("checksum", ["SHA1:" + "a" * 41, "SHA1:" + "a" * 39, "MD5:" + "0" * 40,
                                      "SHA256:" + "0" * 40, "ADLER32:" + "0" * 9])
def test_checksum_of_the_wrong_length_is_400_before_the_body(populated: TestClient, checksum: str) -> None:
    client = populated
    before = snapshot(client)
    r = client.put(url("sum.bin"), content=b"data", headers={"OC-Checksum": checksum})
    assert r.status_code == 400
    assert "hex digits" in r.text
    assert snapshot(client) == before


def test_overlong_dead_property_names_are_400(populated: TestClient) -> None:
    client = populated
    props_before = dead_props(client, "top.txt")
    for ns, name in (("urn:" + "n" * 1021, "color"), (XNS, "c" * 256)):
        body = (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{ns}"><d:set><d:prop><x:{name}>v</x:{name}>'
                "</d:prop></d:set></d:propertyupdate>").encode()
        r = client.request("PROPPATCH", url("top.txt"), content=body)
        assert r.status_code == 400, r.text[:300]
        assert "property" in r.text
    assert dead_props(client, "top.txt") == props_before
    body = (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:{"n" * 1020}"><d:set><d:prop>'
            f'<x:{"c" * 255}>v</x:{"c" * 255}></d:prop></d:set></d:propertyupdate>').encode()
    assert client.request("PROPPATCH", url("top.txt"), content=body).status_code == 207


def test_overlong_upload_values_are_400(populated: TestClient) -> None:
    client = populated
    long_key = "k" * 256
    r = client.request("MKCOL", f"{UP}/{long_key}")
    assert r.status_code == 400
    assert client.request("PROPFIND", f"{UP}/", headers={"Depth": "1"}).status_code == 207
    assert client.request("MKCOL", f"{UP}/{'k' * 255}").status_code == 201
    r = client.put(f"{UP}/{'k' * 255}/{'p' * 256}", content=b"x")
    assert r.status_code == 400
    r = client.request("MKCOL", f"{UP}/big", headers={"OC-Total-Length": "9" * 30})
    assert r.status_code == 400 and "OC-Total-Length" in r.text
    assert client.request("MKCOL", f"{UP}/big").status_code == 201, "nothing was created by the refusal"
    assert client.put(f"{UP}/big/1", content=b"chunk").status_code == 201
    before = snapshot(client)
    for header, value in (("X-Cartable-Device", "d" * 129), ("OC-Checksum", "SHA1:" + "a" * 1020)):
        r = client.request("MOVE", f"{UP}/big/.file", headers={"Destination": url("big.txt"), header: value})
        assert r.status_code == 400 and header in r.text
    assert snapshot(client) == before
    assert client.request("MOVE", f"{UP}/big/.file", headers={"Destination": url("big.txt")}).status_code == 201
