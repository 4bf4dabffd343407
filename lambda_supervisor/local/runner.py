"""``LocalRunner``: the emulator and one runtime process, wired together as Lambda would be.

The point is to exercise exactly what runs on Lambda (``bin/bootstrap``, the supervisor,
a forked worker) rather than calling the handler function directly, so local results
match production: same marshalling, same error bodies, same timeouts. The emulator plays
the platform; the runner plays the rest of it: it bounds the runtime's init as Lambda
does, answers the calls of a runtime that died, and restarts it when serving.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lambda_supervisor.emulator import (
    LOG_TAIL_BYTES,
    Chunk,
    Invocation,
    Outcome,
    RuntimeAPIEmulator,
    error_type_of,
)
from lambda_supervisor.process import RuntimeProcess

from .console import ECHO_DRAIN_TIMEOUT
from .dependencies import FunctionPython
from .handlers import HandlerLocation
from .logs import InvocationLogs
from .runtime_errors import errors, exit_message
from .settings import (
    CONCURRENCY_RANGE,
    DEFAULT_INIT_TIMEOUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    INIT_TIMEOUT_RANGE,
    MEMORY_RANGE,
    RETAINED_INVOCATION_BYTES,
    RETAINED_INVOCATIONS,
    RETAINED_REQUESTS,
    TIMEOUT_RANGE,
    UsageError,
    check_range,
    managed_instances_env,
)
from .streaming import InvocationStream
from .watch import describe_changes, drop_stale_bytecode

# How long ``invoke`` waits, beyond the init timeout, for the runtime to take the event: a
# backstop only, the init timeout answers first.
RUNTIME_START_GRACE = 30.0


@dataclass
class InvocationResult:
    """The outcome of ``LocalRunner.invoke``: the body the runtime posted (a stream's, whole),
    and its logs. ``streamed`` when the function streamed it, chunk by chunk."""

    request_id: str
    body: bytes
    error_type: str | None
    logs: str
    outcome: Outcome
    streamed: bool = False
    # The report a stream ended with when it ended in an error (its Error-Body trailer).
    stream_error_body: bytes | None = None

    @property
    def is_error(self) -> bool:
        return self.outcome.kind != "response" or bool(self.outcome.error_type)

    @property
    def error_body(self) -> bytes:
        """The error report: the one a stream ended with, or the body (of an ``/error``)."""
        return self.body if self.stream_error_body is None else self.stream_error_body

    def json(self) -> Any:
        return json.loads(self.body)


class LocalRunner:
    """Runs ``handler`` in a runtime process against an emulator of its own.

    ``logs`` (``InvocationLogs``) listens to the emulator (hand-out and result) and to the
    runtime's output, so it can print START/END/REPORT and collect each invocation's log
    lines for the ``X-Amz-Log-Type: Tail`` answer. With ``restart=True`` (``serve``) a
    runtime that dies is replaced; the calls it was running are answered with
    ``Runtime.ExitError``. Callers use ``address`` (the Invoke API); the Runtime API has
    a listener of its own that only the runtime process may use. The runtime sees ``env``
    and, of our own environment, only ``process.PASSED_THROUGH`` and the names in
    ``inherit``. A runtime whose init takes longer than ``init_timeout`` is stopped and
    the calls waiting for it are answered with a timeout, as Lambda bounds init. What it
    keeps is bounded, so serving for days costs no more memory than serving for a minute.
    With ``terminal=True`` the runtime shares our terminal (its stdin, our stderr), so a
    ``breakpoint()`` in the handler opens pdb there; its lines then reach no log tail.
    ``interpreter`` (``dependencies.prepare``) is the Python the runtime runs on and what
    goes first on its sys.path (the installed dependencies); default the CLI's own.
    With ``concurrency`` the function runs as on Lambda Managed Instances, that many
    invocations at once; callers beyond that wait their turn, or with ``refuse_when_busy``
    are refused at once (400 ``Runtime.Unavailable``), as the platform refuses them.
    """

    def __init__(
        self,
        handler: HandlerLocation,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int = DEFAULT_MEMORY_MB,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        function_name: str = "function",
        env: Mapping[str, str | None] | None = None,
        inherit: Sequence[str] = (),
        log_stream: TextIO | None = None,
        restart: bool = False,
        terminal: bool = False,
        interpreter: FunctionPython | None = None,
        concurrency: int | None = None,
        refuse_when_busy: bool = False,
    ) -> None:
        check_range("timeout", timeout, TIMEOUT_RANGE, "seconds")
        check_range("memory size", memory_mb, MEMORY_RANGE, "MB")
        check_range("init timeout", init_timeout, INIT_TIMEOUT_RANGE, "seconds")
        self.handler = handler
        self.env = dict(env or {})
        if concurrency is not None:
            check_range("concurrency", concurrency, CONCURRENCY_RANGE, "invocations")
            # As Lambda Managed Instances set them; a value given in ``env`` wins.
            self.env = {**managed_instances_env(concurrency), **self.env}
        self.inherit = tuple(inherit)
        self.restart = restart
        self.terminal = terminal
        self.interpreter = interpreter
        self.init_timeout = init_timeout
        self.emulator = RuntimeAPIEmulator(
            host,
            port,
            function_timeout=timeout,
            function_name=function_name,
            memory_mb=memory_mb,
            separate_runtime_api=True,
        )
        self.logs = InvocationLogs(self.emulator, log_stream)
        self.emulator.runtime_pids = self._runtime_pids
        self.emulator.listener = self.logs
        # A long ``serve`` session must not keep every event and log line forever.
        self.emulator.retain_finished = RETAINED_INVOCATIONS
        self.emulator.retain_finished_bytes = RETAINED_INVOCATION_BYTES
        self.emulator.retain_requests = RETAINED_REQUESTS
        self.emulator.refuse_when_busy = refuse_when_busy
        self.process: RuntimeProcess | None = None
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None
        # Set by ``reload``; the watcher thread, which owns the runtime process, acts on it.
        self._reload_requested = threading.Event()
        self._reload_lock = threading.Lock()
        self._changed: set[Path] = set()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> LocalRunner:
        """Bind the emulator (``UsageError`` if the port is taken), then start the runtime."""
        try:
            self.emulator.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {self.emulator.port} on {self.emulator.host} is already in use"
                ) from None
            raise UsageError(f"cannot listen on {self.emulator.address}: {exc}") from None
        self._start_process()
        self._watcher = threading.Thread(target=self._watch, name="runtime-watcher", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self.process is not None:
            self.process.stop()
        self.emulator.stop()
        if self._watcher is not None:
            self._watcher.join(5)
            if self.process is not None:
                self.process.stop()  # one the watcher started while we were stopping
        self.logs.close(ECHO_DRAIN_TIMEOUT)
        if self.interpreter is not None:
            self.interpreter.close()

    def __enter__(self) -> LocalRunner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """Where callers reach the Invoke API, ``host:port``."""
        return self.emulator.invoke_address

    def _runtime_pids(self) -> list[int]:
        pid = self.process.pid if self.process is not None else None
        return [] if pid is None else [pid]

    def _start_process(self) -> None:
        env: dict[str, str | None] = {"PYTHONUNBUFFERED": "1"}
        env.update(self.env)
        if self.interpreter is not None:
            env["LAMBDA_SUPERVISOR_PYTHON"] = self.interpreter.python
            if self.interpreter.paths:
                given = env.get("PYTHONPATH", os.environ.get("PYTHONPATH"))
                env["PYTHONPATH"] = os.pathsep.join(
                    [*map(str, self.interpreter.paths), *([given] if given else [])]
                )
        self.emulator.init_errors.clear()
        self.emulator.restore_errors.clear()
        self.emulator.extension_registrations.clear()
        self.emulator.first_poll_at = None
        # Known before it starts, so that its first connection is let in.
        self.process = RuntimeProcess(
            self.handler.handler,
            runtime_api=self.emulator.address,
            task_root=self.handler.task_root,
            env=env,
            inherit=self.inherit,
            function_name=self.emulator.function_name,
            memory_mb=self.emulator.memory_mb,
            on_line=self.logs.on_line,
            # The runtime's own output matters only as the log tail of a failed init.
            retain_chars=LOG_TAIL_BYTES,
            terminal=self.terminal,
        )
        self.logs.runtime_started(self.process)
        self.process.start()

    def reload(self, changed: list[Path]) -> None:
        """Replace the runtime with a fresh one before the next call (``serve --watch``):
        the files ``changed`` were saved.

        From now on no event is handed out until the new runtime asks for it; calls already
        running finish on the old one first. An init error of the new one (a syntax error
        just saved) answers the calls waiting, as a failed start does, and the next reload
        tries again.
        """
        with self._reload_lock:
            self.emulator.hold_hand_outs(True)
            self._changed.update(changed)
            self._reload_requested.set()
        self.logs.write(f"{describe_changes(changed, self.handler.task_root)}: restarting the runtime")

    def _watch(self) -> None:
        """Answer the calls of a runtime that died or whose init ran out of time; restart
        it when serving, and replace it when asked to reload."""
        while not self._closing.is_set():
            process = self.process
            assert process is not None
            if self._reload_requested.is_set():
                self._replace_process(process)
                continue
            try:
                returncode = process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if not self._init_overdue(process):
                    continue
                self._fail_init_timeout(process)
            else:
                if self._closing.is_set():
                    return
                self._fail_after_exit(returncode)
            if self._closing.is_set() or not self.restart:
                return
            while not self._closing.is_set() and not self.emulator.pending():
                if self._reload_requested.is_set():
                    break
                self._closing.wait(0.1)
            if not self._closing.is_set() and not self._reload_requested.is_set():
                self._start_process()

    def _replace_process(self, process: RuntimeProcess) -> None:
        """Stop ``process`` once the calls it runs are answered, then start a fresh one.

        Hand-outs are held (``reload``) meanwhile, so no event goes to the runtime being
        stopped; they resume when the new one is started, unless another reload came in.
        """
        self._reload_requested.clear()
        while not self._closing.is_set():
            if not any(invocation.handed_out.is_set() for invocation in self.emulator.pending()):
                break
            if process.returncode is not None:  # it died with calls in hand
                message = exit_message(process.returncode)
                self.emulator.fail_pending(errors.EXIT_ERROR, message, handed_out_only=True)
                break
            self._closing.wait(0.05)
        process.stop()
        with self._reload_lock:
            changed, self._changed = list(self._changed), set()
        # Only now: the old runtime could have cached what it compiled until it stopped.
        drop_stale_bytecode(changed)
        if not self._closing.is_set():
            self._start_process()
        with self._reload_lock:
            if not self._reload_requested.is_set():
                self.emulator.hold_hand_outs(False)

    def _init_overdue(self, process: RuntimeProcess) -> bool:
        """True when the runtime has not asked for work within the init timeout."""
        if self.emulator.first_poll_at is not None or process.started_at is None:
            return False
        return time.monotonic() - process.started_at > self.init_timeout

    def _fail_init_timeout(self, process: RuntimeProcess) -> None:
        """Answer the calls waiting on an init that ran out of time, then stop that runtime.

        Lambda gives up on an on-demand init after 10 s (then retries it within the first
        call's timeout); its caller sees ``Sandbox.Timedout``. Here the callers waiting now
        get that error at once and the next call starts a fresh runtime.
        """
        self.logs.init_timed_out((time.monotonic() - (process.started_at or 0)) * 1000)
        if self.emulator.init_errors:
            # It reported why it failed, then hung instead of exiting: that reason is the answer.
            self.emulator.fail_pending_with(self.emulator.init_errors[0])
        else:
            message = f"Init timed out after {self.init_timeout:.2f} seconds"
            self.emulator.fail_pending(errors.TIMEOUT, message)
        process.stop()

    def _fail_after_exit(self, returncode: int) -> None:
        """Answer the calls a dead runtime left; queued ones wait for a restart if serving."""
        # A SnapStart runtime can fail its restore instead (an after-restore hook).
        reported = self.emulator.init_errors or self.emulator.restore_errors
        init_error = reported[0] if reported else None
        if init_error is not None:
            # Lambda answers every waiting call with the init error of a failed start.
            self.emulator.fail_pending_with(init_error)
            return
        # A runtime that died before it ever asked for work would die again on restart:
        # answer everyone rather than leave callers waiting on a restart loop.
        ever_polled = self.emulator.first_poll_at is not None
        self.emulator.fail_pending(
            errors.EXIT_ERROR, exit_message(returncode), handed_out_only=self.restart and ever_polled
        )

    # ----------------------------------------------------------------- invoking

    def invoke(
        self,
        event: bytes | str | object = b"{}",
        *,
        client_context: str | None = None,
        trace_id: str | None = None,
        start_timeout: float | None = None,
        on_chunk: Callable[[Chunk], None] | None = None,
    ) -> InvocationResult:
        """Run one event and wait for its result (as a synchronous ``Invoke`` would);
        ``on_chunk`` gets each chunk of a streamed answer the moment it arrives.

        ``TimeoutError`` if no runtime takes the event within ``start_timeout`` (default:
        the init timeout and a grace period).
        """
        answer = self.start_invocation(
            event, client_context=client_context, trace_id=trace_id, start_timeout=start_timeout
        )
        for chunk in answer:
            if on_chunk is not None:
                on_chunk(chunk)
        return answer.result()

    def start_invocation(
        self,
        event: bytes | str | object = b"{}",
        *,
        client_context: str | None = None,
        trace_id: str | None = None,
        start_timeout: float | None = None,
    ) -> InvocationStream[InvocationResult]:
        """Submit one event; iterate over the answer for its stream's chunks as they arrive,
        then take its ``result()`` (see ``invoke``)."""
        if start_timeout is None:
            start_timeout = self.init_timeout + RUNTIME_START_GRACE
        invocation = self.emulator.submit(event, client_context=client_context, trace_id=trace_id)
        return InvocationStream(self.emulator, invocation, start_timeout, self._result)

    def _result(self, invocation: Invocation, outcome: Outcome, streamed: bool) -> InvocationResult:
        logs = self.logs.log_tail(invocation).rstrip("\n") if invocation.handed_out.is_set() else ""
        stream = invocation.stream
        stream_error = stream.error_body if stream is not None and outcome.kind == "response" else None
        return InvocationResult(
            request_id=invocation.request_id,
            body=outcome.body,
            error_type=error_type_of(outcome),
            logs=logs,
            outcome=outcome,
            streamed=streamed,
            stream_error_body=stream_error if outcome.error_type else None,
        )
