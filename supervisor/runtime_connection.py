"""The pooled urllib3 connection to the Runtime API, and one request/answer exchange on it.

urllib3's pool owns the connection: it opens it (with urllib3's socket options, TCP_NODELAY
among them), checks it for a drop each time it is taken out, and holds it between calls
(but between two back to back, see ``_BACK_TO_BACK``).
The exchange itself, one of the Runtime API's few fixed requests and its answer, is framed
here on that connection's socket. Building urllib3's request and response objects, and
parsing headers through http.client's email-based parser, cost about 180 µs of Python per
request, several times everything else the supervisor does for an event; framing a request
and reading an answer with a few bytes operations costs about 40 µs (bench/README.md).

urllib3 is loaded once the runtime's first answer is out: its import is most of what a
no-op cold start costs (about 45 ms), and nothing before the first answer needs it. Until
then one plain socket (``_PlainConnection``, connected as urllib3 connects one) carries the
exchanges, framed like every other; before the long poll that follows the first post,
urllib3 is loaded and its pool handed that socket, and from then on the pool owns it.

urllib3 has no public call that lends out a pooled connection, so two private ones are
relied on, as urllib3 2.x has them (pyproject pins ``urllib3>=2.0,<3``, and
tests/unit/test_urllib3_pool.py pins the behaviour):

- ``HTTPConnectionPool._get_conn()`` returns the pooled ``urllib3.connection.HTTPConnection``
  (closing it first, ``sock`` None, when the peer dropped it), or a new unconnected one
  when the pool is empty; it never blocks with ``block=False``;
- ``HTTPConnectionPool._put_conn(connection)`` keeps it for the next ``_get_conn``.

Of the connection itself only http.client's public ``connect()``, ``sock`` and ``close()``.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Protocol

from worker.errors import MAX_ANSWER_BYTES

if TYPE_CHECKING:  # loaded after the first answer (see above)
    import urllib3

# The limits http.client applies: a longer line or more headers make an answer unusable,
# like any other garbled answer, and it is retried on a fresh connection.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_HEAD = _MAX_LINE * 4
_RECV_SIZE = 1 << 16
# Bodies up to this size go out in the same send as the request head.
_JOINED_SEND_LIMIT = 1 << 16
# An exchange that begins this soon after the last one's answer (the /next that follows a
# post) takes the connection straight from that one, without the pool's round trip and its
# drop check: so soon after an answer there is no drop to find, and a peer that closes the
# connection meanwhile fails the exchange as a drop found later would.
_BACK_TO_BACK = 0.01
# A timed exchange waits on its socket in slices this long, so that a deadline brought
# forward by ``cut_short`` (from a signal handler) is kept to within one slice.
_WAIT_SLICE = 0.05
# What HTTP allows around a header value. str.strip() would also take the bytes 85 and a0,
# which are whitespace once read as latin-1, off a request id ("voilà" ends in a0).
_HEADER_WHITESPACE = " \t"
# How long an aborted long poll still listens for an answer the API sent before it saw the
# runtime go. Lambda allows the runtime 500 ms from SIGTERM to exit, worker shutdown included.
ABORT_LINGER = 0.2
_ABORT_LINGER_TIMEVAL = struct.pack("ll", 0, int(ABORT_LINGER * 1_000_000))


class TransportError(Exception):
    """The answer broke HTTP, or the connection closed before the answer was complete."""


class IncompleteAnswer(TransportError):
    """The answer's head arrived whole but its body did not: what was being answered is
    known (a /next answer's request id) though the answer itself is lost."""

    def __init__(self, reason: str, status: int, headers: Headers) -> None:
        super().__init__(f"answer cut short after its head: {reason}")
        self.status = status
        self.headers = headers


# Everything a failed exchange can raise; the caller retries on a fresh connection.
TRANSPORT_ERRORS = (TransportError, OSError)


class Connection(Protocol):
    """What an exchange uses of a connection: urllib3's, or the plain one before it."""

    sock: socket.socket | None

    def connect(self) -> None: ...

    def close(self) -> None: ...


class _PlainConnection:
    """The connection of the exchanges before urllib3 is loaded: a socket connected with the
    options urllib3 gives one (TCP_NODELAY), until the pool is handed it."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.create_connection(self.address, self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def dropped(self) -> bool:
        """Has the peer closed (or written unasked) since the last answer? As urllib3's pool
        checks a connection it lends out: an idle keep-alive socket has nothing to read."""
        if self.sock is None:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


class Headers(dict):
    """Answer headers, stored lower-cased so ``get`` finds them in any case.

    Values are decoded as latin-1, as http.client does, so each character is one byte as
    sent; the caller re-reads UTF-8 values. A header sent more than once reads as its
    values joined with ", ", and ``get_all`` gives them apart.
    """

    __slots__ = ("repeated",)

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    # ``get`` for a name already in lower case: dict's own, with no Python call in between,
    # for the runtime's lookups, a dozen per event.
    get_lowercase = dict.get

    def add(self, key: str, value: str) -> None:
        if key not in self:
            self[key] = value
            return
        if self.repeated is None:
            self.repeated = {}
        self.repeated.setdefault(key, [self[key]]).append(value)
        self[key] = f"{self[key]}, {value}"

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        if self.repeated is not None and key in self.repeated:
            return list(self.repeated[key])
        value = dict.get(self, key)
        return [] if value is None else [value]


class Answer:
    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: Headers, data: bytes | bytearray) -> None:
        self.status = status
        self.headers = headers
        self.data = data


class RuntimeConnection:
    """One keep-alive connection, in a urllib3 pool of one; one request in flight at a time."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = 2.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        # Made when urllib3 is loaded; until then ``_plain`` carries the exchanges.
        self.pool: urllib3.HTTPConnectionPool | None = None
        self._plain: _PlainConnection | None = _PlainConnection(host, port, connect_timeout)
        # Set once an answer has been posted: the next long poll hands the pool its socket.
        self._posted = False
        self._host_field = f"Host: {host}:{port}\r\n"
        self._bare_heads: dict[tuple[str, str], bytes] = {}
        # A poll object for each (descriptor, events) a timed exchange waits on, made once.
        self._pollers: dict[tuple[int, int], select.poll] = {}
        self._in_flight: Connection | None = None
        # The connection of the last exchange, and when its answer was read, until the next
        # exchange takes it or hands it back to the pool.
        self._last: Connection | None = None
        self._last_at = 0.0
        self._abort_next = False
        # The monotonic instant a timed exchange under way is given up; None while none is.
        self._deadline: float | None = None
        # Set by ``cut_short``: no timed exchange gets longer than this any more.
        self._longest: float | None = None
        self._aborted = False

    def abort(self) -> None:
        """End the abortable exchange under way (the long poll for /next), or the next one
        before it is sent; safe to call from a signal handler, which may run at any point
        of ``request``. Other exchanges (posting an answer) are never cut short.

        Only the sending side of the socket is shut. The Runtime API sees the runtime go
        and hands out nothing more, but an answer it sent just before is still read in
        full: shutting the receiving side too would throw away an event already handed
        out, which then nobody answers. From here on each read of the exchange gives up
        after ``ABORT_LINGER`` seconds of silence, so an API that neither answers nor
        closes cannot hold the runtime past its shutdown. With no socket yet, a flag makes
        the next abortable ``request`` give up once its socket exists.
        """
        connection = self._in_flight
        sock = None if connection is None else connection.sock
        if sock is None:
            self._abort_next = True
            return
        self._aborted = True
        try:
            # A blocked read interrupted by the signal is resumed with this timeout.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _ABORT_LINGER_TIMEVAL)
            sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass

    def cut_short(self, grace: float) -> None:
        """Give the timed exchange under way, and every later one, at most ``grace`` seconds
        more; safe to call from a signal handler. The long poll is ``abort``'s business."""
        self._longest = grace
        deadline = self._deadline
        if deadline is not None:
            self._deadline = min(deadline, time.monotonic() + grace)

    def close(self) -> None:
        self._give_back()
        if self.pool is not None:
            self.pool.close()
        if self._plain is not None:
            self._plain.close()

    def _urllib3_pool(self) -> urllib3.HTTPConnectionPool:
        """The pool, made (and urllib3 imported) the first time it is asked for."""
        if self.pool is None:
            import urllib3

            self.pool = urllib3.HTTPConnectionPool(
                self.host,
                self.port,
                maxsize=1,
                block=False,
                retries=False,
                timeout=urllib3.Timeout(connect=self.connect_timeout, read=None),
            )
        return self.pool

    def _hand_over(self, plain: _PlainConnection) -> None:
        """Load urllib3 and put the plain connection, idle between two exchanges, into its
        pool, which owns it from then on: every later exchange takes its connection there."""
        pool = self._urllib3_pool()
        # The pool is empty: a new, unconnected one, given the plain one's socket.
        connection = pool._get_conn()
        connection.sock = plain.sock  # type: ignore[attr-defined]  # typed by urllib3 as the base class
        plain.sock = None
        self._plain = None
        pool._put_conn(connection)

    def _take(self) -> Connection:
        """The connection for the next exchange: the plain one before the hand-over (opened
        afresh if the peer dropped it); then the last one's, straight from it when it ended
        ``_BACK_TO_BACK`` ago at most; otherwise the pool's (closed first if the peer
        dropped it)."""
        plain = self._plain
        if plain is not None:
            if plain.dropped():
                plain.close()
            return plain
        last = self._last
        if last is not None and time.monotonic() - self._last_at <= _BACK_TO_BACK:
            self._last = None
            return last
        self._give_back()
        return self._urllib3_pool()._get_conn()  # type: ignore[return-value]  # typed by urllib3 as the base class

    def _give_back(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            self._put_back(last)

    def _put_back(self, connection: Connection) -> None:
        """Return a connection after its exchange: to the pool, or, before the hand-over,
        nowhere (the plain one stays where it is)."""
        if connection is not self._plain:
            self._urllib3_pool()._put_conn(connection)  # type: ignore[arg-type]

    def request(
        self,
        method: str,
        path: str,
        body: bytes | bytearray | None = None,
        headers: dict[str, str] | None = None,
        *,
        abortable: bool = False,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request and read its whole answer; one of ``TRANSPORT_ERRORS`` on failure.

        A failure closes the connection, so the caller's retry starts on a fresh one.
        ``abortable`` lets ``abort`` end it. ``timeout`` bounds the whole exchange, sending
        included (an API that stops reading a 6 MB post must not hold it either); without
        one the exchange waits for as long as the API takes, as the long poll must.
        """
        head = self._request_head(method, path, body, headers)
        if abortable and self._posted and self._plain is not None:
            # The long poll after the first answer: urllib3 is loaded before it is sent, so
            # that no event is fetched by a runtime that could not load it.
            self._hand_over(self._plain)
        connection = self._take()
        self._aborted = False
        self._in_flight = connection if abortable else None
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
            if self._longest is not None:  # cut_short ran before this exchange began
                self.cut_short(self._longest)
        try:
            sock = connection.sock or _open(connection)
            if abortable and self._abort_next:
                # abort() ran before this exchange had a socket to shut.
                self._abort_next = False
                raise TransportError("request abandoned: the runtime is stopping")
            if not body:
                self._send(sock, head)
            elif len(body) <= _JOINED_SEND_LIMIT:
                self._send(sock, head + body)
            elif self._deadline is not None:
                # Head and body in one system call, and no copy of the body to join them: sent
                # apart, the head would go out in a segment of its own and wake the API twice.
                self._send_parts(sock, [memoryview(head), memoryview(body).cast("B")])
            else:
                self._send(sock, head)
                self._send(sock, body)
            if method == "POST":
                self._posted = True
            answer, keep_alive = _read_answer(_SocketReader(sock, self))
            if not keep_alive or self._aborted:
                connection.close()  # a half-shut connection is never used again
            return answer
        except BaseException:
            connection.close()
            raise
        finally:
            self._in_flight = None
            self._deadline = None
            if connection.sock is None:
                self._put_back(connection)  # closed: connected afresh for the next exchange
            elif connection is not self._plain:
                self._last, self._last_at = connection, time.monotonic()

    def _send(self, sock: socket.socket, data: bytes | bytearray) -> None:
        if self._deadline is None:
            sock.sendall(data)
            return
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            try:
                sent += sock.send(view[sent:], socket.MSG_DONTWAIT)
            except BlockingIOError:
                self.wait(sock, select.POLLOUT)

    def wait(self, sock: socket.socket, events: int) -> None:
        """Return once ``sock`` is ready for ``events``, or raise ``TransportError`` when the
        timed exchange's deadline passes first. Untimed, it returns at once: the blocking
        call that follows does the waiting."""
        if self._deadline is None:
            return
        key = (sock.fileno(), events)
        poller = self._pollers.get(key)
        if poller is None:
            poller = self._pollers[key] = select.poll()
            poller.register(*key)
        while True:
            deadline = self._deadline  # read afresh: a signal handler may have moved it
            remaining = float("inf") if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError("no answer from the Runtime API in time")
            if poller.poll(max(1, int(min(remaining, _WAIT_SLICE) * 1000))):
                return

    def stream(self, method: str, path: str, headers: dict[str, str], *, deadline: float) -> StreamingRequest:
        """Begin a request whose body is sent a chunk at a time (chunked transfer encoding) as
        it is produced; nothing goes out before its first chunk. Every write gives up with
        ``TransportError`` at ``deadline`` (a monotonic instant; ``cut_short`` can bring it
        forward). The connection stays out of the pool until the request is finished or
        abandoned."""
        head = self._request_head(method, path, None, headers, chunked=True)
        connection = self._take()
        self._posted = True
        self._aborted = False
        self._in_flight = None
        self._deadline = deadline
        if self._longest is not None:
            self.cut_short(self._longest)
        return StreamingRequest(self, connection, head)

    def _release(self, connection: Connection, *, close: bool) -> None:
        """Give a connection back to the pool after a streamed exchange (closed when it is out
        of step, so the next exchange opens a fresh one)."""
        if close:
            connection.close()
        self._deadline = None
        self._put_back(connection)

    def _send_parts(self, sock: socket.socket, parts: list[memoryview]) -> None:
        """Send every part in as few system calls as the socket takes, waiting (as ``wait``
        allows) while it is full: no part is copied to join it to the others."""
        while parts:
            try:
                sent = sock.sendmsg(parts, (), socket.MSG_DONTWAIT)
            except BlockingIOError:
                self.wait(sock, select.POLLOUT)
                continue
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = parts[0][sent:]

    def send_unanswered(self, method: str, path: str, headers: dict[str, str]) -> socket.socket:
        """Send a request on a connection of its own whose answer is never read; the
        socket is returned to be kept open for as long as the request must stay pending."""
        import urllib3.connection

        connection = urllib3.connection.HTTPConnection(self.host, self.port, timeout=2.0)
        sock = _open(connection)
        try:
            sock.settimeout(2.0)
            sock.sendall(self._request_head(method, path, None, headers))
        except OSError:
            connection.close()
            raise
        return sock

    def _request_head(
        self,
        method: str,
        path: str,
        body: bytes | bytearray | None,
        headers: dict[str, str] | None,
        *,
        chunked: bool = False,
    ) -> bytes:
        # A request without headers or body (the GET of every /next) has the same head each
        # time: made once.
        bare = body is None and not headers and not chunked and method != "POST"
        if bare and (head := self._bare_heads.get((method, path))) is not None:
            return head
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()]) if headers else ""
        if chunked:
            length = "Transfer-Encoding: chunked\r\n"
        elif body is not None or method == "POST":
            length = f"Content-Length: {len(body) if body else 0}\r\n"
        else:
            length = ""
        head = f"{method} {path} HTTP/1.1\r\n{self._host_field}{fields}{length}\r\n".encode("latin-1")
        if bare:
            self._bare_heads[(method, path)] = head
        return head


class StreamingRequest:
    """A request under way whose body goes out chunk by chunk (``RuntimeConnection.stream``).

    ``send`` writes one chunk and returns once the socket has taken it, so the caller holds
    one chunk at a time and a Runtime API that reads slowly slows the caller down; ``finish``
    ends the body with trailers and reads the answer; ``abandon`` gives up on it (the
    connection is closed: the API sees the body cut short). Every failure is one of
    ``TRANSPORT_ERRORS``, after which only ``abandon`` is left.
    """

    def __init__(self, owner: RuntimeConnection, connection: Connection, head: bytes) -> None:
        self.owner = owner
        self.connection = connection
        # Sent with the first chunk: a request whose body never starts is never begun.
        self.head: bytes | None = head
        self.done = False

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one chunk (an empty one is skipped: it would end the body)."""
        size = memoryview(data).nbytes
        if size:
            self._send([b"%x\r\n" % size, data, b"\r\n"])

    def finish(self, trailers: dict[str, str], timeout: float) -> Answer:
        """End the body with ``trailers`` and read the answer, all within ``timeout`` seconds."""
        self.owner._deadline = time.monotonic() + timeout
        if self.owner._longest is not None:
            self.owner.cut_short(self.owner._longest)
        lines = [b"0\r\n"]
        lines.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in trailers.items())
        lines.append(b"\r\n")
        try:
            self._send([b"".join(lines)])
            sock = self.connection.sock
            assert sock is not None
            answer, keep_alive = _read_answer(_SocketReader(sock, self.owner))
        except BaseException:
            self.abandon()
            raise
        self.done = True
        self.owner._release(self.connection, close=not keep_alive)
        return answer

    def abandon(self) -> None:
        """Give up on the request: its connection is closed (the pool opens a fresh one for the
        next exchange)."""
        if not self.done:
            self.done = True
            self.owner._release(self.connection, close=True)

    def _send(self, parts: list[bytes | bytearray | memoryview]) -> None:
        try:
            if self.head is not None:
                if self.connection.sock is None:
                    _open(self.connection)
                parts.insert(0, self.head)
                self.head = None
            sock = self.connection.sock
            assert sock is not None
            self.owner._send_parts(sock, [memoryview(part).cast("B") for part in parts])
        except BaseException:
            self.abandon()
            raise


def _open(connection: Connection) -> socket.socket:
    """Connect ``connection`` and return its socket, in blocking mode: timed exchanges wait
    in ``RuntimeConnection.wait``, not in the socket's calls. A failure to connect comes out
    as one of ``TRANSPORT_ERRORS``."""
    try:
        connection.connect()
    except OSError:
        raise
    except Exception as exc:  # urllib3's own: NewConnectionError, ConnectTimeoutError
        raise TransportError(f"cannot connect to the Runtime API: {exc}") from exc
    sock = connection.sock
    assert sock is not None  # connect() sets it or raises
    sock.settimeout(None)
    return sock


def _read_answer(reader: _SocketReader) -> tuple[Answer, bool]:
    while True:
        status, headers, keep_alive = reader.head()
        if not 100 <= status < 200:
            break  # informational answers (100 Continue) come before the real one
    try:
        data, keep_alive = _read_body(reader, status, headers, keep_alive)
    except (TransportError, OSError) as exc:
        raise IncompleteAnswer(str(exc), status, headers) from exc
    return Answer(status, headers, data), keep_alive


def _read_body(
    reader: _SocketReader, status: int, headers: Headers, keep_alive: bool
) -> tuple[bytes | bytearray, bool]:
    if status in (204, 304):
        data: bytes | bytearray = b""
    elif headers.get_lowercase("transfer-encoding", "").lower().endswith("chunked"):
        data = reader.chunked_body()
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise TransportError(f"bad Content-Length {headers['content-length'][:40]!r}") from None
        if not 0 <= length <= MAX_ANSWER_BYTES:
            raise TransportError(f"Content-Length {length} is out of range")
        data = reader.exact(length)
    else:
        data = reader.until_close()
        keep_alive = False
    if reader.buffer:
        keep_alive = False  # bytes after the answer: the connection is out of step
    return data, keep_alive


class _SocketReader:
    """Reads one answer from a socket, through a small buffer for the head and chunk lines;
    each read first waits as the connection's exchange allows (see ``wait``)."""

    def __init__(self, sock: socket.socket, connection: RuntimeConnection) -> None:
        self.sock = sock
        self.connection = connection
        self.buffer = b""

    def _fill(self) -> None:
        self.connection.wait(self.sock, select.POLLIN)
        chunk = self.sock.recv(_RECV_SIZE)
        if not chunk:
            raise TransportError("connection closed by the Runtime API mid-answer")
        self.buffer += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                return line
            if len(self.buffer) > _MAX_LINE:
                raise TransportError("line too long in answer")
            self._fill()

    def head(self) -> tuple[int, Headers, bool]:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buffer) > _MAX_HEAD:
                raise TransportError("answer head too long")
            self._fill()
        raw, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not (code.isdigit() and code.isascii()):
            raise TransportError(f"bad status line {lines[0][:80]!r}")
        if len(lines) > _MAX_HEADERS + 1:
            raise TransportError(f"more than {_MAX_HEADERS} headers in answer")
        headers = Headers()
        for line in lines[1:]:
            if len(line) > _MAX_LINE:
                raise TransportError("header line too long")
            name, colon, value = line.partition(":")
            if not colon:
                continue  # not a header; skipped rather than failing the whole answer
            key, value = name.strip(_HEADER_WHITESPACE).lower(), value.strip(_HEADER_WHITESPACE)
            if key in headers:
                headers.add(key, value)
            else:
                headers[key] = value  # the usual case, without a Python call per header
        connection = headers.get_lowercase("connection", "").lower()
        keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        return int(code), headers, keep_alive

    def exact(self, length: int) -> bytes | bytearray:
        if len(self.buffer) >= length:
            data, self.buffer = self.buffer[:length], self.buffer[length:]
            return data
        # A large event (up to 6 MB) is received straight into one buffer and handed on as
        # it is: each further copy would be another allocation of that size per event.
        out = bytearray(length)
        view = memoryview(out)
        have = len(self.buffer)
        view[:have] = self.buffer
        self.buffer = b""
        while have < length:
            self.connection.wait(self.sock, select.POLLIN)
            got = self.sock.recv_into(view[have:])
            if not got:
                raise TransportError("connection closed by the Runtime API mid-body")
            have += got
        return out

    def chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_field = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise TransportError(f"bad chunk size {size_field[:20]!r}") from None
            total += size
            if size < 0 or total > MAX_ANSWER_BYTES:
                raise TransportError(f"chunked body over {MAX_ANSWER_BYTES} bytes or chunk size {size}")
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(bytes(self.exact(size)))
            if self._line():
                raise TransportError("chunk not followed by CRLF")

    def until_close(self) -> bytes:
        parts = [self.buffer]
        self.buffer = b""
        while True:
            self.connection.wait(self.sock, select.POLLIN)
            chunk = self.sock.recv(_RECV_SIZE)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
