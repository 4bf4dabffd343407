"""Relaying a streamed reply: each chunk from the worker's pipe to the Runtime API as it comes.

The relay holds one chunk at a time: it reads a chunk from the pipe, writes it to the
``/response`` stream, and only then reads the next, so a Runtime API that reads slowly
fills the pipe and blocks the handler's yield, whatever the stream's size. Every wait is
bounded by the event's kill deadline, as for a buffered reply.

Once the stream has begun, an error can no longer go to ``/error``: whatever ends it (the
handler's exception, the worker's death, the deadline, the size limit, garbage on the
pipe) goes into its trailers, in the words the buffered path uses for the same failure.
The loop then replaces or retires the worker as the ``Ended`` record says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from supervisor.runtime_api import Event, RuntimeAPIClient, StreamedResponse
from supervisor.worker_process import Died, WorkerProcess
from worker import errors
from worker.protocol import Failed, Interrupted, StreamEnd, StreamStart, TimedOut
from worker.reports import bounded_report


class Ended(NamedTuple):
    """How a relayed stream ended, as far as the worker is concerned: ``replace`` says why
    it must be replaced (None when it may serve on), ``fields`` are for that record, and
    ``retire`` names the error after which it asked to be retired."""

    replace: str | None = None
    fields: dict[str, Any] = {}
    retire: str | None = None


def relay_stream(
    api: RuntimeAPIClient,
    worker: WorkerProcess,
    event: Event,
    start: StreamStart,
    kill_at: float,
    *,
    max_bytes: int = errors.MAX_STREAMED_PAYLOAD,
    shutting_down: Callable[[], bool],
    shutdown_grace: float,
) -> Ended:
    """Pass the worker's stream for ``event`` on to the Runtime API until it ends.

    ``shutting_down`` is asked when a signal ended a wait; once it says yes, the worker
    gets ``shutdown_grace`` more seconds (within the deadline), as a buffered reply does.
    """
    request_id = event.request_id
    stream = api.stream_response(event, start.content_type, kill_at)
    deadline = kill_at
    interruptible = True
    while True:
        part = worker.read_stream(kill_at, interruptible=interruptible)
        if isinstance(part, TimedOut) and kill_at < deadline:
            # The shutdown's grace is over, not the event's time: killed, as a buffered one is.
            part = Died(worker.kill())
        if isinstance(part, (bytes, bytearray)):
            if stream.sent + len(part) > max_bytes:
                worker.kill()
                report = errors.response_too_large(stream.sent + len(part), max_bytes, request_id)
                _finish(stream, report)
                return Ended("worker stream over the payload limit", {"size": stream.sent + len(part)})
            if not stream.send(part):
                worker.kill()
                stream.abandon()
                return Ended("response stream to the Runtime API broke", {"error": stream.failure})
            del part  # the next chunk is read only once this one is gone
            continue
        if isinstance(part, Interrupted):
            if shutting_down():
                kill_at = min(kill_at, time.monotonic() + shutdown_grace)
                interruptible = False
            continue
        if isinstance(part, StreamEnd):
            stream.finish()
            return Ended()
        if isinstance(part, Failed):
            stream.finish(part.error_type, _trailer_body(part.error_body, request_id))
            return Ended(retire=part.error_type if part.retire else None)
        if isinstance(part, Died):
            _finish(stream, errors.exit_error(part.wait_status, request_id))
            return Ended("worker died", {"status": errors.describe_status(part.wait_status)})
        worker.kill()
        if isinstance(part, TimedOut):
            _finish(stream, errors.timeout_error(event.timeout_seconds, request_id))
            return Ended("worker killed at deadline", {"timeout_s": round(event.timeout_seconds, 3)})
        reason = part.reason if hasattr(part, "reason") else repr(part)
        message = f"Worker sent an invalid reply: {reason}"
        _finish(stream, errors.report(message, errors.PROTOCOL_ERROR, request_id))
        return Ended("worker broke the pipe protocol", {"reason": reason})


def _finish(stream: StreamedResponse, report: errors.ErrorReport) -> None:
    stream.finish(report["errorType"], errors.encode(report))


def _trailer_body(error_body: bytes | bytearray, request_id: str) -> bytes | bytearray:
    """The worker's error report, cut to fit a trailer line again if need be: handler code
    can forge the frame that carries it."""
    if len(error_body) <= errors.STREAM_ERROR_BODY_BYTES:
        return error_body
    try:
        report = json.loads(error_body)
    except (ValueError, RecursionError):
        report = None
    if not isinstance(report, dict):
        report = errors.report("The worker's error report is not JSON", errors.PROTOCOL_ERROR, request_id)
    return errors.encode(bounded_report(report, errors.STREAM_ERROR_BODY_BYTES))
