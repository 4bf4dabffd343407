"""One worker process as the supervisor sees it: fork it, feed it, watch it, kill it.

The worker runs in its own process group, and the supervisor is a child subreaper, so
that whatever a handler starts stays below the supervisor: a kill of the worker takes its
group and every process descended from it, even those that left for sessions and groups
of their own. The supervisor waits on two things at once: the result pipe, and a pidfd
that turns readable the moment the worker dies, so a death is noticed at once even if a
grandchild still holds the pipe open.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import struct
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

from worker import errors, procfs, protocol
from worker.protocol import Failed, Garbled, InitFailed, Interrupted, Oversized, Ready, Result, TimedOut

if TYPE_CHECKING:  # imported for annotations only: the first fork happens before urllib3 loads
    from supervisor.config import Settings
    from supervisor.runtime_api import Invocation

ANSWERED_TWICE = "worker answered an event twice"
# How long a SIGKILLed process gets to die before it is given up on. SIGKILL cannot be
# caught or blocked; only a process stuck in the kernel (a hung file system) outlasts it.
KILL_WAIT = 2.0


class Died(NamedTuple):
    """The worker exited (its pipe closed, and its exit status is known)."""

    wait_status: int


# What waiting for a worker's init report, or for its reply to an event, can come to. The
# failures of the pipe (``TimedOut`` and the rest) are handed on as they were raised. A
# ``Reply`` is what an event's one answer is made from; ``Interrupted`` only ends a wait.
StartReply = Ready | InitFailed | Died | TimedOut | Garbled | Interrupted
Reply = Result | Failed | Died | TimedOut | Oversized | Garbled
InvokeReply = Reply | Interrupted


class WorkerProcess:
    def __init__(self, pid: int, to_worker: int, from_worker: int, max_response: int) -> None:
        self.pid = pid
        self.to_worker = to_worker
        self.from_worker = from_worker
        self.max_response = max_response
        self.wait_status: int | None = None
        self.pidfd: int | None = _pidfd_open(pid)
        self.started_at = time.monotonic()
        self.invocations = 0
        # Set when the worker would not die when killed; it was given up on.
        self.abandoned = False
        # The reply token of the last event answered, and whether a second reply came.
        self.answered: str | None = None
        self.answered_twice = False
        # A signal wakeup descriptor: a wait for a reply ends early when it fires.
        self.interrupt_fd: int | None = None

    @classmethod
    def spawn(cls, settings: Settings) -> WorkerProcess:
        event_read, event_write = os.pipe()
        reply_read, reply_write = os.pipe()
        _widen_pipe(event_write)
        _widen_pipe(reply_write)
        # The worker never collects what exists now, so its collections do not write to
        # (and unshare) the pages it shares with the supervisor, which collects as before.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured by the e2e tests
            _become_worker(settings, event_read, reply_write)
        gc.unfreeze()
        os.close(event_read)
        os.close(reply_write)
        # Writes must never block the supervisor: a worker that stops reading is waited on
        # with a deadline like everything else.
        os.set_blocking(event_write, False)
        try:
            os.setpgid(pid, pid)  # also done in the child; whichever runs first wins
        except OSError:
            pass
        global _first_worker_start
        if _first_worker_start is None:
            first = procfs.read_stat(pid)
            _first_worker_start = first.start if first is not None else 0
        _keeper.watch(pid)
        return cls(pid, event_write, reply_read, settings.max_response_bytes)

    # -- talking to it ----------------------------------------------------------------------

    def wait_ready(self, timeout: float | None, *, interruptible: bool = True) -> StartReply:
        deadline = None if timeout is None else time.monotonic() + timeout
        reply = self._read(
            deadline,
            protocol.START_KINDS,
            errors.ERROR_REPLY_SLACK,
            self.interrupt_fd if interruptible else None,
        )
        if isinstance(reply, protocol.Frame):
            return protocol.parse_start(reply)
        if isinstance(reply, Oversized):
            return Garbled(f"init reply of {reply.size} bytes")
        return reply

    def send(self, invocation: Invocation, deadline: float) -> bool:
        """Hand over one event; False when the worker is gone (or stopped reading)."""
        try:
            protocol.write_event(self.to_worker, invocation, deadline=deadline, watch=self.pidfd)
        except (BrokenPipeError, protocol.Closed, TimedOut):
            return False
        return True

    def wait_reply(self, deadline: float, token: str, *, interruptible: bool = True) -> InvokeReply:
        """The reply carrying ``token``. A second reply to the event before, which handler
        code can forge (or a forked copy of the worker send), is passed over: it is no
        fault of this event. The worker is marked ``answered_twice``, to be replaced."""
        interrupt = self.interrupt_fd if interruptible else None
        while True:
            frame = self._read(
                deadline, protocol.REPLY_KINDS, self.max_response + errors.ERROR_REPLY_SLACK, interrupt
            )
            if not isinstance(frame, protocol.Frame):
                return frame
            got = protocol.reply_token(frame)
            if got == token:
                break
            if self.answered is None or got != self.answered:
                return Garbled("a reply that does not belong to this event")
            self.answered_twice = True
        self.answered = token
        try:
            return protocol.parse_reply(frame, self.max_response)
        except (Oversized, Garbled) as failure:
            return failure.with_traceback(None)

    def stray_output(self) -> str | None:
        """Why this worker must not be given an event: it wrote on its reply pipe while it had
        none (a second reply to its last event, or anything else). None when all is quiet.
        What it wrote would otherwise be read as the next event's reply."""
        if self.from_worker < 0 or not protocol.readable(self.from_worker):
            return None
        stray = self._read(
            time.monotonic(), protocol.REPLY_KINDS, self.max_response + errors.ERROR_REPLY_SLACK
        )
        if isinstance(stray, protocol.Frame) and self.answered is not None:
            if protocol.reply_token(stray) == self.answered:
                self.answered_twice = True
                return ANSWERED_TWICE
        return "worker wrote on its reply pipe between events"

    def _read(
        self, deadline: float | None, allowed: frozenset[bytes], max_body: int, interrupt: int | None = None
    ) -> protocol.Frame | Died | TimedOut | Oversized | Garbled | Interrupted:
        """The next frame, or how reading it failed (never raises: every failure is a reply)."""
        try:
            return protocol.read_frame(
                self.from_worker,
                max_body=max_body,
                deadline=deadline,
                allowed=allowed,
                watch=self.pidfd,
                interrupt=interrupt,
            )
        except protocol.Closed:
            status = self.wait_exit(1.0)
            if status is None:
                return Garbled("worker closed its end of the pipe")
            return Died(status)
        except protocol.FAILURES as failure:
            # Handed on as the reply it is; its traceback would keep the frame's buffers alive.
            return failure.with_traceback(None)

    # -- life and death ---------------------------------------------------------------------

    def exited(self) -> bool:
        """Has the worker died on its own (reaping it if so)?"""
        if self.wait_status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False
        self.wait_status = status
        return True

    def wait_exit(self, timeout: float) -> int | None:
        """The wait status once the worker has exited, or None if it is still alive."""
        give_up = time.monotonic() + timeout
        while not self.exited():
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                return None
            if self.pidfd is not None:
                select.select([self.pidfd], [], [], remaining)
            else:
                time.sleep(min(remaining, 0.005))
        return self.wait_status

    def kill(self) -> int:
        """SIGKILL the worker and its process group; the worker's wait status.

        The worker itself is always signalled (through its pidfd, so never a process that
        has since taken its pid): a handler can move it out of its own group, even into the
        supervisor's, and a kill of the group alone would then miss it. The wait is bounded:
        a worker that does not die within ``KILL_WAIT`` (stuck in the kernel) is marked
        ``abandoned`` and reported as killed, and reaped later like any orphan.
        """
        if self.wait_status is not None:
            return self.wait_status
        # Found before the worker dies and lets go of them: the processes it started, by
        # their parent links, wherever they moved (without a subreaper, the only chance).
        family = procfs.family(procfs.processes(), [self.pid])
        self._signal(signal.SIGKILL)
        _kill_group(self.pid)
        for process in family:
            if process.pid != self.pid:
                _kill_process(process)
        status = self.wait_exit(KILL_WAIT)
        if status is None:
            self.abandoned = True
            self.wait_status = status = signal.SIGKILL  # the status it will die with
        return status

    def stop(self, grace: float) -> int:
        """Retire the worker: SIGTERM (its shutdown hook, if the handler installed one) and
        end of input, then SIGKILL for the whole group after ``grace`` seconds."""
        if not self.exited():
            self._signal(signal.SIGTERM)
        _close_quietly(self.to_worker)
        status = self.wait_exit(grace)
        return status if status is not None else self.kill()

    def _signal(self, signum: int) -> None:
        """Signal the worker, unless it has been reaped (its pid may be another's by now)."""
        if self.wait_status is not None:
            return
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def rss_mb(self) -> float | None:
        """The worker's resident memory, from /proc (None where that is not available)."""
        rss_kb = procfs.status_kb(self.pid, "VmRSS")
        return None if rss_kb is None else rss_kb / 1024

    def release(self) -> list[int]:
        """Kill what is left of this worker and close what the supervisor holds for it.

        Everything goes: the worker if it still runs, its process group, and every process
        below the supervisor that a worker started (the supervisor being their subreaper,
        processes whose parents died are its children now). They are reaped, so none is
        left a zombie. Returns the pids of those that would not die within ``KILL_WAIT``.
        """
        self._signal(signal.SIGKILL)
        _kill_group(self.pid)
        stuck = self._kill_leftovers()
        _keeper.watch(0)
        for fd in (self.to_worker, self.from_worker, self.pidfd):
            if fd is not None:
                _close_quietly(fd)
        self.to_worker = self.from_worker = -1
        self.pidfd = None
        return stuck

    def reap_orphans(self) -> None:
        """Reap the supervisor's children that have exited, other than this worker: the
        orphans re-parented to it. This worker's exit, if it is among them, is recorded as
        its wait status (``exited``), never lost."""
        waitid = getattr(os, "waitid", None)
        while True:
            try:
                if waitid is None:  # no peeking at a status before taking it
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == self.pid and self.wait_status is None:
                        self.wait_status = status
                else:
                    exited = waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                    pid = 0 if exited is None else self._reap(exited.si_pid)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _reap(self, pid: int) -> int:
        """Reap one child that has exited; returns its pid, or 0 if it had not."""
        if pid == self.pid and not self.abandoned:
            return pid if self.exited() else 0
        if pid == _keeper.pid:
            _keeper.pid = None  # dead: the next worker it is told about starts another
        try:
            return os.waitpid(pid, os.WNOHANG)[0]
        except ChildProcessError:
            return 0

    def _kill_leftovers(self) -> list[int]:
        """SIGKILL and reap every process below the supervisor that a worker started,
        until none is left or ``KILL_WAIT`` has passed; the pids still running then.

        Children of the supervisor older than its first worker are not a worker's (an exec
        wrapper may have left them), and are spared with their descendants.
        """
        supervisor = os.getpid()
        give_up = time.monotonic() + KILL_WAIT
        while True:
            processes = procfs.processes()
            started = [
                p.pid
                for p in processes
                if p.ppid == supervisor
                and p.pid != _keeper.pid
                and (_first_worker_start is None or p.start >= _first_worker_start)
            ]
            left = procfs.family(processes, started)
            for process in left:
                if process.state != "Z":
                    _kill_process(process)
                elif process.ppid == supervisor:
                    self._reap(process.pid)
            if not left:
                return []
            if time.monotonic() >= give_up:
                return [p.pid for p in left if p.state != "Z"]
            time.sleep(0.002)


# Linux's F_SETPIPE_SZ (the fcntl module names it from Python 3.10 on).
_F_SETPIPE_SZ = 1031
# A pipe holds 64 KiB by default, so a 5 MB event or result would cross in 80 rounds of
# writer-wakes-reader; 1 MiB (the unprivileged maximum) makes it 5. The kernel only takes
# the pages while data sits in the pipe.
_PIPE_BYTES = 1 << 20


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except (OSError, ImportError):
        pass  # a lower limit or another kernel: the default size still works


def _pidfd_open(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def become_subreaper() -> bool:
    """Make the supervisor a child subreaper (Linux): a process that a handler started and
    whose parent died (a double fork, a child of a worker killed at its deadline) is then
    re-parented to the supervisor instead of to init, where the next kill of a worker
    finds it and the supervisor reaps it. False where the kernel does not offer it."""
    global _subreaper
    _subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def adopts_orphans() -> bool:
    """Are processes orphaned below the supervisor re-parented to it (to be reaped)?"""
    return _subreaper or os.getpid() == 1


def _prctl(option: int, value: int | bytes) -> bool:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux


def _kill_process(process: procfs.Process) -> None:
    """SIGKILL a process found in /proc, unless its pid has gone to another process since."""
    opener = getattr(os, "pidfd_open", None)
    try:
        if opener is None:
            os.kill(process.pid, signal.SIGKILL)
            return
        fd = opener(process.pid)
    except OSError:
        return  # gone already
    try:
        again = procfs.read_stat(process.pid)
        if again is not None and again.start == process.start:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kill_group(pid: int) -> None:
    """SIGKILL the process group the worker ``pid`` was given (whoever is still in it)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _close_inherited_fds(keep: set[int]) -> None:
    """Close what the supervisor had open (its Runtime API socket, old pipes), so user code
    can neither write on the supervisor's connection nor keep a dead worker's pipe alive."""
    for fd in procfs.open_fds() or ():
        if fd > 2 and fd not in keep:
            _close_quietly(fd)


def _become_worker(settings: Settings, event_read: int, reply_write: int) -> None:  # pragma: no cover
    """The child side of the fork. Never returns into the supervisor's code."""
    code = 1
    supervisor_pid = os.getppid()
    try:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        _die_with_supervisor(supervisor_pid)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _close_inherited_fds({event_read, reply_write})
        if settings.worker_memory_mb:
            import resource

            limit = int(settings.worker_memory_mb * 1024 * 1024)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        from worker.main import run

        # From here on the runtime's code runs from the module objects it already holds.
        _forget_runtime_modules()
        run(settings.handler, event_read, reply_write, settings.max_response_bytes, settings.worker_memory_mb)
        code = 0
    except SystemExit as exc:
        code = _system_exit_code(exc)
    except KeyboardInterrupt:
        # Die of SIGINT, as an interpreter does on an unhandled KeyboardInterrupt.
        _flush_stdio()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        if not _flush_stdio() and code == 0:
            code = 120  # what an interpreter returns when it cannot flush stdout at exit
        os._exit(code)


def _die_with_supervisor(supervisor_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the supervisor dies (even by SIGKILL).

    SIGKILL because handler code can block, catch or ignore any other signal. What the
    worker started is the keeper's to take down (see ``_Keeper``).
    """
    if not _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL):
        return  # not Linux: the worker still exits when its event pipe closes
    if os.getppid() != supervisor_pid:
        os.kill(os.getpid(), signal.SIGKILL)  # the supervisor died before the request took effect


class _Keeper:
    """The process that takes down what a worker started when the supervisor is killed.

    The kernel kills the worker itself with the supervisor: its death signal
    (``PR_SET_PDEATHSIG``) is SIGKILL. A death signal is one process's own, though: what
    the worker forks inherits none, and nothing else would stop it once the supervisor is
    gone. The keeper does. The supervisor forks it once; it runs no user code, and sits in
    a process group of its own so that a kill aimed at the runtime's group leaves it its
    work. It reads the current worker's pid from a pipe whose only writer is the
    supervisor: when the supervisor dies, however it dies, the pipe reads end-of-file,
    and the keeper SIGKILLs that worker, its process group and whatever is still
    descended from it, then exits.

    That is as far as the kernel allows: a process that left the worker's group and
    whose parent died is re-parented to init once the supervisor is gone, and nothing
    records where it came from (a PID namespace or a cgroup would; a Lambda runtime can
    create neither). While the supervisor lives, its own kills reach those too.
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self._pipe: int | None = None

    def watch(self, worker_pid: int) -> None:
        """Name the worker to take down with the supervisor from now on (0: none)."""
        for _attempt in range(2):
            if self._pipe is None and not (worker_pid and self._start()):
                return
            assert self._pipe is not None
            try:
                os.write(self._pipe, _PID.pack(worker_pid))
                return
            except BlockingIOError:
                return  # the keeper has stopped reading: there is no waiting for it
            except OSError:  # the keeper is gone (a handler killed it): start another
                _close_quietly(self._pipe)
                self._pipe = self.pid = None

    def _start(self) -> bool:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return False
        if pid == 0:  # pragma: no cover - runs in the keeper, measured by the e2e tests
            _keep(read_end)
        os.close(read_end)
        os.set_blocking(write_end, False)
        self.pid, self._pipe = pid, write_end
        return True


def _keep(commands: int) -> None:  # pragma: no cover - runs in the keeper
    """The keeper's life: note each worker the supervisor names; at end-of-file (the
    supervisor is gone), kill the last one named and what it started."""
    try:
        gc.disable()
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        # Nor does it hold the runtime's output open: a reader waiting for its end would
        # wait for the keeper too.
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        _close_inherited_fds({commands})
        _prctl(_PR_SET_NAME, KEEPER_NAME.encode())
        worker: procfs.Process | None = None
        pending = b""
        while True:
            chunk = os.read(commands, 512)
            if not chunk:
                break
            pending += chunk
            while len(pending) >= _PID.size:
                (pid,) = _PID.unpack(pending[: _PID.size])
                pending = pending[_PID.size :]
                worker = procfs.read_stat(pid) if pid else None
        if worker is not None:
            _take_down(worker)
    finally:
        os._exit(0)


def _take_down(worker: procfs.Process) -> None:  # pragma: no cover - runs in the keeper
    """SIGKILL ``worker``, its process group and its descendants until none is left."""
    session = os.getsid(0)
    give_up = time.monotonic() + KILL_WAIT
    while True:
        processes = procfs.processes()
        still = [p for p in processes if p.pid == worker.pid and p.start == worker.start]
        doomed = procfs.family(processes, [p.pid for p in still])
        doomed += [p for p in processes if p.pgid == worker.pid and p.sid == session]
        doomed = [p for p in doomed if p.state != "Z"]
        if not doomed or time.monotonic() >= give_up:
            return
        for process in doomed:
            _kill_process(process)
        time.sleep(0.005)


# The keeper's name in /proc (at most 15 bytes).
KEEPER_NAME = "lambda-keeper"
_PID = struct.Struct("!i")
_keeper = _Keeper()
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36
# Set by become_subreaper; the first worker's start time, by spawn.
_subreaper = False
_first_worker_start: int | None = None

_PR_SET_PDEATHSIG = 1

# The runtime's own packages, and the third-party ones the supervisor loads for itself.
# A function may have modules of these names (a ``worker.py``, PyPI's ``supervisor``, its
# own urllib3); every worker, whenever it was forked and whatever the supervisor had
# imported by then, must import the function's, as it would on AWS's runtime.
RUNTIME_MODULES = ("supervisor", "worker", "urllib3", "structlog")


def _forget_runtime_modules() -> None:
    for name in [name for name in sys.modules if name.partition(".")[0] in RUNTIME_MODULES]:
        del sys.modules[name]


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _flush_stdio() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok
