"""Runtime APIs on a raw loopback socket, answering with whatever bytes a test chooses.

The project's emulator is a well-behaved HTTP server; some faults no such server can
produce: an answer cut short after its head, a header sent twice or in bytes that are not
UTF-8, a post read and never answered, a strict proxy refusing a long header, an answer
sent on a connection the runtime has half closed. Two fakes share one request reader
(head, then a Content-Length body) and the answer builders:

- ``FakeRuntimeAPI`` serves every connection from a thread, records each request and sends
  what the test's script returns for it. It has the emulator's ``address`` and
  ``wait_for_poll``, so ``running_runtime`` starts the real runtime against it.
- ``ManualRuntimeAPI`` serves nothing by itself: the test accepts each connection, reads its
  requests and answers (or not) when it chooses, one step at a time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import NamedTuple

from supervisor.runtime_api import API_VERSION

NEXT_PATH = API_VERSION + "/runtime/invocation/next"
INVOCATION_PREFIX = API_VERSION + "/runtime/invocation/"


class Request(NamedTuple):
    method: str
    # The path exactly as sent (still percent-encoded), decoded as latin-1 byte for byte.
    path: str
    version: str
    # Lower-cased names; the raw value bytes of each line, in order (repeats kept).
    header_lines: tuple[tuple[str, bytes], ...]
    body: bytes
    at: float

    def header(self, name: str) -> bytes | None:
        values = [value for key, value in self.header_lines if key == name.lower()]
        return values[-1] if values else None

    @property
    def route(self) -> str:
        """``next``, ``response``, ``error``, ``init_error``, or the path for anything else."""
        if self.method == "GET" and self.path == NEXT_PATH:
            return "next"
        if self.path == API_VERSION + "/runtime/init/error":
            return "init_error"
        if self.path.startswith(INVOCATION_PREFIX) and self.path.endswith(("/response", "/error")):
            return self.path.rsplit("/", 1)[1]
        return self.path

    @property
    def id_segment(self) -> str:
        """The request id's path segment of a /response or /error post, as sent."""
        return self.path[len(INVOCATION_PREFIX) :].rsplit("/", 1)[0]

    def json(self) -> object:
        return json.loads(self.body)


class Reply(NamedTuple):
    """Bytes to send, then what to do with the connection: ``keep`` it for the next request,
    ``close`` it, or ``hold`` it open without another word until the fake API stops."""

    data: bytes = b""
    then: str = "keep"


HOLD = Reply(then="hold")
DROP = Reply(then="close")


def answer(status: int, body: bytes = b"{}", header_lines: Sequence[bytes] = ()) -> bytes:
    """A complete HTTP/1.1 answer with a Content-Length."""
    head = [
        b"HTTP/1.1 %d Fake" % status,
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
    ]
    return b"\r\n".join([*head, *header_lines, b"", b""]) + body


ACCEPTED = Reply(answer(202, b'{"status":"OK"}'))


def event(
    request_id: bytes | str,
    body: bytes = b"{}",
    *,
    timeout: float = 30.0,
    header_lines: Sequence[bytes] = (),
) -> bytes:
    """A /next answer handing out ``body`` under ``request_id`` (raw bytes sent as they are)."""
    raw_id = request_id.encode() if isinstance(request_id, str) else request_id
    deadline = b"Lambda-Runtime-Deadline-Ms: %d" % int((time.time() + timeout) * 1000)
    return answer(200, body, [b"Lambda-Runtime-Aws-Request-Id: " + raw_id, deadline, *header_lines])


Script = Callable[[Request], "Reply | None"]


def read_request(conn: socket.socket, buffer: bytes = b"") -> tuple[Request, bytes] | None:
    """The next request on ``conn`` (``buffer`` holds what was read past the one before) and
    what was read past it; None when the peer closes before the request is whole."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    method, path, version = lines[0].decode("latin-1").split(" ", 2)
    header_lines = tuple(
        (name.strip().decode("latin-1").lower(), value.strip())
        for name, _, value in (line.partition(b":") for line in lines[1:])
    )
    length = int(dict(header_lines).get("content-length", b"0"))
    while len(buffer) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    body, buffer = buffer[:length], buffer[length:]
    return Request(method, path, version, header_lines, body, time.monotonic()), buffer


class FakeRuntimeAPI:
    """Serves /next from a queue of raw answers and accepts every post with 202, unless
    ``script`` returns a ``Reply`` for the request (None: that default)."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script
        self.requests: list[Request] = []
        self._events: deque[bytes] = deque()
        self._pollers = 0
        self._stopping = False
        self._lock = threading.Condition()
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._accept, name=f"fake-runtime-api:{self.port}", daemon=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeRuntimeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> FakeRuntimeAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- for the test

    def queue(self, *answers: bytes) -> None:
        """Raw answers for the next GET /next requests, in order."""
        with self._lock:
            self._events.extend(answers)
            self._lock.notify_all()

    def wait_for_poll(self, timeout: float) -> bool:
        """True once a GET /next is waiting with nothing queued for it."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pollers > 0, timeout)

    def wait_for(self, predicate: Callable[[list[Request]], object], timeout: float) -> bool:
        """Wait until ``predicate`` holds for the requests received so far."""
        with self._lock:
            return bool(self._lock.wait_for(lambda: predicate(self.requests), timeout))

    def routed(self, route: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.route == route]

    def _default(self, request: Request, conn: socket.socket) -> Reply:
        """What the fake does unscripted: the next queued event, or 202 for a post.

        A poller whose runtime has gone (its socket closed) gives up rather than take the
        next event to nobody.
        """
        if request.route != "next":
            return ACCEPTED
        with self._lock:
            self._pollers += 1
            self._lock.notify_all()
            try:
                while not (self._stopping or self._events):
                    self._lock.wait(0.1)
                    if not _connected(conn):
                        return DROP
                if self._stopping:
                    return DROP
                return Reply(self._events.popleft())
            finally:
                self._pollers -= 1

    # ---------------------------------------------------------------- server side

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                received = read_request(conn, buffer)
                if received is None:
                    return
                request, buffer = received
                with self._lock:
                    self.requests.append(request)
                    self._lock.notify_all()
                reply = (self.script(request) if self.script else None) or self._default(request, conn)
                if reply.data:
                    conn.sendall(reply.data)
                if reply.then == "close":
                    return
                if reply.then == "hold":
                    with self._lock:
                        self._lock.wait_for(lambda: self._stopping)
                    return
        except OSError:
            return
        finally:
            conn.close()


def _connected(conn: socket.socket) -> bool:
    try:
        return bool(conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return True
    except OSError:
        return False


class ManualRuntimeAPI:
    """A Runtime API on a bare socket, driven step by step: the test accepts each connection
    the runtime makes, reads its requests and answers when it chooses, so it sees exactly
    what the runtime sends (a half-closed connection included)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"

    def accept(self, timeout: float) -> socket.socket | None:
        """The runtime's next connection (its reads time out after ``timeout`` too), or None."""
        self._listener.settimeout(timeout)
        try:
            connection, _ = self._listener.accept()
        except TimeoutError:
            return None
        connection.settimeout(timeout)
        return connection

    @staticmethod
    def read_request(connection: socket.socket) -> Request:
        """The next request on ``connection``, which must not close before it is whole."""
        received = read_request(connection)
        assert received is not None, "connection closed mid-request"
        return received[0]

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> ManualRuntimeAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
