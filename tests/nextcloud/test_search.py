# SPDX-License-Identifier: EUPL-1.2
"""DAV SEARCH on /remote.php/dav/ as the Nextcloud mobile apps, the web and the server's own
steps send it: conditions, order, limit and offset, scope; only the caller's tree; backed by
index queries, not a tree walk."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from cartable.core import accounts
from cartable.core.context import Core
from tests.conftest import DAV
from tests.nextcloud.davhelp import OC, cmp, multistatus, names, search, search_body, set_favorite

FILES = {  # path → (content, X-OC-Mtime)
    "Photos/Holiday.JPG": (b"j" * 3000, 1_600_000_000),
    "Photos/beach.png": (b"p" * 100, 1_700_000_000),
    "Photos/clip.mp4": (b"v" * 50_000, 1_650_000_000),
    "Docs/Report Été.odt": (b"o" * 10, 1_500_000_000),
    "Docs/notes.txt": (b"n" * 2000, 1_750_000_000),
    "Docs/old/report-2019.txt": (b"r", 1_400_000_000),
    "readme": (b"x" * 5, 1_450_000_000),
}


@pytest.fixture
def files(client: TestClient) -> TestClient:
    for d in ("Photos", "Docs", "Docs/old", "Empty"):
        assert client.request("MKCOL", f"{DAV}/{d}").status_code == 201
    for path, (data, mtime) in FILES.items():
        assert client.put(f"{DAV}/{path}", content=data, headers={"X-OC-Mtime": str(mtime)}).status_code == 201
    return client


DN, CT, LM, SZ, FAV, FID = ("<d:displayname/>", "<d:getcontenttype/>", "<d:getlastmodified/>", "<oc:size/>",
                            "<oc:favorite/>", "<oc:fileid/>")

CASES = [  # (where, expected set of paths)
    (cmp("like", DN, "%.txt"), {"Docs/notes.txt", "Docs/old/report-2019.txt"}),
    (cmp("like", DN, "report%"), {"Docs/Report Été.odt", "Docs/old/report-2019.txt"}),   # ignores case
    (cmp("like", DN, "%éTÉ%"), {"Docs/Report Été.odt"}),                                    # Unicode case
    (cmp("like", DN, "%_%"), set()),                                                        # _ is no wildcard
    (cmp("eq", DN, "beach.png"), {"Photos/beach.png"}),
    (cmp("eq", DN, "BEACH.png"), set()),                                                    # eq keeps case
    (cmp("like", CT, "image/%"), {"Photos/Holiday.JPG", "Photos/beach.png"}),
    (cmp("eq", CT, "video/mp4"), {"Photos/clip.mp4"}),
    (cmp("eq", CT, "httpd/unix-directory"), {"Photos", "Docs", "Docs/old", "Empty"}),
    (cmp("eq", CT, "application/octet-stream"), {"readme"}),
    (cmp("gt", SZ, "2000"), {"Photos/Holiday.JPG", "Photos/clip.mp4", "Docs", "Photos"}),
    (cmp("gte", "<d:getcontentlength/>", "2000"), {"Photos/Holiday.JPG", "Photos/clip.mp4", "Docs/notes.txt",
                                                   "Docs", "Photos"}),
    (cmp("lt", LM, "1450000000"), {"Docs/old/report-2019.txt"}),
    (cmp("lte", LM, "2015-12-24T03:33:20Z"), {"Docs/old/report-2019.txt", "readme"}),       # ISO 8601 too
    ("<d:and>" + cmp("gt", LM, "1600000000") + "<d:not><d:is-collection/></d:not></d:and>",
     {"Photos/beach.png", "Photos/clip.mp4", "Docs/notes.txt"}),
    ("<d:or>" + cmp("like", CT, "image/%") + cmp("like", CT, "video/%") + "</d:or>",
     {"Photos/Holiday.JPG", "Photos/beach.png", "Photos/clip.mp4"}),
    ("<d:is-collection/>", {"Photos", "Docs", "Docs/old", "Empty"}),
    ("<d:and>" + cmp("eq", "<oc:owner-id/>", "alice") + cmp("like", CT, "video/%") + "</d:and>", {"Photos/clip.mp4"}),
]


@pytest.mark.parametrize("where, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conditions(files: TestClient, where: str, expected: set[str]) -> None:
    r = search(files, search_body(where, select=DN + SZ + CT))
    assert set(p.rstrip("/") for p in names(r)) == expected


def test_fileid_and_returned_properties(files: TestClient) -> None:
    listing = search(files, search_body(cmp("eq", DN, "notes.txt"), select=FID + DN + SZ + CT + FAV + LM
                                        + "<d:getetag/><oc:permissions/><d:resourcetype/><nc:has-preview/>"))
    (href, props), = multistatus(listing.content).items()
    assert href == f"{DAV}/Docs/notes.txt"
    assert props[f"{OC}size"] == "2000" and props["{DAV:}getcontenttype"] == "text/plain"
    assert props[f"{OC}permissions"] == "GDNVW" and props[f"{OC}favorite"] == "0"
    again = search(files, search_body(cmp("eq", FID, props[f"{OC}fileid"])))
    assert names(again) == ["Docs/notes.txt"]


def test_recent_favorites_and_paging_as_the_mobile_apps_ask(files: TestClient) -> None:
    # "Recent": newest first, files only, a page at a time.
    recent = search_body("<d:not><d:is-collection/></d:not>", select=DN + LM,
                         order=f"<d:order><d:prop>{LM}</d:prop><d:descending/></d:order>",
                         limit="<d:limit><d:nresults>3</d:nresults></d:limit>")
    assert names(search(files, recent)) == ["Docs/notes.txt", "Photos/beach.png", "Photos/clip.mp4"]
    page2 = search_body("<d:not><d:is-collection/></d:not>", select=DN,
                        order=f"<d:order><d:prop>{LM}</d:prop><d:descending/></d:order>",
                        limit="<d:limit><d:nresults>3</d:nresults><ns:firstresult>3</ns:firstresult></d:limit>")
    assert names(search(files, page2)) == ["Photos/Holiday.JPG", "Docs/Report Été.odt", "readme"]
    ascending = search_body("<d:not><d:is-collection/></d:not>", select=DN,
                            order=f"<d:order><d:prop>{SZ}</d:prop><d:ascending/></d:order>"
                                  f"<d:order><d:prop>{DN}</d:prop></d:order>")
    assert names(search(files, ascending))[:2] == ["Docs/old/report-2019.txt", "readme"]
    # "Favorites": Nextcloud's own step sends the literal "yes".
    fav = search_body(cmp("eq", FAV, "yes"), select=FAV)
    assert names(search(files, fav)) == []
    set_favorite(files, "/Photos/beach.png", True)
    set_favorite(files, "/Docs", True)
    assert set(names(search(files, fav))) == {"Photos/beach.png", "Docs/"}
    assert "Photos/beach.png" not in names(search(files, search_body(cmp("eq", FAV, "0"))))


def test_scope_sub_folder_depth_and_other_users(files: TestClient, core: Core) -> None:
    r = search(files, search_body(cmp("like", DN, "%"), scope="/files/alice/Docs"))
    assert set(names(r)) == {"Docs/Report Été.odt", "Docs/notes.txt", "Docs/old/", "Docs/old/report-2019.txt"}
    r = search(files, search_body(cmp("like", DN, "%"), scope="/remote.php/dav/files/alice/Docs", depth="1"))
    assert set(names(r)) == {"Docs/Report Été.odt", "Docs/notes.txt", "Docs/old/"}
    r = search(files, search_body(cmp("like", DN, "%"), scope="http://testserver/remote.php/dav/files/alice/Empty"))
    assert names(r) == []
    accounts.create_user(core, "bob", "bob-secret-pw")
    bob = ("bob", "bob-secret-pw")
    assert files.put("/remote.php/dav/files/bob/bobs.txt", content=b"b", auth=bob).status_code == 201
    # bob's search of his own tree never shows alice's files, and hers is refused.
    r = search(files, search_body(cmp("like", DN, "%"), scope="/files/bob"), auth=bob)
    assert list(multistatus(r.content)) == ["/remote.php/dav/files/bob/bobs.txt"]
    search(files, search_body(cmp("like", DN, "%"), scope="/files/alice"), status=403, auth=bob)
    search(files, search_body("<d:and>" + cmp("eq", "<oc:owner-id/>", "alice") + "</d:and>", scope="/files/bob"),
           status=400, auth=bob)
    search(files, search_body(cmp("like", DN, "%"), scope="/files/alice/nowhere"), status=404)
    search(files, search_body(cmp("like", DN, "%"), scope="/files/alice/readme"), status=400)
    r = files.request("SEARCH", "/remote.php/dav/", content=search_body(cmp("like", DN, "%")), auth=None)
    assert r.status_code == 401


BAD = [
    b"<d:searchrequest xmlns:d='DAV:'/>",                                             # no basicsearch
    search_body(cmp("eq", "<d:getetag/>", "x")),                                      # not searchable
    search_body(cmp("like", SZ, "1%")),                                               # like on a number
    search_body(cmp("gt", SZ, "big")),
    search_body(cmp("gt", LM, "yesterday")),
    search_body("<d:eq><d:prop><d:displayname/></d:prop></d:eq>"),                   # no literal
    search_body("<d:within/>"),                                                       # unknown operator
    search_body(cmp("eq", DN, "a"), order="<d:order><d:prop><d:getetag/></d:prop></d:order>"),
    search_body(cmp("eq", DN, "a"), scope="/trashbin/alice"),
    search_body(cmp("eq", DN, "a"), limit="<d:limit><d:nresults>-2</d:nresults></d:limit>"),
    search_body("<d:or>" + cmp("eq", DN, "a") * 101 + "</d:or>"),                    # over 100 conditions
    search_body("<d:or>" + cmp("eq", "<oc:owner-id/>", "alice") + "</d:or>"),         # owner-id inside or
    search_body(cmp("eq", DN, "a"), depth="2"),
    b"<d:searchrequest",
]


@pytest.mark.parametrize("body", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_queries_are_400(files: TestClient, body: bytes) -> None:
    search(files, body, status=400)


def test_options_and_other_methods_on_the_root(client: TestClient) -> None:
    r = client.options("/remote.php/dav/")
    assert r.status_code == 200 and "basicsearch" in r.headers["DASL"]
    assert client.request("PROPPATCH", "/remote.php/dav/").status_code == 405
    assert client.request("SEARCH", "/remote.php/dav/elsewhere/").status_code == 404


@pytest.mark.local_only
def test_root_scope_uses_indexes_not_a_tree_walk(core: Core) -> None:
    """The recent-files query reads ix_nodes_space_id_mtime; a root scope has no recursive part.
    It reads SQLite's EXPLAIN QUERY PLAN, so it runs on sqlite-local only; the indexes are the
    same on PostgreSQL (one migration history)."""
    from sqlalchemy.dialects import sqlite

    from cartable.core.search import Compare, Not, Order
    from cartable.store.meta import search as repo

    captured: list[str] = []
    with core.db.read() as tx:
        original = tx.execute

        def spy(stmt, *a, **k):  # type: ignore[no-untyped-def]
            if hasattr(stmt, "compile"):
                sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
                captured.append(sql)
                plan = original.__self__.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()  # type: ignore[attr-defined]
                captured.append(" ".join(str(r[-1]) for r in plan))
            return original(stmt, *a, **k)

        tx.execute = spy  # type: ignore[method-assign]
        repo.find(tx, space_id=1, user_id=1, scope_id=1, scope_is_root=True, children_only=False,
                  where=Not(Compare("kind", "eq", "d")), order=[Order("mtime", True)], limit=10)
        repo.find(tx, space_id=1, user_id=1, scope_id=1, scope_is_root=True, children_only=False,
                  where=Compare("ctype", "like", "image/%"), order=[], limit=10)
    recent_sql, recent_plan, media_sql, media_plan = captured
    assert "RECURSIVE" not in recent_sql.upper() and "RECURSIVE" not in media_sql.upper()
    assert "ix_nodes_space_id_mtime" in recent_plan and "TEMP B-TREE" not in recent_plan.split("ORDER BY")[0]
    assert "ix_nodes_space_id_content_type" in media_plan
