"""What the emulator remembers of each event and of each post the runtime made.

Tests read these records to check exactly what crossed the wire (every header, every
body, the order and the count of answers), and the invoke side waits on them for the
caller's answer. They hold data only: the rules that fill them in (who may answer, when
an answer is too late) live with the queue in ``invocations``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of ``Lambda-Runtime-Deadline-Ms``."""
    return int(time.time() * 1000)


class CaseInsensitiveDict(Mapping[str, str]):
    """A read-only ``str -> str`` mapping whose lookups ignore case, because HTTP header names do.

    Iteration gives the names as they were sent, so ``dict(headers)`` shows the wire form.
    """

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {
            key.lower(): (key, value) for key, value in (items or {}).items()
        }

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"CaseInsensitiveDict({dict(self)!r})"


class Outcome:
    """One post the runtime made about an invocation (or at init), as the emulator saw it."""

    def __init__(
        self,
        kind: str,
        body: bytes,
        headers: Mapping[str, str],
        status: int,
        request_id: str | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.body = body
        self.headers = CaseInsensitiveDict(headers)
        self.status = status
        self.request_id = request_id
        self.trailers = CaseInsensitiveDict(trailers)
        self.received_at = time.monotonic()

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        """The ``Lambda-Runtime-Function-Error-Type`` header, or a streamed error trailer."""
        return self.headers.get("Lambda-Runtime-Function-Error-Type") or self.trailers.get(
            "Lambda-Runtime-Function-Error-Type"
        )

    def __repr__(self) -> str:
        preview = self.body[:80]
        return (
            f"Outcome({self.kind!r}, status={self.status}, error_type={self.error_type!r}, body={preview!r})"
        )


class Chunk(NamedTuple):
    """One chunk of a streamed response, as it arrived: ``received_at`` is ``time.monotonic()``
    (the clock of ``Outcome.received_at``), ``received_at_epoch`` is ``time.time()``, to
    compare with times taken in another process (a handler's, a caller's)."""

    data: bytes
    received_at: float
    received_at_epoch: float


class ResponseStream:
    """A streamed ``/response`` (``Lambda-Runtime-Function-Response-Mode: streaming``), recorded
    as it arrives, for whoever passes it on to a caller while the runtime is still sending.

    Its chunks come in the order and with the arrival times they had on the wire. It ends
    once: complete (the last chunk and the trailers arrived), with an error in its trailers
    (the runtime's, or the emulator's when the stream was cut, went past its deadline or
    its size limit), or when the emulator answered the invocation on the runtime's behalf.
    ``chunks`` may be read from any thread; ``follow`` waits for each new one.
    """

    def __init__(self, request_id: str, headers: Mapping[str, str]) -> None:
        self.request_id = request_id
        self.headers = CaseInsensitiveDict(headers)
        self.started_at = time.monotonic()
        self.chunks: list[Chunk] = []
        self.size = 0
        self.trailers = CaseInsensitiveDict()
        self.ended = False
        self.ended_at: float | None = None
        self._changed = threading.Condition()

    @property
    def content_type(self) -> str:
        """The stream's Content-Type, as the runtime posted it (Lambda passes it on)."""
        return self.headers.get("Content-Type") or "application/octet-stream"

    @property
    def body(self) -> bytes:
        """Every chunk received so far, joined."""
        with self._changed:
            return b"".join(chunk.data for chunk in self.chunks)

    @property
    def error_type(self) -> str | None:
        """The error the stream ended with (its ``Lambda-Runtime-Function-Error-Type``
        trailer), or None."""
        return self.trailers.get(ERROR_TYPE_TRAILER) or None

    @property
    def error_body(self) -> bytes | None:
        """The error report of the ``Lambda-Runtime-Function-Error-Body`` trailer, decoded from
        base64 (as sent, when it is not base64), or None."""
        encoded = self.trailers.get(ERROR_BODY_TRAILER)
        if not encoded:
            return None
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return encoded.encode("latin-1", "replace")

    def append(self, data: bytes) -> bool:
        """Record a chunk that just arrived; False (nothing recorded) once the stream has ended."""
        now, now_epoch = time.monotonic(), time.time()
        with self._changed:
            if self.ended:
                return False
            self.chunks.append(Chunk(data, now, now_epoch))
            self.size += len(data)
            self._changed.notify_all()
            return True

    def end(self, trailers: Mapping[str, str] | None = None) -> bool:
        """End the stream with ``trailers``; False if it had ended already (those stay)."""
        with self._changed:
            if self.ended:
                return False
            self.trailers = CaseInsensitiveDict(trailers)
            self.ended = True
            self.ended_at = time.monotonic()
            self._changed.notify_all()
            return True

    def wait_ended(self, timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.ended, timeout)

    def follow(self, timeout: float | None = None) -> Iterator[Chunk]:
        """Every chunk, from the first, each as soon as it has arrived; the iteration ends
        with the stream (then read ``trailers`` or ``error_type``). ``timeout`` bounds each
        wait for the next chunk (``TimeoutError`` past it); the stream itself always ends,
        at the invocation's deadline at the latest."""
        index = 0

        def arrived() -> bool:
            return index < len(self.chunks) or self.ended

        while True:
            with self._changed:
                if not self._changed.wait_for(arrived, timeout):
                    raise TimeoutError(f"no chunk of stream {self.request_id!r} within {timeout}s")
                if index >= len(self.chunks):
                    return
                chunk = self.chunks[index]
            index += 1
            yield chunk

    def __repr__(self) -> str:
        return (
            f"ResponseStream({self.request_id!r}, {len(self.chunks)} chunks, {self.size} bytes,"
            f" ended={self.ended}, error_type={self.error_type!r})"
        )


class Invocation:
    """An event submitted to the emulator, and everything the runtime later did with it."""

    def __init__(
        self,
        request_id: str,
        body: bytes,
        content_type: str,
        timeout: float,
        extra_headers: dict[str, str],
        function_arn: str,
        asynchronous: bool = False,
    ) -> None:
        self.request_id = request_id
        self.body = body
        # Submitted as ``InvocationType=Event``: no caller waits, it counts against the async queue.
        self.asynchronous = asynchronous
        self.content_type = content_type
        self.timeout = timeout
        self.extra_headers = extra_headers
        # Sent verbatim after the other headers of the /next answer (malformed-header tests).
        self.raw_header_lines: tuple[bytes, ...] = ()
        self.invoked_function_arn = function_arn
        self.invocation_id: str | None = None
        self.deadline_ms: int | None = None
        self.submitted_at = time.monotonic()
        self.handed_out_at: float | None = None
        self.handed_out = threading.Event()
        self.hand_outs = 0
        self.accepted: list[Outcome] = []
        self.rejected: list[Outcome] = []
        # The streamed response, from the moment its post began (its answer, once it ends,
        # is the outcome in ``accepted``); None for a buffered one.
        self.stream: ResponseStream | None = None
        # Set once the runtime starts a stream or the invocation has its answer.
        self.responding = threading.Event()
        self._done = threading.Event()

    def result(self, timeout: float) -> Outcome:
        """Wait for the first accepted post (response, error or synthetic failure)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no result for invocation {self.request_id!r} within {timeout}s")
        return self.accepted[0]

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finish(self, outcome: Outcome) -> None:
        """Record ``outcome`` as accepted and wake whoever waits for the answer.

        The queue calls this under its lock, once it has decided the outcome is the answer.
        """
        self.accepted.append(outcome)
        self._done.set()
        self.responding.set()

    def wait_done(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an answer; True once there is one."""
        return self._done.wait(timeout)

    @property
    def size(self) -> int:
        """Bytes this record holds on to: the event and every body posted about it."""
        posted = sum(len(outcome.body) for outcome in self.accepted + self.rejected)
        return len(self.body) + posted + (self.stream.size if self.stream is not None else 0)

    def deadline_passed(self) -> bool:
        return self.deadline_ms is not None and now_ms() > self.deadline_ms

    def next_headers(self) -> dict[str, str]:
        """The headers of the ``/next`` answer that hands this event out (raw lines aside)."""
        return {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.invoked_function_arn,
            "Lambda-Runtime-Invocation-Id": self.invocation_id or "",
            **self.extra_headers,
        }

    def __repr__(self) -> str:
        handed_out = self.handed_out.is_set()
        return f"Invocation({self.request_id!r}, handed_out={handed_out}, done={self.done})"


class InvokeListener(Protocol):
    """Hooks the local runner plugs into the invoke side for START/END/REPORT and log tails."""

    def invocation_started(self, invocation: Invocation) -> None: ...

    def invocation_finished(self, invocation: Invocation, outcome: Outcome) -> None: ...

    def log_tail(self, invocation: Invocation) -> str: ...
