"""A stand-in Lambda Runtime API that is fast enough not to be what a benchmark measures.

One single-threaded ``selectors`` loop speaking just enough HTTP/1.1 (keep-alive,
``Content-Length`` bodies, ``Expect: 100-continue``) for a runtime client, run in its own
process. ``http.server`` would cost more per request than the runtimes under test spend, so
it is not used; request bodies are counted and dropped, never copied into Python objects.

It is driven over stdin/stdout with one JSON object per line:

* ``{"cmd": "arm", ...}`` sets up the next trial (how many events, their size, which
  ones make the handler crash, or each event's body; the function timeout the deadline
  header carries) and answers ``{"armed": true}``;
* when the trial's last event is answered it writes ``{"done": true, ...}`` with every
  timestamp it took (``time.monotonic()``, which is one clock for all processes on
  Linux, so the bench can subtract the instant it spawned the runtime);
* if the trial asked for it (``"report_held": N``), it writes ``{"held": N, "at": T}``
  the first time N ``GET /next`` calls are outstanding at once: N concurrent workers
  are ready;
* ``{"cmd": "status"}`` answers ``{"status": true, ...}`` with the trial's figures so far;
* ``{"cmd": "reset"}`` drops every connection; ``{"cmd": "quit"}`` ends the process.

Once the armed events are all handed out, further ``GET /next`` calls are held open,
exactly as Lambda holds them while no event is pending: the runtime idles, which is the
state its memory is measured in. Arming a trial without a reset hands its events to the
calls held open, as Lambda hands a new invocation to an idle ``/next``. Any number of
connections may each hold a ``/next`` and post answers at the same time, as a runtime
with concurrent workers (Lambda Managed Instances) does.

Run as ``python fake_api.py`` it listens on 127.0.0.1 (an ephemeral port) and prints
``{"port": N}`` first.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from typing import Any

NEXT_PATH = b"/2018-06-01/runtime/invocation/next"
INVOCATION_PREFIX = b"/2018-06-01/runtime/invocation/"
INIT_ERROR_PATH = b"/2018-06-01/runtime/init/error"
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n" + (
    b'{"status":"OK"}\n'
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
MAX_HEADER = 64 << 10
# Bodies are drained into one reusable buffer: a 5 MB response costs no allocation here.
_DRAIN = memoryview(bytearray(1 << 20))


def make_event(size: int, crash: bool = False) -> bytes:
    """A JSON object of ``size`` bytes (at least a few): what the echo handler returns whole."""
    if crash:
        return b'{"crash":true}'
    if size <= 16:
        return b'{"n":0}'
    return b'{"data":"' + b"x" * (size - 11) + b'"}'


class Trial:
    """The events of one trial and every instant the stand-in saw something happen."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.size: int = int(spec.get("size", 0))
        self.crash_at: set[int] = set(spec.get("crash_at", ()))
        self.tag: str = str(spec.get("tag", "t"))
        self.body = make_event(self.size)
        self.crash_body = make_event(0, crash=True)
        # Each event's own body, when the trial gives them (then they are its events).
        self.bodies: list[bytes] = [body.encode() for body in spec.get("bodies", ())]
        self.count: int = len(self.bodies) if self.bodies else int(spec["events"])
        self.timeout_ms: int = int(spec.get("timeout_ms", 300_000))
        self.report_held: int | None = spec.get("report_held")
        self.held_max = 0  # the most GET /next calls outstanding at once
        self.handed_out = 0
        self.answered = 0
        self.first_next: float | None = None
        self.next_at: list[float] = []  # every GET /next, when its headers were complete
        self.out_at: list[float] = [0.0] * self.count  # writing the event began
        self.in_at: list[float] = [0.0] * self.count  # its /response or /error fully read
        self.kind: list[str] = [""] * self.count
        self.in_bytes: list[int] = [0] * self.count
        self.init_error = False

    def request_id(self, index: int) -> str:
        return f"{self.tag}-{index:06d}"

    def index_of(self, request_id: str) -> int | None:
        prefix = self.tag + "-"
        if not request_id.startswith(prefix):
            return None
        try:
            index = int(request_id[len(prefix) :])
        except ValueError:
            return None
        return index if 0 <= index < self.count else None

    def event_response(self, index: int) -> bytes:
        if self.bodies:
            body = self.bodies[index]
        else:
            body = self.crash_body if index in self.crash_at else self.body
        deadline_ms = int(time.time() * 1000) + self.timeout_ms
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {self.request_id(index)}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n"
            f"Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
            "Sampled=1\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def report(self, what: str = "done") -> dict[str, Any]:
        return {
            what: True,
            "first_next": self.first_next,
            "next_at": self.next_at,
            "out_at": self.out_at,
            "in_at": self.in_at,
            "kind": self.kind,
            "in_bytes": self.in_bytes,
            "init_error": self.init_error,
            "handed_out": self.handed_out,
            "held_max": self.held_max,
        }


class Connection:
    """One keep-alive client connection: a request parser and an output queue."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.out: list[memoryview] = []
        # While a body is being drained: bytes still to come and what to do at its end.
        self.body_left = 0
        self.on_body_end: tuple[bytes, str] | None = None
        self.body_len = 0
        self.waiting_next = False


class FakeRuntimeAPI:
    def __init__(self, listener: socket.socket, control_in: int, control_out: Any) -> None:
        self.listener = listener
        self.control_in = control_in
        self.control_out = control_out
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        self.sel.register(control_in, selectors.EVENT_READ, "control")
        self.conns: dict[int, Connection] = {}
        self.trial: Trial | None = None
        self.control_buf = b""
        self.running = True

    # -- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        while self.running:
            for key, mask in self.sel.select():
                what = key.data
                if what == "accept":
                    self._accept()
                elif what == "control":
                    self._control()
                else:
                    conn = what
                    if mask & selectors.EVENT_WRITE:
                        self._flush(conn)
                    if mask & selectors.EVENT_READ and conn.sock.fileno() in self.conns:
                        self._readable(conn)

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, conn)

    def _close(self, conn: Connection) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    # -- control ----------------------------------------------------------------------------

    def _control(self) -> None:
        data = os.read(self.control_in, 1 << 16)
        if not data:
            self.running = False
            return
        self.control_buf += data
        while b"\n" in self.control_buf:
            line, self.control_buf = self.control_buf.split(b"\n", 1)
            command = json.loads(line)
            if command["cmd"] == "arm":
                self.trial = Trial(command)
                self._say({"armed": True})
                self._serve_held()
            elif command["cmd"] == "status":
                self._say(self.trial.report("status") if self.trial else {"status": True})
            elif command["cmd"] == "reset":
                for conn in list(self.conns.values()):
                    self._close(conn)
                self.trial = None
                self._say({"reset": True})
            elif command["cmd"] == "quit":
                self.running = False

    def _say(self, message: dict[str, Any]) -> None:
        self.control_out.write(json.dumps(message) + "\n")
        self.control_out.flush()

    # -- HTTP -------------------------------------------------------------------------------

    def _readable(self, conn: Connection) -> None:
        if conn.body_left:
            if not self._drain(conn):
                return
        try:
            data = conn.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.buf += data
        self._parse(conn)

    def _drain(self, conn: Connection) -> bool:
        """Read and drop body bytes straight from the socket; True once the body is over."""
        while conn.body_left:
            try:
                got = conn.sock.recv_into(_DRAIN, min(conn.body_left, len(_DRAIN)))
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self._close(conn)
                return False
            if not got:
                self._close(conn)
                return False
            conn.body_left -= got
        self._body_done(conn)
        return True

    def _parse(self, conn: Connection) -> None:
        while True:
            if conn.body_left:
                # Part of the body came with the headers; drop it from the buffer.
                take = min(conn.body_left, len(conn.buf))
                del conn.buf[:take]
                conn.body_left -= take
                if conn.body_left:
                    return
                self._body_done(conn)
                continue
            end = conn.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.buf) > MAX_HEADER:
                    self._close(conn)
                return
            head = bytes(conn.buf[:end])
            del conn.buf[: end + 4]
            now = time.monotonic()
            lines = head.split(b"\r\n")
            method, path, _ = lines[0].split(b" ", 2)
            length = 0
            expect_continue = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"expect" and value.strip().lower() == b"100-continue":
                    expect_continue = True
                elif name == b"transfer-encoding":
                    raise RuntimeError("chunked request bodies are not supported by the stand-in")
            if method == b"GET" and path == NEXT_PATH:
                self._on_next(conn, now)
                continue
            if method != b"POST":
                self._send(conn, NOT_FOUND)
                continue
            request_id, kind = _classify(path)
            conn.on_body_end = (request_id, kind)
            conn.body_left = conn.body_len = length
            if expect_continue and length > len(conn.buf):
                self._send(conn, CONTINUE)
            if not length:
                self._body_done(conn)

    def _body_done(self, conn: Connection) -> None:
        now = time.monotonic()
        request_id, kind = conn.on_body_end or (b"", "")
        conn.on_body_end = None
        self._send(conn, ACCEPTED)
        trial = self.trial
        if trial is None:
            return
        if kind == "init_error":
            trial.init_error = True
            self._finish(trial)
            return
        index = trial.index_of(request_id.decode("ascii", "replace"))
        if index is None or trial.kind[index]:
            return
        trial.in_at[index] = now
        trial.kind[index] = kind
        trial.in_bytes[index] = conn.body_len
        trial.answered += 1
        if trial.answered == trial.count:
            self._finish(trial)

    def _finish(self, trial: Trial) -> None:
        self._say(trial.report())

    def _on_next(self, conn: Connection, now: float) -> None:
        trial = self.trial
        if trial is None:
            conn.waiting_next = True
            return
        if trial.first_next is None:
            trial.first_next = now
        trial.next_at.append(now)
        if trial.handed_out >= trial.count:
            conn.waiting_next = True  # held open, as Lambda does with no event pending
            self._count_held(trial)
            return
        self._hand_out(conn, trial)

    def _hand_out(self, conn: Connection, trial: Trial) -> None:
        conn.waiting_next = False
        index = trial.handed_out
        trial.handed_out += 1
        trial.out_at[index] = time.monotonic()
        self._send(conn, trial.event_response(index))

    def _serve_held(self) -> None:
        """A new trial's events go to the ``GET /next`` calls already held open."""
        trial = self.trial
        assert trial is not None
        for conn in list(self.conns.values()):
            if conn.waiting_next and trial.handed_out < trial.count:
                self._hand_out(conn, trial)
        self._count_held(trial)

    def _count_held(self, trial: Trial) -> None:
        held = sum(conn.waiting_next for conn in self.conns.values())
        trial.held_max = max(trial.held_max, held)
        if trial.report_held is not None and held >= trial.report_held:
            self._say({"held": held, "at": time.monotonic()})
            trial.report_held = None  # once

    def _send(self, conn: Connection, data: bytes) -> None:
        if conn.out:
            conn.out.append(memoryview(data))
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.out.append(memoryview(data)[sent:])
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: Connection) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn)
                return
            if sent < len(conn.out[0]):
                conn.out[0] = conn.out[0][sent:]
                return
            conn.out.pop(0)
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)


def _classify(path: bytes) -> tuple[bytes, str]:
    """``(request id, "response" | "error" | "init_error" | "")`` for a POST path."""
    if path == INIT_ERROR_PATH:
        return b"", "init_error"
    if path.startswith(INVOCATION_PREFIX):
        request_id, _, tail = path[len(INVOCATION_PREFIX) :].partition(b"/")
        if tail in (b"response", b"error"):
            return request_id, tail.decode()
    return b"", ""


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # a runtime with concurrent workers connects them all at once
    listener.setblocking(False)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    FakeRuntimeAPI(listener, sys.stdin.fileno(), sys.stdout).serve()


if __name__ == "__main__":
    main()
