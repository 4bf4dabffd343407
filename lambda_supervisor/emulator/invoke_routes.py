"""``POST /2015-03-31/functions/{name}/invocations``, answered like the Invoke API.

Callers (curl, boto3, the AWS CLI) should not be able to tell this from Lambda's own
endpoint: the same checks of the payload and headers before anything runs, the same
status codes and ``X-Amzn-Errortype`` names, the function error flagged in
``X-Amz-Function-Error`` and the log tail in ``X-Amz-Log-Result``. The caller's event
goes into the same queue the Runtime API serves, and the caller's request waits for the
runtime's answer, as AWS's own emulator does; concurrent callers simply queue, unless
the emulator is told to refuse a call no idle runtime is waiting for (``refuse_when_busy``),
as Lambda Managed Instances do.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from lambda_supervisor.runtime_modules import errors

from .bodies import PayloadTooLarge
from .bounds import QueueFull, RuntimeUnavailable
from .records import Invocation, Outcome
from .wire import UnsendableHeader

if TYPE_CHECKING:
    from .routing import Handler

# What a synchronous call that finds every runtime busy is refused with (``refuse_when_busy``).
UNAVAILABLE = "Runtime.Unavailable"
# What ``X-Amz-Log-Type: Tail`` returns of an invocation's logs, as the Invoke API does.
LOG_TAIL_BYTES = 4096


class InvokeRoutes:
    """One Invoke API request on ``handler``'s connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.emulator = handler.emulator

    def handle(self, function_name: str) -> None:
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
            return
        problem = _json_problem(event)
        if problem is not None:
            # The real Invoke API refuses a payload that is not JSON before running anything.
            self.answer_error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {problem}"
            )
            return
        try:
            client_context = self._client_context()
        except ValueError:
            self.answer_error(
                400,
                "InvalidRequestContentException",
                "Client context must be a valid Base64-encoded JSON object.",
            )
            return
        invocation_type = handler.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            handler.respond(204, b"")
            return
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
            return
        except QueueFull as full:
            self.answer_error(429, "TooManyRequestsException", str(full))
            return
        except RuntimeUnavailable as busy:
            self.answer_error(400, UNAVAILABLE, str(busy))
            return
        if invocation_type == "Event":
            handler.respond(202, b"", headers={"X-Amzn-Requestid": invocation.request_id})
            return
        outcome = self.emulator.await_outcome(invocation)
        if outcome is None:
            handler.drop()
            return
        self._answer(invocation, outcome)

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

    def _answer(self, invocation: Invocation, outcome: Outcome) -> None:
        headers = {"X-Amzn-Requestid": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if outcome.kind != "response" or outcome.trailers.get("Lambda-Runtime-Function-Error-Type"):
            headers["X-Amz-Function-Error"] = errors.UNHANDLED
        body = outcome.body
        if outcome.kind == "response" and outcome.trailers.get("Lambda-Runtime-Function-Error-Body"):
            body = base64.b64decode(outcome.trailers["Lambda-Runtime-Function-Error-Body"])
        if (self.handler.headers.get("X-Amz-Log-Type") or "").lower() == "tail":
            headers["X-Amz-Log-Result"] = self._log_tail(invocation)
        content_type = outcome.headers.get("Content-Type") or "application/json"
        self.handler.respond(200, body, content_type, headers)

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
