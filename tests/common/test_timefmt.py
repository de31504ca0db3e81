# SPDX-License-Identifier: EUPL-1.2
"""HTTP and RFC 3339 date formatting and parsing."""

from __future__ import annotations

import email.utils

import pytest

from cartable.common.timefmt import http_date, parse_http_date, rfc3339

TS = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 7231's example)


def test_http_date_format() -> None:
    assert http_date(TS) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(TS + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_http_date_matches_stdlib() -> None:
    for ts in (0.0, TS, 1_700_000_000.5, 4_102_444_800.0):
        assert http_date(ts) == email.utils.formatdate(int(ts), usegmt=True)


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
    ],
)
def test_parse_http_date_accepts_the_three_forms(text: str) -> None:
    assert parse_http_date(text) == TS


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 6 Nov 1994 08:49:37 GMT",
    ],
)
def test_parse_http_date_returns_none_when_unparsable(text: str) -> None:
    assert parse_http_date(text) is None


def test_round_trip() -> None:
    for ts in (0, TS, 1_700_000_000, 2_000_000_000):
        assert parse_http_date(http_date(ts)) == ts


def test_rfc3339() -> None:
    assert rfc3339(TS) == "1994-11-06T08:49:37Z"
    assert rfc3339(TS + 0.5) == "1994-11-06T08:49:37Z"
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
