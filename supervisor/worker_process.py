"""One worker process as the supervisor sees it: fork it, feed it, watch it, kill it.

``WorkerProcess.spawn`` forks a worker (the child runs ``worker.child.become_worker``)
with two pipes, events in and replies out, both framed by ``worker/protocol.py``. Every
wait is bounded: writing an event or reading a reply gives up at the deadline, or when
the worker's pidfd turns readable (the moment it dies, even if a process it started still
holds the pipe open), or, for a reply, when a signal arrives. What a wait comes to is a
value (a ``Reply``), never an exception, whatever the worker did.

The worker leads a process group of its own, and the supervisor is a child subreaper
(``supervisor/keeper.py``), so whatever a handler starts stays below the supervisor: a
kill of the worker takes its group and every process descended from it, even those that
left for sessions and groups of their own, and ``release`` kills and reaps whatever a
worker left behind before the next one is forked.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import time
from typing import TYPE_CHECKING, NamedTuple

from supervisor.keeper import KEEPER, KILL_WAIT, kill_group, kill_process
from worker import errors, procfs, protocol
from worker.child import become_worker, close_quietly
from worker.protocol import (
    Failed,
    Garbled,
    HooksFailed,
    HooksRan,
    InitFailed,
    Interrupted,
    Oversized,
    Ready,
    Result,
    StreamEnd,
    StreamStart,
    TimedOut,
)

if TYPE_CHECKING:  # for annotations only: runtime_api is imported after the first fork
    from supervisor.config import Settings
    from supervisor.runtime_api import Event

ANSWERED_TWICE = "worker answered an event twice"
# What may come while a reply is awaited: the reply, or what is left of the last event's stream.
_AWAITED_KINDS = protocol.REPLY_KINDS | protocol.STREAM_KINDS
# When the supervisor's first worker started (clock ticks after boot), set as it is forked:
# children of the supervisor older than that are not a worker's.
_first_worker_start: int | None = None


class Died(NamedTuple):
    """The worker exited (its pipe closed, and its exit status is known)."""

    wait_status: int


# What waiting for a worker's init, or for its reply to an event, can come to. The
# failures of the pipe (``TimedOut`` and the rest) are handed on as they were raised. A
# ``Reply`` is what an event's one answer is made from; ``Interrupted`` only ends a wait.
StartReply = Ready | InitFailed | Died | TimedOut | Garbled | Interrupted
Reply = Result | Failed | StreamStart | Died | TimedOut | Oversized | Garbled
InvokeReply = Reply | Interrupted
# What waiting for a phase of SnapStart's runtime hooks can come to.
HooksReply = HooksRan | HooksFailed | Died | TimedOut | Garbled | Interrupted
# What reading the next part of a streamed reply can come to: a chunk, the end, the error.
StreamPart = bytes | bytearray | StreamEnd | Failed | Died | TimedOut | Oversized | Garbled | Interrupted


class WorkerProcess:
    """One forked worker: its pid, pipes and pidfd, and what the supervisor knows of it (how
    it exited, how many events it served, the reply token of the last one).

    ``spawn`` forks it; ``wait_ready``, ``send`` and ``wait_reply`` talk to it; ``stop``
    retires it gracefully, ``kill`` ends it at once, and ``release`` takes down what is
    left of it and of what it started. Nothing the worker does raises here: a death, a
    hang or garbage on the pipe comes back as a reply.
    """

    def __init__(self, pid: int, to_worker: int, from_worker: int, max_response_bytes: int) -> None:
        self.pid = pid
        self.to_worker = to_worker
        self.from_worker = from_worker
        # Read only after a wait or with one at hand (``protocol.read_frame``): a reply cut
        # short by handler code must never block the supervisor.
        os.set_blocking(from_worker, False)
        self._has_output = protocol.Readable(from_worker)
        self.max_response_bytes = max_response_bytes
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
        self.wakeup_fd: int | None = None

    @classmethod
    def spawn(cls, settings: Settings) -> WorkerProcess:
        event_read, event_write = os.pipe()
        reply_read, reply_write = os.pipe()
        widen_pipe(event_write)
        widen_pipe(reply_write)
        # The worker never collects what exists now, so its collections do not write to
        # (and unshare) the pages it shares with the supervisor, which collects as before.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured by the e2e tests
            become_worker(
                settings.handler,
                event_read,
                reply_write,
                settings.max_response_bytes,
                settings.worker_memory_mb,
            )
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
        KEEPER.watch(pid)
        return cls(pid, event_write, reply_read, settings.max_response_bytes)

    # -- talking to it ----------------------------------------------------------------------

    def wait_ready(self, timeout: float | None, *, interruptible: bool = True) -> StartReply:
        deadline = None if timeout is None else time.monotonic() + timeout
        reply = self._read(
            deadline,
            protocol.START_KINDS,
            errors.ERROR_REPLY_SLACK,
            self.wakeup_fd if interruptible else None,
        )
        if isinstance(reply, protocol.Frame):
            return protocol.parse_start(reply)
        if isinstance(reply, Oversized):
            return Garbled(f"init reply of {reply.size} bytes")
        return reply

    def send(self, event: Event, deadline: float) -> bool:
        """Hand over one event; False when the worker is gone (or stopped reading)."""
        try:
            protocol.write_event(self.to_worker, event, deadline=deadline, watch=self.pidfd)
        except (BrokenPipeError, protocol.Closed, TimedOut):
            return False
        return True

    def wait_reply(self, deadline: float, token: str, *, interruptible: bool = True) -> InvokeReply:
        """The reply carrying ``token``. A second reply to the event before, which handler
        code can forge (or a forked copy of the worker send), is passed over: it is no
        fault of this event. The worker is marked ``answered_twice``, to be replaced."""
        interrupt = self.wakeup_fd if interruptible else None
        while True:
            frame = self._read(
                deadline, _AWAITED_KINDS, self.max_response_bytes + errors.ERROR_REPLY_SLACK, interrupt
            )
            if not isinstance(frame, protocol.Frame):
                return frame
            if frame.kind in protocol.STREAM_KINDS:
                if self.answered is None:
                    return Garbled(f"unexpected frame kind {frame.kind!r}")
                # The rest of the last event's stream, after an end that handler code forged.
                self.answered_twice = True
                continue
            got = protocol.reply_token(frame)
            if got == token:
                break
            if self.answered is None or got != self.answered:
                return Garbled("a reply that does not belong to this event")
            self.answered_twice = True
        self.answered = token
        try:
            return protocol.parse_reply(frame, self.max_response_bytes)
        except (Oversized, Garbled) as failure:
            return failure.with_traceback(None)

    def send_hooks(self, phase: str, deadline: float | None) -> bool:
        """Ask the worker to run one phase of SnapStart's runtime hooks; False when it is gone."""
        try:
            protocol.write_run_hooks(self.to_worker, phase, deadline=deadline, watch=self.pidfd)
        except (BrokenPipeError, protocol.Closed, TimedOut):
            return False
        return True

    def wait_hooks(self, deadline: float | None, *, interruptible: bool = True) -> HooksReply:
        """How the phase of hooks asked for went (the hooks are user code: anything can come)."""
        reply = self._read(
            deadline,
            protocol.HOOK_KINDS,
            errors.ERROR_REPLY_SLACK,
            self.wakeup_fd if interruptible else None,
        )
        if isinstance(reply, protocol.Frame):
            return protocol.parse_hooks_ran(reply)
        if isinstance(reply, Oversized):
            return Garbled(f"runtime hooks reply of {reply.size} bytes")
        return reply

    def read_stream(self, deadline: float, *, interruptible: bool = True) -> StreamPart:
        """The next part of the streamed reply begun by a ``StreamStart``: a chunk's bytes
        (never more than ``protocol.MAX_CHUNK_BYTES``), its end, or the error that ended it."""
        frame = self._read(
            deadline,
            protocol.STREAM_KINDS,
            protocol.MAX_STREAM_FRAME,
            self.wakeup_fd if interruptible else None,
        )
        if not isinstance(frame, protocol.Frame):
            return frame
        if frame.kind == protocol.CHUNK and len(frame.body) > protocol.MAX_CHUNK_BYTES:
            return Garbled(f"a stream chunk of {len(frame.body)} bytes")
        return protocol.parse_stream_part(frame)

    def stray_output(self) -> str | None:
        """Why this worker must not be given an event: it wrote on its reply pipe while it had
        none (a second reply to its last event, or anything else). None when all is quiet.
        What it wrote would otherwise be read as the next event's reply."""
        if self.from_worker < 0 or not self._has_output():
            return None
        stray = self._read(
            time.monotonic(), protocol.REPLY_KINDS, self.max_response_bytes + errors.ERROR_REPLY_SLACK
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
                nonblocking=True,
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
        family = procfs.descendants(self.pid)
        if family is None:
            family = [p for p in procfs.family(procfs.processes(), [self.pid]) if p.pid != self.pid]
        self._signal(signal.SIGKILL)
        kill_group(self.pid)
        for process in family:
            kill_process(process)
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
        close_quietly(self.to_worker)
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
        kill_group(self.pid)
        stuck = self._kill_leftovers()
        KEEPER.watch(0)
        for fd in (self.to_worker, self.from_worker, self.pidfd):
            if fd is not None:
                close_quietly(fd)
        self.to_worker = self.from_worker = -1
        self.pidfd = None
        return stuck

    def reap_orphans(self) -> bool:
        """Reap the supervisor's children that have exited, other than this worker: the
        orphans re-parented to it. This worker's exit, if it is among them, is recorded as
        its wait status (``exited``), never lost. True when, once they are reaped, no child
        has exited: this worker is alive then."""
        waitid = getattr(os, "waitid", None)
        while True:
            try:
                if waitid is None:  # no peeking at a status before taking it
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        return self.wait_status is None  # none has exited, this worker included
                    if pid == self.pid and self.wait_status is None:
                        self.wait_status = status
                    continue
                exited = waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                if exited is None:
                    return self.wait_status is None  # none has exited, this worker included
                if not self._reap(exited.si_pid):
                    return False  # one had exited but could not be reaped: nothing is known
            except ChildProcessError:
                return False  # no child at all, so not this worker either

    def _reap(self, pid: int) -> int:
        """Reap one child that has exited; returns its pid, or 0 if it had not."""
        if pid == self.pid and not self.abandoned:
            return pid if self.exited() else 0
        if pid == KEEPER.pid:
            KEEPER.pid = None  # dead: the next worker it is told about starts another
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
                and p.pid != KEEPER.pid
                and (_first_worker_start is None or p.start >= _first_worker_start)
            ]
            left = procfs.family(processes, started)
            for process in left:
                if process.state != "Z":
                    kill_process(process)
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


def widen_pipe(fd: int) -> None:
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
