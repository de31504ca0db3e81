# SPDX-License-Identifier: EUPL-1.2
"""WebDAV protocol behaviour through the in-process app: conditional requests, ranges, collections,
etag/size propagation, COPY/MOVE, PROPFIND/PROPPATCH, locks, names and large content."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from urllib.parse import quote, unquote

import httpx
import pytest
from lxml import etree
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from tests.conftest import DAV

# ---------------------------------------------------------------------------------------------
# Typed helpers: each checks the status it expects and returns what the test needs next.

D = "DAV:"
GETETAG = "{DAV:}getetag"
Multistatus = dict[str, dict[str, tuple[int, str]]]

XNS = "urn:example:cartable-test"
LOCKINFO = (b'<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:">'
            b"<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
            b"<d:owner>test</d:owner></d:lockinfo>")


def url(path: str) -> str:
    """The request URL for a path below alice's root; path is already percent-encoded."""
    return DAV + "/" + path.lstrip("/")


def propfind_body(*names: str) -> bytes:
    """A DAV:propfind asking for Clark-named properties ("{ns}name")."""
    props = []
    for n in names:
        ns, _, local = n[1:].partition("}")
        props.append(f'<x:{local} xmlns:x="{ns}"/>')
    return (f'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>{"".join(props)}'
            "</d:prop></d:propfind>").encode()


def _prop_value(el: etree._Element) -> str:
    kids = [c for c in el if isinstance(c.tag, str)]
    if kids:
        return "".join(etree.tostring(c, encoding="unicode", with_tail=False) for c in kids)
    return el.text or ""


def parse_multistatus(body: bytes) -> Multistatus:
    """{href (as sent, percent-encoded): {clark name: (status code, text or inner XML)}}."""
    root = etree.fromstring(body)
    assert root.tag == "{DAV:}multistatus", body[:200]
    out: Multistatus = {}
    for resp in root.findall("{DAV:}response"):
        href = resp.findtext("{DAV:}href")
        assert href is not None
        props: dict[str, tuple[int, str]] = {}
        for ps in resp.findall("{DAV:}propstat"):
            status_text = ps.findtext("{DAV:}status") or ""
            code = int(status_text.split()[1])
            container = ps.find("{DAV:}prop")
            assert container is not None
            for el in container:
                if isinstance(el.tag, str):
                    props[el.tag] = (code, _prop_value(el))
        out[href] = props
    return out


def propfind(client: TestClient, path: str, depth: str = "1", body: bytes | None = None) -> Multistatus:
    """PROPFIND, asserting 207, parsed; path is percent-encoded and relative to alice's root."""
    r = client.request("PROPFIND", url(path), headers={"Depth": depth}, content=body or b"")
    assert r.status_code == 207, (r.status_code, r.text)
    assert "application/xml; charset=utf-8" in r.headers["content-type"]
    return parse_multistatus(r.content)


def prop(client: TestClient, path: str, name: str) -> str:
    """One property of one resource (Depth 0), asserting it is found."""
    ms = propfind(client, path, "0", propfind_body(name))
    assert len(ms) == 1
    (props,) = ms.values()
    code, value = props[name]
    assert code == 200, (path, name, props)
    return value


def etag_of(client: TestClient, path: str) -> str:
    return prop(client, path, GETETAG)


def put(client: TestClient, path: str, data: bytes, expect: int | None = 201, **headers: str) -> httpx.Response:
    r = client.put(url(path), content=data, headers=headers)
    if expect is not None:
        assert r.status_code == expect, (r.status_code, r.text)
    return r


def get(client: TestClient, path: str, expect: int = 200, **headers: str) -> httpx.Response:
    r = client.get(url(path), headers=headers)
    assert r.status_code == expect, (r.status_code, r.text)
    return r


def mkcol(client: TestClient, path: str, expect: int = 201) -> httpx.Response:
    r = client.request("MKCOL", url(path))
    assert r.status_code == expect, (r.status_code, r.text)
    return r


def children(client: TestClient, path: str) -> set[str]:
    """Decoded names of the children of a folder (Depth 1, minus the folder itself)."""
    ms = propfind(client, path, "1", propfind_body(GETETAG))
    base = url(path).rstrip("/") + "/"
    names = set()
    for href in ms:
        if href.rstrip("/") == base.rstrip("/"):
            continue
        assert href.startswith(base), (href, base)
        names.add(unquote(href[len(base):].rstrip("/")))
    return names


def used_bytes(client: TestClient) -> int:
    return int(prop(client, "", "{DAV:}quota-used-bytes"))


def chunk_count(core: Core) -> int:
    return sum(1 for _ in core.blobs.iter_digests())


# ---------------------------------------------------------------------------------------------
# PUT, GET, conditional requests, ranges, HEAD


def test_put_new_then_replace_changes_etag(client: TestClient) -> None:
    r1 = put(client, "a.txt", b"one")
    etag1 = r1.headers["etag"]
    assert etag1.startswith('"') and etag1.endswith('"')
    r2 = put(client, "a.txt", b"two", expect=204)
    etag2 = r2.headers["etag"]
    assert etag2 != etag1
    g = get(client, "a.txt")
    assert g.content == b"two"
    assert g.headers["etag"] == etag2
    assert etag_of(client, "a.txt") == etag2


def test_if_match_mismatch_is_412_and_content_unchanged(client: TestClient) -> None:
    etag = put(client, "a.txt", b"original").headers["etag"]
    put(client, "a.txt", b"changed", expect=412, **{"If-Match": '"not-the-etag"'})
    g = get(client, "a.txt")
    assert g.content == b"original" and g.headers["etag"] == etag
    put(client, "a.txt", b"changed", expect=204, **{"If-Match": etag})
    assert get(client, "a.txt").content == b"changed"


def test_if_match_on_missing_file_is_412(client: TestClient) -> None:
    put(client, "nope.txt", b"x", expect=412, **{"If-Match": "*"})
    get(client, "nope.txt", expect=404)


def test_if_none_match_star_on_existing_is_412(client: TestClient) -> None:
    etag = put(client, "a.txt", b"first").headers["etag"]
    put(client, "a.txt", b"second", expect=412, **{"If-None-Match": "*"})
    assert get(client, "a.txt").content == b"first"
    assert etag_of(client, "a.txt") == etag
    put(client, "b.txt", b"new", expect=201, **{"If-None-Match": "*"})


def test_get_if_none_match_is_304(client: TestClient) -> None:
    etag = put(client, "a.txt", b"hello").headers["etag"]
    r = get(client, "a.txt", expect=304, **{"If-None-Match": etag})
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert get(client, "a.txt", **{"If-None-Match": '"other"'}).content == b"hello"


def test_get_if_modified_since_is_304(client: TestClient) -> None:
    put(client, "a.txt", b"hello")
    last_modified = get(client, "a.txt").headers["last-modified"]
    assert get(client, "a.txt", expect=304, **{"If-Modified-Since": last_modified}).content == b""
    old = "Mon, 01 Jan 1990 00:00:00 GMT"
    assert get(client, "a.txt", **{"If-Modified-Since": old}).content == b"hello"


def test_get_single_range_is_206(client: TestClient) -> None:
    data = bytes(range(256)) * 4
    put(client, "r.bin", data)
    r = get(client, "r.bin", expect=206, Range="bytes=10-19")
    assert r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert r.headers["content-length"] == "10"


def test_get_open_and_suffix_ranges(client: TestClient) -> None:
    data = os.urandom(1000)
    put(client, "r.bin", data)
    r = get(client, "r.bin", expect=206, Range="bytes=-100")
    assert r.content == data[-100:]
    assert r.headers["content-range"] == "bytes 900-999/1000"
    r = get(client, "r.bin", expect=206, Range="bytes=990-")
    assert r.content == data[990:]


def test_get_unsatisfiable_range_is_416(client: TestClient) -> None:
    put(client, "r.bin", b"0123456789")
    r = get(client, "r.bin", expect=416, Range="bytes=100-200")
    assert r.headers["content-range"] == "bytes */10"


def test_if_range_mismatch_serves_everything(client: TestClient) -> None:
    etag = put(client, "r.bin", b"0123456789").headers["etag"]
    r = get(client, "r.bin", expect=206, Range="bytes=2-4", **{"If-Range": etag})
    assert r.content == b"234"
    r = get(client, "r.bin", expect=200, Range="bytes=2-4", **{"If-Range": '"stale"'})
    assert r.content == b"0123456789"


def test_x_oc_mtime_sets_last_modified(client: TestClient) -> None:
    r = put(client, "m.txt", b"x", **{"X-OC-Mtime": "1234567890"})
    assert r.headers["x-oc-mtime"] == "accepted"
    assert get(client, "m.txt").headers["last-modified"] == "Fri, 13 Feb 2009 23:31:30 GMT"
    for bad in ("soon", "-5", "nan", "1e20"):
        put(client, "m.txt", b"y", expect=400, **{"X-OC-Mtime": bad})
    assert get(client, "m.txt").content == b"x"


def test_head_has_length_and_no_body(client: TestClient) -> None:
    etag = put(client, "h.bin", b"x" * 12345).headers["etag"]
    r = client.head(url("h.bin"))
    assert r.status_code == 200
    assert r.headers["content-length"] == "12345"
    assert r.headers["etag"] == etag
    assert r.content == b""


def test_put_into_missing_parent_is_409(client: TestClient) -> None:
    put(client, "missing/a.txt", b"x", expect=409)
    assert children(client, "") == set()


def test_put_onto_folder_is_refused(client: TestClient) -> None:
    mkcol(client, "dir")
    r = put(client, "dir", b"x", expect=None)
    assert r.status_code in (405, 409)
    assert etree.fromstring(prop(client, "dir", "{DAV:}resourcetype")).tag == "{DAV:}collection"


# ---------------------------------------------------------------------------------------------
# MKCOL and DELETE


def test_mkcol(client: TestClient) -> None:
    mkcol(client, "dir")
    mkcol(client, "dir", expect=405)
    mkcol(client, "no/such/parent", expect=409)
    r = client.request("MKCOL", url("withbody"), content=b"<x/>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 415
    assert children(client, "") == {"dir"}


def test_mkcol_over_file_is_405(client: TestClient) -> None:
    put(client, "f", b"data")
    mkcol(client, "f", expect=405)
    assert get(client, "f").content == b"data"


def test_delete_file_and_folder(client: TestClient) -> None:
    put(client, "f.txt", b"x")
    mkcol(client, "d")
    put(client, "d/inner.txt", b"y")
    assert client.delete(url("f.txt")).status_code == 204
    assert client.delete(url("d")).status_code == 204
    get(client, "f.txt", expect=404)
    get(client, "d/inner.txt", expect=404)
    r = client.request("PROPFIND", url("d"), headers={"Depth": "0"})
    assert r.status_code == 404
    assert client.delete(url("f.txt")).status_code == 404
    assert children(client, "") == set()
    assert used_bytes(client) == 0


# ---------------------------------------------------------------------------------------------
# Propagation of folder etags and sizes


def test_folder_etags_change_on_every_change_below(client: TestClient) -> None:
    chain = ["", "a", "a/b", "a/b/c"]
    for p in chain[1:]:
        mkcol(client, p)
    before = {p: etag_of(client, p) for p in chain}

    put(client, "a/b/c/deep.txt", b"deep")
    after_put = {p: etag_of(client, p) for p in chain}
    for p in chain:
        assert after_put[p] != before[p], f"etag of {p!r} did not change after a PUT below it"

    put(client, "a/b/c/deep.txt", b"deeper", expect=204)
    after_replace = {p: etag_of(client, p) for p in chain}
    for p in chain:
        assert after_replace[p] != after_put[p], f"etag of {p!r} did not change after a replace"

    assert client.delete(url("a/b/c/deep.txt")).status_code == 204
    after_delete = {p: etag_of(client, p) for p in chain}
    for p in chain:
        assert after_delete[p] != after_replace[p], f"etag of {p!r} did not change after a DELETE"

    mkcol(client, "a/b/c/sub")
    after_mkcol = {p: etag_of(client, p) for p in chain}
    for p in chain:
        assert after_mkcol[p] != after_delete[p], f"etag of {p!r} did not change after MKCOL"


def test_sibling_etag_is_untouched(client: TestClient) -> None:
    mkcol(client, "a")
    mkcol(client, "other")
    sibling = etag_of(client, "other")
    put(client, "a/f.txt", b"x")
    assert etag_of(client, "other") == sibling


def test_sizes_add_up_in_quota_used_bytes(client: TestClient) -> None:
    mkcol(client, "a")
    mkcol(client, "a/b")
    files = {"top.bin": 100, "a/one.bin": 2000, "a/b/two.bin": 30000, "a/b/three.bin": 7}
    for path, size in files.items():
        put(client, path, os.urandom(size))
    assert used_bytes(client) == sum(files.values())

    lengths = {}
    for folder in ("", "a", "a/b"):
        for href, props in propfind(client, folder, "1", propfind_body("{DAV:}getcontentlength")).items():
            code, value = props["{DAV:}getcontentlength"]
            if not href.endswith("/"):
                assert code == 200
                lengths[href] = int(value)
            else:
                assert code == 404, "a folder has no getcontentlength"
    assert sum(lengths.values()) == sum(files.values())

    put(client, "a/b/two.bin", b"small", expect=204)
    assert used_bytes(client) == sum(files.values()) - 30000 + 5
    assert client.delete(url("a")).status_code == 204
    assert used_bytes(client) == 100


# ---------------------------------------------------------------------------------------------
# MOVE and COPY


def test_move_keeps_etag_and_content(client: TestClient) -> None:
    etag = put(client, "src.txt", b"moving").headers["etag"]
    r = client.request("MOVE", url("src.txt"), headers={"Destination": url("dst.txt")})
    assert r.status_code == 201, r.text
    get(client, "src.txt", expect=404)
    g = get(client, "dst.txt")
    assert g.content == b"moving" and g.headers["etag"] == etag


def test_move_folder_keeps_its_etag(client: TestClient) -> None:
    mkcol(client, "d")
    put(client, "d/f.txt", b"x")
    etag = etag_of(client, "d")
    r = client.request("MOVE", url("d"), headers={"Destination": url("e")})
    assert r.status_code == 201
    assert etag_of(client, "e") == etag
    assert get(client, "e/f.txt").content == b"x"
    assert children(client, "") == {"e"}


def test_move_with_full_url_destination(client: TestClient) -> None:
    put(client, "a.txt", b"A")
    dest = "http://testserver" + url("caf%C3%A9%20b.txt")
    r = client.request("MOVE", url("a.txt"), headers={"Destination": dest})
    assert r.status_code == 201, r.text
    assert children(client, "") == {"café b.txt"}


def test_destination_may_spell_the_user_name_either_way(client: TestClient, core: Core) -> None:
    accounts.create_user(core, "bob@example.org", "bob-password-1")
    bob = ("bob@example.org", "bob-password-1")
    plain, encoded = "/remote.php/dav/files/bob@example.org", "/remote.php/dav/files/bob%40example.org"
    assert client.put(plain + "/a.txt", content=b"a", auth=bob).status_code == 201
    r = client.request("MOVE", plain + "/a.txt", headers={"Destination": plain + "/b.txt"}, auth=bob)
    assert r.status_code == 201, r.text
    r = client.request("COPY", encoded + "/b.txt", headers={"Destination": "http://testserver" + plain + "/c.txt"},
                       auth=bob)
    assert r.status_code == 201, r.text
    r = client.request("PROPFIND", plain + "/", headers={"Depth": "1"}, auth=bob)
    # hrefs follow the client's own spelling of the request path (clients compare them with it)
    assert sorted(parse_multistatus(r.content)) == [plain + "/", plain + "/b.txt", plain + "/c.txt"]
    r = client.request("PROPFIND", encoded + "/", headers={"Depth": "1"}, auth=bob)
    assert sorted(parse_multistatus(r.content)) == [encoded + "/", encoded + "/b.txt", encoded + "/c.txt"]


def test_legacy_webdav_root_serves_the_same_tree(client: TestClient) -> None:
    put(client, "a.txt", b"A")
    legacy = "/remote.php/webdav"
    assert client.get(legacy + "/a.txt").content == b"A"
    r = client.request("MOVE", legacy + "/a.txt", headers={"Destination": legacy + "/b.txt"})
    assert r.status_code == 201, r.text
    assert get(client, "b.txt").content == b"A"
    r = client.request("PROPFIND", legacy + "/", headers={"Depth": "1"})
    assert sorted(parse_multistatus(r.content)) == [legacy + "/", legacy + "/b.txt"]


def test_move_with_absolute_path_destination(client: TestClient) -> None:
    put(client, "a.txt", b"A")
    mkcol(client, "d")
    r = client.request("MOVE", url("a.txt"), headers={"Destination": url("d/a.txt")})
    assert r.status_code == 201
    assert get(client, "d/a.txt").content == b"A"
    get(client, "a.txt", expect=404)


def test_move_overwrite(client: TestClient) -> None:
    put(client, "a.txt", b"A")
    put(client, "b.txt", b"B")
    r = client.request("MOVE", url("a.txt"), headers={"Destination": url("b.txt"), "Overwrite": "F"})
    assert r.status_code == 412
    assert get(client, "a.txt").content == b"A"
    assert get(client, "b.txt").content == b"B"
    r = client.request("MOVE", url("a.txt"), headers={"Destination": url("b.txt")})
    assert r.status_code == 204
    assert get(client, "b.txt").content == b"A"
    assert children(client, "") == {"b.txt"}
    assert used_bytes(client) == 1


def test_copy_overwrite_f_is_412(client: TestClient) -> None:
    put(client, "a.txt", b"A")
    etag_b = put(client, "b.txt", b"B").headers["etag"]
    r = client.request("COPY", url("a.txt"), headers={"Destination": url("b.txt"), "Overwrite": "F"})
    assert r.status_code == 412
    assert get(client, "b.txt").headers["etag"] == etag_b


def test_copy_gives_a_new_etag(client: TestClient) -> None:
    etag = put(client, "a.txt", b"copy me").headers["etag"]
    r = client.request("COPY", url("a.txt"), headers={"Destination": url("b.txt")})
    assert r.status_code == 201
    g = get(client, "b.txt")
    assert g.content == b"copy me"
    assert g.headers["etag"] != etag
    assert get(client, "a.txt").headers["etag"] == etag
    assert used_bytes(client) == 14


def test_copy_folder_depth_infinity_copies_children(client: TestClient) -> None:
    mkcol(client, "d")
    mkcol(client, "d/sub")
    put(client, "d/one.txt", b"1")
    put(client, "d/sub/two.txt", b"22")
    r = client.request("COPY", url("d"), headers={"Destination": url("copy"), "Depth": "infinity"})
    assert r.status_code == 201
    assert children(client, "copy") == {"one.txt", "sub"}
    assert children(client, "copy/sub") == {"two.txt"}
    assert get(client, "copy/sub/two.txt").content == b"22"
    put(client, "copy/sub/two.txt", b"changed", expect=204)
    assert get(client, "d/sub/two.txt").content == b"22", "the copy shares no state with its source"
    assert used_bytes(client) == 1 + 2 + 1 + 7


def test_copy_folder_depth_0_copies_only_the_folder(client: TestClient) -> None:
    mkcol(client, "d")
    put(client, "d/one.txt", b"1")
    r = client.request("COPY", url("d"), headers={"Destination": url("empty"), "Depth": "0"})
    assert r.status_code == 201
    assert children(client, "empty") == set()


# ---------------------------------------------------------------------------------------------
# PROPFIND


def test_propfind_depth_infinity_is_refused(client: TestClient) -> None:
    r = client.request("PROPFIND", url(""), headers={"Depth": "infinity"})
    assert r.status_code == 403
    assert "propfind-finite-depth" in r.text


def test_propfind_depth_1_lists_children(client: TestClient) -> None:
    mkcol(client, "dir")
    mkcol(client, "dir/sub")
    put(client, "dir/file.txt", b"hello")
    put(client, "dir/sub/hidden.txt", b"deeper than depth 1")
    body = propfind_body("{DAV:}resourcetype", "{DAV:}getcontentlength", f"{{{XNS}}}nothing")
    ms = propfind(client, "dir", "1", body)
    base = url("dir/")
    assert set(ms) == {base, base + "sub/", base + "file.txt"}
    for href, props in ms.items():
        assert href.startswith(base)
        is_dir = href.endswith("/")
        assert props["{DAV:}resourcetype"][0] == 200
        assert ("collection" in props["{DAV:}resourcetype"][1]) == is_dir
        assert props[f"{{{XNS}}}nothing"] == (404, "")
    assert ms[base + "file.txt"]["{DAV:}getcontentlength"] == (200, "5")


def test_propfind_depth_0_and_allprop(client: TestClient) -> None:
    put(client, "f.txt", b"abc")
    ms = propfind(client, "f.txt", "0")
    assert list(ms) == [url("f.txt")]
    props = ms[url("f.txt")]
    for name in ("getetag", "getlastmodified", "getcontentlength", "resourcetype", "displayname"):
        assert props["{DAV:}" + name][0] == 200, name
    assert props["{DAV:}displayname"][1] == "f.txt"
    assert props[GETETAG][1] == get(client, "f.txt").headers["etag"]


def test_propfind_on_missing_is_404(client: TestClient) -> None:
    r = client.request("PROPFIND", url("nothing-here"), headers={"Depth": "0"})
    assert r.status_code == 404


# ---------------------------------------------------------------------------------------------
# PROPPATCH


def proppatch_set(name: str, inner: str, ns: str = XNS) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="{ns}">'
            f"<d:set><d:prop><x:{name}>{inner}</x:{name}></d:prop></d:set></d:propertyupdate>").encode()


def proppatch_remove(name: str, ns: str = XNS) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="{ns}">'
            f"<d:remove><d:prop><x:{name}/></d:prop></d:remove></d:propertyupdate>").encode()


def proppatch_statuses(r: httpx.Response) -> dict[str, int]:
    assert r.status_code == 207, r.text
    ((_, props),) = parse_multistatus(r.content).items()
    return {k: code for k, (code, _) in props.items()}


def test_proppatch_set_get_remove_dead_property(client: TestClient) -> None:
    put(client, "f.txt", b"x")
    name = f"{{{XNS}}}color"
    value = "bleu &amp; blanc &lt;rouge&gt; – 日本"
    r = client.request("PROPPATCH", url("f.txt"), content=proppatch_set("color", value))
    assert proppatch_statuses(r) == {name: 200}

    ms = propfind(client, "f.txt", "0", propfind_body(name))
    assert ms[url("f.txt")][name] == (200, "bleu & blanc <rouge> – 日本")
    # allprop also returns dead properties
    assert propfind(client, "f.txt", "0")[url("f.txt")][name] == (200, "bleu & blanc <rouge> – 日本")

    r = client.request("PROPPATCH", url("f.txt"), content=proppatch_set("color", "<x:shade>dark</x:shade>"))
    assert proppatch_statuses(r) == {name: 200}
    code, inner = propfind(client, "f.txt", "0", propfind_body(name))[url("f.txt")][name]
    assert code == 200
    shade = etree.fromstring(inner)
    assert shade.tag == f"{{{XNS}}}shade" and shade.text == "dark"

    r = client.request("PROPPATCH", url("f.txt"), content=proppatch_remove("color"))
    assert proppatch_statuses(r) == {name: 200}
    assert propfind(client, "f.txt", "0", propfind_body(name))[url("f.txt")][name] == (404, "")


def test_dead_property_survives_move_and_is_copied(client: TestClient) -> None:
    put(client, "f.txt", b"x")
    name = f"{{{XNS}}}tag"
    assert client.request("PROPPATCH", url("f.txt"), content=proppatch_set("tag", "kept")).status_code == 207
    assert client.request("MOVE", url("f.txt"), headers={"Destination": url("g.txt")}).status_code == 201
    assert propfind(client, "g.txt", "0", propfind_body(name))[url("g.txt")][name] == (200, "kept")
    assert client.request("COPY", url("g.txt"), headers={"Destination": url("h.txt")}).status_code == 201
    assert propfind(client, "h.txt", "0", propfind_body(name))[url("h.txt")][name] == (200, "kept")


def test_proppatch_protected_live_property_is_403_and_changes_nothing(client: TestClient) -> None:
    etag = put(client, "f.txt", b"x").headers["etag"]
    body = (f'<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="{XNS}">'
            '<d:set><d:prop><x:color>red</x:color><d:getetag>"forged"</d:getetag></d:prop></d:set>'
            "</d:propertyupdate>").encode()
    r = client.request("PROPPATCH", url("f.txt"), content=body)
    statuses = proppatch_statuses(r)
    assert statuses[GETETAG] == 403
    assert statuses[f"{{{XNS}}}color"] == 424
    assert etag_of(client, "f.txt") == etag
    ms = propfind(client, "f.txt", "0", propfind_body(f"{{{XNS}}}color"))
    assert ms[url("f.txt")][f"{{{XNS}}}color"][0] == 404


def test_proppatch_on_missing_resource_is_404(client: TestClient) -> None:
    for body in (proppatch_set("color", "red"), proppatch_set("getetag", '"forged"', ns="DAV:")):
        r = client.request("PROPPATCH", url("missing.txt"), content=body)
        assert r.status_code == 404, r.text
    get(client, "missing.txt", expect=404)


def test_proppatch_on_folder_answers_with_the_folder_href(client: TestClient) -> None:
    mkcol(client, "d")
    r = client.request("PROPPATCH", url("d"), content=proppatch_set("color", "red"))
    assert list(parse_multistatus(r.content)) == [url("d/")]


# ---------------------------------------------------------------------------------------------
# Quota properties


def test_quota_properties_on_root(client: TestClient, core: Core) -> None:
    put(client, "f.bin", b"x" * 5000)
    ms = propfind(client, "", "0", propfind_body("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes"))
    props = ms[url("")]
    used, avail = int(props["{DAV:}quota-used-bytes"][1]), int(props["{DAV:}quota-available-bytes"][1])
    assert used == 5000
    assert used + avail == core.limits.default_quota
    accounts.set_quota(core, "alice", 12000)
    assert int(prop(client, "", "{DAV:}quota-available-bytes")) == 7000
    assert used_bytes(client) == 5000


# ---------------------------------------------------------------------------------------------
# Locks


def lock(client: TestClient, path: str) -> str:
    r = client.request("LOCK", url(path), content=LOCKINFO, headers={"Timeout": "Second-600", "Depth": "0"})
    assert r.status_code in (200, 201), r.text
    token = r.headers["lock-token"]
    assert token.startswith("<") and token.endswith(">")
    assert token[1:-1] in r.text
    return token[1:-1]


def test_lock_put_unlock(client: TestClient) -> None:
    put(client, "locked.txt", b"v1")
    token = lock(client, "locked.txt")
    r = client.put(url("locked.txt"), content=b"v2")
    assert r.status_code == 423
    assert get(client, "locked.txt").content == b"v1"
    assert client.delete(url("locked.txt")).status_code == 423
    r = client.put(url("locked.txt"), content=b"v3", headers={"If": f"(<{token}>)"})
    assert r.status_code in (200, 204), r.text
    assert get(client, "locked.txt").content == b"v3"
    discovery = prop(client, "locked.txt", "{DAV:}lockdiscovery")
    assert token in discovery
    r = client.request("UNLOCK", url("locked.txt"), headers={"Lock-Token": f"<{token}>"})
    assert r.status_code == 204
    assert token not in prop(client, "locked.txt", "{DAV:}lockdiscovery")
    put(client, "locked.txt", b"v4", expect=204)


def test_second_exclusive_lock_is_423(client: TestClient) -> None:
    put(client, "f.txt", b"x")
    token = lock(client, "f.txt")
    r = client.request("LOCK", url("f.txt"), content=LOCKINFO)
    assert r.status_code == 423
    assert "lock-token" not in r.headers
    discovery = prop(client, "f.txt", "{DAV:}lockdiscovery")
    assert discovery.count("opaquelocktoken:") == 1 and token in discovery


def test_lock_on_unmapped_url_creates_empty_file(client: TestClient) -> None:
    token = lock(client, "new.txt")
    assert get(client, "new.txt").content == b""
    put(client, "new.txt", b"x", expect=423)
    r = client.put(url("new.txt"), content=b"y", headers={"If": f"(<{token}>)"})
    assert r.status_code in (200, 204)


def test_lock_on_folder_protects_children(client: TestClient) -> None:
    mkcol(client, "d")
    r = client.request("LOCK", url("d"), content=LOCKINFO, headers={"Depth": "infinity"})
    assert r.status_code in (200, 201)
    token = r.headers["lock-token"][1:-1]
    put(client, "d/new.txt", b"x", expect=423)
    assert children(client, "d") == set()
    r = client.put(url("d/new.txt"), content=b"x", headers={"If": f"<{url('d')}> (<{token}>)"})
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------------------------------------
# Names

TRICKY_NAMES = [
    "with space.txt",
    "plus+sign.txt",
    "a&b.txt",
    "hash#tag.txt",
    "100%.txt",
    "what?.txt",
    "café.txt",
    "日本語.txt",
    "semi;colon=eq,comma'quote\"dq.txt",
    "<angle>.txt",
    "trailing space ",
    "emoji 😀.txt",
]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_tricky_names_round_trip(client: TestClient, name: str) -> None:
    enc = quote(name, safe="")
    data = name.encode() * 3
    put(client, enc, data)
    assert get(client, enc).content == data
    assert children(client, "") == {name}
    ms = propfind(client, enc, "0", propfind_body("{DAV:}displayname"))
    ((href, props),) = ms.items()
    assert unquote(href) == DAV + "/" + name
    assert props["{DAV:}displayname"] == (200, name)
    mkcol(client, quote(name + " dir", safe=""))
    put(client, quote(name + " dir", safe="") + "/" + enc, b"inner")
    assert children(client, quote(name + " dir", safe="")) == {name}


def test_plus_is_not_a_space(client: TestClient) -> None:
    put(client, "a+b", b"plus")
    get(client, "a%20b", expect=404)
    assert get(client, "a%2Bb").content == b"plus"


def test_nfd_name_is_stored_as_nfc(client: TestClient) -> None:
    nfc = "café résumé.txt"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    put(client, quote(nfd, safe=""), b"normalized")
    assert get(client, quote(nfc, safe="")).content == b"normalized"
    assert get(client, quote(nfd, safe="")).content == b"normalized"
    assert children(client, "") == {nfc}
    put(client, quote(nfc, safe=""), b"same file", expect=204)
    assert children(client, "") == {nfc}


def test_names_differing_by_case_coexist(client: TestClient) -> None:
    put(client, "Readme.md", b"1")
    put(client, "README.md", b"2")
    put(client, "readme.md", b"3")
    assert children(client, "") == {"Readme.md", "README.md", "readme.md"}
    assert get(client, "README.md").content == b"2"
    assert get(client, "readme.md").content == b"3"


# ---------------------------------------------------------------------------------------------
# Large content and deduplication


def test_large_file_round_trip_with_ranges(client: TestClient, core: Core) -> None:
    data = os.urandom(25 * 1024 * 1024)
    r = put(client, "big.bin", data)
    assert chunk_count(core) >= 3, "25 MiB of random data is stored as several chunks"
    g = get(client, "big.bin")
    assert g.headers["content-length"] == str(len(data))
    assert hashlib.sha256(g.content).digest() == hashlib.sha256(data).digest()
    assert g.headers["etag"] == r.headers["etag"]
    start, end = 3 * 1024 * 1024 + 17, 21 * 1024 * 1024 - 5
    rr = get(client, "big.bin", expect=206, Range=f"bytes={start}-{end}")
    assert rr.content == data[start:end + 1]
    assert rr.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    small = get(client, "big.bin", expect=206, Range="bytes=12582910-12582919")
    assert small.content == data[12582910:12582920]
    assert used_bytes(client) == len(data)


def test_same_content_is_stored_once(client: TestClient, core: Core) -> None:
    data = os.urandom(3 * 1024 * 1024)
    put(client, "one.bin", data)
    count = chunk_count(core)
    assert count >= 1
    put(client, "two.bin", data)
    assert chunk_count(core) == count
    mkcol(client, "d")
    put(client, "d/three.bin", data)
    assert chunk_count(core) == count
    assert get(client, "two.bin").content == data
    assert used_bytes(client) == 3 * len(data)
    assert client.delete(url("one.bin")).status_code == 204
    assert get(client, "d/three.bin").content == data


def test_href_of_the_requested_item_keeps_the_clients_spelling(client: TestClient) -> None:
    """owncloudcmd requires the PROPFIND href to start with the path it sent, byte for byte: a name
    sent in NFD is stored in NFC but must come back as sent (then children follow that prefix)."""
    nfd = "/remote.php/dav/files/alice/E%CC%81te%CC%81"
    assert client.request("MKCOL", nfd).status_code == 201
    assert client.put(nfd + "/f.txt", content=b"x").status_code == 201
    r = client.request("PROPFIND", nfd, headers={"Depth": "1"})
    assert sorted(parse_multistatus(r.content)) == [nfd + "/", nfd + "/f.txt"]
    nfc = "/remote.php/dav/files/alice/%C3%89t%C3%A9/"
    r = client.request("PROPFIND", nfc, headers={"Depth": "0"})
    assert list(parse_multistatus(r.content)) == [nfc]
