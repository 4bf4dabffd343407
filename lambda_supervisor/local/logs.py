"""Each invocation's log lines, between the START, END and REPORT lines Lambda prints.

Lambda's console and ``X-Amz-Log-Type: Tail`` show an invocation's own output framed by
the platform's lines: START when the event is handed out, END and REPORT (duration,
billed duration, memory, init duration on a cold start) when the answer is in, then a
warning when the memory used is past the memory size, which a local run does not
enforce (``memory_warning``). Locally the runtime's output is one stream, so each line
is given to its invocation here: by the ``requestId`` of a structured log record, else
to the invocation running now (when only one is). This is
the emulator's ``InvokeListener``; what it keeps is bounded, as serving may run for days.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from lambda_supervisor.emulator import LOG_TAIL_BYTES, Invocation, Outcome, RuntimeAPIEmulator
from lambda_supervisor.process import LineTail, parse_json_object

from .console import LogEcho
from .settings import RETAINED_INVOCATIONS

if TYPE_CHECKING:
    from lambda_supervisor.process import RuntimeProcess


@dataclass
class InvocationRecord:
    """What one invocation printed (as much as its log tail shows), and its REPORT figures."""

    request_id: str
    lines: LineTail = field(default_factory=lambda: LineTail(LOG_TAIL_BYTES))
    init_duration_ms: float | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class InvocationLogs:
    """The log lines of ``emulator``'s invocations, echoed to ``log_stream`` when given.

    ``runtime_started`` tells it of each runtime process, whose output lines go to
    ``on_line``; the emulator calls the ``InvokeListener`` methods.
    """

    def __init__(self, emulator: RuntimeAPIEmulator, log_stream: TextIO | None) -> None:
        self.emulator = emulator
        self.process: RuntimeProcess | None = None
        self._records: dict[str, InvocationRecord] = {}
        # The invocations running now, oldest first: a line that names none of them is
        # given to the one running, and with several running (``--concurrency``) to none.
        self._running: dict[str, None] = {}
        self._lock = threading.RLock()
        self._echo = LogEcho(log_stream) if log_stream is not None else None
        self._init_reported = False
        # Lambda's INIT_REPORT line for the current runtime's init, once it has timed out.
        self._init_report: str | None = None

    def runtime_started(self, process: RuntimeProcess) -> None:
        """A new runtime process: its init is yet to be reported."""
        self._init_reported = False
        self._init_report = None
        self.process = process

    def init_timed_out(self, duration_ms: float) -> None:
        self._init_report = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: timeout"
        self.write(self._init_report)

    def close(self, timeout: float) -> None:
        """Let the console take the lines still waiting, for at most ``timeout`` seconds."""
        if self._echo is not None:
            self._echo.close(timeout)

    # ----------------------------------------------------------------- InvokeListener

    def invocation_started(self, invocation: Invocation) -> None:
        record = self._record(invocation)
        with self._lock:
            self._running[invocation.request_id] = None
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
            self._running.pop(invocation.request_id, None)
        duration_ms = (outcome.received_at - (invocation.handed_out_at or outcome.received_at)) * 1000
        self._print(record, f"END RequestId: {invocation.request_id}")
        peak_kb = self.process.peak_rss_kb() if self.process is not None else None
        peak_mb = math.ceil(peak_kb / 1024) if peak_kb is not None else None
        self._print(record, self._report_line(record, duration_ms, peak_mb))
        if peak_mb is not None and peak_mb > self.emulator.memory_mb:
            self._print(record, memory_warning(peak_mb, self.emulator.memory_mb))
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

    # ----------------------------------------------------------------- lines

    def on_line(self, line: str) -> None:
        """Attribute a runtime line to its invocation: by ``requestId``, else the current one."""
        parsed = parse_json_object(line)
        request_id = parsed.get("requestId") if parsed else None
        if not isinstance(request_id, str):
            request_id = None  # handler output can put anything there: a number, a list, null
        with self._lock:
            if request_id is None and len(self._running) == 1:
                request_id = next(iter(self._running))
            record = self._records.get(request_id or "")
            if record is not None and not record.finished.is_set():
                record.lines.append(line)
        self.write(line)

    def write(self, line: str) -> None:
        """A line for the console only (no invocation's log)."""
        if self._echo is not None:
            self._echo.write(line)

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

    def _print(self, record: InvocationRecord, line: str) -> None:
        with self._lock:
            record.lines.append(line)
        self.write(line)

    def _report_line(self, record: InvocationRecord, duration_ms: float, peak_mb: int | None) -> str:
        parts = [
            f"REPORT RequestId: {record.request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
            f"Memory Size: {self.emulator.memory_mb} MB",
        ]
        if peak_mb is not None:
            parts.append(f"Max Memory Used: {peak_mb} MB")
        if record.init_duration_ms is not None:
            parts.append(f"Init Duration: {record.init_duration_ms:.2f} ms")
        return "\t".join(parts)


def memory_warning(peak_mb: int, memory_mb: int) -> str:
    """The line after a REPORT whose Max Memory Used is past the memory size.

    The size is not enforced locally: Lambda counts the environment's resident memory,
    which no limit of this machine's (a worker's RLIMIT_DATA counts address space, every
    thread's stack included) measures alike, so a cap would fail functions Lambda runs.
    """
    return (
        f"lambda-supervisor: Max Memory Used ({peak_mb} MB) is over the memory size ({memory_mb} MB): "
        "on Lambda this function would run out of memory; locally the memory size is not enforced"
    )
