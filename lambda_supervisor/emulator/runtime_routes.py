"""The Runtime API's routes: ``/next``, ``/response``, ``/error``, ``/init/error``, SnapStart's
``/restore/next`` and ``/restore/error``, extensions.

These are what the runtime under test talks to, answered with the platform's status
codes and bodies: a long-polled ``/next`` that hands out one event, ``202`` for an
accepted answer, ``403``/``410`` for a second or late one, ``413`` past the payload
limit. The decisions are the queue's (``InvocationQueue``); this module reads the
requests and writes the answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from lambda_supervisor.runtime_modules import errors

from .bodies import BadRequest, PayloadTooLarge
from .invocations import REJECTIONS, error_trailers
from .records import Outcome, ResponseStream, now_ms
from .wire import UnsendableHeader, error_json

if TYPE_CHECKING:
    from .routing import Handler

# What a streamed response (``Lambda-Runtime-Function-Response-Mode: streaming``) may hold.
STREAMED_MAX_PAYLOAD = errors.MAX_STREAMED_PAYLOAD
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
# How the emulator ends a stream whose connection broke before its last chunk (RAPID's word).
TRUNCATED_RESPONSE = "Runtime.TruncatedResponse"


class RuntimeRoutes:
    """One Runtime API request on ``handler``'s connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.emulator = handler.emulator

    def next(self) -> None:
        """Hand out the next event; put it back when the runtime cannot receive it."""
        handler = self.handler
        while True:
            invocation = self.emulator.hand_out(handler.client_connected)
            if invocation is None:
                handler.drop()
                return
            try:
                handler.respond(
                    200,
                    invocation.body,
                    invocation.content_type,
                    invocation.next_headers(),
                    invocation.raw_header_lines,
                )
            except UnsendableHeader as exc:
                # Nothing was written: answer its caller, and this poll with the next event.
                self.emulator.fail_undeliverable(invocation, str(exc))
                continue
            except OSError as exc:
                self.emulator.put_back(invocation, exc)
                raise
            return

    def result(self, kind: str, request_id: str) -> None:
        """A ``/response`` or ``/error`` post: accepted as the answer, or refused."""
        handler = self.handler
        mode = handler.headers.get(RESPONSE_MODE_HEADER)
        if kind == "response" and mode is not None:
            if mode.strip().lower() != "streaming":
                handler.discard_body()
                message = f"{RESPONSE_MODE_HEADER} must be streaming, not {mode[:40]!r}."
                handler.respond_json(400, error_json("InvalidResponseMode", message))
                return
            self.stream(request_id)
            return
        limit = self.emulator.max_payload
        headers = dict(handler.headers.items())
        try:
            body, trailers = handler.read_body(limit)
        except PayloadTooLarge:
            self.emulator.reject_oversized(request_id, Outcome(kind, b"", headers, 413, request_id))
            message = f"Exceeded maximum allowed payload size ({limit} bytes)."
            handler.respond_json(413, error_json("RequestEntityTooLarge", message))
            return
        outcome = Outcome(kind, body, headers, 0, request_id, trailers)
        status, answer = self.emulator.accept_answer(request_id, outcome)
        handler.respond_json(status, answer)
        if status == 202:
            self.emulator.report_answered(request_id, outcome)

    def stream(self, request_id: str) -> None:
        """A streamed ``/response``: recorded chunk by chunk as it arrives (``ResponseStream``),
        so that a caller can have each chunk before the runtime sends the next.

        The stream becomes the answer when it begins. It ends with the runtime's trailers,
        or is cut as the platform cuts it: past ``max_streamed_payload`` (413, and a
        ``Function.ResponseSizeTooLarge`` error), past the deadline (``Sandbox.Timedout``,
        the connection closed), or when the connection breaks mid-body
        (``Runtime.TruncatedResponse``).
        """
        handler = self.handler
        emulator = self.emulator
        stream = ResponseStream(request_id, dict(handler.headers.items()))
        status, answer = emulator.open_stream(request_id, stream)
        if status != 202:
            handler.discard_body()
            handler.respond_json(status, answer)
            return
        invocation = emulator.invocation(request_id)
        deadline_ms = None if invocation is None else invocation.deadline_ms
        limit = emulator.max_streamed_payload

        def read_on() -> None:
            """Bound the next read by the deadline (and its grace), as the invoke side waits."""
            if deadline_ms is None:
                return
            remaining = (deadline_ms - now_ms()) / 1000 + emulator.invoke_grace
            if remaining <= 0:
                raise TimeoutError("the invocation's deadline passed mid-stream")
            handler.connection.settimeout(remaining)

        def on_chunk(data: bytes) -> None:
            stream.append(data)
            read_on()

        try:
            read_on()
            _, trailers = handler.read_body(limit, on_chunk)
        except PayloadTooLarge:
            report = errors.response_too_large(stream.size, limit, request_id)
            ended = emulator.close_stream(
                request_id, error_trailers(errors.RESPONSE_TOO_LARGE, errors.encode(report)), status=0
            )
            message = f"Exceeded maximum allowed payload size ({limit} bytes)."
            handler.respond_json(413, error_json("RequestEntityTooLarge", message))
            if ended is not None:
                emulator.report_answered(request_id, ended)
            return
        except TimeoutError:
            if invocation is not None:
                emulator.time_out(invocation)
            handler.drop()
            return
        except (OSError, BadRequest) as exc:
            message = f"The runtime's response stream broke off: {exc}"
            report = errors.report(message, TRUNCATED_RESPONSE, request_id)
            ended = emulator.close_stream(
                request_id, error_trailers(TRUNCATED_RESPONSE, errors.encode(report)), status=0
            )
            if ended is not None:
                emulator.report_answered(request_id, ended)
            raise
        finally:
            try:
                handler.connection.settimeout(None)
            except OSError:
                pass
        outcome = emulator.close_stream(request_id, trailers)
        if outcome is None:
            late = invocation is not None and invocation.deadline_passed()
            status = 410 if late else 403
            handler.respond_json(status, REJECTIONS[status])
            return
        handler.respond_json(202, {"status": "OK"})
        emulator.report_answered(request_id, outcome)

    def extension_register(self) -> None:
        """Record the registration and answer as Lambda does, with an extension id."""
        handler = self.handler
        headers = dict(handler.headers.items())
        try:
            body, _ = handler.read_body(self.emulator.max_payload)
        except PayloadTooLarge:
            handler.respond_json(413, error_json("RequestEntityTooLarge", "Registration body too large."))
            return
        if not (handler.headers.get("Lambda-Extension-Name") or "").strip():
            handler.respond_json(400, error_json("InvalidRequest", "Lambda-Extension-Name is required."))
            return
        self.emulator.record_extension(Outcome("extension_register", body, headers, 200))
        answer = {"functionName": self.emulator.function_name, "functionVersion": "$LATEST", "handler": ""}
        handler.respond_json(200, answer, headers={"Lambda-Extension-Identifier": str(uuid.uuid4())})

    def extension_next(self) -> None:
        """Long-poll that never yields an event (no lifecycle events are emulated) until stop."""
        self.emulator.wait_until_stopped(self.handler.client_connected)
        self.handler.drop()

    def init_error(self) -> None:
        self._environment_error("init_error", "Init", self.emulator.record_init_error)

    def restore_next(self) -> None:
        """SnapStart: the snapshot is taken while this waits; here it is taken at once."""
        self.handler.respond(200, b"", "text/plain")

    def restore_error(self) -> None:
        self._environment_error("restore_error", "Restore", self.emulator.record_restore_error)

    def _environment_error(self, kind: str, phase: str, record: Callable[[Outcome], None]) -> None:
        """An error post about the environment rather than an invocation: recorded, 202."""
        handler = self.handler
        headers = dict(handler.headers.items())
        try:
            body, trailers = handler.read_body(self.emulator.max_payload)
        except PayloadTooLarge:
            handler.respond_json(413, error_json("RequestEntityTooLarge", f"{phase} error body too large."))
            return
        record(Outcome(kind, body, headers, 202, None, trailers))
        handler.respond_json(202, {"status": "OK"})
