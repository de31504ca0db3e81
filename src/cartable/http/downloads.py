# SPDX-License-Identifier: EUPL-1.2
"""Headers that make user content a download, never a page of the site.

User files are served from the same origin as the login pages (and soon public links): an
uploaded .html or .svg must never run as part of the site. Every response that carries user
bytes, or a page listing user names, gets ``SAFE_HEADERS``; a file also gets an attachment
Content-Disposition, as Nextcloud's FilesPlugin sends it.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

__all__ = ["SAFE_HEADERS", "attachment", "download_headers"]

# nosniff: browsers keep to the declared type. The policy: load nothing, and run the document,
# if a browser renders it at all, in a sandbox (no scripts, no same-origin access, no forms).
# Nextcloud also sends the three others: no framing, no indexing by crawlers, no Flash/PDF
# cross-domain policy files.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Permitted-Cross-Domain-Policies": "none",
}


def _ascii_fallback(name: str) -> str:
    """The name for clients that ignore filename*: accents dropped, anything else unsafe in a
    quoted-string (non-ASCII, controls, quotes, backslashes) replaced by '_'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    if not plain.strip(" ."):
        plain = "download"
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in plain)


def attachment(name: str) -> str:
    """Content-Disposition for downloading a file: the exact name in RFC 5987 form (UTF-8,
    percent-encoded), then an ASCII fallback."""
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}; filename=\"{_ascii_fallback(name)}\""


def download_headers(name: str) -> dict[str, str]:
    """Every header a response carrying a file's bytes needs so that it is never run as a page."""
    return {"Content-Disposition": attachment(name), **SAFE_HEADERS}
