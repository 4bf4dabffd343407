"""Nothing a handler starts outlives its worker: the subreaper, the kills, and the keeper.

Three parts, each for a way a handler's processes could escape:

- The supervisor is a child subreaper (``become_subreaper``): a process a handler started
  whose parent died is re-parented to the supervisor, not to init, so the next kill of a
  worker finds it below the supervisor and the supervisor reaps it.
- ``kill_process`` and ``kill_group`` are the kills ``WorkerProcess`` and the keeper make:
  by pidfd and start time, so a pid that went to another process meanwhile is spared.
- The keeper (``Keeper``) takes down what the current worker started when the supervisor
  itself is killed, which no death signal of the kernel does.
"""

from __future__ import annotations

import gc
import os
import signal
import struct
import time

from worker import procfs
from worker.child import close_inherited_fds, close_quietly, prctl

# How long a SIGKILLed process gets to die before it is given up on. SIGKILL cannot be
# caught or blocked; only a process stuck in the kernel (a hung file system) outlasts it.
KILL_WAIT = 2.0
# The keeper's name in /proc (at most 15 bytes).
KEEPER_NAME = "lambda-keeper"
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36
_PID = struct.Struct("!i")
# Set by become_subreaper.
_subreaper = False


def become_subreaper() -> bool:
    """Make the supervisor a child subreaper (Linux): a process that a handler started and
    whose parent died (a double fork, a child of a worker killed at its deadline) is then
    re-parented to the supervisor instead of to init, where the next kill of a worker
    finds it and the supervisor reaps it. False where the kernel does not offer it."""
    global _subreaper
    _subreaper = prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def adopts_orphans() -> bool:
    """Are processes orphaned below the supervisor re-parented to it (to be reaped)?"""
    return _subreaper or os.getpid() == 1


def kill_process(process: procfs.Process) -> None:
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


def kill_group(pid: int) -> None:
    """SIGKILL the process group the worker ``pid`` was given (whoever is still in it)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Keeper:
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
                close_quietly(self._pipe)
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


# The supervisor's one keeper, started with its first worker.
KEEPER = Keeper()


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
        close_inherited_fds({commands})
        prctl(_PR_SET_NAME, KEEPER_NAME.encode())
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
            kill_process(process)
        time.sleep(0.005)
