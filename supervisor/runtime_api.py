"""The Lambda Runtime API: its calls, their retries, and what each answer means.

Every call here either succeeds, is retried with backoff when the failure is transient
(a dropped connection, a 502-504), or says plainly what happened, so the loop above can
honour the rule that every event fetched gets exactly one answer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from enum import Enum
from typing import Any

from supervisor.runtime_connection import TRANSPORT_ERRORS, Answer, RuntimeConnection

API_VERSION = "/2018-06-01"
EXTENSION_API = "/2020-01-01/extension"
EXTENSION_NAME = "lambda-supervisor"
# What a request id or invocation id must look like to go into a URL or header as it is.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,256}")
_HEADER_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,256}")
_UNSAFE_HEADER_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_XRAY_CAUSE = (1 << 20) - 1
_RETRYABLE_STATUSES = frozenset((429, 502, 503, 504))
_POST_ATTEMPTS_ON_SERVER_ERROR = 3


class LongPollAborted(Exception):
    """The idle wait on /next was ended on purpose (the runtime is shutting down)."""


class RuntimeAPIError(Exception):
    """The Runtime API said the environment is broken, or could not be reached for long.

    The contract's answer to this is to exit: Lambda then replaces the whole environment.
    """


class PostOutcome(Enum):
    ACCEPTED = "accepted"
    TOO_LARGE = "too_large"  # 413: the runtime should report the size as an error
    EXPIRED = "expired"  # 410: the invocation already timed out on Lambda's side
    REJECTED = "rejected"  # 400/403/404: unknown id or already answered
    FAILED = "failed"  # server errors or transport failures that outlived the retries


class Invocation:
    """One event as the Runtime API handed it out.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect`` (and with it
    ``ast`` and ``dis``), about 2 MB of the supervisor's resident memory for one class.
    """

    __slots__ = (
        "request_id",
        "deadline_ms",
        "body",
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
        body: bytes | bytearray,
        content_type: str | None = None,
        invoked_function_arn: str | None = None,
        trace_id: str | None = None,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        tenant_id: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.body = body
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
        return f"Invocation({self.request_id!r}, deadline_ms={self.deadline_ms}, {len(self.body)} bytes)"

    def worker_meta(self) -> dict[str, Any]:
        """What the worker needs to build the event and the context object.

        ``reply_token`` is echoed on the worker's reply and never shown to the handler, so a
        stray frame written by handler code can never pass for this event's answer.
        """
        return {
            "reply_token": self.reply_token,
            "request_id": self.request_id,
            "deadline_ms": self.deadline_ms,
            "content_type": self.content_type,
            "invoked_function_arn": self.invoked_function_arn,
            "trace_id": self.trace_id,
            "client_context": self.client_context,
            "cognito_identity": self.cognito_identity,
            "tenant_id": self.tenant_id,
        }

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


def path_segment(request_id: str) -> str:
    """Percent-encode an id for a URL path unless it is a plain token.

    Ids come from the network; ``a/../b`` or ``x\\r\\nHost: y`` spliced raw into a path would
    address another resource or another request entirely.
    """
    if _PLAIN_TOKEN.fullmatch(request_id):
        return request_id
    return "".join(
        chr(byte) if (chr(byte).isalnum() and byte < 128) or byte in b"_-" else f"%{byte:02X}"
        for byte in request_id.encode("utf-8", "surrogatepass")
    )


def _utf8_header(value: str | None) -> str | None:
    """Header values arrive decoded as latin-1 (http.client's rule); the Runtime API sends
    UTF-8, so an id like 'ünï' must be re-read as such to be posted back under its own name."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def header_token(value: str) -> str:
    """Make an errorType safe for an HTTP header (class names may be any identifier)."""
    return _UNSAFE_HEADER_CHARS.sub("", value)[:128] or "Runtime.Unknown"


class Backoff:
    """Sleeps between attempts: 10 ms doubling to 1 s, for ``window`` seconds after the first
    failure. Counting from the first failure, not from the call, matters for /next: a
    long-poll that drops after an hour deserves its retries too."""

    def __init__(self, window: float, client: RuntimeAPIClient | None = None) -> None:
        self.window = window
        self.client = client
        self.delay = 0.01
        self.give_up_at: float | None = None

    def wait(self) -> bool:
        """Sleep before the next attempt; False when it is time to give up.

        A runtime that is shutting down gives up at once: Lambda allows it well under a
        second after SIGTERM, not the whole retry window.
        """
        if self.client is not None and self.client.stopping:
            return False
        now = time.monotonic()
        if self.give_up_at is None:
            self.give_up_at = now + self.window
        if now + self.delay > self.give_up_at:
            return False
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 1.0)
        return True


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
    def __init__(self, address: str, *, retry_window: float = 30.0, log: Any = None) -> None:
        host, port = parse_address(address)
        # One connection, reused for every call: /next long-polls, so there is never more
        # than one request in flight.
        self.connection = RuntimeConnection(host, port, connect_timeout=2.0)
        self.retry_window = retry_window
        self.log = log
        # Set when the runtime is shutting down: no more retrying, and a failed /next ends.
        self.stopping = False
        self._extension_socket: socket.socket | None = None

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

    def next_invocation(self) -> Invocation:
        """Long-poll for the next event; retried until it arrives or the API is gone."""
        backoff = Backoff(self.retry_window, self)
        while True:
            try:
                response = self.connection.request(
                    "GET", API_VERSION + "/runtime/invocation/next", abortable=True
                )
            except TRANSPORT_ERRORS as exc:
                if self.stopping:
                    raise LongPollAborted() from None
                self._warn("runtime API unreachable on /next, retrying", error=repr(exc))
                if not backoff.wait():
                    raise RuntimeAPIError(f"runtime API unreachable for {self.retry_window:.0f}s") from None
                continue
            if response.status == 200:
                invocation = self._parse_invocation(response)
                if invocation is not None:
                    return invocation
                continue
            if response.status in _RETRYABLE_STATUSES and backoff.wait():
                self._warn("runtime API busy on /next, retried", status=response.status)
                continue
            raise RuntimeAPIError(
                f"GET /next answered {response.status}: {response.data[:512]!r}; the environment is broken"
            )

    def post_response(self, invocation: Invocation, body: bytes, content_type: str) -> PostOutcome:
        headers = {"Content-Type": content_type}
        self._echo_invocation_id(invocation, headers)
        return self._post(
            f"/runtime/invocation/{path_segment(invocation.request_id)}/response", body, headers
        )

    def post_error(
        self,
        invocation: Invocation,
        body: bytes,
        error_type: str,
        xray_cause: dict[str, Any] | None = None,
    ) -> PostOutcome:
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Function-Error-Type": header_token(error_type),
        }
        self._echo_invocation_id(invocation, headers)
        self._add_xray_cause(headers, xray_cause)
        return self._post(f"/runtime/invocation/{path_segment(invocation.request_id)}/error", body, headers)

    def post_init_error(self, body: bytes, error_type: str) -> PostOutcome:
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Function-Error-Type": header_token(error_type),
        }
        return self._post("/runtime/init/error", body, headers)

    # -- plumbing ---------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> PostOutcome:
        backoff = Backoff(self.retry_window, self)
        server_errors = 0
        retried = False
        while True:
            try:
                response = self.connection.request("POST", API_VERSION + path, body=body, headers=headers)
            except TRANSPORT_ERRORS as exc:
                self._warn("runtime API post failed, retrying", path=path, error=repr(exc))
                retried = True
                if backoff.wait():
                    continue
                self._error("runtime API unreachable, post given up", path=path)
                return PostOutcome.FAILED
            status = response.status
            if 200 <= status < 300:
                return PostOutcome.ACCEPTED
            if status == 413:
                return PostOutcome.TOO_LARGE
            if status == 410:
                self._warn("invocation already timed out on the Runtime API side", path=path)
                return PostOutcome.EXPIRED
            if status in (400, 403, 404):
                if retried:
                    # An earlier attempt most likely landed before its connection dropped.
                    self._warn("post refused after a retry; the first attempt was taken", path=path)
                    return PostOutcome.ACCEPTED
                self._error(
                    "runtime API refused the post", path=path, status=status, body=response.data[:512]
                )
                return PostOutcome.REJECTED
            server_errors += 1
            if status >= 500 and server_errors < _POST_ATTEMPTS_ON_SERVER_ERROR and backoff.wait():
                self._warn("runtime API server error on post, retried", path=path, status=status)
                retried = True
                continue
            self._error("runtime API post failed", path=path, status=status, body=response.data[:512])
            return PostOutcome.FAILED

    def _parse_invocation(self, response: Answer) -> Invocation | None:
        def header(name: str) -> str | None:
            return _utf8_header(response.headers.get(name))

        request_id = header("Lambda-Runtime-Aws-Request-Id")
        if not request_id:
            self._error("event without Lambda-Runtime-Aws-Request-Id cannot be answered; skipped")
            return None
        try:
            deadline_ms = int(header("Lambda-Runtime-Deadline-Ms") or "")
        except ValueError:
            deadline_ms = int(time.time() * 1000) + 900_000  # Lambda's longest timeout
            self._warn("event without a usable deadline; using 900 s", requestId=request_id)
        return Invocation(
            request_id=request_id,
            deadline_ms=deadline_ms,
            body=response.data,
            content_type=header("Content-Type"),
            invoked_function_arn=header("Lambda-Runtime-Invoked-Function-Arn"),
            trace_id=header("Lambda-Runtime-Trace-Id"),
            client_context=header("Lambda-Runtime-Client-Context"),
            cognito_identity=header("Lambda-Runtime-Cognito-Identity"),
            tenant_id=header("Lambda-Runtime-Aws-Tenant-Id"),
            invocation_id=header("Lambda-Runtime-Invocation-Id"),
        )

    def _echo_invocation_id(self, invocation: Invocation, headers: dict[str, str]) -> None:
        if invocation.invocation_id is None:
            return
        if _HEADER_TOKEN.fullmatch(invocation.invocation_id):
            headers["Lambda-Runtime-Invocation-Id"] = invocation.invocation_id
        else:
            self._warn("invocation id is not a plain token; not echoed", requestId=invocation.request_id)

    def _add_xray_cause(self, headers: dict[str, str], cause: dict[str, Any] | None) -> None:
        if cause is None:
            return
        encoded = json.dumps(cause, ensure_ascii=True, default=str, separators=(",", ":"))
        if len(encoded) <= _MAX_XRAY_CAUSE:
            headers["Lambda-Runtime-Function-XRay-Error-Cause"] = encoded

    def _warn(self, message: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.warning(message, **fields)

    def _error(self, message: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.error(message, **fields)
