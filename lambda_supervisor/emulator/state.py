"""``RuntimeAPIEmulator``: the emulator's settings, listeners and records, and its test API.

One object is what tests and the local runner hold: they submit events, plan faults,
read what the runtime posted and start, restart or stop the listeners through it. The
route handlers see it too, through the few public methods below and those of
``InvocationQueue``, which it is; they touch nothing private of it.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from lambda_supervisor.runtime_modules import errors

from .faults import Fault, FaultPlan
from .front_routes import HttpFront
from .invocations import InvocationQueue
from .records import Invocation, Outcome
from .routing import INVOKE_ROUTES, RUNTIME_ROUTES, Handler
from .server import Server, peer_is_held_by
from .wire import header_line

DEFAULT_ACCOUNT = "012345678912"
DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_PAYLOAD = errors.MAX_SYNC_PAYLOAD
LOOPBACK = "127.0.0.1"


class RuntimeAPIEmulator(InvocationQueue):
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
        super().__init__(invoke_grace=invoke_grace)
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
        # What a streamed response may carry before the emulator cuts it (413).
        self.max_streamed_payload = errors.MAX_STREAMED_PAYLOAD
        self.region = region
        # None keeps every request record; a number keeps only the newest ones.
        self.retain_requests: int | None = None
        self.requests: collections.deque[tuple[float, str, str, str | None]] = collections.deque()
        self.init_errors: list[Outcome] = []
        # SnapStart's ``POST /runtime/restore/error`` calls (kind "restore_error").
        self.restore_errors: list[Outcome] = []
        # ``POST /2020-01-01/extension/register`` calls (kind "extension_register").
        self.extension_registrations: list[Outcome] = []
        # Plain HTTP requests to the Invoke API's listener go to it (``serve --http``).
        self.http_front: HttpFront | None = None
        self._faults = FaultPlan()
        self._connections: set[socket.socket] = set()
        self._servers: list[Server] = []
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> RuntimeAPIEmulator:
        """Bind the sockets (raises ``OSError`` when a port is taken) and serve in threads."""
        handler = type("BoundHandler", (Handler,), {"emulator": self})
        servers: list[Server] = []
        try:
            if self.separate_runtime_api:
                runtime = Server(
                    (LOOPBACK, self.runtime_port),
                    handler,
                    RUNTIME_ROUTES,
                    private_to=self._runtime_peer_allowed,
                )
                servers.append(runtime)
                self.runtime_port = runtime.server_address[1]
                servers.append(Server((self.host, self.port), handler, INVOKE_ROUTES))
            else:
                servers.append(Server((self.host, self.port), handler, RUNTIME_ROUTES | INVOKE_ROUTES))
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
        return pids is None or peer_is_held_by(conn, pids())

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
        only_if_idle: bool = False,
    ) -> Invocation:
        """Queue an event for the next ``GET /next``; headers are sent only when given.

        ``headers`` are added to the ``/next`` answer and replace a standard header of the
        same name (``Lambda-Runtime-Deadline-Ms``, say); ``raw_header_lines`` are written
        verbatim (CRLF appended), so a test can send what no well-behaved server would.
        Any other value that cannot be one header line raises ``UnsendableHeader``.
        An ``asynchronous`` event (``InvocationType=Event``) is refused with ``QueueFull``
        when the async events already waiting reach ``async_queue_length`` or, with it,
        would exceed ``async_queue_bytes``. ``only_if_idle`` refuses the event with
        ``RuntimeUnavailable`` unless a runtime is waiting in ``GET /next`` for it.
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
        header_line("Content-Type", invocation.content_type)
        for name, value in invocation.next_headers().items():
            header_line(name, value)
        self._enqueue(invocation, only_if_idle=only_if_idle)
        return invocation

    def wait_init_error(self, timeout: float) -> Outcome | None:
        """The first ``/init/error`` post, or None if none arrives within ``timeout``."""
        with self._lock:
            self._lock.wait_for(lambda: bool(self.init_errors), timeout)
            return self.init_errors[0] if self.init_errors else None

    def routes_called(self) -> list[str | None]:
        """The route of every request recorded so far, in order (None: no route matched)."""
        with self._lock:
            return [route for _, _, _, route in self.requests]

    def inject_fault(
        self, route: str, action: str, *, status: int = 500, delay: float = 0.0, count: int = 1
    ) -> None:
        """Make the next ``count`` requests on ``route`` misbehave (faults apply in order)."""
        self._faults.add(route, action, status=status, delay=delay, count=count)

    # ----------------------------------------------------------------- the handlers' side

    def take_fault(self, route: str) -> Fault | None:
        """The fault planned for this request on ``route``, if any (it counts as used)."""
        return self._faults.take(route)

    def record_request(self, method: str, path: str, route: str | None) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), method, path, route))
            if self.retain_requests is not None:
                while len(self.requests) > self.retain_requests:
                    self.requests.popleft()

    def record_extension(self, outcome: Outcome) -> None:
        with self._lock:
            self.extension_registrations.append(outcome)
            self._lock.notify_all()

    def record_init_error(self, outcome: Outcome) -> None:
        with self._lock:
            outcome.status = 202
            self.init_errors.append(outcome)
            self._lock.notify_all()

    def record_restore_error(self, outcome: Outcome) -> None:
        with self._lock:
            self.restore_errors.append(outcome)
            self._lock.notify_all()

    def wait_until_stopped(self, still_connected: Callable[[], bool]) -> None:
        """Return once the emulator stops or the peer goes away."""
        with self._lock:
            while not self._stopping and still_connected():
                self._lock.wait(0.25)

    def connection_opened(self, conn: socket.socket) -> None:
        """Track an open connection, so that ``stop`` can cut it."""
        with self._lock:
            self._connections.add(conn)

    def connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


def _encode_body(body: bytes | str | object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")
