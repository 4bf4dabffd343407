"""The supervisor's main loop: one event at a time, from ``/next`` to its one answer.

Shaped like a process arbiter: the loop keeps exactly one ready worker (one that died is
replaced before the next ``GET /next``, so nothing is fetched that cannot be served),
hands it an event, waits for the reply until the event's deadline less a margin, posts
the answer, and replaces the worker whenever it died, hung or misbehaved. Whatever the
worker does, every event fetched gets exactly one answer: its result, its error, or the
error the supervisor words for it (``worker/errors.py``). The record about a replaced
worker is logged once the answer is posted and the replacement forked.

SIGTERM and SIGINT only record that the runtime is to shut down and cut short the wait
under way; the loop acts on it between steps, and an event in hand gets
``SHUTDOWN_GRACE`` to be answered.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from supervisor.config import Settings
from supervisor.keeper import adopts_orphans
from supervisor.logs import Logger
from supervisor.runtime_api import Event, LongPollAborted, PostOutcome, RuntimeAPIClient, RuntimeAPIError
from supervisor.streaming import relay_stream
from supervisor.worker_process import ANSWERED_TWICE, Died, Reply, StartReply, WorkerProcess
from worker import errors, protocol
from worker.protocol import Failed, InitFailed, Interrupted, Oversized, Ready, Result, StreamStart, TimedOut

EXIT_OK = 0
EXIT_INIT_FAILED = 1
EXIT_WORKER_UNAVAILABLE = 2
EXIT_RUNTIME_API_FAILED = 3
# AWS's runtime's exit codes for a failed SnapStart runtime hook.
EXIT_BEFORE_SNAPSHOT_FAILED = 64
EXIT_AFTER_RESTORE_FAILED = 65

# What a failed phase of SnapStart's runtime hooks is reported as.
_HOOK_ERROR_TYPES = {
    protocol.BEFORE_SNAPSHOT: errors.BEFORE_SNAPSHOT_ERROR,
    protocol.AFTER_RESTORE: errors.AFTER_RESTORE_ERROR,
}

# How long a worker gets to finish the event in hand when the runtime is shut down.
SHUTDOWN_GRACE = 1.5


class WorkerUnavailable(Exception):
    """A replacement worker could not be started; the environment needs a fresh start."""


class ShutdownDuringInit(Exception):
    """SIGTERM arrived while a worker was initialising: it finished in the grace period or
    was killed; either way the runtime now shuts down."""


class Supervisor:
    """Serves the Runtime API's events through one worker at a time, for the runtime's life.

    ``start`` waits for the first worker's init (a failure goes to ``/init/error``),
    ``serve_forever`` runs the loop until the runtime is shut down or the Runtime API
    fails, and ``shutdown`` retires the worker. It holds the current worker and the
    shutdown request; it never imports or runs user code.
    """

    def __init__(
        self,
        settings: Settings,
        api: RuntimeAPIClient,
        log: Logger,
        worker: WorkerProcess,
        spawn: Callable[[Settings], WorkerProcess] = WorkerProcess.spawn,
    ) -> None:
        self.settings = settings
        self.api = api
        self.log = log
        self.worker = worker
        # How a replacement worker is started: forked here, or by the fork server (slots).
        self.spawn = spawn
        self.shutdown_requested = False
        self.waiting_for_event = False
        self.wakeup_read: int | None = None
        # A subreaper (or PID 1) inherits the processes a handler leaves behind.
        self.reaps_orphans = adopts_orphans()

    # -- start and stop ---------------------------------------------------------------------

    def start(self) -> bool:
        """Wait for the first worker's init; report an init failure to Lambda.

        Raises ``ShutdownDuringInit`` if SIGTERM arrives first.
        """
        reply = self.wait_init()
        if isinstance(reply, Ready):
            return True
        self.report_init_failure(reply)
        return False

    def wait_init(self) -> StartReply:
        """How the first worker's init went (``ShutdownDuringInit`` if SIGTERM comes first)."""
        reply = self._wait_ready(None)
        if isinstance(reply, Ready):
            self._log_worker_started(reply)
        return reply

    def report_init_failure(self, reply: StartReply) -> None:
        """Post the first worker's failed init to ``/init/error`` and let the worker go."""
        error_body: bytes | bytearray
        if isinstance(reply, InitFailed):
            error_body, error_type = reply.error_body, reply.error_type
        elif isinstance(reply, Died):
            self.log.error(
                "worker died during init",
                pid=self.worker.pid,
                status=errors.describe_status(reply.wait_status),
            )
            error_body = errors.encode(errors.exit_error(reply.wait_status, ""))
            error_type = errors.EXIT_ERROR
        else:
            self.worker.kill()
            error_body = errors.encode(
                errors.report(f"worker failed to initialise: {reply!r}", errors.PROTOCOL_ERROR)
            )
            error_type = errors.PROTOCOL_ERROR
        self.api.post_init_error(error_body, error_type)
        self._log_init_error(error_body)
        self.worker.release()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT only record the request; the loop acts on it between steps.

        The wakeup pipe makes a signal end the wait for a worker's reply, so an in-flight
        invocation is finished or reported within the shutdown grace period. The idle
        long-poll on /next is ended by shutting its socket (see ``abort_long_poll``).
        """
        self.wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
        self.worker.wakeup_fd = self.wakeup_read
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, self._on_terminate)

    def _on_terminate(self, signum: int, _frame: FrameType | None) -> None:
        self.request_shutdown()

    def request_shutdown(self) -> None:
        """Record the shutdown and cut short the long poll (from a signal handler, or from
        another slot's thread); a wait for the worker is ended by the wakeup pipe."""
        self.shutdown_requested = True
        self.api.stop()
        if self.waiting_for_event:
            self.api.abort_long_poll()

    def _drain_wakeups(self) -> None:
        if self.wakeup_read is None:
            return
        try:
            while os.read(self.wakeup_read, 512):
                pass
        except BlockingIOError:
            pass

    def shutdown(self) -> None:
        """Give the worker its shutdown hook (SIGTERM), then exit cleanly."""
        status = self.worker.stop(SHUTDOWN_GRACE)
        self._release_worker()
        self.api.close()
        self.log.info("runtime shut down", pid=self.worker.pid, status=errors.describe_status(status))

    # -- the loop ---------------------------------------------------------------------------

    def serve_forever(self) -> int:
        try:
            while not self.shutdown_requested:
                self._ensure_live_worker()
                self.waiting_for_event = True
                try:
                    if self.shutdown_requested:
                        break
                    event = self.api.next_invocation()
                finally:
                    self.waiting_for_event = False
                self.serve(event)
                # Not kept alive through the next long-poll: an event can be 6 MB.
                del event
        except (LongPollAborted, ShutdownDuringInit):
            pass
        except WorkerUnavailable:
            self.shutdown()
            return EXIT_WORKER_UNAVAILABLE
        self.shutdown()
        return EXIT_OK

    def serve(self, event: Event) -> None:
        """Give one event exactly one answer, whatever the worker does with it."""
        kill_at = self._kill_at(event)
        if time.monotonic() >= kill_at:
            # Expired on arrival: answered as the timeout it is, and the worker never sees it.
            self._post_error(event, errors.timeout_error(event.timeout_seconds, event.request_id))
            return
        stray = self.worker.stray_output()
        if stray:
            # What the worker wrote would be read as this event's reply: a fresh one serves it.
            self.worker.kill()
            self._replace_worker(stray, pid=self.worker.pid)
        served_by = self.worker
        if not self.worker.send(event, kill_at):
            if time.monotonic() < kill_at:
                # The worker died between events, before it saw this one: nothing was run yet.
                self._replace_worker("worker gone before the event was handed over")
            if time.monotonic() >= kill_at or not self.worker.send(event, kill_at):
                self._answer(event, self._not_handed_over(kill_at))
                return
        self._answer(event, self._wait_reply(kill_at, event.reply_token))
        if self.worker is served_by and served_by.wait_status is None:
            if served_by.answered_twice:
                self.worker.kill()
                self._replace_worker(ANSWERED_TWICE, requestId=event.request_id, pid=served_by.pid)
                return
            served_by.invocations += 1
            self._recycle_if_due()

    def _not_handed_over(self, kill_at: float) -> TimedOut | Died:
        """Why the worker never got the whole event: the deadline passed while it was taking
        it (a timeout; the worker holds part of an event, so it is replaced), or it died."""
        if time.monotonic() >= kill_at:
            return TimedOut()
        return Died(self.worker.kill())

    def _wait_reply(self, kill_at: float, token: str) -> Reply:
        """The worker's reply; on shutdown, waited for only for the grace period."""
        reply = self.worker.wait_reply(kill_at, token)
        while isinstance(reply, Interrupted):
            self._drain_wakeups()
            if not self.shutdown_requested:
                reply = self.worker.wait_reply(kill_at, token)
                continue
            grace_end = min(kill_at, time.monotonic() + SHUTDOWN_GRACE)
            reply = self.worker.wait_reply(grace_end, token, interruptible=False)
            if isinstance(reply, TimedOut) and grace_end < kill_at:
                self.log.error("invocation cut short by shutdown", pid=self.worker.pid)
                reply = Died(self.worker.kill())
        return reply

    def _answer(self, event: Event, reply: Reply) -> None:
        request_id = event.request_id
        if isinstance(reply, Result):
            outcome = self.api.post_response(event, reply.payload, reply.content_type)
            if outcome is PostOutcome.TOO_LARGE:
                self._post_error(
                    event,
                    errors.response_too_large(
                        len(reply.payload), self.settings.max_response_bytes, request_id
                    ),
                )
        elif isinstance(reply, Failed):
            self.api.post_error(event, reply.error_body, reply.error_type, reply.xray_cause)
            if reply.retire:
                self._retire_worker(f"worker retired after {reply.error_type}")
        elif isinstance(reply, StreamStart):
            ended = relay_stream(
                self.api,
                self.worker,
                event,
                reply,
                self._kill_at(event),
                shutting_down=self._shutting_down,
                shutdown_grace=SHUTDOWN_GRACE,
            )
            if ended.replace:
                self._replace_worker(ended.replace, requestId=request_id, pid=self.worker.pid, **ended.fields)
            elif ended.retire:
                self._retire_worker(f"worker retired after {ended.retire}")
        # Below, the answer is posted first and the record about the worker is logged once
        # its replacement is forked: the first record may have to import structlog, which
        # must neither delay a timeout's report past the deadline nor the next worker.
        elif isinstance(reply, Died):
            self._post_error(event, errors.exit_error(reply.wait_status, request_id))
            self._replace_worker(
                "worker died",
                requestId=request_id,
                pid=self.worker.pid,
                status=errors.describe_status(reply.wait_status),
            )
        elif isinstance(reply, TimedOut):
            self.worker.kill()
            self._post_error(event, errors.timeout_error(event.timeout_seconds, request_id))
            self._replace_worker(
                "worker killed at deadline",
                requestId=request_id,
                pid=self.worker.pid,
                timeout_s=round(event.timeout_seconds, 3),
            )
        elif isinstance(reply, Oversized):
            self.worker.kill()
            self._post_error(
                event,
                errors.response_too_large(reply.size, self.settings.max_response_bytes, request_id),
            )
            self._replace_worker("worker reply over the payload limit", requestId=request_id, size=reply.size)
        else:
            self.worker.kill()
            report = errors.report(
                f"Worker sent an invalid reply: {reply.reason}", errors.PROTOCOL_ERROR, request_id
            )
            self._post_error(event, report)
            self._replace_worker("worker broke the pipe protocol", requestId=request_id, reason=reply.reason)

    def _shutting_down(self) -> bool:
        """After a signal ended a wait: is the runtime to shut down?"""
        self._drain_wakeups()
        return self.shutdown_requested

    def _post_error(self, event: Event, report: errors.ErrorReport) -> None:
        self.api.post_error(event, errors.encode(report), report["errorType"])

    def _kill_at(self, event: Event) -> float:
        """The monotonic instant to give up on the handler: the deadline less the margin."""
        remaining = event.deadline_ms / 1000 - time.time() - self.settings.deadline_margin
        return time.monotonic() + remaining

    # -- keeping a worker -------------------------------------------------------------------

    def _recycle_if_due(self) -> None:
        """Replace a healthy worker that has served its quota or grown too large."""
        reason = None
        limit = self.settings.max_invocations
        if limit and self.worker.invocations >= limit:
            reason = f"recycled after {self.worker.invocations} invocations"
        elif self.settings.max_worker_rss_mb:
            rss = self.worker.rss_mb()
            if rss is not None and rss > self.settings.max_worker_rss_mb:
                reason = f"recycled at {rss:.0f} MiB resident"
        if reason:
            self._retire_worker(reason)

    def _retire_worker(self, reason: str) -> None:
        """Replace a live worker gracefully: its shutdown hook first, then a fresh one."""
        self.worker.stop(SHUTDOWN_GRACE)
        self._replace_worker(reason)

    def _ensure_live_worker(self) -> None:
        """Before each ``/next``: reap what a handler left behind, and replace a worker that
        died since its last event.

        Orphans are re-parented to the supervisor when it is a subreaper, or PID 1 (a
        container image run without an init); unreaped, they would pile up as zombies. The
        one look at the exited children that finds them also tells whether the worker is
        among them: when none has exited, the worker lives, and is not asked again.
        """
        if self.reaps_orphans and self.worker.reap_orphans():
            return
        if self.worker.exited():
            self.log.warning(
                "worker died between invocations",
                pid=self.worker.pid,
                status=errors.describe_status(self.worker.wait_status or 0),
            )
            self._replace_worker("worker died between invocations")

    def _replace_worker(self, why: str, /, **failure: Any) -> None:
        """Start a fresh worker in place of the current one. ``failure`` holds the fields of
        an error record (with ``why`` as its message) about the worker replaced; it is
        logged while the replacement runs its init."""
        self._release_worker()
        self.worker = self.spawn(self.settings)
        self.worker.wakeup_fd = self.wakeup_read
        if failure:
            self.log.error(why, **failure)
        reply = self._wait_ready(self.settings.init_timeout)
        if isinstance(reply, Ready) and self.settings.snap_start and not self._rerun_hooks():
            raise WorkerUnavailable()
        if isinstance(reply, Ready):
            self._log_worker_started(reply, why)
            return
        if isinstance(reply, InitFailed):
            self._log_init_error(reply.error_body)
        elif isinstance(reply, Died):
            self.log.error(
                "replacement worker died during init", status=errors.describe_status(reply.wait_status)
            )
        else:
            self.worker.kill()
            self.log.error("replacement worker did not become ready", reply=repr(reply))
        raise WorkerUnavailable()

    def _release_worker(self) -> None:
        stuck = self.worker.release()
        if self.worker.abandoned:
            self.log.error("worker would not die when killed; left behind", pid=self.worker.pid)
        if stuck:
            self.log.error("processes a worker started would not die when killed", pids=stuck)

    def _wait_ready(self, timeout: float | None) -> StartReply:
        """How a worker's init went. If a shutdown is requested first, the init gets the grace
        period to finish (so the worker can run its SIGTERM hook) and is killed after it: an
        init can take as long as the handler's imports, far longer than Lambda waits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            reply = self.worker.wait_ready(remaining)
            if not isinstance(reply, Interrupted):
                return reply
            self._drain_wakeups()
            if self.shutdown_requested:
                grace = SHUTDOWN_GRACE if remaining is None else min(remaining, SHUTDOWN_GRACE)
                if not isinstance(self.worker.wait_ready(grace, interruptible=False), Ready):
                    self.worker.kill()
                    self.log.warning("worker killed during init by the shutdown", pid=self.worker.pid)
                raise ShutdownDuringInit()

    # -- SnapStart -------------------------------------------------------------------------

    def restore(self) -> int | None:
        """SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``), after ``start``: the
        worker runs the before-snapshot hooks, ``/restore/next`` waits while the snapshot is
        taken, then the worker runs the after-restore hooks, as AWS's runtime does before its
        first ``/next``. A failure is reported where AWS's runtime reports it (before the
        snapshot to ``/init/error``, after the restore to ``/restore/error``); the exit code
        is returned then, None when the runtime goes on to serve.

        Raises ``ShutdownDuringInit`` if SIGTERM arrives first.
        """
        failure = self._run_hooks(protocol.BEFORE_SNAPSHOT)
        if failure is None:
            failure = self._restore_next()
        if failure is not None:
            self.api.post_init_error(failure, errors.BEFORE_SNAPSHOT_ERROR)
            self._log_init_error(failure)
            self.worker.release()
            return EXIT_BEFORE_SNAPSHOT_FAILED
        failure = self._run_hooks(protocol.AFTER_RESTORE)
        if failure is not None:
            self.api.post_restore_error(failure, errors.AFTER_RESTORE_ERROR)
            self._log_init_error(failure, "restore failed")
            self.worker.release()
            return EXIT_AFTER_RESTORE_FAILED
        return None

    def _restore_next(self) -> bytes | None:
        """``GET /restore/next``; the error body for ``/init/error`` when the Runtime API
        refused it or could not be reached (AWS's runtime reports that as a failed
        before-snapshot phase too)."""
        self.waiting_for_event = True  # SIGTERM ends this long poll as it ends /next
        try:
            if self.shutdown_requested:
                raise ShutdownDuringInit()
            self.api.restore_next()
        except LongPollAborted:
            raise ShutdownDuringInit() from None
        except RuntimeAPIError as exc:
            return errors.encode(errors.report(str(exc), errors.BEFORE_SNAPSHOT_ERROR))
        finally:
            self.waiting_for_event = False
        return None

    def _run_hooks(self, phase: str) -> bytes | bytearray | None:
        """Have the worker run one phase of SnapStart's runtime hooks, within the init
        timeout; the error body when one raised, the worker died or the time ran out."""
        timeout = self.settings.init_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.worker.send_hooks(phase, deadline):
            reply = self.worker.wait_hooks(deadline)
            while isinstance(reply, Interrupted):
                self._drain_wakeups()
                if self.shutdown_requested:
                    raise ShutdownDuringInit()
                reply = self.worker.wait_hooks(deadline)
        else:
            reply = Died(self.worker.kill())
        if isinstance(reply, protocol.HooksRan):
            self.log.debug("runtime hooks ran", phase=phase, duration_ms=round(reply.hooks_ms, 2))
            return None
        if isinstance(reply, protocol.HooksFailed):
            return reply.error_body
        self.worker.kill()
        self.log.error("worker failed in runtime hooks", phase=phase, pid=self.worker.pid, reply=repr(reply))
        if isinstance(reply, Died):
            report = errors.exit_error(reply.wait_status, "")
        elif isinstance(reply, TimedOut):
            words = phase.replace("_", "-")
            message = f"The {words} runtime hooks did not finish within {timeout:.2f} seconds"
            report = errors.report(message, _HOOK_ERROR_TYPES[phase])
        else:
            report = errors.report(f"Worker sent an invalid reply: {reply.reason}", errors.PROTOCOL_ERROR)
        return errors.encode(report)

    def _rerun_hooks(self) -> bool:
        """A replacement worker in a restored environment goes through what the first one
        did, the snapshot aside: before-snapshot, then after-restore hooks, so that each
        hook finds what the hook of the other phase left. False (logged) if they failed."""
        failure = self._run_hooks(protocol.BEFORE_SNAPSHOT)
        if failure is None:
            failure = self._run_hooks(protocol.AFTER_RESTORE)
        if failure is None:
            return True
        self._log_init_error(failure, "replacement worker failed in runtime hooks")
        self.worker.kill()
        return False

    # -- logs -------------------------------------------------------------------------------

    def _log_worker_started(self, ready: Ready, reason: str | None = None) -> None:
        """A replacement is news (INFO, with its reason); the first worker's start is not:
        Lambda's own INIT_START and Init Duration already say it, so it is DEBUG."""
        log = self.log.debug if reason is None else self.log.info
        log(
            "worker started",
            pid=self.worker.pid,
            init_duration_ms=round(ready.init_ms, 2),
            startup_ms=round((time.monotonic() - self.worker.started_at) * 1000, 2),
            reason=reason,
        )

    def _log_init_error(self, error_body: bytes | bytearray, message: str = "init failed") -> None:
        try:
            fields = json.loads(error_body)
        except (ValueError, RecursionError):
            fields = None
        if not isinstance(fields, dict):
            fields = {}  # not the worker's own report: handler code wrote on the pipe at import
        self.log.error(
            message,
            errorType=fields.get("errorType"),
            errorMessage=fields.get("errorMessage"),
            stackTrace=fields.get("stackTrace"),
        )
