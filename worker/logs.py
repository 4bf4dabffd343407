"""Log records as Lambda writes them, for handler code in the worker and for the supervisor.

Every line on stdout is one log record, JSON by default with the field names Lambda's
own Python runtime uses (``timestamp``, ``level``, ``message``, ``logger``,
``requestId``, and ``errorType``/``errorMessage``/``stackTrace`` for exceptions), or the
Text form when ``AWS_LAMBDA_LOG_FORMAT=Text``. The processor chain here formats both:
records from the standard ``logging`` module in the worker (``LambdaLogHandler``), and
the supervisor's, which go through structlog with the same chain
(``supervisor/logs.py``), so both look alike in CloudWatch.
"""

from __future__ import annotations

import io
import json
import logging
import os
import select
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], Any]

# AWS_LAMBDA_LOG_LEVEL values, mapped to the standard library's levels.
LAMBDA_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}

# LogRecord attributes that are not the caller's ``extra=`` fields.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def text_format_requested(environ: MutableMapping[str, str] = os.environ) -> bool:
    return environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "TEXT"


def configured_level(environ: MutableMapping[str, str] = os.environ) -> int | None:
    """The level ``AWS_LAMBDA_LOG_LEVEL`` asks for, or None when it is unset or unknown."""
    return LAMBDA_LEVELS.get(environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())


def format_timestamp(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds, as CloudWatch shows it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


# --- processors -------------------------------------------------------------------------


def add_timestamp(_logger: Any, _method: str, event: EventDict) -> EventDict:
    event.setdefault("timestamp", format_timestamp(time.time()))
    return event


def add_level(_logger: Any, method: str, event: EventDict) -> EventDict:
    event.setdefault("level", "WARNING" if method == "warn" else method.upper())
    return event


def rename_event_to_message(_logger: Any, _method: str, event: EventDict) -> EventDict:
    if "event" in event:
        event["message"] = event.pop("event")
    return event


def order_fields(_logger: Any, _method: str, event: EventDict) -> dict[str, Any]:
    """Lambda's field order first, then the rest; drop empty values as Lambda does."""
    ordered = {key: event.pop(key) for key in ("timestamp", "level", "message", "logger") if key in event}
    if event.get("requestId") is not None:
        ordered["requestId"] = event.pop("requestId")
    ordered.update((key, value) for key, value in event.items() if value is not None)
    return ordered


def render_json(_logger: Any, _method: str, event: EventDict) -> str:
    return json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))


def render_text(_logger: Any, _method: str, event: EventDict) -> str:
    """``[LEVEL]\\t<timestamp>\\t<requestId>\\t<message>``; other fields as key=value."""
    event = dict(event)
    head = "[{}]\t{}\t{}\t{}".format(
        event.pop("level", "INFO"),
        event.pop("timestamp", ""),
        event.pop("requestId", "") or "",
        event.pop("message", ""),
    )
    event.pop("logger", None)
    stack = event.pop("stackTrace", None)
    fields = " ".join(f"{key}={value}" for key, value in event.items())
    line = f"{head} {fields}" if fields else head
    if stack:
        # Lambda keeps a record together when its lines are separated by CR.
        line += "\rTraceback (most recent call last):\r" + "".join(stack).rstrip("\n").replace("\n", "\r")
    return line


def processor_chain(text: bool) -> list[Processor]:
    renderer: Processor = render_text if text else render_json
    return [add_level, add_timestamp, rename_event_to_message, order_fields, renderer]


def render(event: EventDict, method: str, chain: list[Processor]) -> str:
    """Run an event through a processor chain, as structlog does, to one line."""
    result: Any = event
    for processor in chain:
        result = processor(None, method, result)
    return result


# --- one stdout shared by several workers -------------------------------------------------------


class SharedOutput:
    """Whole lines on a stdout that several workers (and the supervisor) write at once.

    With several slots the workers share the runtime's stdout and stderr, and the bytes of
    two lines written at the same time must never mix. A write of at most ``PIPE_BUF``
    bytes to a pipe is atomic, so every line goes out in one ``os.write`` of its own. A
    longer one is not: the pipe takes it in pieces, and other writes can land between
    them. So each write holds an ``flock`` on a lock file that every process opens itself
    (a lock taken through a descriptor inherited across fork would be shared, and exclude
    nobody): shared for the atomic writes, which may overlap, exclusive for a longer one.

    ``path`` is set in the supervisor before anything is forked; each process then calls
    ``open_lock``. With no path (one slot) every line is written as it is.
    """

    path: str | None = None
    _lock_fd: int | None = None

    @classmethod
    def open_lock(cls) -> None:
        """Open this process's own description of the lock file (after the fork)."""
        if cls.path is None:
            return
        try:
            cls._lock_fd = os.open(cls.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            cls._lock_fd = None  # removed under us: lines are still whole up to PIPE_BUF

    @classmethod
    def write(cls, fd: int, data: bytes) -> None:
        """Write ``data`` (whole lines) to ``fd``, as one piece no other writer splits."""
        if cls.path is None:
            os.write(fd, data)  # one slot: the supervisor writes between invocations only
            return
        lock = cls._lock_fd
        if lock is not None:
            import fcntl

            try:
                fcntl.flock(lock, fcntl.LOCK_EX if len(data) > _PIPE_BUF else fcntl.LOCK_SH)
            except OSError:
                lock = None  # no lock to be had: the line still goes out
        try:
            _write_all(fd, data)
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


# The longest write a pipe keeps whole (4096 bytes on Linux).
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LineSink(io.RawIOBase):
    """A raw stream under ``sys.stdout``/``sys.stderr`` that writes complete lines only.

    ``print`` writes its text and its newline in two calls; this holds what has no newline
    yet and writes each run of complete lines with ``SharedOutput.write``. A partial line
    goes out on ``flush`` (``print(..., flush=True)``, and at the worker's exit).
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self._pending = b""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        size = len(data)
        end = data.rfind(b"\n") + 1
        if not end:
            self._pending += bytes(data)
            return size
        SharedOutput.write(self.fd, self._pending + bytes(data[:end]))
        self._pending = bytes(data[end:])
        return size

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, b""
            SharedOutput.write(self.fd, pending)

    def fileno(self) -> int:
        return self.fd


# --- handler records in the worker -----------------------------------------------------------


class RequestIdHolder:
    """The request id of the invocation in progress, readable from any thread.

    A plain attribute, not a contextvar: threads the handler starts must see it too, and
    it is cleared after every invocation so late records are not misattributed.
    """

    current: str | None = None


class LambdaLogHandler(logging.Handler):
    """Writes standard ``logging`` records as Lambda log lines straight to stdout.

    One ``os.write`` per record keeps lines whole when the supervisor writes to the same
    stream, and nothing is buffered in the process, so a worker killed at its deadline has
    already published everything it logged.
    """

    def __init__(self, text: bool, fd: int = 1) -> None:
        super().__init__()
        self.chain = processor_chain(text)
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = render(record_to_event(record), record.levelname.lower(), self.chain)
            SharedOutput.write(self.fd, (line + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # stdout closed by the handler: nowhere left to log to
        except Exception:
            self.handleError(record)

    def emit_error(self, report: Mapping[str, Any]) -> None:
        """Log a failed invocation's error report as one record, as Lambda's runtime does."""
        event = {
            "timestamp": format_timestamp(time.time()),
            "level": "ERROR",
            "message": f"{report['errorType']}: {report['errorMessage']}",
            "requestId": report.get("requestId") or None,
            "errorType": report["errorType"],
            "errorMessage": report["errorMessage"],
            "stackTrace": report["stackTrace"],
        }
        try:
            line = render(event, "error", self.chain) + "\n"
            SharedOutput.write(self.fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass


def record_to_event(record: logging.LogRecord) -> dict[str, Any]:
    message: Any = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
    event: dict[str, Any] = {
        "timestamp": format_timestamp(record.created),
        "level": record.levelname,
        "message": message,
        "logger": record.name,
        "requestId": RequestIdHolder.current,
    }
    if record.exc_info and record.exc_info[0] is not None:
        exc_type, exc, tb = record.exc_info
        event["errorType"] = exc_type.__name__
        event["errorMessage"] = str(exc)
        event["stackTrace"] = traceback.format_tb(tb)
    event.update(
        (key, value) for key, value in vars(record).items() if key not in _RECORD_FIELDS and key not in event
    )
    return event


def configure_handler_logging(environ: MutableMapping[str, str] = os.environ) -> LambdaLogHandler:
    """Route the worker's standard logging to stdout in Lambda's format.

    As on Lambda, the root logger's level is only changed when ``AWS_LAMBDA_LOG_LEVEL``
    asks for one, so handler code that relies on the usual WARNING default behaves the same.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = LambdaLogHandler(text_format_requested(environ))
    root.addHandler(handler)
    level = configured_level(environ)
    if level is not None:
        root.setLevel(level)
    return handler
