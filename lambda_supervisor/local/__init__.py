"""Run a handler locally through the real runtime: ``invoke`` once, or ``serve`` over HTTP.

The point is to exercise exactly what runs on Lambda (``bin/bootstrap``, the supervisor,
a forked worker) rather than calling the handler function directly, so local results
match production: same marshalling, same error bodies, same timeouts. The emulator plays
the platform; ``LocalRunner`` adds what Lambda's console shows around each call (START,
END and REPORT lines, the log tail) and restarts the runtime if it dies while serving.

The modules: ``settings`` (what Lambda accepts, ``UsageError``), ``handlers`` and
``events`` (what the user asked to run), ``runner`` (``LocalRunner``), ``logs`` (each
invocation's lines and START/END/REPORT), ``streaming`` (a streamed answer read as it
arrives), ``console``, ``runtime_errors`` (the runtime's own error wording) and
``commands`` (the CLI).
"""

from .commands import (
    DEFAULT_PORT,
    EXIT_FUNCTION_ERROR,
    EXIT_USAGE,
    inherited_names,
    parse_env,
    register,
    run_invoke,
    run_serve,
)
from .console import ECHO_BACKLOG_CHARS, ECHO_DRAIN_TIMEOUT, LogEcho
from .events import load_sample, read_event, sample_names, validated_event
from .handlers import HandlerLocation, parse_handler
from .logs import InvocationLogs, InvocationRecord
from .runner import RUNTIME_START_GRACE, InvocationResult, LocalRunner
from .runtime_errors import exit_message
from .settings import (
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
)
from .streaming import ChunkPrinter, InvocationStream

__all__ = [
    "DEFAULT_INIT_TIMEOUT",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "ECHO_BACKLOG_CHARS",
    "ECHO_DRAIN_TIMEOUT",
    "EXIT_FUNCTION_ERROR",
    "EXIT_USAGE",
    "INIT_TIMEOUT_RANGE",
    "MEMORY_RANGE",
    "RETAINED_INVOCATIONS",
    "RETAINED_INVOCATION_BYTES",
    "RETAINED_REQUESTS",
    "RUNTIME_START_GRACE",
    "TIMEOUT_RANGE",
    "ChunkPrinter",
    "HandlerLocation",
    "InvocationLogs",
    "InvocationRecord",
    "InvocationResult",
    "InvocationStream",
    "LocalRunner",
    "LogEcho",
    "UsageError",
    "check_range",
    "exit_message",
    "inherited_names",
    "load_sample",
    "parse_env",
    "parse_handler",
    "read_event",
    "register",
    "run_invoke",
    "run_serve",
    "sample_names",
    "validated_event",
]
