"""Lambda Managed Instances: N slots, each the one-slot loop in a thread of its own.

With ``AWS_LAMBDA_MAX_CONCURRENCY=N`` Lambda lets N ``GET /next`` long polls be
outstanding at once and takes answers for different invocations concurrently. The runtime
keeps N slots. A slot is exactly the one-slot runtime (``Supervisor`` in
``supervisor/loop.py``): its own worker, its own Runtime API connection, its own wakeup
pipe, and every guarantee on its own clock. One slot's crash, hang, kill, replacement or
slow post never waits on another, because nothing is shared between them but the fork
server that starts their workers (``supervisor/fork_server.py``: a process running
threads must not fork) and the log output (``worker.logs.SharedOutput``).

The main thread starts it all before the first ``/next``: the fork server first (before
any thread exists), then one worker per slot, whose inits run in parallel; the first init
failure is posted to ``/init/error`` once and the runtime exits. Then it starts the slots
and waits. SIGTERM and SIGINT reach the main thread only; it asks every slot to shut
down (each then gives its invocation in flight ``SHUTDOWN_GRACE``, in parallel). A slot
that cannot go on (no replacement worker, a broken Runtime API) shuts the others down
too, and the runtime exits with its status for Lambda to start a fresh environment.
Last, the fork server is closed: it kills whatever is still below it, and nothing is
left running.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from supervisor.config import Settings
from supervisor.fork_server import ForkServer, ServedWorker
from supervisor.keeper import become_subreaper
from worker.logs import SharedOutput

if TYPE_CHECKING:  # imported once the fork server is started
    from supervisor.loop import Supervisor

_SHUTDOWN_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def run_slots(settings: Settings) -> int:
    """Serve with ``settings.max_concurrency`` slots until shut down; the exit status."""
    lock_path = _share_output() if settings.max_concurrency > 1 else None
    become_subreaper()
    server = ForkServer.start(settings, settings.max_concurrency)
    _one_malloc_arena()
    try:
        # Their inits run in parallel, with each other and with the supervisor's imports.
        first_workers = [line.spawn(settings) for line in server.lines]
        return _Slots(settings, server, first_workers).run()
    finally:
        server.close()
        if lock_path is not None:
            _remove(lock_path)


def _one_malloc_arena() -> None:
    """Keep the supervisor's heap in one malloc arena (glibc's ``M_ARENA_MAX``).

    glibc gives each thread an arena of its own, and each keeps the high-water mark of the
    event and reply buffers its slot has passed through: several megabytes more resident
    memory for N slots that do little but copy bytes. The workers are forked from the fork
    server, which keeps the default. Where there is no glibc, nothing changes."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


# glibc's mallopt parameter for the number of arenas.
_M_ARENA_MAX = -8


def _share_output() -> str:
    """Create the lock file that keeps long output lines whole (``SharedOutput``)."""
    fd, path = tempfile.mkstemp(prefix="lambda-supervisor-", suffix=".lock")
    os.close(fd)
    SharedOutput.path = path
    SharedOutput.open_lock()
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Slots:
    """The slots of one runtime, and the main thread's part: init, start, wait, shut down."""

    def __init__(self, settings: Settings, server: ForkServer, first_workers: list[ServedWorker]) -> None:
        from supervisor.logs import SupervisorLogger
        from supervisor.loop import Supervisor
        from supervisor.runtime_api import RuntimeAPIClient

        self.settings = settings
        self.log = SupervisorLogger("supervisor")
        # Imported now, in this thread: no slot pays for it, or races another to configure it.
        self.log.prepare()
        self.slots: list[Supervisor] = []
        self._wakeups: list[int] = []
        for line, worker in zip(server.lines, first_workers, strict=True):
            api = RuntimeAPIClient(settings.runtime_api, retry_window=settings.api_retry_window, log=self.log)
            slot = Supervisor(settings, api, self.log, worker, spawn=line.spawn)
            slot.wakeup_read, wakeup_write = os.pipe()
            os.set_blocking(slot.wakeup_read, False)
            os.set_blocking(wakeup_write, False)
            worker.wakeup_fd = slot.wakeup_read
            self._wakeups.append(wakeup_write)
            self.slots.append(slot)
        self._exit_status: int | None = None
        self._status_lock = threading.Lock()

    def run(self) -> int:
        from supervisor.loop import EXIT_INIT_FAILED, EXIT_OK, ShutdownDuringInit

        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, self._on_terminate)
        first = self.slots[0]
        if self.settings.register_extension and first.api.register_extension():
            self.log.info("registered internal extension for SIGTERM on shutdown")
        try:
            if not self._start():
                return EXIT_INIT_FAILED
        except ShutdownDuringInit:
            self._in_parallel(lambda slot: slot.shutdown())
            return EXIT_OK
        self._serve()
        return self._exit_status or EXIT_OK

    def _start(self) -> bool:
        """Wait for every slot's first worker; report the first failed init, once."""
        replies = [slot.wait_init() for slot in self.slots]
        failed = [(slot, reply) for slot, reply in zip(self.slots, replies, strict=True) if not _ready(reply)]
        if not failed:
            return True
        slot, reply = failed[0]
        slot.report_init_failure(reply)
        self._in_parallel(lambda other: None if other is slot else other.shutdown())
        return False

    def _serve(self) -> None:
        """Run the slots, each in a thread, until every one has ended."""
        threads = [
            threading.Thread(target=self._serve_slot, args=(slot,), name=f"slot-{index}", daemon=True)
            for index, slot in enumerate(self.slots)
        ]
        # Signals go to the main thread only: threads inherit the mask they are started with.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SHUTDOWN_SIGNALS)
        try:
            for thread in threads:
                thread.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SHUTDOWN_SIGNALS)
        for thread in threads:
            thread.join()

    def _serve_slot(self, slot: Supervisor) -> None:
        from supervisor.loop import EXIT_OK, EXIT_RUNTIME_API_FAILED, EXIT_WORKER_UNAVAILABLE
        from supervisor.runtime_api import RuntimeAPIError

        try:
            status = slot.serve_forever()
        except RuntimeAPIError as exc:
            self.log.error("runtime API failure, exiting", error=str(exc))
            slot.worker.release()
            status = EXIT_RUNTIME_API_FAILED
        except Exception as exc:  # a slot that cannot go on must not leave the others serving
            self.log.error("slot failed, exiting", error=repr(exc))
            slot.worker.release()
            status = EXIT_WORKER_UNAVAILABLE
        if status != EXIT_OK:
            with self._status_lock:
                if self._exit_status is None:
                    self._exit_status = status
            self._shut_down_all()

    def _on_terminate(self, _signum: int, _frame: FrameType | None) -> None:
        self._shut_down_all()

    def _shut_down_all(self) -> None:
        """Ask every slot to shut down: its long poll ends, its wait for a worker wakes."""
        for slot, wakeup in zip(self.slots, self._wakeups, strict=True):
            slot.request_shutdown()
            try:
                os.write(wakeup, b"\0")
            except OSError:
                pass  # a full pipe has woken its slot already

    def _in_parallel(self, action: Callable[[Supervisor], object]) -> None:
        """Run ``action`` on every slot at once (each may wait out a shutdown grace)."""
        threads = [threading.Thread(target=action, args=(slot,), daemon=True) for slot in self.slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _ready(reply: object) -> bool:
    from worker.protocol import Ready

    return isinstance(reply, Ready)
