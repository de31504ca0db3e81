# SPDX-License-Identifier: EUPL-1.2
"""Timestamps as HTTP and WebDAV write them. Locale-independent; timestamps are POSIX seconds (UTC).

Contract:
- ``http_date`` formats an RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), whole seconds.
- ``parse_http_date`` accepts the three forms RFC 7231 section 7.1.1.1 requires recipients to read
  (IMF-fixdate, RFC 850, asctime) and returns None for anything else.
- ``rfc3339`` formats UTC with a "Z" suffix, whole seconds ("1994-11-06T08:49:37Z").
"""

from __future__ import annotations

import calendar
import math
import re
import time

__all__ = ["http_date", "parse_http_date", "rfc3339"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUM = {m: i + 1 for i, m in enumerate(_MONTHS)}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
_MON = "(" + "|".join(_MONTHS) + ")"

_IMF = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) " + _MON + r" (\d{4}) " + _TIME + " GMT")
_RFC850 = re.compile(
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-"
    + _MON
    + r"-(\d{2}) "
    + _TIME
    + " GMT"
)
_ASCTIME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + _MON + r" ([ \d]\d) " + _TIME + r" (\d{4})")


def http_date(ts: float) -> str:
    """Format ``ts`` as an IMF-fixdate."""
    t = time.gmtime(math.floor(ts))
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _two_digit_year(yy: int) -> int:
    # RFC 7231: a two-digit year more than 50 years in the future is in the past century.
    this_year = time.gmtime().tm_year
    year = this_year - this_year % 100 + yy
    return year - 100 if year > this_year + 50 else year


def parse_http_date(s: str) -> float | None:
    """Parse an HTTP date; return POSIX seconds, or None when ``s`` is not a valid HTTP date."""
    s = s.strip()
    if m := _IMF.fullmatch(s):
        day, mon, year, hh, mm, ss = m.groups()
        fields = (int(year), _MONTH_NUM[mon], int(day))
    elif m := _RFC850.fullmatch(s):
        day, mon, yy, hh, mm, ss = m.groups()
        fields = (_two_digit_year(int(yy)), _MONTH_NUM[mon], int(day))
    elif m := _ASCTIME.fullmatch(s):
        mon, day, hh, mm, ss, year = m.groups()
        fields = (int(year), _MONTH_NUM[mon], int(day))
    else:
        return None
    year_, month, mday = fields
    hour, minute, second = int(hh), int(mm), int(ss)
    if not (1 <= mday <= calendar.monthrange(year_, month)[1] and hour < 24 and minute < 60 and second < 61):
        return None
    # A leap second (60) is read as the next second, as POSIX time has none.
    return float(calendar.timegm((year_, month, mday, hour, minute, second, 0, 0, 0)))


def rfc3339(ts: float) -> str:
    """Format ``ts`` as RFC 3339 in UTC with a "Z" suffix."""
    t = time.gmtime(math.floor(ts))
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
