"""``POST /2015-03-31/functions/{name}/invocations``, answered like the Invoke API.

Callers (curl, boto3, the AWS CLI) should not be able to tell this from Lambda's own
endpoint: the same checks of the payload and headers before anything runs, the same
status codes and ``X-Amzn-Errortype`` names, the function error flagged in
``X-Amz-Function-Error`` and the log tail in ``X-Amz-Log-Result``. The caller's event
goes into the same queue the Runtime API serves, and the caller's request waits for the
runtime's answer, as AWS's own emulator does; concurrent callers simply queue, unless
the emulator is told to refuse a call no idle runtime is waiting for (``refuse_when_busy``),
as Lambda Managed Instances do.

A function that streams its response is passed on as it arrives: on this path as a chunked
body (its error, if the stream ends in one, in the trailers), and on
``POST /2021-11-15/functions/{name}/response-streaming-invocations``
(``InvokeWithResponseStream``) as event-stream ``PayloadChunk`` events and a final
``InvokeComplete`` (``eventstream``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lambda_supervisor.runtime_modules import errors

from . import eventstream
from .bodies import PayloadTooLarge
from .bounds import QueueFull, RuntimeUnavailable
from .records import ERROR_BODY_TRAILER, ERROR_TYPE_TRAILER, Chunk, Invocation, Outcome, ResponseStream
from .wire import UnsendableHeader

if TYPE_CHECKING:
    from .invocations import InvocationQueue
    from .routing import Handler

# What a synchronous call that finds every runtime busy is refused with (``refuse_when_busy``).
UNAVAILABLE = "Runtime.Unavailable"
# What ``X-Amz-Log-Type: Tail`` returns of an invocation's logs, as the Invoke API does.
LOG_TAIL_BYTES = 4096
# InvokeWithResponseStream accepts these; Event is not one of them.
STREAMING_INVOCATION_TYPES = ("RequestResponse", "DryRun")
# The trailers of a chunked answer whose stream ended in an error: Invoke's function-error
# flag, and the stream's own error type and report (base64), as the runtime sent them.
FUNCTION_ERROR_HEADER = "X-Amz-Function-Error"
ERROR_TRAILERS = (FUNCTION_ERROR_HEADER, ERROR_TYPE_TRAILER, ERROR_BODY_TRAILER)
# Beyond the invocation's timeout and the emulator's grace, how long a caller's answer waits
# for a stream's next chunk: a backstop only, the emulator ends a stream at its deadline.
STREAM_BACKSTOP = 5.0


class InvokeRoutes:
    """One Invoke API request on ``handler``'s connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.emulator = handler.emulator

    def handle(self, function_name: str, *, streaming: bool = False) -> None:
        """Run the caller's event and answer: buffered (chunked when the function streams),
        or as ``InvokeWithResponseStream`` when ``streaming``."""
        invocation = self._submit(function_name, streaming)
        if invocation is None:
            return
        if streaming:
            self._answer_event_stream(invocation)
            return
        if self._wants_log_tail():
            # The tail goes in a header, which is known only once the function has finished.
            outcome = self.emulator.await_outcome(invocation)
        else:
            response = self.emulator.await_response(invocation)
            if isinstance(response, ResponseStream):
                if self._relay_chunked(invocation, response):
                    return
                response = self.emulator.await_outcome(invocation)
            outcome = response
        if outcome is None:
            self.handler.drop()
            return
        self._answer(invocation, outcome)

    def _submit(self, function_name: str, streaming: bool) -> Invocation | None:
        """Check the request as the Invoke API does and queue its event; None when it has
        been answered already (refused, a dry run, an asynchronous call)."""
        handler = self.handler
        try:
            event, _ = handler.read_body(self.emulator.max_payload)
        except PayloadTooLarge:
            self.answer_error(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {self.emulator.max_payload} bytes "
                "for the InvokeFunction operation",
            )
            return None
        problem = _json_problem(event)
        if problem is not None:
            # The real Invoke API refuses a payload that is not JSON before running anything.
            self.answer_error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {problem}"
            )
            return None
        try:
            client_context = self._client_context()
        except ValueError:
            self.answer_error(
                400,
                "InvalidRequestContentException",
                "Client context must be a valid Base64-encoded JSON object.",
            )
            return None
        invocation_type = handler.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if streaming and invocation_type not in STREAMING_INVOCATION_TYPES:
            self.answer_error(
                400,
                "ValidationException",
                f"InvocationType {invocation_type[:40]!r} is not one of {STREAMING_INVOCATION_TYPES}.",
            )
            return None
        if invocation_type == "DryRun":
            handler.respond(204, b"")
            return None
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            invocation = self.emulator.submit(
                event or b"{}",
                client_context=client_context or None,
                trace_id=handler.headers.get("X-Amzn-Trace-Id"),
                invoked_function_arn=self.emulator.function_arn(name),
                asynchronous=invocation_type == "Event",
                only_if_idle=self.emulator.refuse_when_busy and invocation_type != "Event",
            )
        except UnsendableHeader as exc:
            # A line break in the function name, the trace id or the client context (an
            # obs-folded header keeps its CRLF) would write headers into the runtime's /next.
            self.answer_error(
                400, "InvalidRequestContentException", f"The request cannot be passed to the function: {exc}."
            )
            return None
        except QueueFull as full:
            self.answer_error(429, "TooManyRequestsException", str(full))
            return None
        except RuntimeUnavailable as busy:
            self.answer_error(400, UNAVAILABLE, str(busy))
            return None
        if invocation_type == "Event":
            handler.respond(202, b"", headers={"X-Amzn-Requestid": invocation.request_id})
            return None
        return invocation

    def _client_context(self) -> str | None:
        """The decoded ``X-Amz-Client-Context``; ``ValueError`` when it is not base64 JSON."""
        raw = self.handler.headers.get("X-Amz-Client-Context")
        if not raw:
            return None
        try:
            decoded = base64.b64decode(raw, validate=True).decode("utf-8")
            json.loads(decoded)
        except (binascii.Error, ValueError, RecursionError) as exc:
            raise ValueError("the client context is not base64-encoded JSON") from exc
        return decoded

    def _wants_log_tail(self) -> bool:
        return (self.handler.headers.get("X-Amz-Log-Type") or "").lower() == "tail"

    def _answer_headers(self, invocation: Invocation) -> dict[str, str]:
        return {"X-Amzn-Requestid": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}

    def _answer(self, invocation: Invocation, outcome: Outcome) -> None:
        headers = self._answer_headers(invocation)
        if outcome.kind != "response" or outcome.trailers.get("Lambda-Runtime-Function-Error-Type"):
            headers[FUNCTION_ERROR_HEADER] = errors.UNHANDLED
        body = outcome.body
        if outcome.kind == "response" and outcome.trailers.get("Lambda-Runtime-Function-Error-Body"):
            body = base64.b64decode(outcome.trailers["Lambda-Runtime-Function-Error-Body"])
        if self._wants_log_tail():
            headers["X-Amz-Log-Result"] = self._log_tail(invocation)
        content_type = outcome.headers.get("Content-Type") or "application/json"
        self.handler.respond(200, body, content_type, headers)

    def _relay_chunked(self, invocation: Invocation, stream: ResponseStream) -> bool:
        """Pass a stream on as a chunked body, each chunk as it arrives, its error (if it
        ends in one) in the trailers. False, with nothing sent, when it ended before its
        first chunk: its answer is then a buffered one, which can flag an error in a header."""
        started = False
        for chunk in follow_stream(self.emulator, invocation, stream):
            if not started:
                headers = {**self._answer_headers(invocation), "Trailer": ", ".join(ERROR_TRAILERS)}
                self._start_chunked(stream.content_type, headers)
                started = True
            self.handler.write_chunk(chunk.data)
        if not started:
            return False
        trailers = {}
        if stream.error_type:
            trailers = {
                FUNCTION_ERROR_HEADER: errors.UNHANDLED,
                ERROR_TYPE_TRAILER: stream.error_type,
                ERROR_BODY_TRAILER: stream.trailers.get(ERROR_BODY_TRAILER) or "",
            }
        self.handler.end_chunked(trailers)
        return True

    def _answer_event_stream(self, invocation: Invocation) -> None:
        """``InvokeWithResponseStream``: a ``PayloadChunk`` event for each chunk as it arrives
        (the whole body as one when the function did not stream), then ``InvokeComplete``
        with the error, if any, and the log tail when asked for."""
        response = self.emulator.await_response(invocation)
        if response is None:
            self.handler.drop()
            return
        self._start_chunked(eventstream.CONTENT_TYPE, self._answer_headers(invocation))
        if isinstance(response, ResponseStream):
            for chunk in follow_stream(self.emulator, invocation, response):
                for message in eventstream.payload_chunks(chunk.data):
                    self.handler.write_chunk(message)
            outcome = self.emulator.await_outcome(invocation)
            if outcome is None:
                self.handler.drop()
                return
        else:
            outcome = response
            if outcome.kind == "response":
                for message in eventstream.payload_chunks(outcome.body):
                    self.handler.write_chunk(message)
        error_code, error_details = _error_of(invocation, outcome)
        log_result = self._log_tail(invocation) if self._wants_log_tail() else None
        self.handler.write_chunk(eventstream.invoke_complete(error_code, error_details, log_result))
        self.handler.end_chunked({})

    def _start_chunked(self, content_type: str, headers: dict[str, str]) -> None:
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.flush()

    def _log_tail(self, invocation: Invocation) -> str:
        listener = self.emulator.listener
        text = listener.log_tail(invocation) if listener is not None else ""
        # The last 4 KB, cut on a character boundary so the decoded tail is valid UTF-8.
        tail = text.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore").encode("utf-8")
        return base64.b64encode(tail).decode("ascii")

    def answer_error(self, status: int, error_type: str, message: str) -> None:
        """An error in the Invoke API's shape: ``X-Amzn-Errortype`` names it, as boto3 reads it."""
        self.handler.respond_json(
            status,
            {"Type": "User", "message": message},
            headers={"X-Amzn-Errortype": error_type},
        )


def follow_stream(queue: InvocationQueue, invocation: Invocation, stream: ResponseStream) -> Iterator[Chunk]:
    """``stream``'s chunks as they arrive, for a caller; should one fail to come within the
    backstop, the invocation times out (and the stream ends) instead of the caller waiting on."""
    try:
        yield from stream.follow(invocation.timeout + queue.invoke_grace + STREAM_BACKSTOP)
    except TimeoutError:
        queue.time_out(invocation)


def _error_of(invocation: Invocation, outcome: Outcome) -> tuple[str | None, str | None]:
    """``InvokeComplete``'s ``ErrorCode`` and ``ErrorDetails`` for ``outcome``: the error's
    type and its report (the runtime's error JSON), or None and None after a success."""
    error_type = error_type_of(outcome)
    if error_type is None:
        return None, None
    stream = invocation.stream
    report = stream.error_body if outcome.kind == "response" and stream is not None else outcome.body
    return error_type, (report or b"").decode("utf-8", "replace")


def error_type_of(outcome: Outcome) -> str | None:
    """The type of the error ``outcome`` reports (as the runtime posted it, or the error
    body's ``errorType``), or None when it is a successful response."""
    if outcome.error_type:
        return outcome.error_type
    if outcome.kind == "response":
        return None
    try:
        body = outcome.json()
    except (ValueError, RecursionError):
        return errors.UNHANDLED
    error_type = body.get("errorType") if isinstance(body, dict) else None
    return error_type if isinstance(error_type, str) and error_type else errors.UNHANDLED


def _json_problem(payload: bytes) -> str | None:
    """Why ``payload`` is not JSON, or None when it is (an empty payload counts as ``{}``)."""
    if not payload.strip():
        return None
    try:
        json.loads(payload)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None
