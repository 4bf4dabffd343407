"""One connection's requests and answers, for the routes to build on (``Exchange``).

The stdlib's ``BaseHTTPRequestHandler`` writes header lines without checking them and
encodes them as latin-1. Callers supply values (trace ids, client contexts, function
names) that end up in header lines of the runtime's ``/next`` answer, so every header
line goes through ``header_line``, which refuses what could split it. Besides answering,
a route may drop the connection as a failed platform would, linger after a refusal so
the peer reads it, or ask whether its long-polling peer is still there.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from .bodies import DRAIN_CHUNK, TOKEN, PayloadTooLarge, RequestBody

# After refusing a request, how long (and how much) its unread rest is read and dropped,
# so that closing the socket does not reset it before the peer has read the refusal.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 8 * 1024 * 1024
# What would end a header line early: CR and LF, and NUL, where C parsers stop reading.
# Other control bytes are invalid in a field value but stay inside their line; tests send
# them on purpose, to check that the runtime copes.
_LINE_BREAKING = re.compile(r"[\r\n\x00]")


class UnsendableHeader(ValueError):
    """A header name or value that cannot go on the wire as one header line."""


def header_line(name: str, value: str) -> bytes:
    """``name: value`` as one header line (UTF-8, CRLF), or ``UnsendableHeader``.

    Every header the emulator sends goes through here. Values come from callers (a trace
    id, a client context, a function name from the path), and one holding CR or LF would
    end the line early and let them write headers of their own into the runtime's
    ``/next`` answer. Non-ASCII text is sent as UTF-8, as the platform's Go server does.
    """
    if not TOKEN.fullmatch(name):
        raise UnsendableHeader(f"{name!r} is not a header name")
    if _LINE_BREAKING.search(value):
        raise UnsendableHeader(f"the {name} value {value[:60]!r} holds a line break or NUL")
    return f"{name}: {value}\r\n".encode("utf-8", errors="surrogateescape")


def error_json(error_type: str, message: str) -> dict[str, str]:
    """An error body in the Runtime API's shape."""
    return {"errorType": error_type, "errorMessage": message}


class Exchange(BaseHTTPRequestHandler):
    """One connection; keep-alive, so one handler object serves many requests in turn."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # peer's delayed ACK (about 40 ms on loopback) and every exchange crawls.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "lambda-supervisor-emulator"

    def send_header(self, keyword: str, value: str) -> None:
        """Header lines through ``header_line``: UTF-8, and never one a value could split.

        The stdlib encodes latin-1 and raises on anything else, which would lose an event
        whose request id is not latin-1 text.
        """
        line = header_line(keyword, value)
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self._headers_buffer.append(line)
        if keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default per-request stderr line; ``requests`` records every call."""

    def path_only(self) -> str:
        """The request's path without its query string."""
        return self.path.split("?", 1)[0]

    # ----------------------------------------------------------------- answers

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        raw_header_lines: Sequence[bytes] = (),
    ) -> None:
        """Answer; ``UnsendableHeader`` leaves nothing written when a header cannot be sent."""
        for name, value in (headers or {}).items():
            header_line(name, value)
        header_line("Content-Type", content_type)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for line in raw_header_lines:
            self._headers_buffer.append(line + b"\r\n")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def respond_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self.respond(status, json.dumps(payload).encode(), headers=headers)

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body, sent at once."""
        if data:  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self, trailers: Mapping[str, str]) -> None:
        """The last chunk of a chunked body, with ``trailers``."""
        lines = b"".join(header_line(name, value) for name, value in trailers.items())
        self.wfile.write(b"0\r\n" + lines + b"\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Close the socket without a word, as a crashed or unreachable platform would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def linger(self) -> None:
        """Stop sending and drop what the peer still sends for a moment, then let it close.

        Closing a socket with unread input resets the connection, and a reset can destroy
        the answer before the peer reads it.
        """
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            dropped = 0
            while dropped < _LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(DRAIN_CHUNK)
                if not chunk:
                    return
                dropped += len(chunk)
        except OSError:
            return

    def client_connected(self) -> bool:
        """False once the peer has closed or reset the connection (a non-blocking peek)."""
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return bool(data)

    # ----------------------------------------------------------------- request bodies

    def read_body(
        self, limit: int, on_chunk: Callable[[bytes], None] | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The request body and its trailers (see ``RequestBody.read``); closes the
        connection after it when the stream cannot carry another request."""
        body = RequestBody(self.rfile, self.headers)
        try:
            return body.read(limit, on_chunk)
        finally:
            if body.must_close:
                self.close_connection = True

    def discard_body(self) -> None:
        """Read and drop the body, so the connection can carry the next request."""
        try:
            self.read_body(0)
        except PayloadTooLarge:
            pass
