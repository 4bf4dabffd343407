"""The events waiting, handed out and answered, and the rule that each gets one answer.

This is the platform's side of exactly-once delivery, which the runtime under test is
checked against: an event is handed to one ``GET /next`` at a time, put back first in
line when the hand-out could not be delivered, and answered once, by the runtime's first
accepted post or, when the runtime cannot answer (it died, it timed out, the event never
reached it), by the emulator on its behalf. Later posts are refused with the platform's
status codes. All of it happens under one lock, which the emulator's other state shares.
"""

from __future__ import annotations

import base64
import collections
import json
import threading
import time
import uuid
from collections.abc import Callable

from lambda_supervisor.runtime_modules import errors

from .bounds import (
    ASYNC_QUEUE_BYTES,
    ASYNC_QUEUE_LENGTH,
    RuntimeUnavailable,
    check_async_room,
    finished_to_forget,
)
from .records import (
    ERROR_BODY_TRAILER,
    ERROR_TYPE_TRAILER,
    Invocation,
    InvokeListener,
    Outcome,
    ResponseStream,
    now_ms,
)
from .wire import error_json

# An event whose hand-out fails this many times (the runtime never receives it) is
# answered with UNDELIVERABLE instead of being put back in line once more.
MAX_HAND_OUTS = 3
UNDELIVERABLE = errors.EVENT_NOT_DELIVERED

REJECTIONS = {
    403: error_json("InvalidStateTransition", "Invocation already has a response or error."),
    410: error_json("InvocationTimedOut", "The invocation already timed out."),
}


class InvocationQueue:
    """The invocations and their queue: the base of ``RuntimeAPIEmulator``, which adds the
    listeners and the rest of the emulator's state.

    The methods in the second half are the Runtime API routes' view of it: hand an event
    out, put it back, take or refuse an answer.
    """

    def __init__(self, *, invoke_grace: float) -> None:
        # How long past a deadline the invoke side keeps waiting for the runtime's own
        # timeout report before it answers the caller with a timeout itself.
        self.invoke_grace = invoke_grace
        self.listener: InvokeListener | None = None
        # None keeps every finished invocation (tests inspect them all); numbers keep only
        # the newest ones (that many, holding at most that many bytes): see ``bounds``.
        self.retain_finished: int | None = None
        self.retain_finished_bytes: int | None = None
        # Bounds of the queue of ``InvocationType=Event`` calls not yet handed out.
        self.async_queue_length = ASYNC_QUEUE_LENGTH
        self.async_queue_bytes = ASYNC_QUEUE_BYTES
        # Refuse a synchronous call that finds no idle ``GET /next`` (Lambda Managed
        # Instances do) instead of queueing it until one comes (the default).
        self.refuse_when_busy = False
        self.first_poll_at: float | None = None
        self._lock = threading.Condition()
        self._queue: collections.deque[Invocation] = collections.deque()
        self._invocations: dict[str, Invocation] = {}
        self._pollers = 0
        self._stopping = False
        # While held, queued events stay queued: ``serve --watch`` replaces the runtime.
        self._held = False

    @property
    def stopped(self) -> bool:
        return self._stopping

    def _enqueue(self, invocation: Invocation, *, only_if_idle: bool = False) -> None:
        """Queue a new invocation last in line, within the async and retention bounds.

        ``only_if_idle`` refuses it (``RuntimeUnavailable``) unless a poller blocked in
        ``GET /next`` is left without an event queued for it: decided under the lock, so
        N idle pollers take exactly N such calls.
        """
        with self._lock:
            if invocation.request_id in self._invocations:
                raise ValueError(f"request id {invocation.request_id!r} was already submitted")
            if only_if_idle and self._pollers <= len(self._queue):
                raise RuntimeUnavailable(
                    f"No runtime is free to take the invocation: {self._pollers} waiting for an event, "
                    f"{len(self._queue)} events queued."
                )
            if invocation.asynchronous:
                check_async_room(
                    self._queue,
                    len(invocation.body),
                    length=self.async_queue_length,
                    max_bytes=self.async_queue_bytes,
                )
            self._invocations[invocation.request_id] = invocation
            self._queue.append(invocation)
            forget = finished_to_forget(
                self._invocations.values(), keep=self.retain_finished, keep_bytes=self.retain_finished_bytes
            )
            for finished in forget:
                del self._invocations[finished.request_id]
            self._lock.notify_all()

    # ----------------------------------------------------------------- test API

    def wait_for_poll(self, timeout: float, count: int = 1) -> bool:
        """True once ``count`` polls (as many slots of a runtime) are blocked in ``GET /next``
        with nothing queued for them."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pollers >= count, timeout)

    def outcomes(self, request_id: str) -> list[Outcome]:
        """Every accepted post for ``request_id`` (exactly-once delivery means one)."""
        with self._lock:
            invocation = self._invocations.get(request_id)
            return list(invocation.accepted) if invocation else []

    def invocation(self, request_id: str) -> Invocation | None:
        with self._lock:
            return self._invocations.get(request_id)

    def all_invocations(self) -> list[Invocation]:
        """Every invocation ever submitted, in submission order."""
        with self._lock:
            return list(self._invocations.values())

    def pending(self) -> list[Invocation]:
        """Invocations submitted and not yet answered, in submission order."""
        with self._lock:
            return [inv for inv in self._invocations.values() if not inv.done]

    def hold_hand_outs(self, held: bool) -> None:
        """Keep queued events from every ``GET /next`` while ``held`` (callers still queue).

        The local runner holds them while it swaps the runtime for one on new code: an event
        handed to the runtime being stopped would be lost with it.
        """
        with self._lock:
            self._held = held
            self._lock.notify_all()

    def _handing_out(self) -> bool:
        return bool(self._queue) and not self._held

    def fail_invocation(self, invocation: Invocation, error_type: str, message: str) -> bool:
        """Answer an open invocation on the runtime's behalf (it died or never started).

        Returns False when the runtime already answered it. The synthetic outcome has
        status 0 so it can never be mistaken for a post the runtime made.
        """
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        outcome = Outcome(
            "error",
            body,
            {"Lambda-Runtime-Function-Error-Type": error_type},
            0,
            invocation.request_id,
        )
        with self._lock:
            if invocation.done:
                return False
            if invocation in self._queue:
                self._queue.remove(invocation)
            if invocation.stream is not None:
                # A caller may have had chunks of it already: the stream ends with the error.
                invocation.stream.end(error_trailers(error_type, body))
            invocation.finish(outcome)
            self._lock.notify_all()
        self._notify_finished(invocation, outcome)
        return True

    def _notify_finished(self, invocation: Invocation, outcome: Outcome) -> None:
        listener = self.listener
        if listener is not None and invocation.handed_out.is_set():
            listener.invocation_finished(invocation, outcome)

    def fail_pending(self, error_type: str, message: str, *, handed_out_only: bool = False) -> int:
        """Fail every open invocation (or only those a runtime took); returns how many."""
        failed = 0
        for invocation in self.pending():
            if handed_out_only and not invocation.handed_out.is_set():
                continue
            failed += self.fail_invocation(invocation, error_type, message)
        return failed

    def fail_pending_with(self, outcome: Outcome) -> int:
        """Answer every queued invocation with a copy of ``outcome`` (an init error, say)."""
        failed = 0
        for invocation in self.pending():
            with self._lock:
                if invocation.done:
                    continue
                if invocation in self._queue:
                    self._queue.remove(invocation)
                invocation.finish(Outcome("error", outcome.body, outcome.headers, 0, invocation.request_id))
                failed += 1
        return failed

    def await_outcome(self, invocation: Invocation, *, queue_timeout: float | None = None) -> Outcome | None:
        """Wait as a synchronous caller does: for the runtime's answer, at most to the deadline.

        Queued time does not count (the deadline starts at hand-out, as on Lambda). When
        the deadline plus ``invoke_grace`` passes without a post, the invocation is failed
        with ``Sandbox.Timedout``. Returns None if the emulator stops first; raises
        ``TimeoutError`` if no runtime takes the event within ``queue_timeout``.
        """
        queued_until = None if queue_timeout is None else time.monotonic() + queue_timeout
        while not invocation.handed_out.wait(0.1):
            if invocation.done:
                return invocation.accepted[0]
            if self._stopping:
                return None
            if queued_until is not None and time.monotonic() > queued_until:
                raise TimeoutError(f"no runtime took invocation {invocation.request_id!r}")
        assert invocation.deadline_ms is not None
        while not invocation.done:
            if self._stopping:
                return None
            remaining = (invocation.deadline_ms - now_ms()) / 1000 + self.invoke_grace
            if remaining <= 0:
                message = errors.timeout_message(invocation.timeout)
                self.fail_invocation(invocation, errors.TIMEOUT, message)
                break
            invocation.wait_done(min(remaining, 0.5))
        return invocation.accepted[0]

    # ----------------------------------------------------------------- the runtime's side

    def hand_out(self, still_connected: Callable[[], bool]) -> Invocation | None:
        """Block until an event is queued, then hand it out; None when there is no one to take it.

        The wait is sliced so that a poller whose runtime died (the socket closed) gives
        up instead of later taking an event to nobody; that matters when a runtime is
        killed and restarted while its ``GET /next`` is pending.
        """
        with self._lock:
            if self.first_poll_at is None:
                self.first_poll_at = time.monotonic()
            self._pollers += 1
            self._lock.notify_all()
            try:
                while True:
                    self._lock.wait_for(lambda: self._stopping or self._handing_out(), 0.25)
                    if self._stopping:
                        return None
                    if not still_connected():
                        return None
                    if self._handing_out():
                        break
                invocation = self._queue.popleft()
            finally:
                self._pollers -= 1
            invocation.hand_outs += 1
            invocation.invocation_id = str(uuid.uuid4())
            invocation.handed_out_at = time.monotonic()
            invocation.deadline_ms = now_ms() + int(invocation.timeout * 1000)
            invocation.handed_out.set()
            self._lock.notify_all()
        listener = self.listener
        if listener is not None:
            listener.invocation_started(invocation)
        return invocation

    def put_back(self, invocation: Invocation, error: Exception) -> None:
        """Put back an event whose hand-out could not be delivered, first in line.

        The runtime that asked may have died while it was being answered; the next one
        should get the event. But an event that fails to reach any runtime (one it refuses
        to read) would stand first in line for ever, so after ``MAX_HAND_OUTS`` tries it is
        answered with ``UNDELIVERABLE`` instead.
        """
        with self._lock:
            if invocation.done or invocation.accepted or invocation.rejected:
                return
            if invocation.hand_outs < MAX_HAND_OUTS:
                invocation.handed_out.clear()
                invocation.handed_out_at = None
                invocation.deadline_ms = None
                invocation.invocation_id = None
                self._queue.appendleft(invocation)
                self._lock.notify_all()
                return
        reason = f"{invocation.hand_outs} hand-outs failed, the last with {error!r}"
        self.fail_undeliverable(invocation, reason)

    def fail_undeliverable(self, invocation: Invocation, reason: str) -> None:
        """Answer an event that cannot be handed to the runtime with ``UNDELIVERABLE``."""
        message = f"The event could not be handed to the runtime: {reason}"
        self.fail_invocation(invocation, UNDELIVERABLE, message)

    def accept_answer(self, request_id: str, outcome: Outcome) -> tuple[int, dict[str, str]]:
        """Decide the status of a ``/response`` or ``/error`` post, recording it."""
        with self._lock:
            admitted = self._admit(request_id, outcome)
            if not isinstance(admitted, Invocation):
                return admitted
            outcome.status = 202
            admitted.finish(outcome)
            self._answered(admitted)
        return 202, {"status": "OK"}

    def _admit(self, request_id: str, refused: Outcome) -> Invocation | tuple[int, dict[str, str]]:
        """Under the lock: the invocation a post answers, or the status and body that refuse
        the post (then ``refused``, with that status, is recorded as the invocation's)."""
        invocation = self._invocations.get(request_id)
        if invocation is None or invocation.hand_outs == 0:
            return 400, error_json("InvalidRequestID", f"Invalid request ID: {request_id!r}")
        status = _rejection_status(invocation)
        if status is not None:
            refused.status = status
            invocation.rejected.append(refused)
            return status, REJECTIONS[status]
        return invocation

    def _answered(self, invocation: Invocation) -> None:
        """Under the lock, after a post was admitted as the invocation's answer."""
        if invocation in self._queue:
            # Put back after a hand-out that failed on our side, while the runtime had read
            # enough of it to answer: its answer is the one, and it goes out no more.
            self._queue.remove(invocation)
        self._lock.notify_all()

    def await_response(
        self, invocation: Invocation, *, queue_timeout: float | None = None
    ) -> ResponseStream | Outcome | None:
        """Wait as a streaming caller does: for the runtime's stream to begin, or for the
        invocation's answer when the runtime does not stream (a buffered result, an error,
        or one the emulator words on its behalf). The rules are ``await_outcome``'s.

        A stream is returned as soon as its post began: ``follow`` it for the chunks as
        they arrive; it ends at the invocation's deadline at the latest. None if the
        emulator stops first.
        """
        queued_until = None if queue_timeout is None else time.monotonic() + queue_timeout
        while not invocation.handed_out.wait(0.1):
            if invocation.responding.is_set():
                break
            if self._stopping:
                return None
            if queued_until is not None and time.monotonic() > queued_until:
                raise TimeoutError(f"no runtime took invocation {invocation.request_id!r}")
        while not invocation.responding.wait(0.1):
            if self._stopping:
                return None
            if invocation.deadline_ms is not None:
                if (invocation.deadline_ms - now_ms()) / 1000 + self.invoke_grace <= 0:
                    self.time_out(invocation)
        with self._lock:
            return invocation.stream if invocation.stream is not None else invocation.accepted[0]

    def time_out(self, invocation: Invocation) -> bool:
        """Answer an open invocation with ``Sandbox.Timedout`` (see ``fail_invocation``)."""
        return self.fail_invocation(invocation, errors.TIMEOUT, errors.timeout_message(invocation.timeout))

    def open_stream(self, request_id: str, stream: ResponseStream) -> tuple[int, dict[str, str]]:
        """Decide whether a streamed ``/response`` post may begin; 202 when it may (the
        stream is then the invocation's, and its callers can follow it), else the refusal,
        as for any other post. A stream, once begun, is the invocation's only answer."""
        with self._lock:
            admitted = self._admit(request_id, Outcome("response", b"", stream.headers, 0, request_id))
            if not isinstance(admitted, Invocation):
                return admitted
            admitted.stream = stream
            admitted.responding.set()
            self._answered(admitted)
        return 202, {"status": "OK"}

    def close_stream(self, request_id: str, trailers: dict[str, str], *, status: int = 202) -> Outcome | None:
        """End a stream begun with ``open_stream`` and make it the invocation's answer: the
        body it carried, its headers and ``trailers``. ``status`` is 0 for an end the
        emulator words (a cut connection, a size past the limit). None when the emulator
        had already answered the invocation (its deadline passed): the stream stays as it
        ended then. The listener is told by ``report_answered``, as for other posts."""
        with self._lock:
            invocation = self._invocations.get(request_id)
            stream = None if invocation is None else invocation.stream
            if invocation is None or stream is None or invocation.done:
                return None
            stream.end(trailers)
            outcome = Outcome("response", stream.body, stream.headers, status, request_id, stream.trailers)
            invocation.finish(outcome)
            self._lock.notify_all()
        return outcome

    def report_answered(self, request_id: str, outcome: Outcome) -> None:
        """Tell the listener an accepted answer has been acknowledged to the runtime."""
        invocation = self.invocation(request_id)
        if invocation is not None:
            self._notify_finished(invocation, outcome)

    def reject_oversized(self, request_id: str, outcome: Outcome) -> None:
        """Record a post refused with 413 for its size (its body was not kept)."""
        with self._lock:
            invocation = self._invocations.get(request_id)
            if invocation is not None:
                outcome.status = 413
                invocation.rejected.append(outcome)


def _rejection_status(invocation: Invocation) -> int | None:
    """Why a post about ``invocation`` is refused: 403 answered, 410 too late, or None.

    A runtime's own earlier answer wins (403); past the deadline it is 410, even when the
    emulator has meanwhile answered the caller with a timeout on the runtime's behalf.
    """
    if invocation.done and invocation.accepted[0].status != 0:
        return 403
    if invocation.deadline_passed():
        return 410
    if invocation.stream is not None:
        return 403  # nothing else may answer an invocation whose stream has begun
    return 403 if invocation.done else None


def error_trailers(error_type: str, error_body: bytes) -> dict[str, str]:
    """The trailers a stream ends with when it ends in an error: its type and report."""
    return {ERROR_TYPE_TRAILER: error_type, ERROR_BODY_TRAILER: base64.b64encode(error_body).decode("ascii")}
