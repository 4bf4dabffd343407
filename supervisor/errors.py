"""Error bodies in the exact shape AWS's Python runtime posts, so callers see no difference.

Used by the worker for handler and init failures and by the supervisor for the failures
only it can see (a dead worker, a deadline, an oversized result).
"""

from __future__ import annotations

import os
import signal
from typing import Any

ErrorBody = dict[str, Any]

EXIT_ERROR = "Runtime.ExitError"
TIMEOUT = "Sandbox.Timedout"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
PROTOCOL_ERROR = "Runtime.WorkerProtocolError"
OUT_OF_MEMORY = "Runtime.OutOfMemory"

# The wording Lambda's platform uses when it reports a runtime killed by a signal.
_SIGNAL_WORDS = {
    signal.SIGABRT: "aborted",
    signal.SIGALRM: "alarm clock",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGHUP: "hangup",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
    signal.SIGKILL: "killed",
    signal.SIGPIPE: "broken pipe",
    signal.SIGQUIT: "quit",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGTERM: "terminated",
    signal.SIGTRAP: "trace/breakpoint trap",
    signal.SIGUSR1: "user defined signal 1",
    signal.SIGUSR2: "user defined signal 2",
    signal.SIGXCPU: "CPU time limit exceeded",
}


def error_body(
    message: str, error_type: str, request_id: str = "", stack_trace: list[str] | None = None
) -> ErrorBody:
    """The four-key body every Lambda error carries."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }


def describe_status(wait_status: int) -> str:
    """``exit status 3`` or ``signal: segmentation fault``, in the platform's words."""
    code = os.waitstatus_to_exitcode(wait_status)
    if code >= 0:
        return f"exit status {code}"
    try:
        word = _SIGNAL_WORDS.get(signal.Signals(-code), f"{-code}")
    except ValueError:
        word = f"{-code}"
    return f"signal: {word}"


def describe_exit(wait_status: int) -> str:
    """The platform's sentence for a runtime process that died."""
    if os.waitstatus_to_exitcode(wait_status) == 0:
        return "Runtime exited without providing a reason: exit status 0"
    return f"Runtime exited with error: {describe_status(wait_status)}"


def exit_error(wait_status: int, request_id: str) -> ErrorBody:
    return error_body(describe_exit(wait_status), EXIT_ERROR, request_id)


def timeout_error(timeout_seconds: float, request_id: str) -> ErrorBody:
    return error_body(f"Task timed out after {timeout_seconds:.2f} seconds", TIMEOUT, request_id)


def response_too_large(size: int, limit: int, request_id: str) -> ErrorBody:
    return error_body(
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes).",
        RESPONSE_TOO_LARGE,
        request_id,
    )
