# SPDX-License-Identifier: EUPL-1.2
"""An incremental reader of the multipart/related bodies of Nextcloud's bulk upload.

Each part is cut by its own ``Content-Length`` (the desktop client always sends one; the boundary
is only checked where a part must end), so a file's bytes are never scanned for the boundary.
The body is read as it arrives: at most one part's bytes are held, and a part over ``max_part``
bytes is skipped (read and dropped) rather than held. Anything malformed raises ``BadMultipart``
(the whole request is then refused with 400); a body that ends early raises ``Truncated``.

    --BOUNDARY\\r\\n
    X-File-Path: /dir/a.txt\\r\\n
    Content-Length: 5\\r\\n
    \\r\\n
    AAAAA\\r\\n
    --BOUNDARY--\\r\\n
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cartable.core.errors import InvalidInput

__all__ = ["BadMultipart", "Truncated", "Part", "MultipartReader", "boundary_of"]

MAX_LINE = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


class BadMultipart(InvalidInput):
    """The body is not the multipart/related a bulk upload must be."""


class Truncated(BadMultipart):
    """The body ended before the closing boundary."""


@dataclass
class Part:
    headers: dict[str, str]  # lower-case names
    length: int
    body: bytes | None  # None when the part was over max_part bytes (skipped)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/related; boundary=...`` Content-Type (quoted or not)."""
    if not content_type:
        raise BadMultipart("a bulk upload needs Content-Type: multipart/related; boundary=...")
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/related":
        raise BadMultipart(f"a bulk upload must be multipart/related, not {kind.strip()!r}")
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if not 0 < len(value) <= 200:
                break
            return value.encode("latin-1", "replace")
    raise BadMultipart("the multipart/related Content-Type has no usable boundary parameter")


class MultipartReader:
    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes, *, max_part: int, max_parts: int) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._eof = False
        self._delimiter = b"--" + boundary
        self._max_part, self._max_parts = max_part, max_parts
        self._count = 0
        self._done = False

    async def _more(self) -> None:
        if self._eof:
            raise Truncated("the request body ended before the closing boundary")
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._eof = True
            raise Truncated("the request body ended before the closing boundary") from None
        self._buf += chunk

    async def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 2]
                return line
            if len(self._buf) > MAX_LINE:
                raise BadMultipart(f"a line of the multipart body is longer than {MAX_LINE} bytes")
            await self._more()

    async def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._more()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def _skip(self, n: int) -> None:
        while n:
            if not self._buf:
                await self._more()
            take = min(n, len(self._buf))
            del self._buf[:take]
            n -= take

    async def next_part(self) -> Part | None:
        """The next part, or None after the closing boundary."""
        if self._done:
            return None
        line = await self._line()
        if self._count == 0:
            while not line:  # tolerate blank lines before the first boundary
                line = await self._line()
        if line.rstrip() == self._delimiter + b"--":
            self._done = True
            return None
        if line.rstrip() != self._delimiter:
            raise BadMultipart("the multipart body does not continue with its boundary where a part ends "
                               "(is a part's Content-Length wrong?)")
        self._count += 1
        if self._count > self._max_parts:
            raise BadMultipart(f"a bulk upload may hold at most {self._max_parts} files")
        headers = await self._headers()
        raw = headers.get("content-length")
        if raw is None or not raw.isdigit():
            raise BadMultipart("every part of a bulk upload needs a numeric Content-Length")
        length = int(raw)
        if length > self._max_part:
            await self._skip(length)
            body = None
        else:
            body = await self._exactly(length)
        if await self._exactly(2) != b"\r\n":
            raise BadMultipart("a part's bytes are not followed by CRLF and the boundary "
                               "(is its Content-Length wrong?)")
        return Part(headers, length, body)

    async def drain(self, limit: int = 64 * 1024) -> None:
        """Read what follows the closing boundary (an epilogue, a last CRLF) to the end of the
        body: a keep-alive connection can only carry the client's next request once this one's
        body has been read whole. More than limit bytes of epilogue is refused."""
        size = len(self._buf)
        self._buf.clear()
        while not self._eof:
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._eof = True
                break
            size += len(chunk)
            if size > limit:
                raise BadMultipart(f"more than {limit} bytes follow the closing boundary")

    async def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        size = 0
        while True:
            line = await self._line()
            if not line:
                return headers
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise BadMultipart(f"a part's headers are longer than {MAX_HEADER_BYTES} bytes")
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise BadMultipart(f"a part header is not 'Name: value': {line[:80]!r}")
            # Values are UTF-8 (paths); bytes that are not stay as surrogates for the path check to refuse.
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8", "surrogateescape")
