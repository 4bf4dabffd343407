"""The Lambda Runtime API: its calls, their retries, and what each answer means.

Every call here either succeeds, is retried under one policy (``Retry``) when the failure
is transient (a dropped or timed-out connection, a 429 or a 5xx), or says plainly what
happened, so the loop above can honour the rule that every event fetched gets exactly one
answer. Nothing the API sends is trusted to be well formed: a hostile or broken API can
cost an event its answer, never the supervisor.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import time
from enum import Enum
from typing import Any

from supervisor.logs import Logger
from supervisor.runtime_connection import (
    TRANSPORT_ERRORS,
    Headers,
    IncompleteAnswer,
    RuntimeConnection,
    StreamingRequest,
)
from worker import errors
from worker.reports import XRayCause, encode_xray_cause

API_VERSION = "/2018-06-01"
EXTENSION_API = "/2020-01-01/extension"
EXTENSION_NAME = "lambda-supervisor"
NEXT_PATH = API_VERSION + "/runtime/invocation/next"
RESTORE_NEXT_PATH = API_VERSION + "/runtime/restore/next"
# What a request id or invocation id must look like to go into a URL or header as it is.
_PLAIN_TOKEN = re.compile(rb"[A-Za-z0-9_\-]{1,256}")
_HEADER_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,256}")
_UNSAFE_HEADER_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
# Answers that mean "try again": too many requests, and the server errors of an API that
# is restarting or of a proxy in front of it. On /next a 500 is the exception (see there).
_TRANSIENT_STATUSES = frozenset((429, 500, 502, 503, 504))
# How long one exchange other than the long poll may take, sending included. The Runtime
# API answers a post as soon as it has it; this is far past any healthy answer, even for
# a 6 MB body on a loaded host, and short of the retry window, so a post the API reads and
# never answers is tried again.
ANSWER_TIMEOUT = 10.0
# What an exchange under way gets once the runtime is shutting down: Lambda allows the
# whole shutdown well under a second or two after SIGTERM.
STOP_GRACE = 0.5
# Lambda's longest timeout: the deadline of an event whose own deadline is unusable.
_LONGEST_TIMEOUT_MS = 900_000
# A deadline is epoch milliseconds (13 digits for centuries yet); one more than a year
# from now either way is not a deadline but a broken header (or one in another unit).
_DEADLINE_DIGITS = re.compile(r"[0-9]{1,16}")
_DEADLINE_SPAN_MS = 366 * 86_400_000
# Carries the X-Ray cause, bounded to errors.XRAY_CAUSE_BYTES (worker/reports.py).
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
# A streamed response's error, once the stream has begun, goes in its trailers.
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
_STREAM_HEADERS = {
    "Lambda-Runtime-Function-Response-Mode": "streaming",
    "Trailer": f"{ERROR_TYPE_HEADER}, {ERROR_BODY_TRAILER}",
}


class LongPollAborted(Exception):
    """The idle wait on /next was ended on purpose (the runtime is shutting down)."""


class RuntimeAPIError(Exception):
    """The Runtime API said the environment is broken, or could not be reached for long.

    The contract's answer to this is to exit: Lambda then replaces the whole environment.
    """


class Unanswerable(Exception):
    """A /next answer that hands out no event the runtime could answer (no request id, or
    two): ``fields`` say what it carried, for the record."""

    def __init__(self, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.fields = fields


class PostOutcome(Enum):
    ACCEPTED = "accepted"
    TOO_LARGE = "too_large"  # 413: the runtime should report the size as an error
    EXPIRED = "expired"  # 410: the invocation already timed out on Lambda's side
    REJECTED = "rejected"  # 400/403/404: unknown id or already answered
    FAILED = "failed"  # server errors or transport failures that outlived the retries


class Event:
    """One event as the Runtime API handed it out.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect`` (and with it
    ``ast`` and ``dis``), about 2 MB of the supervisor's resident memory for one class.
    """

    __slots__ = (
        "request_id",
        "request_id_bytes",
        "deadline_ms",
        "payload",
        "content_type",
        "invoked_function_arn",
        "trace_id",
        "client_context",
        "cognito_identity",
        "tenant_id",
        "invocation_id",
        "received_at",
        "received_at_epoch_ms",
        "reply_token",
    )

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        payload: bytes | bytearray,
        content_type: str | None = None,
        invoked_function_arn: str | None = None,
        trace_id: str | None = None,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        tenant_id: str | None = None,
        invocation_id: str | None = None,
        request_id_bytes: bytes | None = None,
    ) -> None:
        # ``request_id`` is the id as text (for the handler, logs and error bodies); the
        # answer is posted under ``request_id_bytes``, exactly the bytes the API sent.
        self.request_id = request_id
        self.request_id_bytes = request_id.encode("utf-8") if request_id_bytes is None else request_id_bytes
        self.deadline_ms = deadline_ms
        self.payload = payload
        self.content_type = content_type
        self.invoked_function_arn = invoked_function_arn
        self.trace_id = trace_id
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.tenant_id = tenant_id
        self.invocation_id = invocation_id
        self.received_at = time.monotonic()
        self.received_at_epoch_ms = int(time.time() * 1000)
        self.reply_token = os.urandom(8).hex()

    def __repr__(self) -> str:
        return f"Event({self.request_id!r}, deadline_ms={self.deadline_ms}, {len(self.payload)} bytes)"

    @property
    def timeout_seconds(self) -> float:
        """The function's timeout, as Lambda states it in its timeout message.

        Measured from when the event reached us to the deadline, which comes out a little
        short of the configured value. Lambda timeouts are whole seconds, so a measurement
        within a quarter second of one is that one.
        """
        measured = max(0.0, (self.deadline_ms - self.received_at_epoch_ms) / 1000)
        whole = round(measured)
        return float(whole) if whole and abs(measured - whole) < 0.25 else measured


def path_segment(request_id: str | bytes) -> str:
    """Percent-encode an id (its bytes, or its text as UTF-8) for a URL path unless it is a
    plain token.

    Ids come from the network; ``a/../b`` or ``x\\r\\nHost: y`` spliced raw into a path would
    address another resource or another request entirely.
    """
    raw = request_id if isinstance(request_id, bytes) else request_id.encode("utf-8", "surrogatepass")
    if _PLAIN_TOKEN.fullmatch(raw):
        return raw.decode("ascii")
    return "".join(
        chr(byte) if (chr(byte).isalnum() and byte < 128) or byte in b"_-" else f"%{byte:02X}" for byte in raw
    )


def _deadline_ms(value: str | None, now_ms: int) -> int | None:
    """The deadline header as epoch milliseconds, or None when it is not a sane one.

    ``int()`` alone would take a sign, spaces, underscores, other scripts' digits and
    any number of them: 400 nines overflow the float arithmetic on the deadline.
    """
    if value is None or not _DEADLINE_DIGITS.fullmatch(value):
        return None
    deadline = int(value)
    return deadline if abs(deadline - now_ms) <= _DEADLINE_SPAN_MS else None


def _utf8_header(value: str | None) -> str | None:
    """Header values arrive decoded as latin-1 (http.client's rule); the Runtime API sends
    UTF-8, so an id like 'ünï' must be re-read as such to be posted back under its own name."""
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def header_token(value: str) -> str:
    """Make an errorType safe for an HTTP header (class names may be any identifier)."""
    return _UNSAFE_HEADER_CHARS.sub("", value)[: errors.ERROR_TYPE_HEADER_CHARS] or errors.UNKNOWN


class Retry:
    """The one retry policy of every exchange with the Runtime API (/next and every post).

    A failed attempt is tried again after a pause of 10 ms doubling to 1 s, for the
    client's retry window counted from the first failure of the episode, not from the call:
    a long poll that drops after an hour deserves its retries too. A runtime that is
    shutting down gives up at once: Lambda allows it well under a second after SIGTERM.

    An episode is logged by kind of failure, not by attempt (an API failing fast would
    otherwise write a record every few milliseconds): each kind once, with the details of
    its first occurrence, and a recovery once.
    """

    def __init__(self, client: RuntimeAPIClient, exchange: str) -> None:
        self.client = client
        self.exchange = exchange
        self.delay = 0.01
        self.failures = 0
        self.first_failure_at = 0.0
        self.last_failure = ""
        self._logged: set[str] = set()

    def again(self, failure: str, *, level: str = "warning", **fields: Any) -> bool:
        """Note a failed attempt (``failure`` is logged the first time it occurs in this
        episode); sleep and return True when another attempt is due, else False."""
        now = time.monotonic()
        if not self.failures:
            self.first_failure_at = now
        self.failures += 1
        self.last_failure = failure
        if failure not in self._logged:
            self._logged.add(failure)
            self.client._log(level, failure, exchange=self.exchange, **fields)
        if now + self.delay > self.first_failure_at + self.client.retry_window:
            return False
        wake_at = now + self.delay
        while not self.client.stopping and (remaining := wake_at - time.monotonic()) > 0:
            time.sleep(min(remaining, 0.05))  # a SIGTERM during the pause ends it soon
        self.delay = min(self.delay * 2, 1.0)
        return not self.client.stopping

    def succeeded(self) -> None:
        if self.failures:
            self.client._log("info", "runtime API answered again", **self.summary())

    def summary(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "failed_attempts": self.failures,
            "seconds": round(time.monotonic() - self.first_failure_at, 3),
            "last_failure": self.last_failure,
        }

    def gave_up(self) -> RuntimeAPIError:
        return RuntimeAPIError(
            f"{self.exchange}: {self.last_failure} ({self.failures} attempts"
            f" in {time.monotonic() - self.first_failure_at:.1f}s)"
        )


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) from ``AWS_LAMBDA_RUNTIME_API``; port 80 if absent."""
    host, colon, port = address.rpartition(":")
    if not colon or "]" in port:
        host, port = address, ""
    host = host.strip("[]")
    if not host or not (port == "" or (port.isdigit() and port.isascii() and 0 < int(port) < 65536)):
        raise RuntimeAPIError(f"AWS_LAMBDA_RUNTIME_API={address!r} is not host:port")
    return host, int(port) if port else 80


class RuntimeAPIClient:
    """The runtime's side of the Lambda Runtime API: the long poll for the next event, the
    posts of its answer (``/response``, ``/error``) and of an init error, SnapStart's
    ``/restore/next`` and ``/restore/error``, and the extension registration that makes
    Lambda send SIGTERM.

    One keep-alive connection carries one exchange at a time, each retried under ``Retry``.
    Nothing received is trusted: an answer that hands out no event the runtime can answer
    is skipped, and a post reports how it ended (``PostOutcome``) instead of raising. Only
    an environment the contract calls broken raises (``RuntimeAPIError``). ``stop`` and
    ``abort_long_poll`` are safe to call from a signal handler.
    """

    def __init__(self, address: str, *, retry_window: float = 30.0, log: Logger | None = None) -> None:
        host, port = parse_address(address)
        # One connection, reused for every call: /next long-polls, so there is never more
        # than one request in flight.
        self.connection = RuntimeConnection(host, port, connect_timeout=2.0)
        self.retry_window = retry_window
        self.log = log
        # Set when the runtime is shutting down: no more retrying, and a failed /next ends.
        self.stopping = False
        self._extension_socket: socket.socket | None = None

    def stop(self) -> None:
        """The runtime is shutting down (called from the signal handler): retries end, and
        the exchange under way, or any later one, gets at most ``STOP_GRACE`` to finish.
        The long poll is left to ``abort_long_poll``."""
        self.stopping = True
        self.connection.cut_short(STOP_GRACE)

    def abort_long_poll(self) -> None:
        """End the blocking /next (or the one about to start) from a signal handler.

        It then fails with a transport error, which ``next_invocation`` turns into
        ``LongPollAborted`` in the main flow. An answer the API sent before it saw the
        runtime go is still read (``RuntimeConnection.abort``), and that event is served
        before the runtime stops. Lambda only sends SIGTERM when no event is being handed
        out; a local emulator can hand one out at any moment.
        """
        self.stopping = True
        self.connection.abort()

    def close(self) -> None:
        self.connection.close()
        if self._extension_socket is not None:
            self._extension_socket.close()

    def register_extension(self) -> bool:
        """Register a no-op internal extension, so that Lambda sends SIGTERM before shutdown.

        Lambda only signals the runtime when an extension is registered. An extension must
        also ask for its next event before init can complete; this one subscribes to no
        events, so the request is sent on a connection of its own and never read.
        """
        try:
            response = self.connection.request(
                "POST",
                EXTENSION_API + "/register",
                body=b'{"events":[]}',
                headers={"Lambda-Extension-Name": EXTENSION_NAME, "Content-Type": "application/json"},
                timeout=ANSWER_TIMEOUT,
            )
        except TRANSPORT_ERRORS as exc:
            self._error("extension registration failed", error=repr(exc))
            return False
        extension_id = response.headers.get("Lambda-Extension-Identifier")
        if response.status != 200 or not extension_id or not _HEADER_TOKEN.fullmatch(extension_id):
            self._error("extension registration refused", status=response.status)
            return False
        try:
            self._extension_socket = self.connection.send_unanswered(
                "GET", EXTENSION_API + "/event/next", {"Lambda-Extension-Identifier": extension_id}
            )
        except OSError as exc:
            self._error("extension event request failed", error=repr(exc))
            return False
        return True

    # -- calls ------------------------------------------------------------------------------

    def next_invocation(self) -> Event:
        """Long-poll for the next event; retried until it arrives or the API is gone.

        Answers that hand out no event the runtime can answer (no request id, or two) are
        failures like any other: retried with backoff, for the retry window at most.
        """
        retry = Retry(self, "GET /next")
        while True:
            try:
                response = self.connection.request("GET", NEXT_PATH, abortable=True)
            except IncompleteAnswer as exc:
                # The event was handed out and its id is known: it is answered, once.
                self._answer_incomplete(exc)
                if self.stopping:
                    raise LongPollAborted() from None
                if not retry.again("runtime API cut its answer short on /next, retrying", error=str(exc)):
                    raise retry.gave_up() from None
                continue
            except TRANSPORT_ERRORS as exc:
                if self.stopping:
                    raise LongPollAborted() from None
                if not retry.again("runtime API unreachable on /next, retrying", error=repr(exc)):
                    raise retry.gave_up() from None
                continue
            status = response.status
            if status == 200:
                try:
                    event = self._parse_event(response.headers, response.data)
                except Unanswerable as skipped:
                    if retry.again(str(skipped), level="error", **skipped.fields):
                        continue
                    raise retry.gave_up() from None
                retry.succeeded()
                return event
            # The contract makes a 500 on /next a container error: non-recoverable, exit.
            if status in _TRANSIENT_STATUSES and status != 500:
                if retry.again("runtime API busy on /next, retrying", status=status):
                    continue
                raise retry.gave_up()
            raise RuntimeAPIError(
                f"GET /next answered {status}: {response.data[:512]!r}; the environment is broken"
            )

    def post_response(self, event: Event, payload: bytes | bytearray, content_type: str) -> PostOutcome:
        headers = {"Content-Type": content_type}
        self._echo_invocation_id(event, headers)
        return self._post(
            f"/runtime/invocation/{path_segment(event.request_id_bytes)}/response", payload, headers
        )

    def stream_response(self, event: Event, content_type: str, deadline: float) -> StreamedResponse:
        """Begin the streamed ``/response`` for ``event``; each chunk written to the result goes
        out as it is written, every write bounded by ``deadline`` (a monotonic instant)."""
        headers = {"Content-Type": content_type, **_STREAM_HEADERS}
        self._echo_invocation_id(event, headers)
        path = f"/runtime/invocation/{path_segment(event.request_id_bytes)}/response"
        request = self.connection.stream("POST", API_VERSION + path, headers, deadline=deadline)
        return StreamedResponse(self, request, path)

    def post_error(
        self,
        event: Event,
        error_body: bytes | bytearray,
        error_type: str,
        xray_cause: XRayCause | None = None,
    ) -> PostOutcome:
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Function-Error-Type": header_token(error_type),
        }
        self._echo_invocation_id(event, headers)
        if xray_cause is not None:
            headers[XRAY_CAUSE_HEADER] = encode_xray_cause(xray_cause)
        return self._post(
            f"/runtime/invocation/{path_segment(event.request_id_bytes)}/error", error_body, headers
        )

    def post_init_error(self, error_body: bytes | bytearray, error_type: str) -> PostOutcome:
        return self._post("/runtime/init/error", error_body, _error_headers(error_type))

    def restore_next(self) -> None:
        """SnapStart: say the runtime is ready for its snapshot, and wait while it is taken.

        Returns once the environment runs again, restored from the snapshot (an emulator
        answers at once). Like /next it has no read timeout, is retried under ``Retry`` and
        is ended by ``abort_long_poll`` (``LongPollAborted``); an answer the contract calls
        broken (a 500, a refusal) raises ``RuntimeAPIError``.
        """
        retry = Retry(self, "GET /restore/next")
        while True:
            try:
                response = self.connection.request("GET", RESTORE_NEXT_PATH, abortable=True)
            except TRANSPORT_ERRORS as exc:
                if self.stopping:
                    raise LongPollAborted() from None
                if not retry.again("runtime API unreachable on /restore/next, retrying", error=repr(exc)):
                    raise retry.gave_up() from None
                continue
            status = response.status
            if 200 <= status < 300:
                retry.succeeded()
                return
            if status in _TRANSIENT_STATUSES and status != 500:
                if retry.again("runtime API busy on /restore/next, retrying", status=status):
                    continue
                raise retry.gave_up()
            raise RuntimeAPIError(f"GET /restore/next answered {status}: {response.data[:512]!r}")

    def post_restore_error(self, error_body: bytes | bytearray, error_type: str) -> PostOutcome:
        """SnapStart: report that the environment failed to restore (an after-restore hook)."""
        return self._post("/runtime/restore/error", error_body, _error_headers(error_type))

    # -- plumbing ---------------------------------------------------------------------------

    def _post(self, path: str, body: bytes | bytearray, headers: dict[str, str]) -> PostOutcome:
        retry = Retry(self, "POST " + path)
        # Set once an attempt may have reached the API unanswered: a refusal after that
        # means the earlier attempt landed, and the event already has its one answer.
        may_have_landed = False
        while True:
            try:
                response = self.connection.request(
                    "POST", API_VERSION + path, body=body, headers=headers, timeout=ANSWER_TIMEOUT
                )
            except TRANSPORT_ERRORS as exc:
                may_have_landed = True
                if retry.again("runtime API post failed, retrying", path=path, error=repr(exc)):
                    continue
                self._error("runtime API post given up", **retry.summary())
                return PostOutcome.FAILED
            status = response.status
            if 200 <= status < 300:
                retry.succeeded()
                return PostOutcome.ACCEPTED
            if status == 413:
                return PostOutcome.TOO_LARGE
            if status == 410:
                self._warn("invocation already timed out on the Runtime API side", path=path)
                return PostOutcome.EXPIRED
            if status in (400, 431) and XRAY_CAUSE_HEADER in headers:
                # Refused for its headers, most likely the X-Ray cause (the one long one) by a
                # strict server or proxy: the error itself must not be lost for it.
                self._warn(
                    "X-Ray error cause refused; posting the error without it", path=path, status=status
                )
                headers = {name: value for name, value in headers.items() if name != XRAY_CAUSE_HEADER}
                continue
            if status in (400, 403, 404):
                if may_have_landed:
                    self._warn("post refused after a retry; the first attempt was taken", path=path)
                    return PostOutcome.ACCEPTED
                self._error(
                    "runtime API refused the post", path=path, status=status, body=response.data[:512]
                )
                return PostOutcome.REJECTED
            if status in _TRANSIENT_STATUSES:
                may_have_landed = True  # a proxy's 5xx can hide an API that took the post
                if retry.again("runtime API post failed, retrying", path=path, status=status):
                    continue
                self._error("runtime API post given up", **retry.summary())
                return PostOutcome.FAILED
            self._error("runtime API post failed", path=path, status=status, body=response.data[:512])
            return PostOutcome.FAILED

    def _parse_event(self, headers: Headers, payload: bytes | bytearray) -> Event:
        """The event a /next answer hands out; ``Unanswerable`` if it names none."""
        get = headers.get_lowercase
        ids = set(headers.get_all("Lambda-Runtime-Aws-Request-Id"))
        if len(ids) > 1:
            # Two different ids: the answer would have to go under one of them, and it could
            # be another invocation's (which would then be answered wrongly, or twice), or
            # under their joined string, which names none. Skipped instead, the event is left
            # to the platform's timeout: one answer, from there, and no invocation gets a
            # wrong one. The same id repeated is still one id.
            raise Unanswerable(
                "event with more than one request id cannot be answered; skipped",
                requestIds=sorted(_id_text(raw.encode("latin-1")) for raw in ids),
            )
        raw_id = ids.pop().encode("latin-1") if ids else b""
        if not raw_id:
            raise Unanswerable("event without Lambda-Runtime-Aws-Request-Id cannot be answered; skipped")
        request_id = _id_text(raw_id)
        now_ms = int(time.time() * 1000)
        deadline_ms = _deadline_ms(get("lambda-runtime-deadline-ms"), now_ms)
        if deadline_ms is None:
            deadline_ms = now_ms + _LONGEST_TIMEOUT_MS
            self._warn("event without a usable deadline; using 900 s", requestId=request_id)
        return Event(
            request_id=request_id,
            request_id_bytes=raw_id,
            deadline_ms=deadline_ms,
            payload=payload,
            content_type=_utf8_header(get("content-type")),
            invoked_function_arn=_utf8_header(get("lambda-runtime-invoked-function-arn")),
            trace_id=_utf8_header(get("lambda-runtime-trace-id")),
            client_context=_utf8_header(get("lambda-runtime-client-context")),
            cognito_identity=_utf8_header(get("lambda-runtime-cognito-identity")),
            tenant_id=_utf8_header(get("lambda-runtime-aws-tenant-id")),
            invocation_id=_utf8_header(get("lambda-runtime-invocation-id")),
        )

    def _answer_incomplete(self, cut: IncompleteAnswer) -> None:
        """Answer with an error an event whose head arrived whole but whose body did not."""
        if cut.status != 200:
            return  # not an event: nothing was handed out
        try:
            event = self._parse_event(cut.headers, b"")
        except Unanswerable as skipped:
            self._error("event cut short cannot be answered; skipped", reason=str(skipped), **skipped.fields)
            return
        message = f"The Runtime API connection broke before the whole event arrived ({cut})"
        report = errors.report(message, errors.INCOMPLETE_EVENT, event.request_id)
        self._error("event cut short by the Runtime API; answered with an error", requestId=event.request_id)
        self.post_error(event, errors.encode(report), errors.INCOMPLETE_EVENT)

    def _echo_invocation_id(self, event: Event, headers: dict[str, str]) -> None:
        if event.invocation_id is None:
            return
        if _HEADER_TOKEN.fullmatch(event.invocation_id):
            headers["Lambda-Runtime-Invocation-Id"] = event.invocation_id
        else:
            self._warn("invocation id is not a plain token; not echoed", requestId=event.request_id)

    def _log(self, level: str, message: str, **fields: Any) -> None:
        if self.log is not None:
            getattr(self.log, level)(message, **fields)

    def _warn(self, message: str, **fields: Any) -> None:
        self._log("warning", message, **fields)

    def _error(self, message: str, **fields: Any) -> None:
        self._log("error", message, **fields)


def _error_headers(error_type: str) -> dict[str, str]:
    """The headers of an error post that concerns the environment, not an invocation."""
    return {
        "Content-Type": "application/json",
        "Lambda-Runtime-Function-Error-Type": header_token(error_type),
    }


class StreamedResponse:
    """A streamed ``/response`` under way (``RuntimeAPIClient.stream_response``).

    Unlike a buffered post it is never retried: chunks sent are gone. ``send`` reports a
    broken stream as False (``failure`` says how), and ``finish`` ends it, with an error in
    its trailers when one is given, and says how the post ended, as ``_post`` does.
    """

    def __init__(self, client: RuntimeAPIClient, request: StreamingRequest, path: str) -> None:
        self.client = client
        self.request = request
        self.path = path
        self.sent = 0
        self.failure: str | None = None

    def send(self, data: bytes | bytearray | memoryview) -> bool:
        try:
            self.request.send(data)
        except TRANSPORT_ERRORS as exc:
            self.failure = repr(exc)
            return False
        self.sent += len(data)
        return True

    def finish(self, error_type: str | None = None, error_body: bytes | bytearray = b"") -> PostOutcome:
        """End the stream, and with it the invocation's answer; ``error_type`` and
        ``error_body`` (the four-key report) become its error trailers."""
        trailers = {}
        if error_type is not None:
            trailers = {
                ERROR_TYPE_HEADER: header_token(error_type),
                ERROR_BODY_TRAILER: base64.b64encode(error_body).decode("ascii"),
            }
        try:
            answer = self.request.finish(trailers, ANSWER_TIMEOUT)
        except TRANSPORT_ERRORS as exc:
            self.failure = repr(exc)
            self.client._error("runtime API stream failed", path=self.path, error=self.failure)
            return PostOutcome.FAILED
        status = answer.status
        if 200 <= status < 300:
            return PostOutcome.ACCEPTED
        self.client._error(
            "runtime API refused the stream", path=self.path, status=status, body=answer.data[:512]
        )
        if status == 413:
            return PostOutcome.TOO_LARGE
        if status == 410:
            return PostOutcome.EXPIRED
        return PostOutcome.REJECTED if status in (400, 403, 404) else PostOutcome.FAILED

    def abandon(self) -> None:
        """Give up on the stream (its connection is closed): it is logged, once."""
        self.request.abandon()
        self.client._error(
            "runtime API stream broken off", path=self.path, error=self.failure, sent_bytes=self.sent
        )


def _id_text(raw: bytes) -> str:
    """A request id as text: its UTF-8, any byte that is not UTF-8 as a \\xNN escape."""
    return raw.decode("utf-8", "backslashreplace")


def report_config_error(address: str, message: str, log: Logger | None = None) -> None:
    """Post a configuration the runtime refuses to /init/error, so that Lambda reports it
    as the failed init it is (the runtime then exits). With no usable address, only the
    line on stderr tells of it."""
    try:
        client = RuntimeAPIClient(address, log=log)
    except RuntimeAPIError:
        return
    report = errors.report(message, errors.INVALID_CONFIGURATION)
    client.post_init_error(errors.encode(report), errors.INVALID_CONFIGURATION)
    client.close()
