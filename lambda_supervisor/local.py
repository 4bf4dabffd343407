"""Run a handler locally through the real runtime: ``invoke`` once, or ``serve`` over HTTP.

The point is to exercise exactly what runs on Lambda (``bin/bootstrap``, the supervisor,
a forked worker) rather than calling the handler function directly, so local results
match production: same marshalling, same error bodies, same timeouts. The emulator plays
the platform; ``LocalRunner`` adds what Lambda's console shows around each call (START,
END and REPORT lines, the log tail) and restarts the runtime if it dies while serving.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lambda_supervisor.emulator import LOG_TAIL_BYTES, Invocation, Outcome, RuntimeAPIEmulator
from lambda_supervisor.process import (
    AWS_CREDENTIALS,
    PASSED_THROUGH,
    LineTail,
    RuntimeProcess,
    parse_json_object,
)
from lambda_supervisor.runtime_modules import load

if TYPE_CHECKING:
    from worker import errors
else:
    errors = load("worker/errors.py")

DEFAULT_TIMEOUT = 300.0
DEFAULT_PORT = 9000
DEFAULT_MEMORY_MB = 3008
# Lambda gives an on-demand function's init 10 s before it gives up on it.
DEFAULT_INIT_TIMEOUT = 10.0
# What Lambda accepts as a function's configuration: (lowest, highest).
TIMEOUT_RANGE = (1.0, 900.0)
MEMORY_RANGE = (128, 10_240)
INIT_TIMEOUT_RANGE = (0.1, 900.0)
# Finished invocations kept for late look-ups while serving: at most this many, holding at
# most this many bytes of events and results; and the newest request records.
RETAINED_INVOCATIONS = 256
RETAINED_INVOCATION_BYTES = 16 * 1024 * 1024
RETAINED_REQUESTS = 1024
# How long ``invoke`` waits, beyond the init timeout, for the runtime to take the event: a
# backstop only, the init timeout answers first.
RUNTIME_START_GRACE = 30.0
# Log text waiting for a console that does not keep up; past it, lines are dropped.
ECHO_BACKLOG_CHARS = 1024 * 1024
# How long stopping waits for the console to take the lines still waiting.
ECHO_DRAIN_TIMEOUT = 5.0
# Exit statuses of the CLI: a function error is the function's business (1); anything
# that stopped us from running it at all is a usage problem (2).
EXIT_FUNCTION_ERROR = 1
EXIT_USAGE = 2
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class UsageError(Exception):
    """A problem with what the user asked for, reported as one line instead of a traceback."""


# ------------------------------------------------------------------------------ handlers


@dataclass(frozen=True)
class HandlerSpec:
    """Where the code is (``task_root``) and what the runtime's ``HANDLER`` should be."""

    task_root: Path
    handler: str

    @property
    def module(self) -> str:
        return self.handler.split(":", 1)[0]


def parse_handler(text: str, *, cwd: Path | None = None) -> HandlerSpec:
    """Turn ``path/to/file.py:fn`` or ``module:fn`` into a task root and a handler.

    Checked here because a typo is far easier to understand as "file not found" than as
    an import error reported by a runtime process.
    """
    cwd = cwd or Path.cwd()
    target, sep, function = text.rpartition(":")
    if not sep or not target or not function:
        raise UsageError(f"bad handler {text!r}: expected path/to/file.py:function or module:function")
    if not _IDENTIFIER.match(function):
        raise UsageError(f"bad handler {text!r}: {function!r} is not a Python function name")
    if target.endswith(".py") or "/" in target or os.sep in target:
        return _file_handler(text, Path(target), function, cwd)
    if not _MODULE.match(target):
        raise UsageError(f"bad handler {text!r}: {target!r} is not a module name")
    _check_module_exists(target, cwd)
    return HandlerSpec(cwd.resolve(), f"{target}:{function}")


def _file_handler(text: str, path: Path, function: str, cwd: Path) -> HandlerSpec:
    path = path if path.is_absolute() else cwd / path
    if path.suffix != ".py":
        raise UsageError(f"bad handler {text!r}: the file must end in .py")
    if not path.is_file():
        raise UsageError(f"handler file not found: {path}")
    if not _IDENTIFIER.match(path.stem):
        raise UsageError(f"bad handler {text!r}: {path.name!r} cannot be imported as a module")
    return HandlerSpec(path.parent.resolve(), f"{path.stem}:{function}")


def _check_module_exists(module: str, task_root: Path) -> None:
    top = module.split(".", 1)[0]
    if (task_root / f"{top}.py").is_file() or (task_root / top).is_dir():
        return
    if find_spec(top) is None:
        raise UsageError(f"module not found: {top!r} (looked in {task_root} and on sys.path)")


# ------------------------------------------------------------------------------ events


def sample_names() -> list[str]:
    """The sample events shipped in ``lambda_supervisor/samples``."""
    folder = resources.files("lambda_supervisor") / "samples"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".json"))


def load_sample(name: str) -> bytes:
    if name not in sample_names():
        raise UsageError(f"unknown sample event {name!r}; choose one of: {', '.join(sample_names())}")
    return (resources.files("lambda_supervisor") / "samples" / f"{name}.json").read_bytes()


def validated_event(raw: bytes | str, source: str) -> bytes:
    """The event bytes, refused with a clear message unless they are valid JSON."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not data.strip():
        return b"{}"
    try:
        json.loads(data)
    except ValueError as exc:
        raise UsageError(f"invalid event JSON from {source}: {exc}") from None
    return data


def read_event(args: argparse.Namespace, stdin: TextIO | None = None) -> bytes:
    """The event the user chose: ``--event``, ``--event-file`` (``-`` = stdin), a sample, or ``-``."""
    if args.event is not None:
        return validated_event(args.event, "--event")
    if args.event_sample is not None:
        return load_sample(args.event_sample)
    path = args.event_file or args.event_source
    if path == "-":
        stream = stdin or sys.stdin
        return validated_event(stream.buffer.read() if hasattr(stream, "buffer") else stream.read(), "stdin")
    if path:
        try:
            return validated_event(Path(path).read_bytes(), path)
        except OSError as exc:
            raise UsageError(f"cannot read event file {path}: {exc.strerror}") from None
    return b"{}"


# ------------------------------------------------------------------------------ runner


@dataclass
class InvocationRecord:
    """What one invocation printed (as much as its log tail shows), and its REPORT figures."""

    request_id: str
    lines: LineTail = field(default_factory=lambda: LineTail(LOG_TAIL_BYTES))
    init_duration_ms: float | None = None
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass
class InvocationResult:
    """The outcome of ``LocalRunner.invoke``: the body the runtime posted, and its logs."""

    request_id: str
    body: bytes
    error_type: str | None
    logs: str
    outcome: Outcome

    @property
    def is_error(self) -> bool:
        return self.outcome.kind != "response"

    def json(self) -> Any:
        return json.loads(self.body)


class LocalRunner:
    """The emulator and one runtime process, wired together as Lambda would be.

    It listens to the emulator (hand-out and result) and to the runtime's output, so it
    can print START/END/REPORT and collect each invocation's log lines for the
    ``X-Amz-Log-Type: Tail`` answer. With ``restart=True`` (``serve``) a runtime that
    dies is replaced; the calls it was running are answered with ``Runtime.ExitError``.
    Callers use ``address`` (the Invoke API); the Runtime API has a listener of its own
    that only the runtime process may use. The runtime sees ``env`` and, of our own
    environment, only ``process.PASSED_THROUGH`` and the names in ``inherit``.
    A runtime whose init takes longer than ``init_timeout`` is stopped and the calls
    waiting for it are answered with a timeout, as Lambda bounds init. What it keeps is
    bounded, so serving for days costs no more memory than serving for a minute.
    """

    def __init__(
        self,
        handler: HandlerSpec,
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
    ) -> None:
        check_range("timeout", timeout, TIMEOUT_RANGE, "seconds")
        check_range("memory size", memory_mb, MEMORY_RANGE, "MB")
        check_range("init timeout", init_timeout, INIT_TIMEOUT_RANGE, "seconds")
        self.handler = handler
        self.env = dict(env or {})
        self.inherit = tuple(inherit)
        self.restart = restart
        self.init_timeout = init_timeout
        self.emulator = RuntimeAPIEmulator(
            host,
            port,
            function_timeout=timeout,
            function_name=function_name,
            memory_mb=memory_mb,
            separate_runtime_api=True,
        )
        self.emulator.runtime_pids = self._runtime_pids
        self.emulator.listener = self
        # A long ``serve`` session must not keep every event and log line forever.
        self.emulator.retain_finished = RETAINED_INVOCATIONS
        self.emulator.retain_finished_bytes = RETAINED_INVOCATION_BYTES
        self.emulator.retain_requests = RETAINED_REQUESTS
        self.process: RuntimeProcess | None = None
        self._records: dict[str, InvocationRecord] = {}
        self._current: str | None = None
        self._lock = threading.RLock()
        self._echo = LogEcho(log_stream) if log_stream is not None else None
        self._init_reported = False
        # Lambda's INIT_REPORT line for the current runtime's init, once it has timed out.
        self._init_report: str | None = None
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None

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
        if self._echo is not None:
            self._echo.close(ECHO_DRAIN_TIMEOUT)

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
        self.emulator.init_errors.clear()
        self.emulator.extension_registrations.clear()
        self.emulator.first_poll_at = None
        self._init_reported = False
        self._init_report = None
        # Known before it starts, so that its first connection is let in.
        self.process = RuntimeProcess(
            self.handler.handler,
            runtime_api=self.emulator.address,
            task_root=self.handler.task_root,
            env=env,
            inherit=self.inherit,
            function_name=self.emulator.function_name,
            memory_mb=self.emulator.memory_mb,
            on_line=self._on_line,
            # The runtime's own output matters only as the log tail of a failed init.
            retain_chars=LOG_TAIL_BYTES,
        )
        self.process.start()

    def _watch(self) -> None:
        """Answer the calls of a runtime that died or whose init ran out of time; restart
        it when serving."""
        while not self._closing.is_set():
            process = self.process
            assert process is not None
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
                self._closing.wait(0.1)
            if not self._closing.is_set():
                self._start_process()

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
        duration_ms = (time.monotonic() - (process.started_at or 0)) * 1000
        self._init_report = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: timeout"
        self._write(self._init_report)
        if self.emulator.init_errors:
            # It reported why it failed, then hung instead of exiting: that reason is the answer.
            self.emulator.fail_pending_with(self.emulator.init_errors[0])
        else:
            message = f"Init timed out after {self.init_timeout:.2f} seconds"
            self.emulator.fail_pending(errors.TIMEOUT, message)
        process.stop()

    def _fail_after_exit(self, returncode: int) -> None:
        """Answer the calls a dead runtime left; queued ones wait for a restart if serving."""
        init_error = self.emulator.init_errors[0] if self.emulator.init_errors else None
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
    ) -> InvocationResult:
        """Run one event and wait for its result (as a synchronous ``Invoke`` would).

        ``TimeoutError`` if no runtime takes the event within ``start_timeout`` (default:
        the init timeout and a grace period).
        """
        if start_timeout is None:
            start_timeout = self.init_timeout + RUNTIME_START_GRACE
        invocation = self.emulator.submit(event, client_context=client_context, trace_id=trace_id)
        outcome = self.emulator.await_outcome(invocation, queue_timeout=start_timeout)
        if outcome is None:
            raise RuntimeError("the emulator stopped before the invocation finished")
        logs = self.log_tail(invocation).rstrip("\n") if invocation.handed_out.is_set() else ""
        return InvocationResult(
            request_id=invocation.request_id,
            body=outcome.body,
            error_type=_error_type(outcome),
            logs=logs,
            outcome=outcome,
        )

    # ----------------------------------------------------------------- InvokeListener

    def invocation_started(self, invocation: Invocation) -> None:
        record = self._record(invocation)
        with self._lock:
            self._current = invocation.request_id
            if not self._init_reported and self.process is not None:
                self._init_reported = True
                first_poll = self.emulator.first_poll_at or time.monotonic()
                record.init_duration_ms = (first_poll - (self.process.started_at or 0)) * 1000
        self._print(record, f"START RequestId: {invocation.request_id} Version: $LATEST")

    def invocation_finished(self, invocation: Invocation, outcome: Outcome) -> None:
        record = self._record(invocation)
        if record.finished.is_set():
            return
        if self.process is not None:
            self.process.wait_output_idle(1.0)
        with self._lock:
            if self._current == invocation.request_id:
                self._current = None
        duration_ms = (outcome.received_at - (invocation.handed_out_at or outcome.received_at)) * 1000
        self._print(record, f"END RequestId: {invocation.request_id}")
        self._print(record, self._report_line(record, duration_ms))
        record.finished.set()

    def log_tail(self, invocation: Invocation) -> str:
        if not invocation.handed_out.is_set():
            # Answered without running (an init failure): the runtime's own output is the story.
            lines = self.process.lines() if self.process is not None else []
            if self._init_report is not None:
                lines.append(self._init_report)
            return "\n".join(lines) + "\n"
        record = self._record(invocation)
        record.finished.wait(5)
        with self._lock:
            return "\n".join(record.lines) + "\n"

    # ----------------------------------------------------------------- logs

    def _record(self, invocation: Invocation) -> InvocationRecord:
        with self._lock:
            record = self._records.get(invocation.request_id)
            if record is None:
                record = InvocationRecord(invocation.request_id)
                self._records[invocation.request_id] = record
                self._forget_old_records()
            return record

    def _forget_old_records(self) -> None:
        """Keep the newest records only, finished or not: one whose END never came (its
        result could not be acknowledged) must not stay for ever either."""
        for key in list(self._records)[: max(0, len(self._records) - RETAINED_INVOCATIONS)]:
            del self._records[key]

    def _on_line(self, line: str) -> None:
        """Attribute a runtime line to its invocation: by ``requestId``, else the current one."""
        parsed = parse_json_object(line)
        request_id = parsed.get("requestId") if parsed else None
        if not isinstance(request_id, str):
            request_id = None  # handler output can put anything there: a number, a list, null
        with self._lock:
            record = self._records.get(request_id or self._current or "")
            if record is not None and not record.finished.is_set():
                record.lines.append(line)
        self._write(line)

    def _print(self, record: InvocationRecord, line: str) -> None:
        with self._lock:
            record.lines.append(line)
        self._write(line)

    def _write(self, line: str) -> None:
        if self._echo is not None:
            self._echo.write(line)

    def _report_line(self, record: InvocationRecord, duration_ms: float) -> str:
        parts = [
            f"REPORT RequestId: {record.request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
            f"Memory Size: {self.emulator.memory_mb} MB",
        ]
        peak_kb = self.process.peak_rss_kb() if self.process is not None else None
        if peak_kb is not None:
            parts.append(f"Max Memory Used: {math.ceil(peak_kb / 1024)} MB")
        if record.init_duration_ms is not None:
            parts.append(f"Init Duration: {record.init_duration_ms:.2f} ms")
        return "\t".join(parts)


class LogEcho:
    """Log lines to a stream (the console) from a thread of its own.

    The lines come from the runtime's output reader and from the threads answering the
    Runtime API; none of them may wait for a console that stalled (a paused pager, a full
    pipe) or went away (a closed pipe), or the runtime and every caller would wait too.
    So lines are queued, at most ``backlog`` characters of them: past that they are
    dropped and counted, and what the stream refuses is dropped, as Lambda goes on when
    nobody reads its logs.
    """

    def __init__(self, stream: TextIO, backlog: int = ECHO_BACKLOG_CHARS) -> None:
        self.stream = stream
        self.backlog = backlog
        self._lines: collections.deque[str] = collections.deque()
        self._queued = 0
        self._dropped = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="log-echo", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        with self._changed:
            if self._queued + len(line) > self.backlog:
                self._dropped += 1
                return
            self._lines.append(line)
            self._queued += len(line)
            self._changed.notify()

    def close(self, timeout: float) -> None:
        """Write what is queued (waiting at most ``timeout``), then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._lines or self._dropped or self._closed)
                if not self._lines and not self._dropped:
                    return
                text = "".join(line + "\n" for line in self._lines)
                if self._dropped:
                    text += (
                        f"[lambda-supervisor: {self._dropped} log lines dropped, the console fell behind]\n"
                    )
                self._lines.clear()
                self._queued = self._dropped = 0
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream: serving goes on without its console


def exit_message(returncode: int) -> str:
    """The platform's sentence for a runtime that exited, in the supervisor's own words.

    ``returncode`` is ``Popen``'s (negative for a signal); the supervisor describes wait
    statuses, so it is turned back into one.
    """
    wait_status = -returncode if returncode < 0 else returncode << 8
    return errors.describe_exit(wait_status)


def check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    """Refuse a setting outside what Lambda accepts (NaN and infinities included)."""
    low, high = bounds
    if not low <= value <= high:
        raise UsageError(f"{name} must be from {low:g} to {high:g} {unit}, not {value!r}")


def _error_type(outcome: Outcome) -> str | None:
    if outcome.kind == "response" and not outcome.error_type:
        return None
    if outcome.error_type:
        return outcome.error_type
    try:
        body = outcome.json()
    except ValueError:
        return errors.UNHANDLED
    return body.get("errorType", errors.UNHANDLED) if isinstance(body, dict) else errors.UNHANDLED


# ------------------------------------------------------------------------------ CLI


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def inherited_names(args: argparse.Namespace) -> list[str]:
    """The variables of our environment the user chose to pass on to the function."""
    names = list(args.inherit_env or [])
    for name in names:
        if not name or "=" in name:
            raise UsageError(f"bad --inherit-env {name!r}: expected a variable name (use --env to set one)")
    if args.pass_aws_credentials:
        names.extend(AWS_CREDENTIALS)
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``invoke`` and ``serve`` to the ``lambda-supervisor`` command."""
    invoke = subparsers.add_parser(
        "invoke",
        help="run a handler once through the real runtime",
        description="Run HANDLER once through bin/bootstrap and a local Runtime API emulator. "
        "The result goes to stdout, logs to stderr; the exit status is 1 on a function error.",
    )
    _add_common(invoke)
    source = invoke.add_mutually_exclusive_group()
    source.add_argument("--event", help="the event as a JSON string")
    source.add_argument("--event-file", metavar="PATH", help="read the event from a file (- = stdin)")
    source.add_argument(
        "--event-sample", metavar="NAME", help=f"a shipped sample event: {', '.join(sample_names())}"
    )
    source.add_argument(
        "event_source", nargs="?", choices=["-"], metavar="-", help="read the event from stdin"
    )
    invoke.set_defaults(func=run_invoke)

    serve = subparsers.add_parser(
        "serve",
        help="serve the Invoke API for a handler, for curl, boto3 or the AWS CLI",
        description="Keep a local emulator and the runtime running; invoke with "
        "POST http://HOST:PORT/2015-03-31/functions/function/invocations.",
    )
    _add_common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 9000; 0 = any)")
    serve.set_defaults(func=run_serve)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("handler", metavar="HANDLER", help="path/to/file.py:function or module:function")
    parser.add_argument(
        "--timeout",
        type=_in_range(float, "timeout", TIMEOUT_RANGE, "seconds"),
        default=DEFAULT_TIMEOUT,
        help="function timeout in seconds, 1 to 900 (default 300)",
    )
    parser.add_argument(
        "--memory",
        type=_in_range(int, "memory size", MEMORY_RANGE, "MB"),
        default=DEFAULT_MEMORY_MB,
        help="memory size in MB, 128 to 10240 (default 3008)",
    )
    parser.add_argument(
        "--init-timeout",
        type=_in_range(float, "init timeout", INIT_TIMEOUT_RANGE, "seconds"),
        default=DEFAULT_INIT_TIMEOUT,
        metavar="SECONDS",
        help="how long the function's init may take before calls get an error and the next "
        "call a fresh runtime (default 10, as Lambda's on-demand functions)",
    )
    parser.add_argument(
        "--env", action="append", metavar="NAME=VALUE", help="set a variable for the function"
    )
    parser.add_argument(
        "--inherit-env",
        action="append",
        metavar="NAME",
        help="pass this variable of your environment on to the function "
        f"(otherwise it gets only {', '.join(PASSED_THROUGH)} of it)",
    )
    parser.add_argument(
        "--pass-aws-credentials",
        action="store_true",
        help="let the function use your AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws, ...)",
    )


def _in_range(kind: type, name: str, bounds: tuple[float, float], unit: str) -> Any:
    """An argparse ``type=`` that refuses what is not a ``kind`` or not in Lambda's range."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        try:
            check_range(name, value, bounds, unit)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    convert.__name__ = kind.__name__
    return convert


def run_invoke(args: argparse.Namespace) -> int:
    try:
        spec = parse_handler(args.handler)
        event = read_event(args)
        env = parse_env(args.env)
        runner = LocalRunner(
            spec,
            timeout=args.timeout,
            memory_mb=args.memory,
            init_timeout=args.init_timeout,
            env=env,
            inherit=inherited_names(args),
            log_stream=sys.stderr,
        ).start()
    except UsageError as exc:
        return _usage_error(exc)
    start_timeout = args.init_timeout + RUNTIME_START_GRACE
    try:
        result = runner.invoke(event)
    except TimeoutError:
        print(
            f"lambda-supervisor: error: the runtime did not ask for the event within {start_timeout:.0f} s",
            file=sys.stderr,
        )
        return EXIT_FUNCTION_ERROR
    except KeyboardInterrupt:
        return 130
    finally:
        runner.stop()
    _write_result(result.body)
    if result.is_error:
        print(f"function error: {result.error_type}", file=sys.stderr)
        return EXIT_FUNCTION_ERROR
    return 0


def _write_result(body: bytes) -> None:
    """The result exactly as the function returned it (binary-safe), then a newline."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(body.decode("utf-8", errors="replace") + "\n")
    else:
        out.write(body if body.endswith(b"\n") else body + b"\n")
    sys.stdout.flush()


def run_serve(args: argparse.Namespace) -> int:
    try:
        spec = parse_handler(args.handler)
        env = parse_env(args.env)
        runner = LocalRunner(
            spec,
            host=args.host,
            port=args.port,
            timeout=args.timeout,
            memory_mb=args.memory,
            init_timeout=args.init_timeout,
            env=env,
            inherit=inherited_names(args),
            log_stream=sys.stderr,
            restart=True,
        ).start()
    except UsageError as exc:
        return _usage_error(exc)
    url = f"http://{runner.address}/2015-03-31/functions/function/invocations"
    print(f"Serving {spec.handler} from {spec.task_root} on {url}", flush=True)
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        runner.stop()
    return 0


def _usage_error(exc: UsageError) -> int:
    print(f"lambda-supervisor: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


__all__ = [
    "HandlerSpec",
    "InvocationResult",
    "LocalRunner",
    "UsageError",
    "load_sample",
    "parse_handler",
    "register",
    "sample_names",
]
