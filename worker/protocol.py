"""What crosses the pipe between the supervisor and its worker: the frames and their messages.

Both processes use this one module, and nothing else knows a frame's kinds or fields. The
supervisor writes events (``write_event``) and reads the worker's replies (``parse_start``,
``parse_reply``, and ``parse_stream_part`` for each part of a streamed one); the worker reads
events (``read_event``) and writes its replies (``write_ready``, ``write_init_failed``,
``write_reply``, or ``write_stream_start``, ``write_chunk`` as the handler yields, then
``write_stream_end`` or ``write_stream_failed``).

Both directions carry the same frame: a fixed header (kind, metadata length, body
length), a small JSON metadata object, then the body bytes untouched. Keeping the body
out of the JSON means an event or a result crosses the pipe exactly once, without being
re-encoded, and the reader knows every length before it reads a byte of payload, so it
can refuse an oversized frame without reading it.

The reply pipe is not the worker's alone: handler code can write on it. So the
supervisor's parsers trust no field, and every way a read can fail is one of the
exceptions below, which the supervisor hands on as the worker's reply (``Closed``, once
the worker's exit is known, as its death).
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypedDict, cast

from worker import errors, reports

HEADER = struct.Struct("!cII")

# Supervisor -> worker.
EVENT = b"E"
# Worker -> supervisor: how its init went (one of the first two), then one reply per event.
READY = b"R"
INIT_FAILED = b"I"
RESULT = b"O"
FAILED = b"X"
# A streamed reply: STREAM_START in place of RESULT (sent with the first chunk), then one
# CHUNK per piece of the body, then STREAM_END, or STREAM_FAILED once the handler failed.
STREAM_START = b"S"
CHUNK = b"C"
STREAM_END = b"D"
STREAM_FAILED = b"F"
START_KINDS = frozenset((READY, INIT_FAILED))
REPLY_KINDS = frozenset((RESULT, FAILED, STREAM_START))
STREAM_KINDS = frozenset((CHUNK, STREAM_END, STREAM_FAILED))
_EVENT_KINDS = frozenset((EVENT,))
# SnapStart's runtime hooks. Supervisor -> worker: run one phase of them (before the first
# event); worker -> supervisor: how they went.
RUN_HOOKS = b"H"
HOOKS_RAN = b"K"
HOOK_KINDS = frozenset((HOOKS_RAN,))
_RUN_HOOKS_KINDS = frozenset((RUN_HOOKS,))
# The phases, in the order they run: before the snapshot is taken, and once restored from it.
BEFORE_SNAPSHOT = "before_snapshot"
AFTER_RESTORE = "after_restore"
HOOK_PHASES = (BEFORE_SNAPSHOT, AFTER_RESTORE)
# The most a CHUNK carries: a larger item is cut into chunks of this size, so the supervisor
# holds at most one of them at a time (a larger frame is a protocol error), and a stalled
# Runtime API blocks the handler's yield once the pipe is full.
MAX_CHUNK_BYTES = 1 << 20
# What the supervisor reads of one frame of a stream (a chunk, or the error that ends it).
MAX_STREAM_FRAME = max(MAX_CHUNK_BYTES, errors.ERROR_REPLY_SLACK)


def _meta_encoder() -> Callable[[dict[str, Any]], str]:
    """A frame's metadata as compact ASCII JSON, by an encoder built once.

    A frame's metadata is encoded twice per event (the event, its reply), and
    ``JSONEncoder.encode`` builds json's C encoder afresh on every call, about a quarter of
    its cost for an object this small. That encoder (json's own, undocumented: where this
    Python lacks it or calls it otherwise, ``encode`` is used) is built here once instead.
    """
    plain = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    # No check for cycles (the metadata is flat) and no key sorting; what JSON cannot
    # encode raises TypeError, as json.dumps would.
    escape = json.encoder.encode_basestring_ascii
    try:
        chunks = make(None, plain.default, escape, None, ":", ",", False, False, True)
    except TypeError:  # called otherwise in this Python
        return plain.encode

    def encode(meta: dict[str, Any]) -> str:
        return "".join(chunks(meta, 0))

    return encode


_encode_meta = _meta_encoder()
_decode_meta = json.JSONDecoder().decode
# Bodies up to this size are read together with the metadata.
_READ_WITH_METADATA = 64 << 10
_MAX_POLL_MS = 24 * 3600 * 1000
# What a result's content type must look like to go into the /response request's headers:
# handler code can reach the worker's marshalling, and a CR or LF would split the request.
_HEADER_VALUE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")


# --- how a read or a write fails ------------------------------------------------------------


class Closed(Exception):
    """The other end of the pipe is gone: end of file, or the writer's pidfd fired."""


class TimedOut(Exception):
    """The deadline passed before the frame did."""


class Interrupted(Exception):
    """A signal arrived (its wakeup descriptor fired) before the frame began; it may still come."""


class Oversized(Exception):
    """A frame (or a result) of ``size`` bytes, more than its reader accepts."""

    def __init__(self, size: int) -> None:
        super().__init__(f"frame body of {size} bytes is over the limit")
        self.size = size

    def __repr__(self) -> str:
        return f"Oversized(size={self.size})"


class Garbled(Exception):
    """Something that is not the frame or the message it should be; ``reason`` says what."""

    @property
    def reason(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Garbled(reason={self.reason!r})"


# Every failure of a read but ``Closed``, which the supervisor looks into first.
FAILURES = (TimedOut, Interrupted, Oversized, Garbled)


# --- the messages ---------------------------------------------------------------------------


class Frame(NamedTuple):
    kind: bytes
    meta: dict[str, Any]
    body: bytes | bytearray


class EventMeta(TypedDict):
    """What the worker builds an event's ``context`` from (``worker/context.py``)."""

    request_id: str
    deadline_ms: int
    content_type: str | None
    invoked_function_arn: str | None
    trace_id: str | None
    client_context: str | None
    cognito_identity: str | None
    tenant_id: str | None


class EventSource(Protocol):
    """An event as the supervisor holds it (``supervisor.runtime_api.Event``)."""

    reply_token: str
    request_id: str
    deadline_ms: int
    payload: bytes | bytearray
    content_type: str | None
    invoked_function_arn: str | None
    trace_id: str | None
    client_context: str | None
    cognito_identity: str | None
    tenant_id: str | None


class Ready(NamedTuple):
    """Init is done; the worker waits for events."""

    init_ms: float


class InitFailed(NamedTuple):
    """Init failed: the error body for /runtime/init/error, and its errorType."""

    error_body: bytes | bytearray
    error_type: str


class Result(NamedTuple):
    """The handler's result, as it is posted to /response."""

    payload: bytes | bytearray
    content_type: str


class StreamStart(NamedTuple):
    """The handler streams its result: its chunks follow (``read_stream_part``)."""

    content_type: str


class StreamEnd(NamedTuple):
    """The handler's stream is complete."""


class Failed(NamedTuple):
    """The invocation failed: the error body for /error, its errorType and X-Ray cause (or,
    after a stream began, for the stream's error trailers)."""

    error_body: bytes | bytearray
    error_type: str
    xray_cause: reports.XRayCause | None
    # The worker asks to be replaced (its heap is suspect after a MemoryError).
    retire: bool = False


# --- supervisor -> worker -------------------------------------------------------------------


def write_event(fd: int, event: EventSource, *, deadline: float, watch: int | None) -> None:
    """Hand one event to the worker (see ``write_frame`` for ``deadline`` and ``watch``).

    ``reply_token`` is echoed on the worker's reply and never shown to the handler, so a
    stray frame written by handler code can never pass for this event's answer.
    """
    meta = {
        "reply_token": event.reply_token,
        "request_id": event.request_id,
        "deadline_ms": event.deadline_ms,
        "content_type": event.content_type,
        "invoked_function_arn": event.invoked_function_arn,
        "trace_id": event.trace_id,
        "client_context": event.client_context,
        "cognito_identity": event.cognito_identity,
        "tenant_id": event.tenant_id,
    }
    write_frame(fd, EVENT, meta, event.payload, deadline=deadline, watch=watch)


def read_event(fd: int) -> tuple[object, EventMeta, bytes | bytearray]:
    """The next event: its reply token, its metadata and its payload; ``Closed`` when the
    supervisor has no more (it closed the pipe)."""
    frame = read_frame(fd, max_body=errors.MAX_EVENT_BYTES, allowed=_EVENT_KINDS)
    reply_token = frame.meta.pop("reply_token", None)
    return reply_token, cast(EventMeta, frame.meta), frame.body


# --- worker -> supervisor -------------------------------------------------------------------


def write_ready(fd: int, init_ms: float) -> None:
    write_frame(fd, READY, {"init_ms": round(init_ms, 3)})


def write_init_failed(fd: int, failed: InitFailed) -> None:
    write_frame(fd, INIT_FAILED, {"error_type": failed.error_type}, failed.error_body)


def write_reply(fd: int, reply_token: object, reply: Result | Failed) -> None:
    """The reply to the event that carried ``reply_token``."""
    if isinstance(reply, Result):
        write_frame(
            fd, RESULT, {"content_type": reply.content_type, "reply_token": reply_token}, reply.payload
        )
        return
    meta: dict[str, Any] = {"error_type": reply.error_type}
    if reply.xray_cause is not None:
        meta["xray_cause"] = reply.xray_cause
    if reply.retire:
        meta["retire"] = True
    meta["reply_token"] = reply_token
    write_frame(fd, FAILED, meta, reply.error_body)


def parse_start(frame: Frame) -> Ready | InitFailed:
    """A frame of ``START_KINDS`` as the message it is. Handler code can write on the pipe
    while it is imported: no field is trusted."""
    if frame.kind == READY:
        init_ms = frame.meta.get("init_ms")
        return Ready(float(init_ms) if isinstance(init_ms, (int, float)) else 0.0)
    return InitFailed(frame.body, str(frame.meta.get("error_type", errors.UNKNOWN)))


def reply_token(frame: Frame) -> object:
    """The reply token a frame of ``REPLY_KINDS`` carries (anything: it is not trusted)."""
    return frame.meta.get("reply_token")


def parse_reply(frame: Frame, max_response_bytes: int) -> Result | Failed | StreamStart:
    """A frame of ``REPLY_KINDS`` as the message it is; ``Oversized`` for a result of more
    than ``max_response_bytes`` bytes, ``Garbled`` for one that cannot be posted as it is. An X-Ray
    cause is checked and bounded again: handler code can forge the whole frame."""
    if frame.kind == RESULT:
        if len(frame.body) > max_response_bytes:
            raise Oversized(len(frame.body))
        return Result(frame.body, _content_type(frame, "application/json"))
    if frame.kind == STREAM_START:
        return StreamStart(_content_type(frame, "application/octet-stream"))
    return _parse_failed(frame)


def _content_type(frame: Frame, default: str) -> str:
    content_type = str(frame.meta.get("content_type") or default)
    if not is_header_value(content_type):
        raise Garbled(f"a content type that cannot be a header value: {content_type[:80]!r}")
    return content_type


def is_header_value(text: str) -> bool:
    """Can ``text`` go into a request's headers as it is (no CR or LF to split it)?"""
    return _HEADER_VALUE.fullmatch(text) is not None


def _parse_failed(frame: Frame) -> Failed:
    return Failed(
        frame.body,
        str(frame.meta.get("error_type", errors.UNKNOWN)),
        reports.parse_xray_cause(frame.meta.get("xray_cause")),
        retire=bool(frame.meta.get("retire")),
    )


# --- SnapStart's runtime hooks -------------------------------------------------------------


class HooksRan(NamedTuple):
    """Every hook of the phase returned."""

    hooks_ms: float


class HooksFailed(NamedTuple):
    """A hook raised: the four-key report of its exception (``errorType`` its class, as AWS's
    runtime reports it; the phase decides the error type it is posted under)."""

    error_body: bytes | bytearray


def write_run_hooks(fd: int, phase: str, *, deadline: float | None, watch: int | None) -> None:
    write_frame(fd, RUN_HOOKS, {"phase": phase}, deadline=deadline, watch=watch)


def read_run_hooks(fd: int) -> str:
    """The phase of hooks the supervisor asks for; ``Closed`` when it has closed the pipe."""
    frame = read_frame(fd, max_body=0, allowed=_RUN_HOOKS_KINDS)
    phase = frame.meta.get("phase")
    if phase not in HOOK_PHASES:
        raise Garbled(f"unknown runtime hook phase {phase!r}")
    return cast(str, phase)


def write_hooks_ran(fd: int, hooks_ms: float) -> None:
    write_frame(fd, HOOKS_RAN, {"hooks_ms": round(hooks_ms, 3)})


def write_hooks_failed(fd: int, failed: HooksFailed) -> None:
    write_frame(fd, HOOKS_RAN, {"failed": True}, failed.error_body)


def parse_hooks_ran(frame: Frame) -> HooksRan | HooksFailed:
    """A frame of ``HOOK_KINDS`` as the message it is (no field trusted: hooks are user code)."""
    if frame.meta.get("failed") is True:
        return HooksFailed(frame.body)
    hooks_ms = frame.meta.get("hooks_ms")
    return HooksRan(float(hooks_ms) if isinstance(hooks_ms, (int, float)) else 0.0)


# --- a streamed reply ------------------------------------------------------------------------


def write_stream_start(fd: int, reply_token: object, content_type: str) -> None:
    """Begin the streamed reply to the event that carried ``reply_token``."""
    write_frame(fd, STREAM_START, {"content_type": content_type, "reply_token": reply_token})


def write_chunk(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Send a piece of the stream's body, in chunks of at most ``MAX_CHUNK_BYTES`` (none for
    an empty piece: the body is unchanged by it). Blocks while the pipe is full."""
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    for start in range(0, len(view), MAX_CHUNK_BYTES):
        write_frame(fd, CHUNK, {}, view[start : start + MAX_CHUNK_BYTES])


def write_stream_end(fd: int) -> None:
    write_frame(fd, STREAM_END, {})


def write_stream_failed(fd: int, failed: Failed) -> None:
    """End the stream with the handler's error (it goes to the stream's trailers)."""
    meta: dict[str, Any] = {"error_type": failed.error_type}
    if failed.retire:
        meta["retire"] = True
    write_frame(fd, STREAM_FAILED, meta, failed.error_body)


def parse_stream_part(frame: Frame) -> bytes | bytearray | StreamEnd | Failed:
    """A frame of ``STREAM_KINDS`` as what it is: a chunk's bytes, the end, or the error."""
    if frame.kind == CHUNK:
        return frame.body
    if frame.kind == STREAM_END:
        return StreamEnd()
    return _parse_failed(frame)


# --- frames ---------------------------------------------------------------------------------


def write_frame(
    fd: int,
    kind: bytes,
    meta: dict[str, Any],
    body: bytes | bytearray | memoryview = b"",
    *,
    deadline: float | None = None,
    watch: int | None = None,
) -> None:
    """Write one frame with as few system calls as the pipe allows.

    On a non-blocking descriptor the writer waits for room until ``deadline``, and gives
    up with ``Closed`` if ``watch`` (the reader's pidfd) fires first.
    """
    meta_bytes = _encode_meta(meta).encode()
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

    Raises ``TimedOut`` at the deadline, ``Interrupted`` if ``interrupt`` fired, and
    ``Closed`` if any other registered descriptor (the peer's pidfd) fired first.
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
        raise TimedOut()
    ready = {ready_fd for ready_fd, _ in events}
    if fd in ready:
        return
    if interrupt is not None and interrupt in ready:
        raise Interrupted()
    raise Closed()


class Readable:
    """Whether ``fd`` has something to read right now (not merely its writer gone), asked
    as often as needed of one poll object, made once: the supervisor asks before every event."""

    def __init__(self, fd: int) -> None:
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def __call__(self) -> bool:
        ready = self._poller.poll(0)
        return bool(ready) and bool(ready[0][1] & select.POLLIN)


def read_frame(
    fd: int,
    *,
    max_body: int,
    deadline: float | None = None,
    allowed: frozenset[bytes] | None = None,
    watch: int | None = None,
    interrupt: int | None = None,
    nonblocking: bool = False,
) -> Frame:
    """Read one frame; ``deadline`` is a ``time.monotonic()`` instant or None to block.

    The body length is checked against ``max_body`` before any of the body is read, so a
    peer announcing a huge payload costs the reader nothing. ``watch`` is a descriptor
    that turns readable when the writer is gone (a pidfd): a writer that dies mid-frame
    while some process it left behind still holds the pipe open must not look like one
    that is merely slow. ``interrupt`` (a signal wakeup descriptor) ends the wait with
    ``Interrupted``, but only before the first byte: a frame is never abandoned halfway.
    ``nonblocking`` says that ``fd`` is: once a frame has begun, the rest of it (most often
    in the pipe already, as a frame is written at once) is read before it is waited for.
    """
    reader = _Reader(fd, deadline, watch, interrupt, nonblocking)
    header = reader.read_exact(HEADER.size)
    kind, meta_len, body_len = HEADER.unpack(header)
    if allowed is not None and kind not in allowed:
        raise Garbled(f"unexpected frame kind {kind!r}")
    if meta_len > errors.MAX_FRAME_METADATA:
        raise Garbled(f"frame metadata of {meta_len} bytes is over the limit")
    if body_len > max_body:
        raise Oversized(body_len)
    if body_len <= _READ_WITH_METADATA:
        # A small body comes with the metadata in one read: two reads a frame, not three.
        rest = reader.read_exact(meta_len + body_len) if meta_len + body_len else b""
        raw_meta, body = rest[:meta_len], rest[meta_len:]
    else:
        # A large one is read on its own, never copied out of a bigger buffer.
        raw_meta = reader.read_exact(meta_len) if meta_len else b""
        body = reader.read_exact(body_len)
    try:
        meta = _decode_meta(raw_meta.decode()) if meta_len else {}
    except ValueError as exc:
        raise Garbled(f"frame metadata is not JSON: {exc}") from None
    except RecursionError:
        # Handler code can write on the reply pipe; nesting must not take the reader down.
        raise Garbled("frame metadata is nested too deep") from None
    if not isinstance(meta, dict):
        raise Garbled("frame metadata is not a JSON object")
    return Frame(kind, meta, body)


class _Reader:
    """Reads exact sizes from a pipe, giving up at a deadline or when ``watch`` fires."""

    def __init__(
        self, fd: int, deadline: float | None, watch: int | None, interrupt: int | None, nonblocking: bool
    ) -> None:
        self.fd = fd
        self.deadline = deadline
        self.interrupt = interrupt
        self.nonblocking = nonblocking
        # Whether the next read waits for the pipe first: always before a frame begins, and
        # after it only on a blocking pipe, or when a read found none of the rest yet.
        self.waits = True
        self.poller: select.poll | None = None
        if nonblocking or deadline is not None or watch is not None or interrupt is not None:
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
            try:
                chunk = os.read(self.fd, remaining)
            except BlockingIOError:
                self.waits = True
                continue
            self._got(len(chunk))
            chunks.append(chunk)
            remaining -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _read_into(self, size: int) -> bytearray:
        out = bytearray(size)
        view = memoryview(out)
        got = 0
        while got < size:
            self._wait()
            try:
                count = os.readv(self.fd, [view[got:]])
            except BlockingIOError:
                self.waits = True
                continue
            self._got(count)
            got += count
        return out

    def _wait(self) -> None:
        if self.waits and self.poller is not None:
            _wait_for(self.poller, self.fd, self.deadline, self.interrupt)

    def _got(self, count: int) -> None:
        """After a read of ``count`` bytes: ``Closed`` at the pipe's end; else the frame has
        begun, and from here on it is read to the end or not at all."""
        if not count:
            raise Closed()
        if self.interrupt is not None:
            self.poller.unregister(self.interrupt)  # type: ignore[union-attr]
            self.interrupt = None
        self.waits = not self.nonblocking
