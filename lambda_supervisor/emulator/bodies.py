"""A request's body, read as its headers frame it: sized or chunked, with trailers.

The stdlib's ``BaseHTTPRequestHandler`` parses the request line and headers but leaves the
body to its user. The runtime under test posts sized and chunked bodies (streamed
responses end in trailers) on keep-alive connections, so the body must end exactly
where the framing says: ambiguous framing is refused (``BadRequest``, a 400), never
guessed at, since a wrong guess would take the next request as body or the body as the
next request. An oversized body is drained so the connection stays usable, unless it is
absurdly large.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BufferedIOBase
from typing import Any

# Bodies larger than this are not even drained: the connection is simply closed.
MAX_DRAIN_BYTES = 1024 * 1024 * 1024
# How much is read (or dropped) at a time.
DRAIN_CHUNK = 64 * 1024
_MAX_TRAILER_LINES = 100
_MAX_LINE = 65536
# A header (or trailer) name, as HTTP's grammar has it.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class BadRequest(Exception):
    """The request's framing is malformed or ambiguous: answered 400, then the connection closes."""


class PayloadTooLarge(Exception):
    """The request body exceeded the limit; it has been drained (or the socket must close)."""

    def __init__(self, drained: bool) -> None:
        super().__init__("payload too large")
        self.drained = drained


class RequestBody:
    """The body of the request whose ``headers`` were just read from ``rfile``."""

    def __init__(self, rfile: BufferedIOBase, headers: Any) -> None:
        self.rfile = rfile
        self.headers = headers
        # Set when the stream is no longer at a request boundary: the connection must close.
        self.must_close = False

    def read(
        self, limit: int, on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """Read the body and its trailers, keeping at most ``limit`` bytes.

        ``PayloadTooLarge`` past the limit; ``BadRequest`` when the framing cannot be
        trusted, since reading on would take the rest of the stream as the body (a
        negative ``Content-Length`` reads to the end, past any limit). With ``on_chunk``
        the body is handed over as it arrives, a chunk at a time (a sized body as one),
        and not kept: what is returned is empty.
        """
        length = self._declared_length()
        if length is None:
            return self._read_chunked(limit, on_chunk)
        if length > limit:
            self._drain(length)
            raise PayloadTooLarge(drained=not self.must_close)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("connection closed inside the body")
        if on_chunk is not None:
            if body:
                on_chunk(body)
            return b"", {}
        return body, {}

    def _declared_length(self) -> int | None:
        """The ``Content-Length`` (0 when absent), or None for a chunked body."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:
                raise BadRequest("both Transfer-Encoding and Content-Length are set")
            if [encoding.strip().lower() for encoding in encodings] != ["chunked"]:
                raise BadRequest(f"unsupported Transfer-Encoding {', '.join(encodings)[:60]!r}")
            return None
        values = {value.strip() for value in lengths}
        if not values:
            return 0
        value = values.pop()
        if values or not (value.isascii() and value.isdigit()):
            raise BadRequest(f"bad Content-Length {', '.join(lengths)[:60]!r}")
        return int(value)

    def _drain(self, length: int) -> None:
        """Discard ``length`` bytes so the connection stays usable, or close if absurd."""
        if length > MAX_DRAIN_BYTES:
            self.must_close = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, DRAIN_CHUNK))
            if not chunk:
                self.must_close = True
                return
            length -= len(chunk)

    def _read_chunked(
        self, limit: int, on_chunk: Callable[[bytes], None] | None
    ) -> tuple[bytes, dict[str, str]]:
        parts: list[bytes] = []
        kept = 0
        too_large = False
        while True:
            size = self._chunk_size()
            if size == 0:
                break
            if on_chunk is not None:
                parts = []  # handed over chunk by chunk, never kept here
            remaining = size
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, DRAIN_CHUNK))
                if not chunk:
                    raise ConnectionError("connection closed inside a chunk")
                remaining -= len(chunk)
                kept += len(chunk)
                if kept > MAX_DRAIN_BYTES:
                    self.must_close = True
                    raise PayloadTooLarge(drained=False)
                if kept > limit:
                    too_large = True
                    parts.clear()
                elif not too_large:
                    parts.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("a chunk is not followed by CRLF")
            if on_chunk is not None and parts:
                on_chunk(parts[0] if len(parts) == 1 else b"".join(parts))
        trailers = self._read_trailers()
        if too_large:
            raise PayloadTooLarge(drained=True)
        return (b"" if on_chunk is not None else b"".join(parts)), trailers

    def _chunk_size(self) -> int:
        line = self.rfile.readline(1024)
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        if not line.endswith(b"\n"):
            raise BadRequest("a chunk size line is too long")
        field = line.split(b";", 1)[0].strip()
        if not field or len(field) > 16 or field.strip(b"0123456789abcdefABCDEF"):
            raise BadRequest(f"bad chunk size {field[:20]!r}")
        return int(field, 16)

    def _read_trailers(self) -> dict[str, str]:
        trailers: dict[str, str] = {}
        for _ in range(_MAX_TRAILER_LINES):
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return trailers
            if not line:
                raise ConnectionError("connection closed inside the trailers")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > _MAX_LINE or not TOKEN.fullmatch(name.strip()):
                raise BadRequest(f"bad trailer line {line[:60]!r}")
            trailers[name.strip()] = value.strip()
        raise BadRequest(f"more than {_MAX_TRAILER_LINES} trailer lines")
