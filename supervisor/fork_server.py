"""The fork server: the one process that forks workers once the supervisor runs threads.

With several slots (``AWS_LAMBDA_MAX_CONCURRENCY``) the supervisor runs a thread per
slot, and a process that runs threads must never fork: a lock another thread held at the
fork (the allocator's, the import lock, a logging handler's) stays held for ever in the
child. So before any thread starts the supervisor forks this server, which stays
single-threaded and forks every worker on a slot's request:

- Each slot has a line of its own to the server, a Unix socket pair. To start a worker,
  the slot makes the worker's two pipes and passes their child ends (``socket.send_fds``);
  the server forks, the child becomes the worker (``worker.child.become_worker``), and the
  server answers with its pid. A worker is its parent's to reap, so the server reaps it
  and tells the slot that started it how it exited; the slot watches it through its pidfd
  as it does a child of its own (``ServedWorker``).
- With ``LAMBDA_SUPERVISOR_PRELOAD`` the server imports the function first, runs its
  before-snapshot hooks once and freezes the collector, so that every worker, and every
  replacement, starts from that state with its pages shared (``worker.main.preload``).
- The server is a child subreaper, so what a worker leaves behind is re-parented to it
  and reaped there. It is also the keeper of its workers (``supervisor/keeper.py`` keeps
  the one-slot runtime's): it sits in a process group of its own, and when the
  supervisor is gone, however it went, its lines read end-of-file and the server kills
  every worker and everything below it, then exits.

A handler that kills the server takes every slot's future workers with it: the slot that
next needs one finds the line closed, and the runtime exits for Lambda to start afresh.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import struct
import time
from typing import TYPE_CHECKING, NoReturn

from supervisor.keeper import KILL_WAIT, kill_group, kill_process
from supervisor.worker_process import WorkerProcess, widen_pipe
from worker import procfs
from worker.child import (
    become_worker,
    close_inherited_fds,
    close_quietly,
    load_common_modules,
    prctl,
    preload_function,
)
from worker.logs import SharedOutput

if TYPE_CHECKING:
    from supervisor.config import Settings
    from worker.main import Preloaded

# One message on a line, either way: a kind, a pid and a value (an errno, a wait status).
_MESSAGE = struct.Struct("!cii")
_FORK = b"F"  # slot -> server, with the worker's two pipe ends: fork a worker
_FORKED = b"P"  # server -> slot: its pid
_FAILED = b"E"  # server -> slot: the fork failed, with its errno
_EXITED = b"X"  # server -> slot: a worker of this slot exited, with its wait status
# How long a slot waits for the server to fork: a fork takes milliseconds; a server that
# answers in none of this is gone or stuck, and the slot gets no worker.
FORK_ANSWER_TIMEOUT = 10.0
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NAME = 15
SERVER_NAME = "lambda-forksrv"


class ForkServer:
    """The supervisor's handle on the fork server: its pid and one ``Line`` per slot."""

    def __init__(self, pid: int, lines: list[Line]) -> None:
        self.pid = pid
        self.lines = lines

    @classmethod
    def start(cls, settings: Settings, slots: int) -> ForkServer:
        """Fork the server (the supervisor must not run threads yet)."""
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(slots)]
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the fork server, measured by the e2e tests
            for ours, _theirs in pairs:
                ours.detach()
            _serve(settings, [theirs for _ours, theirs in pairs])
        gc.unfreeze()
        for _ours, theirs in pairs:
            theirs.close()
        return cls(pid, [Line(ours) for ours, _theirs in pairs])

    def close(self, timeout: float = KILL_WAIT + 1.0) -> int | None:
        """Close every line: the server takes down what is left below it and exits. Its wait
        status, or None if it did not exit in ``timeout`` seconds (then it is killed)."""
        for line in self.lines:
            line.sock.close()
        give_up = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                return status
            if time.monotonic() >= give_up:
                kill_group(self.pid)
                return None
            time.sleep(0.005)


class Line:
    """One slot's line to the fork server: it asks for workers and hears how they exited.

    Used by one thread at a time (the slot's), so it needs no lock. Exit statuses that
    arrive while the slot waits for something else are kept until asked for.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.statuses: dict[int, int] = {}

    def spawn(self, settings: Settings) -> ServedWorker:
        """A new worker forked by the server; ``OSError`` when the server cannot fork one."""
        event_read, event_write = os.pipe()
        reply_read, reply_write = os.pipe()
        # The workers before were released: a status still kept is one no one asks for.
        self.statuses.clear()
        widen_pipe(event_write)
        widen_pipe(reply_write)
        try:
            socket.send_fds(self.sock, [_MESSAGE.pack(_FORK, 0, 0)], [event_read, reply_write])
            pid = self._forked()
        except OSError:
            close_quietly(event_write)
            close_quietly(reply_read)
            raise
        finally:
            os.close(event_read)
            os.close(reply_write)
        os.set_blocking(event_write, False)
        return ServedWorker(pid, event_write, reply_read, settings.max_response_bytes, self)

    def _forked(self) -> int:
        give_up = time.monotonic() + FORK_ANSWER_TIMEOUT
        while True:
            remaining = give_up - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                raise TimeoutError("the fork server did not answer")
            kind, pid, value = self._receive()
            if kind == _FORKED:
                return pid
            if kind == _FAILED:
                raise OSError(value, f"the fork server could not fork a worker: {os.strerror(value)}")

    def collect(self) -> None:
        """Take in the exit statuses the server has sent, without waiting."""
        while select.select([self.sock], [], [], 0)[0]:
            self._receive()

    def _receive(self) -> tuple[bytes, int, int]:
        data = self.sock.recv(_MESSAGE.size)
        if len(data) != _MESSAGE.size:
            raise ConnectionError("the fork server is gone")
        kind, pid, value = _MESSAGE.unpack(data)
        if kind == _EXITED:
            self.statuses[pid] = value
        return kind, pid, value


class ServedWorker(WorkerProcess):
    """A worker the fork server forked: a child of the server, not of the supervisor.

    Talked to, watched (its pidfd works for any process) and killed exactly as a worker of
    the supervisor's own; only its exit status comes from the server, which reaps it, and
    what it leaves behind is the server's to reap and, at the end, to kill.
    """

    def __init__(
        self, pid: int, to_worker: int, from_worker: int, max_response_bytes: int, line: Line
    ) -> None:
        super().__init__(pid, to_worker, from_worker, max_response_bytes)
        self.line = line
        # Set while ``kill`` waits for the worker to die.
        self._killing = False

    def exited(self) -> bool:
        if self.wait_status is not None:
            return True
        try:
            self.line.collect()
        except OSError:
            # The server is gone, and its workers with it (they die with their parent).
            self.wait_status = signal.SIGKILL
            return True
        status = self.line.statuses.pop(self.pid, None)
        if status is None:
            return False
        self.wait_status = status
        return True

    def wait_exit(self, timeout: float) -> int | None:
        give_up = time.monotonic() + timeout
        watched = [self.line.sock.fileno()] if self.pidfd is None else [self.line.sock.fileno(), self.pidfd]
        while not self.exited():
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return None
            ready = select.select(watched, [], [], remaining)[0]
            if self._killing and self.pidfd in ready:
                # Dead of the SIGKILL just sent: not worth waiting for the server to say so
                # (a timeout is reported once the worker is dead, and that is now).
                self.wait_status = signal.SIGKILL
        return self.wait_status

    def kill(self) -> int:
        """``WorkerProcess.kill``, its wait for the death ended as soon as the pidfd fires:
        the server's report of the exit can come later (``wait_exit``)."""
        self._killing = True
        try:
            return super().kill()
        finally:
            self._killing = False

    def reap_orphans(self) -> bool:
        """Nothing to do: orphans are re-parented to the fork server, which reaps them. Nor
        does it tell whether this worker lives (False): its exit is the server's to report."""
        return False

    def release(self) -> list[int]:
        """Kill what is left of the worker (itself, its process group) and close its pipes.

        What it started and moved out of its group is found by parent links when the
        worker is killed (``kill``); what escaped both is the fork server's to reap, and
        to kill when the runtime shuts down.
        """
        self._signal(signal.SIGKILL)
        kill_group(self.pid)
        for fd in (self.to_worker, self.from_worker, self.pidfd):
            if fd is not None and fd >= 0:
                close_quietly(fd)
        self.to_worker = self.from_worker = -1
        self.pidfd = None
        return []


# ------------------------------------------------------------------------- the server itself


def _serve(settings: Settings, lines: list[socket.socket]) -> NoReturn:  # pragma: no cover - in the server
    """The server's life: fork a worker for each request, tell each slot how its workers
    exit, and take everything down when the supervisor is gone."""
    code = 0
    try:
        os.setpgid(0, 0)
        prctl(_PR_SET_CHILD_SUBREAPER, 1)
        worker_name = _own_name()
        prctl(_PR_SET_NAME, SERVER_NAME.encode())
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        child_exited, wakeup = os.pipe()
        os.set_blocking(child_exited, False)
        os.set_blocking(wakeup, False)
        signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        close_inherited_fds({line.fileno() for line in lines} | {child_exited, wakeup})
        SharedOutput.open_lock()  # its own, for what the function prints at import
        if settings.preload:
            preloaded: Preloaded | None = preload_function(settings.handler)
        else:
            preloaded = None
            load_common_modules()
        # Nothing the workers inherit is collected in them, so their pages stay shared.
        gc.freeze()
        _fork_on_request(settings, lines, child_exited, preloaded, worker_name)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _fork_on_request(
    settings: Settings,
    lines: list[socket.socket],
    child_exited: int,
    preloaded: Preloaded | None,
    worker_name: bytes | None,
) -> None:  # pragma: no cover - runs in the server
    owners: dict[int, socket.socket] = {}
    open_lines = {line.fileno(): line for line in lines}
    while open_lines:
        try:
            ready = select.select([*open_lines, child_exited], [], [])[0]
        except InterruptedError:
            continue
        for fd in ready:
            if fd == child_exited:
                _drain(child_exited)
                _reap(owners)
                continue
            line = open_lines[fd]
            try:
                data, fds, _flags, _address = socket.recv_fds(line, _MESSAGE.size, 2)
            except OSError:
                data, fds = b"", []
            if len(data) != _MESSAGE.size or len(fds) != 2:
                for fd in fds:
                    close_quietly(fd)
                if not data:  # the supervisor closed this line (it is shutting down, or gone)
                    del open_lines[fd]
                continue
            pid = _fork_worker(settings, fds[0], fds[1], preloaded, worker_name)
            if pid < 0:
                _tell(line, _FAILED, 0, -pid)
            else:
                owners[pid] = line
                _tell(line, _FORKED, pid, 0)
        _reap(owners)
    _take_everything_down()


def _fork_worker(
    settings: Settings,
    event_read: int,
    reply_write: int,
    preloaded: Preloaded | None,
    worker_name: bytes | None,
) -> int:  # pragma: no cover - runs in the server
    """Fork one worker on the given pipe ends; its pid, or minus the errno of a failed fork.
    The worker is named as the supervisor is (as a worker of the one-slot runtime is)."""
    try:
        pid = os.fork()
    except OSError as exc:
        return -(exc.errno or 1)
    if pid == 0:
        if worker_name:
            prctl(_PR_SET_NAME, worker_name)
        become_worker(
            settings.handler,
            event_read,
            reply_write,
            settings.max_response_bytes,
            settings.worker_memory_mb,
            preloaded,
        )
    os.close(event_read)
    os.close(reply_write)
    try:
        os.setpgid(pid, pid)  # also done in the child; whichever runs first wins
    except OSError:
        pass
    return pid


def _own_name() -> bytes | None:  # pragma: no cover - runs in the server
    try:
        with open("/proc/self/comm", "rb") as comm:
            return comm.read().rstrip(b"\n")
    except OSError:
        return None


def _tell(line: socket.socket, kind: bytes, pid: int, value: int) -> None:  # pragma: no cover
    try:
        line.send(_MESSAGE.pack(kind, pid, value))
    except OSError:
        pass  # the slot's end is closed: the supervisor is shutting down


def _drain(fd: int) -> None:  # pragma: no cover - runs in the server
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _reap(owners: dict[int, socket.socket]) -> None:  # pragma: no cover - runs in the server
    """Reap every child that exited: a worker's status goes to its slot; an orphan that was
    re-parented here is reaped so that it is no zombie."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        line = owners.pop(pid, None)
        if line is not None:
            _tell(line, _EXITED, pid, status)


def _take_everything_down() -> None:  # pragma: no cover - runs in the server
    """SIGKILL every process below the server (workers, what they started, the groups they
    lead) and reap them, until none is left or ``KILL_WAIT`` has passed."""
    server = os.getpid()
    session = os.getsid(0)
    give_up = time.monotonic() + KILL_WAIT
    while time.monotonic() < give_up:
        processes = procfs.processes()
        children = [p.pid for p in processes if p.ppid == server]
        doomed = procfs.family(processes, children)
        doomed += [p for p in processes if p.pgid in children and p.sid == session]
        for process in doomed:
            if process.state != "Z":
                kill_process(process)
        for pid in children:
            kill_group(pid)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        if not doomed:
            return
        time.sleep(0.005)
