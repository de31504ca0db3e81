# SPDX-License-Identifier: EUPL-1.2
"""If, If-Match and If-None-Match are judged inside the write's own transaction, for every method
that changes something, with one evaluator (WebDAV and the chunked-upload MOVE alike).

The race tests hold a request in the middle of its body and change the target meanwhile: a
precondition checked before the transaction would pass and the write would silently overwrite the
other change (a lost update); checked inside it, the write is refused with 412."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from lxml import etree
from starlette.testclient import TestClient

from cartable.core import accounts, props
from cartable.core.context import Core
from cartable.core.props import PropChange
from cartable.core.tree import Op
from cartable.core.writes import Upload
from cartable.store.meta import journal
from tests.core.conftest import principal
from tests.dav.test_hostile import RawResponse, basic, dead_props, snapshot, url

XNS = "urn:example:cartable-test"
LOCKINFO = (b'<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
            b"<d:locktype><d:write/></d:locktype><d:owner>t</d:owner></d:lockinfo>")


def etag(client: TestClient, path: str) -> str:
    r = client.request("PROPFIND", url(path), headers={"Depth": "0"},
                       content=b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>')
    assert r.status_code == 207
    return (etree.fromstring(r.content).findtext(".//{DAV:}getetag") or "").strip('"')


def set_prop(name: str, value: str) -> bytes:
    return (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{XNS}"><d:set><d:prop><x:{name}>{value}</x:{name}>'
            "</d:prop></d:set></d:propertyupdate>").encode()


def staged_request(client: TestClient, method: str, path: str, pieces: list[bytes], headers: dict[str, str],
                   between: Callable[[], None]) -> RawResponse:
    """Call the app with a body sent in pieces; ``between()`` runs when the app asks for the
    second piece, i.e. after the request started and before its body is complete."""
    body_len = sum(len(p) for p in pieces)
    hdrs = {"host": "testserver", "authorization": basic("alice", "alice-secret-pw"),
            "content-length": str(body_len), **{k.lower(): v for k, v in headers.items()}}
    raw = path.encode()

    async def call() -> RawResponse:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": raw, "query_string": b"", "root_path": "",
                 "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
                 "client": ("testclient", 50000), "server": ("testserver", 80)}
        calls = 0
        status, out_headers, chunks = 0, {}, []

        async def receive() -> dict[str, object]:
            nonlocal calls
            calls += 1
            if calls == 2:
                between()
            if calls <= len(pieces):
                return {"type": "http.request", "body": pieces[calls - 1], "more_body": calls < len(pieces)}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
                for k, v in message.get("headers", []):  # type: ignore[attr-defined]
                    out_headers[k.decode("latin-1")] = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await client.app(scope, receive, send)  # type: ignore[arg-type]
        assert calls >= 2, "the app read the whole body in one piece: the race was not staged"
        return RawResponse(status, out_headers, b"".join(chunks))  # type: ignore[arg-type]

    return anyio.run(call)


def overwrite(core: Core, name: str, data: bytes) -> Callable[[], None]:
    def run() -> None:
        up = Upload(core, Op(principal(core)), (name,), length=len(data))
        up.write(data)
        up.commit()
    return run


@pytest.fixture
def doc(client: TestClient) -> TestClient:
    assert client.put(url("doc.txt"), content=b"version 1").status_code == 201
    return client


@pytest.mark.parametrize("size", [1000, 600_000], ids=["small", "streamed"])
@pytest.mark.parametrize("header", ["if-match", "if"])
def test_put_race_is_412_not_a_lost_update(doc: TestClient, core: Core, size: int, header: str) -> None:
    client = doc
    tag = etag(client, "doc.txt")
    value = f'"{tag}"' if header == "if-match" else f'(["{tag}"])'
    body = b"x" * size
    r = staged_request(client, "PUT", url("doc.txt"), [body[:100], body[100:]], {header: value},
                       overwrite(core, "doc.txt", b"version 2 from another client"))
    assert r.status_code == 412, r.content[:300]
    assert client.get(url("doc.txt")).content == b"version 2 from another client"


def test_put_without_race_passes(doc: TestClient) -> None:
    client = doc
    tag = etag(client, "doc.txt")
    r = staged_request(client, "PUT", url("doc.txt"), [b"version", b" 3"], {"If": f'(["{tag}"])'}, lambda: None)
    assert r.status_code == 204
    assert client.get(url("doc.txt")).content == b"version 3"


def test_proppatch_race_is_412_and_sets_nothing(doc: TestClient, core: Core) -> None:
    client = doc
    tag = etag(client, "doc.txt")
    body = set_prop("color", "blue")
    r = staged_request(client, "PROPPATCH", url("doc.txt"), [body[:20], body[20:]], {"If": f'(["{tag}"])'},
                       overwrite(core, "doc.txt", b"changed meanwhile"))
    assert r.status_code == 412, r.content[:300]
    assert f"{{{XNS}}}color" not in dead_props(client, "doc.txt")


@pytest.mark.parametrize("if_match", ['"wrong", "{tag}"', '"{tag}", "wrong"', "*"])
def test_delete_honours_the_whole_if_match_list(doc: TestClient, if_match: str) -> None:
    client = doc
    tag = etag(client, "doc.txt")
    r = client.delete(url("doc.txt"), headers={"If-Match": if_match.format(tag=tag)})
    assert r.status_code == 204
    assert client.get(url("doc.txt")).status_code == 404


@pytest.mark.parametrize("if_match", ['"wrong"', '"wrong1", "wrong2"', 'W/"also-wrong"'])
def test_delete_with_no_matching_etag_is_412(doc: TestClient, if_match: str) -> None:
    client = doc
    before = snapshot(client)
    assert client.delete(url("doc.txt"), headers={"If-Match": if_match}).status_code == 412
    assert snapshot(client) == before


def _bad_if(client: TestClient, path: str) -> dict[str, str]:
    return {"If": '(["not-the-etag"])'}


def _good_if(client: TestClient, path: str) -> dict[str, str]:
    return {"If": f'(["{etag(client, path)}"])'}


# method, target, extra headers, body, status when the If header holds
METHODS: list[tuple[str, str, dict[str, str], bytes, int]] = [
    ("PUT", "doc.txt", {}, b"new", 204),
    ("DELETE", "doc.txt", {}, b"", 204),
    ("MOVE", "doc.txt", {"Destination": url("moved.txt")}, b"", 201),
    ("COPY", "doc.txt", {"Destination": url("copied.txt")}, b"", 201),
    ("PROPPATCH", "doc.txt", {}, set_prop("color", "red"), 207),
    ("LOCK", "doc.txt", {}, LOCKINFO, 200),
]


@pytest.mark.parametrize(("method", "path", "extra", "body", "ok"), METHODS, ids=[m[0] for m in METHODS])
def test_every_write_checks_the_if_header(doc: TestClient, method: str, path: str, extra: dict[str, str],
                                          body: bytes, ok: int) -> None:
    client = doc
    before, props_before = snapshot(client), dead_props(client, "doc.txt")
    r = client.request(method, url(path), content=body, headers={**extra, **_bad_if(client, path)})
    assert r.status_code == 412, (method, r.status_code, r.text[:300])
    assert snapshot(client) == before
    assert dead_props(client, "doc.txt") == props_before
    assert "activelock" not in client.request("PROPFIND", url("doc.txt"), headers={"Depth": "0"}).text
    r = client.request(method, url(path), content=body, headers={**extra, **_good_if(client, path)})
    assert r.status_code == ok, (method, r.status_code, r.text[:300])


def test_mkcol_checks_the_if_header(client: TestClient) -> None:
    before = snapshot(client)
    assert client.request("MKCOL", url("d"), headers={"If-None-Match": "*"}).status_code == 201
    assert client.request("MKCOL", url("e"), headers={"If": '(["nothing-here"])'}).status_code == 412
    assert client.request("MKCOL", url("e"), headers={"If": '(Not ["nothing-here"])'}).status_code == 201
    assert snapshot(client) != before


def test_tagged_lists_are_judged_on_the_resources_they_name(doc: TestClient) -> None:
    client = doc
    assert client.put(url("other.txt"), content=b"other").status_code == 201
    other = etag(client, "other.txt")
    # The list names another resource: it holds or not according to that resource's etag.
    ok = {"If": f'<http://testserver{url("other.txt")}> (["{other}"])'}
    bad = {"If": f'<{url("other.txt")}> (["not-its-etag"])'}
    assert client.put(url("doc.txt"), content=b"v2", headers=bad).status_code == 412
    assert client.put(url("doc.txt"), content=b"v2", headers=ok).status_code == 204
    # Any one list may hold (RFC 4918 §10.4.3): a failing list, then a holding one.
    either = {"If": f'<{url("doc.txt")}> (["wrong"]) <{url("other.txt")}> (["{other}"])'}
    assert client.delete(url("doc.txt"), headers=either).status_code == 204
    # A resource outside the caller's tree has no state: only a negated list can hold for it.
    outside = {"If": '</remote.php/dav/files/bob/x> (["anything"])'}
    assert client.put(url("new.txt"), content=b"n", headers=outside).status_code == 412
    outside_not = {"If": '</remote.php/dav/files/bob/x> (Not ["anything"])'}
    assert client.put(url("new.txt"), content=b"n", headers=outside_not).status_code == 201


def test_lock_tokens_in_the_if_header_are_judged_in_the_transaction(doc: TestClient) -> None:
    client = doc
    r = client.request("LOCK", url("doc.txt"), content=LOCKINFO)
    assert r.status_code == 200
    token = r.headers["lock-token"].strip("<>")
    assert client.put(url("doc.txt"), content=b"v2").status_code == 423
    assert client.put(url("doc.txt"), content=b"v2", headers={"If": "(<opaquelocktoken:wrong>)"}).status_code == 412
    assert client.put(url("doc.txt"), content=b"v2", headers={"If": f"(<{token}>)"}).status_code == 204
    # A new file in a folder governed by a depth-infinity lock: the folder's token is valid for it.
    assert client.request("MKCOL", url("d")).status_code == 201
    r = client.request("LOCK", url("d"), content=LOCKINFO, headers={"Depth": "infinity"})
    folder_token = r.headers["lock-token"].strip("<>")
    assert client.put(url("d/new.txt"), content=b"n", headers={"If": f"(<{folder_token}>)"}).status_code == 201
    refresh = client.request("LOCK", url("doc.txt"), headers={"If": f"(<{token}>)", "Timeout": "Second-100"})
    assert refresh.status_code == 200
    stale = client.request("LOCK", url("doc.txt"), headers={"If": "(<opaquelocktoken:wrong>)"})
    assert stale.status_code == 412


def test_upload_move_uses_the_same_evaluator(doc: TestClient) -> None:
    client = doc
    up = "/remote.php/dav/uploads/alice/u1"
    assert client.request("MKCOL", up).status_code == 201
    assert client.put(f"{up}/1", content=b"assembled").status_code == 201
    tag = etag(client, "doc.txt")
    # Untagged lists are about .file, which has no state; tagged ones about the files they name.
    for header in ('(["' + tag + '"])', f'<{url("doc.txt")}> (["wrong"])'):
        r = client.request("MOVE", f"{up}/.file", headers={"Destination": url("doc.txt"), "If": header})
        assert r.status_code == 412, header
    assert client.get(url("doc.txt")).content == b"version 1"
    r = client.request("MOVE", f"{up}/.file", headers={"Destination": url("doc.txt"),
                                                      "If": f'<{url("doc.txt")}> (["{tag}"])'})
    assert r.status_code == 204
    assert client.get(url("doc.txt")).content == b"assembled"


# ---------------------------------------------------------------------------------------------
# PROPPATCH is journalled, and moves no etag (as in Nextcloud)


def test_proppatch_is_journalled_and_moves_no_etag(doc: TestClient, core: Core) -> None:
    client = doc
    assert client.request("MKCOL", url("f")).status_code == 201
    assert client.put(url("f/x.txt"), content=b"x").status_code == 201
    before = {p: etag(client, p) for p in ("", "f", "f/x.txt")}
    with core.db.read() as tx:
        head = journal.head(tx)
    r = client.request("PROPPATCH", url("f/x.txt"), content=set_prop("color", "green"),
                       headers={"X-Cartable-Device": "laptop", "X-Cartable-Operation": "op-7"})
    assert r.status_code == 207
    assert {p: etag(client, p) for p in before} == before
    with core.db.read() as tx:
        (entry,) = journal.since(tx, principal(core).space_id, head, 10)
    assert (entry.op, entry.name, entry.device_id, entry.op_id) == ("props", "x.txt", "laptop", "op-7")
    remove = (f'<d:propertyupdate xmlns:d="DAV:" xmlns:x="{XNS}"><d:remove><d:prop><x:color/></d:prop>'
              "</d:remove></d:propertyupdate>").encode()
    assert client.request("PROPPATCH", url("f/x.txt"), content=remove).status_code == 207
    with core.db.read() as tx:
        entries = journal.since(tx, principal(core).space_id, head, 10)
    assert [e.op for e in entries] == ["props", "props"]


def test_refused_proppatch_is_not_journalled(doc: TestClient, core: Core) -> None:
    client = doc
    with core.db.read() as tx:
        head = journal.head(tx)
    r = client.request("PROPPATCH", url("doc.txt"), content=set_prop("color", "x"), headers={"If": '(["no"])'})
    assert r.status_code == 412
    protected = (b'<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:getetag>x</d:getetag></d:prop></d:set>'
                 b"</d:propertyupdate>")
    assert client.request("PROPPATCH", url("doc.txt"), content=protected).status_code == 207
    with core.db.read() as tx:
        assert journal.since(tx, principal(core).space_id, head, 10) == []


def test_core_patch_checks_locks_and_preconditions(core: Core) -> None:
    from cartable.core.errors import PreconditionFailed
    from cartable.core.preconditions import Preconditions

    accounts.set_quota(core, "alice", 10**9)
    op = Op(principal(core))
    up = Upload(core, op, ("p.txt",))
    up.write(b"p")
    node = up.commit().node
    with pytest.raises(PreconditionFailed):
        props.patch(core, op, op.principal, ("p.txt",), [PropChange(XNS, "a", "<x/>")],
                    Preconditions(if_match=["not-" + node.etag]))
    assert props.dead_props(core, node) == {}
    props.patch(core, op, op.principal, ("p.txt",), [PropChange(XNS, "a", "<x/>")],
                Preconditions(if_match=[node.etag]))
    assert props.dead_props(core, node) == {(XNS, "a"): "<x/>"}
