"""The supervisor's own log records: structlog, with the worker's processor chain.

Records look exactly like the handler's (``worker/logs.py`` formats both), and structlog
is only imported once the supervisor has something to say at the configured level.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, BinaryIO, Protocol, TextIO, cast

from worker.logs import LineSink, SharedOutput, configured_level, processor_chain, text_format_requested


class Logger(Protocol):
    """What the supervisor's parts log through: a message and its fields, at four levels."""

    def debug(self, message: str, **fields: Any) -> None: ...

    def info(self, message: str, **fields: Any) -> None: ...

    def warning(self, message: str, **fields: Any) -> None: ...

    def error(self, message: str, **fields: Any) -> None: ...


class SupervisorLogger:
    """The supervisor's logger: structlog, imported when the first record passes the level.

    Importing structlog costs 50-80 ms (it brings asyncio along). A healthy environment's
    supervisor has nothing to say at the default level, so it never pays that on the way
    to its first ``GET /next``; the first warning or error does. Records below the level
    are dropped here, before structlog is needed.
    """

    def __init__(self, name: str, environ: MutableMapping[str, str] = os.environ) -> None:
        self.name = name
        self.environ = environ
        self.threshold = configured_level(environ) or logging.INFO
        self._structlog_logger: Any = None

    def prepare(self) -> None:
        """Import and configure structlog now, not at the first record (with several slots,
        in the main thread before any slot runs)."""
        if self._structlog_logger is None:
            self._structlog_logger = _structlog_logger(self.name, self.environ, self.threshold)

    def debug(self, message: str, **fields: Any) -> None:
        self._log(logging.DEBUG, "debug", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._log(logging.INFO, "info", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._log(logging.WARNING, "warning", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._log(logging.ERROR, "error", message, fields)

    def _log(self, level: int, method: str, message: str, fields: dict[str, Any]) -> None:
        if level < self.threshold:
            return
        if self._structlog_logger is None:
            self._structlog_logger = _structlog_logger(self.name, self.environ, self.threshold)
        getattr(self._structlog_logger, method)(message, **fields)


def _output() -> TextIO:
    """Where records go: stdout; with several workers sharing it, whole lines only, one
    write each (structlog writes a record and its newline in one call, under its lock)."""
    if SharedOutput.path is None:
        return sys.stdout
    raw = cast(BinaryIO, LineSink(1))  # a raw stream, as TextIOWrapper takes (typeshed wants more)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def _structlog_logger(name: str, environ: MutableMapping[str, str], level: int) -> Any:
    import structlog

    structlog.configure(
        processors=processor_chain(text_format_requested(environ)),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=_output()),
        cache_logger_on_first_use=True,
    )
    return structlog.get_logger(name).bind(logger=name)
