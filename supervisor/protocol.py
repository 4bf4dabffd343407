"""Framing of the pipe between the supervisor and its worker.

Both directions carry the same frame: a fixed header (kind, metadata length, body
length), a small JSON metadata object, then the body bytes untouched. Keeping the body
out of the JSON means an event or a result crosses the pipe exactly once, without being
re-encoded, and the reader knows every length before it reads a byte of payload, so it
can refuse an oversized frame without reading it.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any, NamedTuple

from worker.errors import MAX_FRAME_METADATA

HEADER = struct.Struct("!cII")

# Supervisor -> worker.
EVENT = b"E"
# Worker -> supervisor.
READY = b"R"
INIT_ERROR = b"I"
RESULT = b"O"
ERROR = b"X"

# Bodies up to this size are read together with the metadata.
_READ_WITH_METADATA = 64 << 10
_MAX_POLL_MS = 24 * 3600 * 1000


class ProtocolError(Exception):
    """The peer sent something that is not a frame we understand."""


class PeerClosed(Exception):
    """The other end of the pipe is gone."""


class DeadlineExceeded(Exception):
    """The frame did not arrive before the deadline."""


class Interrupted(Exception):
    """A signal arrived (its wakeup descriptor fired) before the frame began."""


class Frame(NamedTuple):
    kind: bytes
    meta: dict[str, Any]
    body: bytes


def write_frame(
    fd: int,
    kind: bytes,
    meta: dict[str, Any],
    body: bytes = b"",
    *,
    deadline: float | None = None,
    watch: int | None = None,
) -> None:
    """Write one frame with as few system calls as the pipe allows.

    On a non-blocking descriptor the writer waits for room until ``deadline``, and gives
    up with ``PeerClosed`` if ``watch`` (the reader's pidfd) fires first.
    """
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    header = HEADER.pack(kind, len(meta_bytes), len(body))
    views = [memoryview(header + meta_bytes)]
    if body:
        views.append(memoryview(body))
    poller: select.poll | None = None
    while views:
        try:
            written = os.writev(fd, views)
        except BlockingIOError:
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                if watch is not None:
                    poller.register(watch, select.POLLIN)
            _wait_for(poller, fd, deadline)
            continue
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _wait_for(poller: select.poll, fd: int, deadline: float | None, interrupt: int | None = None) -> None:
    """Block until ``fd`` is ready.

    Raises DeadlineExceeded at the deadline, Interrupted if ``interrupt`` fired, and
    PeerClosed if any other registered descriptor (the peer's pidfd) fired first.
    """
    while True:
        if deadline is None:
            events = poller.poll()
            break
        remaining_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
        # poll() takes a C int of milliseconds; a deadline weeks away is waited for in steps.
        events = poller.poll(min(remaining_ms, _MAX_POLL_MS))
        if events or remaining_ms <= _MAX_POLL_MS:
            break
    if not events:
        raise DeadlineExceeded()
    ready = {ready_fd for ready_fd, _ in events}
    if fd in ready:
        return
    if interrupt is not None and interrupt in ready:
        raise Interrupted()
    raise PeerClosed()


def readable(fd: int) -> bool:
    """Is there something to read on ``fd`` right now? (Not merely its writer gone.)"""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLIN for _, events in poller.poll(0))


def read_frame(
    fd: int,
    *,
    max_body: int,
    deadline: float | None = None,
    allowed: frozenset[bytes] | None = None,
    watch: int | None = None,
    interrupt: int | None = None,
) -> Frame:
    """Read one frame; ``deadline`` is a ``time.monotonic()`` instant or None to block.

    The body length is checked against ``max_body`` before any of the body is read, so a
    peer announcing a huge payload costs the reader nothing. ``watch`` is a descriptor
    that turns readable when the writer is gone (a pidfd): a writer that dies mid-frame
    while some process it left behind still holds the pipe open must not look like one
    that is merely slow. ``interrupt`` (a signal wakeup descriptor) ends the wait with
    ``Interrupted``, but only before the first byte: a frame is never abandoned halfway.
    """
    reader = _Reader(fd, deadline, watch, interrupt)
    header = reader.read_exact(HEADER.size)
    kind, meta_len, body_len = HEADER.unpack(header)
    if allowed is not None and kind not in allowed:
        raise ProtocolError(f"unexpected frame kind {kind!r}")
    if meta_len > MAX_FRAME_METADATA:
        raise ProtocolError(f"frame metadata of {meta_len} bytes is over the limit")
    if body_len > max_body:
        raise BodyTooLarge(body_len)
    if body_len <= _READ_WITH_METADATA:
        # A small body comes with the metadata in one read: two reads a frame, not three.
        rest = reader.read_exact(meta_len + body_len) if meta_len + body_len else b""
        raw_meta, body = rest[:meta_len], rest[meta_len:]
    else:
        # A large one is read on its own, never copied out of a bigger buffer.
        raw_meta = reader.read_exact(meta_len) if meta_len else b""
        body = reader.read_exact(body_len)
    try:
        meta = json.loads(raw_meta) if meta_len else {}
    except ValueError as exc:
        raise ProtocolError(f"frame metadata is not JSON: {exc}") from None
    except RecursionError:
        # Handler code can write on the reply pipe; nesting must not take the reader down.
        raise ProtocolError("frame metadata is nested too deep") from None
    if not isinstance(meta, dict):
        raise ProtocolError("frame metadata is not a JSON object")
    return Frame(kind, meta, body)


class BodyTooLarge(ProtocolError):
    """The peer announced a body larger than the reader accepts."""

    def __init__(self, size: int) -> None:
        super().__init__(f"frame body of {size} bytes is over the limit")
        self.size = size


class _Reader:
    """Reads exact sizes from a pipe, giving up at a deadline or when ``watch`` fires."""

    def __init__(self, fd: int, deadline: float | None, watch: int | None, interrupt: int | None) -> None:
        self.fd = fd
        self.deadline = deadline
        self.interrupt = interrupt
        self.poller: select.poll | None = None
        if deadline is not None or watch is not None or interrupt is not None:
            self.poller = select.poll()
            for watched in (fd, watch, interrupt):
                if watched is not None:
                    self.poller.register(watched, select.POLLIN)

    def read_exact(self, size: int) -> bytes | bytearray:
        """``size`` bytes; a large body comes back as a ``bytearray`` filled in place.

        Reading a 6 MB body in pieces and joining them would allocate it twice, and each
        fresh allocation of that size is paid for in page faults. Readers treat the
        result as read-only bytes.
        """
        if size > _READ_WITH_METADATA:
            return self._read_into(size)
        chunks = []
        remaining = size
        while remaining:
            self._wait()
            chunk = os.read(self.fd, remaining)
            if not chunk:
                raise PeerClosed()
            self._begun()
            chunks.append(chunk)
            remaining -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_into(self, size: int) -> bytearray:
        out = bytearray(size)
        view = memoryview(out)
        got = 0
        while got < size:
            self._wait()
            count = os.readv(self.fd, [view[got:]])
            if not count:
                raise PeerClosed()
            self._begun()
            got += count
        return out

    def _wait(self) -> None:
        if self.poller is not None:
            _wait_for(self.poller, self.fd, self.deadline, self.interrupt)

    def _begun(self) -> None:
        if self.interrupt is not None:
            # The frame has begun: from here on it is read to the end or not at all.
            self.poller.unregister(self.interrupt)  # type: ignore[union-attr]
            self.interrupt = None
