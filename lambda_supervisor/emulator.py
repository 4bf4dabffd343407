"""A real HTTP emulator of the Lambda Runtime API and of the Invoke API, on loopback.

Tests and local tooling need the runtime to talk to something that behaves like the
platform over a real socket: long-polled ``/next``, keep-alive connections, the exact
status codes for late, duplicate and oversized posts, and faults on demand. Mocking the
HTTP layer would hide exactly the bugs (connection reuse, chunked bodies, percent-encoded
ids) that matter most, so this module serves real HTTP/1.1 from a background thread.

The invoke side (``POST /2015-03-31/functions/{name}/invocations``) shares the same
queue: a caller's event waits until a runtime asks for it, and the caller's HTTP request
is answered with whatever the runtime posts back, as AWS's own emulator does.

Tests talk to both APIs on one address. A local server (``serve``) faces callers it does
not know, so with ``separate_runtime_api`` the Runtime API moves to a listener of its own
on loopback, which only the runtime's process may use: whoever can reach the Invoke API
must not be able to take a caller's event and answer in the function's name. Every
listener answers only requests addressed to it by a local name (no DNS rebinding, no
cross-origin browser requests), refuses malformed framing with a 400, and never writes a
header line a caller could split.
"""

from __future__ import annotations

import base64
import binascii
import collections
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote_to_bytes

from lambda_supervisor.runtime_modules import load

if TYPE_CHECKING:
    from worker import errors, procfs
else:
    errors = load("worker/errors.py")
    procfs = load("worker/procfs.py")

RUNTIME_PREFIX = "/2018-06-01"
EXTENSION_PREFIX = "/2020-01-01/extension"
DEFAULT_ACCOUNT = "012345678912"
DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_PAYLOAD = errors.MAX_SYNC_PAYLOAD
STREAMED_MAX_PAYLOAD = errors.MAX_STREAMED_PAYLOAD
# What ``X-Amz-Log-Type: Tail`` returns of an invocation's logs, as the Invoke API does.
LOG_TAIL_BYTES = 4096
# Bodies larger than this are not even drained: the connection is simply closed.
MAX_DRAIN_BYTES = 1024 * 1024 * 1024
_DRAIN_CHUNK = 64 * 1024
ROUTES = ("next", "response", "error", "init_error", "extension_register")
FAULT_ACTIONS = ("drop", "status", "delay")
# Every Runtime API route (ROUTES are those that take faults); "invoke" is the Invoke API's one.
RUNTIME_ROUTES = frozenset((*ROUTES, "extension_next"))
LOOPBACK = "127.0.0.1"
# An event whose hand-out fails this many times (the runtime never receives it) is
# answered with UNDELIVERABLE instead of being put back in line once more.
MAX_HAND_OUTS = 3
UNDELIVERABLE = errors.EVENT_NOT_DELIVERED
# After refusing a request, how long (and how much) its unread rest is read and dropped,
# so that closing the socket does not reset it before the peer has read the refusal.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 8 * 1024 * 1024
_MAX_TRAILER_LINES = 100
_MAX_LINE = 65536
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What would end a header line early: CR and LF, and NUL, where C parsers stop reading.
# Other control bytes are invalid in a field value but stay inside their line; tests send
# them on purpose, to check that the runtime copes.
_LINE_BREAKING = re.compile(r"[\r\n\x00]")

# What the Invoke API queues for ``InvocationType=Event`` before it answers 429: Lambda's
# own queue is durable storage, this one is memory in the serving process.
ASYNC_QUEUE_LENGTH = 100
ASYNC_QUEUE_BYTES = 32 * 1024 * 1024

_INVOCATION_POST = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
_INVOKE_PATH = re.compile(r"^(?:/2015-03-31)?/functions/([^/]+)/invocations$")


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
        self._done = threading.Event()

    def result(self, timeout: float) -> Outcome:
        """Wait for the first accepted post (response, error or synthetic failure)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no result for invocation {self.request_id!r} within {timeout}s")
        return self.accepted[0]

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def size(self) -> int:
        """Bytes this record holds on to: the event and every body posted about it."""
        return len(self.body) + sum(len(outcome.body) for outcome in self.accepted + self.rejected)

    def _deadline_passed(self) -> bool:
        return self.deadline_ms is not None and _now_ms() > self.deadline_ms

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


class QueueFull(Exception):
    """The async queue is at its bound; the Invoke API answers 429 TooManyRequestsException."""


class _Fault:
    def __init__(self, action: str, status: int, delay: float, count: int) -> None:
        self.action = action
        self.status = status
        self.delay = delay
        self.remaining = count


class UnsendableHeader(ValueError):
    """A header name or value that cannot go on the wire as one header line."""


class _BadRequest(Exception):
    """The request's framing is malformed or ambiguous: answered 400, then the connection closes."""


class _PayloadTooLarge(Exception):
    """The request body exceeded the limit; it has been drained (or the socket must close)."""

    def __init__(self, drained: bool) -> None:
        super().__init__("payload too large")
        self.drained = drained


def _now_ms() -> int:
    return int(time.time() * 1000)


def _header_line(name: str, value: str) -> bytes:
    """``name: value`` as one header line (UTF-8, CRLF), or ``UnsendableHeader``.

    Every header the emulator sends goes through here. Values come from callers (a trace
    id, a client context, a function name from the path), and one holding CR or LF would
    end the line early and let them write headers of their own into the runtime's
    ``/next`` answer. Non-ASCII text is sent as UTF-8, as the platform's Go server does.
    """
    if not _TOKEN.fullmatch(name):
        raise UnsendableHeader(f"{name!r} is not a header name")
    if _LINE_BREAKING.search(value):
        raise UnsendableHeader(f"the {name} value {value[:60]!r} holds a line break or NUL")
    return f"{name}: {value}\r\n".encode("utf-8", errors="surrogateescape")


def _encode_body(body: bytes | str | object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


class RuntimeAPIEmulator:
    """The Lambda Runtime API (and Invoke API) served on loopback from a background thread.

    By default both APIs share ``host:port`` (``address``), which is what tests want. With
    ``separate_runtime_api`` that address serves the Invoke API alone, and the Runtime API
    listens on 127.0.0.1 at a port of its own (``address``, the value for the runtime's
    ``AWS_LAMBDA_RUNTIME_API``; ``invoke_address`` is the callers'). When ``runtime_pids``
    is set, that listener lets in only connections made by those processes.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        function_timeout: float = 300.0,
        function_name: str = "function",
        memory_mb: int = 3008,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        region: str = DEFAULT_REGION,
        invoke_grace: float = 2.0,
        separate_runtime_api: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.separate_runtime_api = separate_runtime_api
        # The Runtime API listener's port when it is separate (0 until started).
        self.runtime_port = 0
        # The processes whose connections the separate Runtime API listener accepts (read
        # at each connection, so a restarted runtime is let in); None accepts any.
        self.runtime_pids: Callable[[], Iterable[int]] | None = None
        self.function_timeout = function_timeout
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.max_payload = max_payload
        self.region = region
        # How long past a deadline the invoke side keeps waiting for the runtime's own
        # timeout report before it answers the caller with a timeout itself.
        self.invoke_grace = invoke_grace
        self.listener: InvokeListener | None = None
        # None keeps every invocation and request record (tests inspect them all); numbers
        # keep only the newest finished invocations (that many, holding at most that many
        # bytes) and request records, so a long-running local server stays bounded.
        self.retain_finished: int | None = None
        self.retain_finished_bytes: int | None = None
        self.retain_requests: int | None = None
        # Bounds of the queue of ``InvocationType=Event`` calls not yet handed out.
        self.async_queue_length = ASYNC_QUEUE_LENGTH
        self.async_queue_bytes = ASYNC_QUEUE_BYTES
        self.requests: collections.deque[tuple[float, str, str, str | None]] = collections.deque()
        self.init_errors: list[Outcome] = []
        # ``POST /2020-01-01/extension/register`` calls (kind "extension_register").
        self.extension_registrations: list[Outcome] = []
        self.first_poll_at: float | None = None
        self._lock = threading.Condition()
        self._queue: collections.deque[Invocation] = collections.deque()
        self._invocations: dict[str, Invocation] = {}
        self._faults: dict[str, list[_Fault]] = {route: [] for route in ROUTES}
        self._pollers = 0
        self._stopping = False
        self._connections: set[socket.socket] = set()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> RuntimeAPIEmulator:
        """Bind the sockets (raises ``OSError`` when a port is taken) and serve in threads."""
        handler = type("BoundHandler", (_Handler,), {"emulator": self})
        servers: list[_Server] = []
        try:
            if self.separate_runtime_api:
                runtime = _Server(
                    (LOOPBACK, self.runtime_port),
                    handler,
                    RUNTIME_ROUTES,
                    private_to=self._runtime_peer_allowed,
                )
                servers.append(runtime)
                self.runtime_port = runtime.server_address[1]
                servers.append(_Server((self.host, self.port), handler, frozenset(("invoke",))))
            else:
                servers.append(_Server((self.host, self.port), handler, RUNTIME_ROUTES | {"invoke"}))
        except OSError:
            for server in servers:
                server.server_close()
            raise
        self.port = servers[-1].server_address[1]
        self._servers = servers
        self._threads = []
        for server in servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"runtime-api-emulator:{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, release long-polls and close every open connection."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._lock.notify_all()
            connections = list(self._connections)
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)

    def restart(self, downtime: float = 0.0) -> None:
        """Stop serving, stay down ``downtime`` seconds, then serve again on the same port.

        Every connection is cut, as when the platform's API process restarts, but the
        records, the queue and the open invocations survive: a runtime that retries its
        calls finds them again.
        """
        self.stop()
        if downtime > 0:
            time.sleep(downtime)
        with self._lock:
            self._stopping = False
        self.start()

    def __enter__(self) -> RuntimeAPIEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """Where the Runtime API listens, ``host:port``: the value for ``AWS_LAMBDA_RUNTIME_API``."""
        if self.separate_runtime_api:
            return f"{LOOPBACK}:{self.runtime_port}"
        return self.invoke_address

    @property
    def invoke_address(self) -> str:
        """Where the Invoke API listens, ``host:port``."""
        return f"{self.host}:{self.port}"

    def _runtime_peer_allowed(self, conn: socket.socket) -> bool:
        pids = self.runtime_pids
        return pids is None or _peer_is_held_by(conn, pids())

    @property
    def stopped(self) -> bool:
        return self._stopping

    def function_arn(self, name: str | None = None) -> str:
        return f"arn:aws:lambda:{self.region}:{DEFAULT_ACCOUNT}:function:{name or self.function_name}"

    # ----------------------------------------------------------------- test API

    def submit(
        self,
        body: bytes | str | object,
        *,
        content_type: str = "application/json",
        timeout: float | None = None,
        request_id: str | None = None,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
        invoked_function_arn: str | None = None,
        headers: Mapping[str, str] | None = None,
        raw_header_lines: Sequence[bytes] = (),
        asynchronous: bool = False,
    ) -> Invocation:
        """Queue an event for the next ``GET /next``; headers are sent only when given.

        ``headers`` are added to the ``/next`` answer and replace a standard header of the
        same name (``Lambda-Runtime-Deadline-Ms``, say); ``raw_header_lines`` are written
        verbatim (CRLF appended), so a test can send what no well-behaved server would.
        Any other value that cannot be one header line raises ``UnsendableHeader``.
        An ``asynchronous`` event (``InvocationType=Event``) is refused with ``QueueFull``
        when the async events already waiting reach ``async_queue_length`` or, with it,
        would exceed ``async_queue_bytes``.
        """
        extra = {
            "Lambda-Runtime-Client-Context": client_context,
            "Lambda-Runtime-Cognito-Identity": cognito_identity,
            "Lambda-Runtime-Trace-Id": trace_id,
            "Lambda-Runtime-Aws-Tenant-Id": tenant_id,
        }
        invocation = Invocation(
            request_id=request_id or str(uuid.uuid4()),
            body=_encode_body(body),
            content_type=content_type,
            timeout=self.function_timeout if timeout is None else timeout,
            extra_headers={**{k: v for k, v in extra.items() if v is not None}, **(headers or {})},
            function_arn=invoked_function_arn or self.function_arn(),
            asynchronous=asynchronous,
        )
        invocation.raw_header_lines = tuple(raw_header_lines)
        # Refused here, before it is queued, rather than at hand-out: the submitter (a
        # caller of the Invoke API) learns why, and the runtime never meets the event.
        _header_line("Content-Type", invocation.content_type)
        for name, value in invocation.next_headers().items():
            _header_line(name, value)
        with self._lock:
            if invocation.request_id in self._invocations:
                raise ValueError(f"request id {invocation.request_id!r} was already submitted")
            if asynchronous:
                self._check_async_room(len(invocation.body))
            self._invocations[invocation.request_id] = invocation
            self._queue.append(invocation)
            self._forget_finished()
            self._lock.notify_all()
        return invocation

    def _check_async_room(self, size: int) -> None:
        waiting = [invocation for invocation in self._queue if invocation.asynchronous]
        queued_bytes = sum(len(invocation.body) for invocation in waiting)
        if len(waiting) >= self.async_queue_length or queued_bytes + size > self.async_queue_bytes:
            raise QueueFull(
                f"Rate Exceeded. {len(waiting)} asynchronous invocations ({queued_bytes} bytes) are "
                f"waiting; the local queue holds at most {self.async_queue_length} "
                f"({self.async_queue_bytes} bytes)."
            )

    def _forget_finished(self) -> None:
        """Drop the finished invocations that finished first, down to the retention limits.

        The newest finished one always stays: the thread that accepted its post looks it
        up again to report it.
        """
        if self.retain_finished is None and self.retain_finished_bytes is None:
            return
        finished = sorted(
            (invocation for invocation in self._invocations.values() if invocation.done),
            key=lambda invocation: invocation.accepted[0].received_at,
        )
        count, size = len(finished), sum(invocation.size for invocation in finished)
        for invocation in finished[:-1]:
            over_count = self.retain_finished is not None and count > self.retain_finished
            over_size = self.retain_finished_bytes is not None and size > self.retain_finished_bytes
            if not (over_count or over_size):
                break
            del self._invocations[invocation.request_id]
            count, size = count - 1, size - invocation.size

    def wait_for_poll(self, timeout: float) -> bool:
        """True once a runtime is blocked in ``GET /next`` with nothing queued for it."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pollers > 0, timeout)

    def wait_init_error(self, timeout: float) -> Outcome | None:
        """The first ``/init/error`` post, or None if none arrives within ``timeout``."""
        with self._lock:
            self._lock.wait_for(lambda: bool(self.init_errors), timeout)
            return self.init_errors[0] if self.init_errors else None

    def inject_fault(
        self, route: str, action: str, *, status: int = 500, delay: float = 0.0, count: int = 1
    ) -> None:
        """Make the next ``count`` requests on ``route`` misbehave (faults apply in order)."""
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {route!r}")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"action must be one of {FAULT_ACTIONS}, not {action!r}")
        with self._lock:
            self._faults[route].append(_Fault(action, status, delay, count))

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
            invocation.accepted.append(outcome)
            invocation._done.set()
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
                copy = Outcome("error", outcome.body, outcome.headers, 0, invocation.request_id)
                invocation.accepted.append(copy)
                invocation._done.set()
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
            remaining = (invocation.deadline_ms - _now_ms()) / 1000 + self.invoke_grace
            if remaining <= 0:
                message = errors.timeout_message(invocation.timeout)
                self.fail_invocation(invocation, errors.TIMEOUT, message)
                break
            invocation._done.wait(min(remaining, 0.5))
        return invocation.accepted[0]

    # ----------------------------------------------------------------- server side

    def _record_request(self, method: str, path: str, route: str | None) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), method, path, route))
            if self.retain_requests is not None:
                while len(self.requests) > self.retain_requests:
                    self.requests.popleft()

    def _take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            faults = self._faults.get(route) or []
            while faults and faults[0].remaining <= 0:
                faults.pop(0)
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            return fault

    def _next_invocation(self, still_connected: Callable[[], bool]) -> Invocation | None:
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
                    self._lock.wait_for(lambda: self._stopping or bool(self._queue), 0.25)
                    if self._stopping:
                        return None
                    if not still_connected():
                        return None
                    if self._queue:
                        break
                invocation = self._queue.popleft()
            finally:
                self._pollers -= 1
            invocation.hand_outs += 1
            invocation.invocation_id = str(uuid.uuid4())
            invocation.handed_out_at = time.monotonic()
            invocation.deadline_ms = _now_ms() + int(invocation.timeout * 1000)
            invocation.handed_out.set()
            self._lock.notify_all()
        listener = self.listener
        if listener is not None:
            listener.invocation_started(invocation)
        return invocation

    def _requeue(self, invocation: Invocation, error: Exception) -> None:
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
        self._undeliverable(invocation, f"{invocation.hand_outs} hand-outs failed, the last with {error!r}")

    def _undeliverable(self, invocation: Invocation, reason: str) -> None:
        message = f"The event could not be handed to the runtime: {reason}"
        self.fail_invocation(invocation, UNDELIVERABLE, message)

    def _accept_post(self, request_id: str, outcome: Outcome) -> tuple[int, dict[str, str]]:
        """Decide the status of a ``/response`` or ``/error`` post, recording it."""
        with self._lock:
            invocation = self._invocations.get(request_id)
            if invocation is None or invocation.hand_outs == 0:
                return 400, _error_json("InvalidRequestID", f"Invalid request ID: {request_id!r}")
            status = _rejection_status(invocation)
            if status is not None:
                outcome.status = status
                invocation.rejected.append(outcome)
                return status, _REJECTIONS[status]
            outcome.status = 202
            invocation.accepted.append(outcome)
            invocation._done.set()
            if invocation in self._queue:
                # Put back after a hand-out that failed on our side, while the runtime had
                # read enough of it to answer: its answer is the one, and it goes out no more.
                self._queue.remove(invocation)
            self._lock.notify_all()
        return 202, {"status": "OK"}

    def _reject_too_large(self, request_id: str, outcome: Outcome) -> None:
        with self._lock:
            invocation = self._invocations.get(request_id)
            if invocation is not None:
                outcome.status = 413
                invocation.rejected.append(outcome)

    def _record_extension(self, outcome: Outcome) -> None:
        with self._lock:
            self.extension_registrations.append(outcome)
            self._lock.notify_all()

    def _wait_stopping(self, still_connected: Callable[[], bool]) -> None:
        with self._lock:
            while not self._stopping and still_connected():
                self._lock.wait(0.25)

    def _record_init_error(self, outcome: Outcome) -> None:
        with self._lock:
            outcome.status = 202
            self.init_errors.append(outcome)
            self._lock.notify_all()

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    """One listener: the routes it serves, the Host names it answers to, who may connect.

    Daemon request threads and a deep accept backlog, so bursts of callers queue.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        routes: frozenset[str],
        *,
        private_to: Callable[[socket.socket], bool] | None = None,
    ) -> None:
        """``private_to`` makes this a listener for one client (the runtime): it lets in
        only the connections that function accepts, addressed to its one address."""
        super().__init__(address, handler)
        self.routes = routes
        self.private_to = private_to
        private = private_to is not None
        self.names = _local_names(address[0], exact=private)
        self.any_address = not private and address[0] in _WILDCARDS

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Close a connection from a process that may not use this listener, unanswered."""
        return self.private_to is None or self.private_to(request)

    def refusal(self, headers: Any) -> str | None:
        """Why a request must be refused (403), or None: it must name this server, locally.

        A browser can be made to send requests here by any web page: a cross-origin one
        carries an ``Origin`` (or ``Sec-Fetch-Site``) header, and one through DNS
        rebinding names the attacker's domain in ``Host``. Clients that are not browsers
        (curl, boto3, the AWS CLI) send neither, and a local address as ``Host``.
        """
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1 or not self._is_local(hosts[0]):
            shown = ", ".join(hosts) or "none"
            return f"the Host header ({shown[:100]}) is not this server's local address"
        origins = headers.get_all("Origin") or []
        if origins and (
            len(origins) != 1 or not origins[0].startswith("http://") or not self._is_local(origins[0][7:])
        ):
            return f"cross-origin requests are refused (Origin: {', '.join(origins)[:100]})"
        fetch_site = (headers.get("Sec-Fetch-Site") or "none").strip().lower()
        if fetch_site not in ("none", "same-origin"):
            return f"cross-site requests are refused (Sec-Fetch-Site: {fetch_site[:40]})"
        return None

    def _is_local(self, authority: str) -> bool:
        parsed = _split_authority(authority)
        if parsed is None:
            return False
        host, port = parsed
        if port != self.server_address[1]:
            return False
        # An address in numbers cannot be rebound to someone else's server; a name can.
        return host in self.names or (self.any_address and _is_ip_address(host))


_WILDCARDS = frozenset(("", "0.0.0.0", "::"))


def _local_names(bound: str, *, exact: bool) -> frozenset[str]:
    """The host names (lower case, IPv6 without brackets) a listener on ``bound`` answers to."""
    names = {bound.lower().strip("[]")}
    if not exact:
        names |= {"localhost", "127.0.0.1", "::1"}
        if bound in _WILDCARDS:
            names.add(socket.gethostname().lower())
    return frozenset(names - {""})


def _split_authority(authority: str) -> tuple[str, int] | None:
    """``host[:port]`` or ``[v6][:port]`` as (lower-case host, port), port 80 when absent."""
    text = authority.strip().lower()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else "80"
    else:
        host, colon, port = text.partition(":")
        port = port if colon else "80"
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    return host, int(port)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _peer_is_held_by(conn: socket.socket, pids: Iterable[int]) -> bool:
    """Whether the other end of the loopback connection ``conn`` is a socket one of ``pids`` holds.

    Linux says so through /proc: the peer's socket is the /proc/net/tcp entry with our two
    addresses swapped, and a process holds it when one of its fds links to its inode.
    Where there is no /proc nothing can be told, and the connection is let in.
    """
    sockets = procfs.tcp_sockets()
    if sockets is None:
        return True
    try:
        peer = (procfs.tcp_address(conn.getpeername()), procfs.tcp_address(conn.getsockname()))
    except OSError:
        return False
    inode = sockets.get(peer, "0")
    if inode == "0":
        return False
    return any(procfs.holds(pid, f"socket:[{inode}]") for pid in pids)


def _error_json(error_type: str, message: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message}


_REJECTIONS = {
    403: _error_json("InvalidStateTransition", "Invocation already has a response or error."),
    410: _error_json("InvocationTimedOut", "The invocation already timed out."),
}


def _rejection_status(invocation: Invocation) -> int | None:
    """Why a post about ``invocation`` is refused: 403 answered, 410 too late, or None.

    A runtime's own earlier answer wins (403); past the deadline it is 410, even when the
    emulator has meanwhile answered the caller with a timeout on the runtime's behalf.
    """
    if invocation.done and invocation.accepted[0].status != 0:
        return 403
    if invocation._deadline_passed():
        return 410
    return 403 if invocation.done else None


def _decode_path_segment(segment: str) -> str:
    """Percent-decode a path segment as UTF-8.

    The request line arrives decoded as latin-1, so raw (unencoded) UTF-8 bytes are
    recovered too, not only %XX escapes.
    """
    return unquote_to_bytes(segment.encode("latin-1", errors="replace")).decode("utf-8", errors="replace")


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


class _Handler(BaseHTTPRequestHandler):
    """One connection; keep-alive, so one handler object serves many requests in turn."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # peer's delayed ACK (about 40 ms on loopback) and every exchange crawls.
    disable_nagle_algorithm = True
    emulator: RuntimeAPIEmulator  # set on the bound subclass
    server: _Server

    def version_string(self) -> str:
        return "lambda-supervisor-emulator"

    def send_header(self, keyword: str, value: str) -> None:
        """Header lines through ``_header_line``: UTF-8, and never one a value could split.

        The stdlib encodes latin-1 and raises on anything else, which would lose an event
        whose request id is not latin-1 text.
        """
        line = _header_line(keyword, value)
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self._headers_buffer.append(line)
        if keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def setup(self) -> None:
        super().setup()
        self.emulator._track(self.connection, opened=True)

    def finish(self) -> None:
        self.emulator._track(self.connection, opened=False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the default per-request stderr line; ``requests`` records every call."""

    # ----------------------------------------------------------------- plumbing

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        raw_header_lines: Sequence[bytes] = (),
    ) -> None:
        """Answer; ``UnsendableHeader`` leaves nothing written when a header cannot be sent."""
        for name, value in (headers or {}).items():
            _header_line(name, value)
        _header_line("Content-Type", content_type)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for line in raw_header_lines:
            self._headers_buffer.append(line + b"\r\n")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _drop(self) -> None:
        """Close the socket without a word, as a crashed or unreachable platform would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self, limit: int) -> tuple[bytes, dict[str, str]]:
        """Read the request body (sized or chunked), keeping at most ``limit`` bytes.

        ``_PayloadTooLarge`` past the limit; ``_BadRequest`` when the framing cannot be
        trusted, since reading on would take the rest of the stream as the body (a
        negative ``Content-Length`` reads to the end, past any limit).
        """
        length = self._declared_length()
        if length is None:
            return self._read_chunked(limit)
        if length > limit:
            self._drain(length)
            raise _PayloadTooLarge(drained=not self.close_connection)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("connection closed inside the body")
        return body, {}

    def _declared_length(self) -> int | None:
        """The ``Content-Length`` (0 when absent), or None for a chunked body."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:
                raise _BadRequest("both Transfer-Encoding and Content-Length are set")
            if [encoding.strip().lower() for encoding in encodings] != ["chunked"]:
                raise _BadRequest(f"unsupported Transfer-Encoding {', '.join(encodings)[:60]!r}")
            return None
        values = {value.strip() for value in lengths}
        if not values:
            return 0
        value = values.pop()
        if values or not (value.isascii() and value.isdigit()):
            raise _BadRequest(f"bad Content-Length {', '.join(lengths)[:60]!r}")
        return int(value)

    def _drain(self, length: int) -> None:
        """Discard ``length`` bytes so the connection stays usable, or close if absurd."""
        if length > MAX_DRAIN_BYTES:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, _DRAIN_CHUNK))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    def _read_chunked(self, limit: int) -> tuple[bytes, dict[str, str]]:
        parts: list[bytes] = []
        kept = 0
        too_large = False
        while True:
            size = self._chunk_size()
            if size == 0:
                break
            remaining = size
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, _DRAIN_CHUNK))
                if not chunk:
                    raise ConnectionError("connection closed inside a chunk")
                remaining -= len(chunk)
                kept += len(chunk)
                if kept > MAX_DRAIN_BYTES:
                    self.close_connection = True
                    raise _PayloadTooLarge(drained=False)
                if kept > limit:
                    too_large = True
                    parts.clear()
                elif not too_large:
                    parts.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequest("a chunk is not followed by CRLF")
        trailers = self._read_trailers()
        if too_large:
            raise _PayloadTooLarge(drained=True)
        return b"".join(parts), trailers

    def _chunk_size(self) -> int:
        line = self.rfile.readline(1024)
        if not line:
            raise ConnectionError("connection closed inside a chunked body")
        if not line.endswith(b"\n"):
            raise _BadRequest("a chunk size line is too long")
        field = line.split(b";", 1)[0].strip()
        if not field or len(field) > 16 or field.strip(b"0123456789abcdefABCDEF"):
            raise _BadRequest(f"bad chunk size {field[:20]!r}")
        return int(field, 16)

    def _read_trailers(self) -> dict[str, str]:
        trailers: dict[str, str] = {}
        for _ in range(_MAX_TRAILER_LINES):
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return trailers
            if not line:
                raise ConnectionError("connection closed inside the trailers")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > _MAX_LINE or not _TOKEN.fullmatch(name.strip()):
                raise _BadRequest(f"bad trailer line {line[:60]!r}")
            trailers[name.strip()] = value.strip()
        raise _BadRequest(f"more than {_MAX_TRAILER_LINES} trailer lines")

    def _discard_body(self) -> None:
        try:
            self._read_body(0)
        except _PayloadTooLarge:
            pass

    def _apply_fault(self, route: str) -> bool:
        """Run an injected fault for ``route``; True when the request is fully handled."""
        fault = self.emulator._take_fault(route)
        if fault is None:
            return False
        if fault.action == "drop":
            self._drop()
            return True
        if fault.action == "status":
            if self.command == "POST":
                self._discard_body()
            self._send_json(fault.status, _error_json("InjectedFault", f"injected HTTP {fault.status}"))
            return True
        time.sleep(fault.delay)
        return False

    # ----------------------------------------------------------------- routing

    def _route(self) -> tuple[str | None, str | None]:
        """Name the route for ``requests`` and extract the request id when there is one."""
        path = self._path()
        if self.command == "GET" and path == f"{RUNTIME_PREFIX}/runtime/invocation/next":
            return "next", None
        if self.command == "POST" and path == f"{RUNTIME_PREFIX}/runtime/init/error":
            return "init_error", None
        if self.command == "POST" and path == f"{EXTENSION_PREFIX}/register":
            return "extension_register", None
        if self.command == "GET" and path == f"{EXTENSION_PREFIX}/event/next":
            return "extension_next", None
        if self.command == "POST":
            match = _INVOCATION_POST.match(path)
            if match:
                return match.group(2), _decode_path_segment(match.group(1))
            match = _INVOKE_PATH.match(path)
            if match:
                return "invoke", _decode_path_segment(match.group(1))
        return None, None

    def _dispatch(self) -> None:
        route, argument = self._route()
        if route not in self.server.routes:
            route = None  # the other API's route, on a listener that does not serve it
        self.emulator._record_request(self.command, self.path, route)
        try:
            refusal = self.server.refusal(self.headers)
            if refusal is not None:
                self._refuse(route, 403, "AccessDeniedException", f"Request refused: {refusal}.")
                return
            if route in ROUTES and self._apply_fault(route):
                return
            if route == "next":
                self._handle_next()
            elif route in ("response", "error"):
                self._handle_result(route, argument or "")
            elif route == "init_error":
                self._handle_init_error()
            elif route == "invoke":
                _InvokeSide(self).handle(argument or self.emulator.function_name)
            elif route == "extension_register":
                self._handle_extension_register()
            elif route == "extension_next":
                self._handle_extension_next()
            else:
                if self.command in ("POST", "PUT", "PATCH"):
                    self._discard_body()
                message = f"No route for {self.command} {self._path()}"
                if self._speaks_invoke(route):
                    _InvokeSide(self).answer_error(404, "UnknownOperationException", message)
                else:
                    self._send_json(404, _error_json("NotFound", message))
        except _BadRequest as exc:
            self._refuse(route, 400, "InvalidRequestContentException", f"Malformed request: {exc}.")
        except UnsendableHeader as exc:
            # The runtime posted a header that cannot be passed on (an obs-folded one).
            self._refuse(route, 502, "InvalidRuntimeResponseException", f"The answer cannot be sent: {exc}.")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch  # noqa: N815

    def _refuse(self, route: str | None, status: int, error_type: str, message: str) -> None:
        """Answer ``status`` in the shape of the API asked (or the listener's), then close.

        The request's body is not read, so the connection cannot carry another request.
        """
        self.close_connection = True
        try:
            if self._speaks_invoke(route):
                _InvokeSide(self).answer_error(status, error_type, message)
            else:
                self._send_json(status, _error_json(error_type, message))
        except OSError:
            return
        self._linger()

    def _speaks_invoke(self, route: str | None) -> bool:
        """Whether an error about this request takes the Invoke API's shape."""
        return route == "invoke" or (route is None and "invoke" in self.server.routes)

    def _linger(self) -> None:
        """Stop sending and drop what the peer still sends for a moment, then let it close.

        Closing a socket with unread input resets the connection, and a reset can destroy
        the answer before the peer reads it.
        """
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            dropped = 0
            while dropped < _LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(_DRAIN_CHUNK)
                if not chunk:
                    return
                dropped += len(chunk)
        except OSError:
            return

    def _handle_next(self) -> None:
        while True:
            invocation = self.emulator._next_invocation(self._client_connected)
            if invocation is None:
                self._drop()
                return
            try:
                self._send(
                    200,
                    invocation.body,
                    invocation.content_type,
                    invocation.next_headers(),
                    invocation.raw_header_lines,
                )
            except UnsendableHeader as exc:
                # Nothing was written: answer its caller, and this poll with the next event.
                self.emulator._undeliverable(invocation, str(exc))
                continue
            except OSError as exc:
                self.emulator._requeue(invocation, exc)
                raise
            return

    def _client_connected(self) -> bool:
        """False once the peer has closed or reset the connection (a non-blocking peek)."""
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return bool(data)

    def _payload_limit(self) -> int:
        streaming = (self.headers.get("Lambda-Runtime-Function-Response-Mode") or "").lower()
        return STREAMED_MAX_PAYLOAD if streaming == "streaming" else self.emulator.max_payload

    def _handle_result(self, kind: str, request_id: str) -> None:
        limit = self._payload_limit() if kind == "response" else self.emulator.max_payload
        headers = dict(self.headers.items())
        try:
            body, trailers = self._read_body(limit)
        except _PayloadTooLarge:
            self.emulator._reject_too_large(request_id, Outcome(kind, b"", headers, 413, request_id))
            message = f"Exceeded maximum allowed payload size ({limit} bytes)."
            self._send_json(413, _error_json("RequestEntityTooLarge", message))
            return
        outcome = Outcome(kind, body, headers, 0, request_id, trailers)
        status, answer = self.emulator._accept_post(request_id, outcome)
        self._send_json(status, answer)
        invocation = self.emulator.invocation(request_id)
        if status == 202 and invocation is not None:
            self.emulator._notify_finished(invocation, outcome)

    def _handle_extension_register(self) -> None:
        """Record the registration and answer as Lambda does, with an extension id."""
        headers = dict(self.headers.items())
        try:
            body, _ = self._read_body(self.emulator.max_payload)
        except _PayloadTooLarge:
            self._send_json(413, _error_json("RequestEntityTooLarge", "Registration body too large."))
            return
        if not (self.headers.get("Lambda-Extension-Name") or "").strip():
            self._send_json(400, _error_json("InvalidRequest", "Lambda-Extension-Name is required."))
            return
        self.emulator._record_extension(Outcome("extension_register", body, headers, 200))
        answer = {"functionName": self.emulator.function_name, "functionVersion": "$LATEST", "handler": ""}
        self._send_json(200, answer, headers={"Lambda-Extension-Identifier": str(uuid.uuid4())})

    def _handle_extension_next(self) -> None:
        """Long-poll that never yields an event (no lifecycle events are emulated) until stop."""
        self.emulator._wait_stopping(self._client_connected)
        self._drop()

    def _handle_init_error(self) -> None:
        headers = dict(self.headers.items())
        try:
            body, trailers = self._read_body(self.emulator.max_payload)
        except _PayloadTooLarge:
            self._send_json(413, _error_json("RequestEntityTooLarge", "Init error body too large."))
            return
        self.emulator._record_init_error(Outcome("init_error", body, headers, 202, None, trailers))
        self._send_json(202, {"status": "OK"})


class _InvokeSide:
    """``POST /2015-03-31/functions/{name}/invocations``, answered like the Invoke API.

    The caller's request thread submits the event to the same queue the Runtime API
    serves, then waits for the runtime's post. Concurrent callers simply queue.
    """

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.emulator = handler.emulator

    def handle(self, function_name: str) -> None:
        handler = self.handler
        try:
            event, _ = handler._read_body(self.emulator.max_payload)
        except _PayloadTooLarge:
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
        client_context = self._client_context()
        if client_context is False:
            self.answer_error(
                400,
                "InvalidRequestContentException",
                "Client context must be a valid Base64-encoded JSON object.",
            )
            return
        invocation_type = handler.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            handler._send(204, b"")
            return
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            invocation = self.emulator.submit(
                event or b"{}",
                client_context=client_context or None,
                trace_id=handler.headers.get("X-Amzn-Trace-Id"),
                invoked_function_arn=self.emulator.function_arn(name),
                asynchronous=invocation_type == "Event",
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
        if invocation_type == "Event":
            handler._send(202, b"", headers={"X-Amzn-Requestid": invocation.request_id})
            return
        outcome = self.emulator.await_outcome(invocation)
        if outcome is None:
            handler._drop()
            return
        self._answer(invocation, outcome)

    def _client_context(self) -> str | Literal[False] | None:
        """The decoded ``X-Amz-Client-Context``; False when it is not base64 JSON."""
        raw = self.handler.headers.get("X-Amz-Client-Context")
        if not raw:
            return None
        try:
            decoded = base64.b64decode(raw, validate=True).decode("utf-8")
            json.loads(decoded)
        except (binascii.Error, ValueError, RecursionError):
            return False
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
        self.handler._send(200, body, content_type, headers)

    def _log_tail(self, invocation: Invocation) -> str:
        listener = self.emulator.listener
        text = listener.log_tail(invocation) if listener is not None else ""
        # The last 4 KB, cut on a character boundary so the decoded tail is valid UTF-8.
        tail = text.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore").encode("utf-8")
        return base64.b64encode(tail).decode("ascii")

    def answer_error(self, status: int, error_type: str, message: str) -> None:
        """An error in the Invoke API's shape: ``X-Amzn-Errortype`` names it, as boto3 reads it."""
        self.handler._send_json(
            status,
            {"Type": "User", "message": message},
            headers={"X-Amzn-Errortype": error_type},
        )


__all__ = [
    "CaseInsensitiveDict",
    "Invocation",
    "InvokeListener",
    "Outcome",
    "QueueFull",
    "RuntimeAPIEmulator",
]
