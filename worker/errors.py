"""Lambda's error vocabulary and the limits behind it, in the words AWS's runtime and platform use.

Every errorType string the runtime reports, the sentences callers match on ("Runtime exited
with error: ...", "Task timed out after ..."), the four-key error report and its one
encoding, and every size limit with the error a caller sees when it is passed. The worker
words the failures it catches (a bad handler string, an event that is not JSON), the
supervisor those only it can see (a dead worker, a deadline, an oversized result), and the
local emulator and runner report the platform's own in the same words.

Only the standard library is imported here: the dev tooling loads this file on its own
(``lambda_supervisor/runtime_modules.py``), where a function's own ``worker`` module may
shadow this package.
"""

from __future__ import annotations

import json
import os
import signal
from typing import TypedDict

# --- errorType ---------------------------------------------------------------------------
# Failures the worker reports, as AWS's Python runtime words them.
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"
# The handler went past LAMBDA_SUPERVISOR_WORKER_MEMORY_MB.
OUT_OF_MEMORY = "Runtime.OutOfMemory"
# Failures only the supervisor sees, in the platform's words.
EXIT_ERROR = "Runtime.ExitError"
TIMEOUT = "Sandbox.Timedout"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
# This runtime's own: the worker broke the pipe's protocol (handler code wrote on it).
PROTOCOL_ERROR = "Runtime.WorkerProtocolError"
# An event whose head arrived but whose body did not (the connection broke mid-body).
INCOMPLETE_EVENT = "Runtime.IncompleteEvent"
# A runtime refusing its own configuration, reported to /init/error.
INVALID_CONFIGURATION = "Runtime.InvalidConfiguration"
# SnapStart runtime hooks (``snapshot_restore_py``) that raised, in AWS's runtime's words:
# a before-snapshot hook goes to /init/error, an after-restore hook to /restore/error.
BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
# An error type that says nothing, for a report that names none (what AWS's emulator
# turns any errorType into that is not Category.Reason).
UNKNOWN = "Runtime.Unknown"
# The local emulator's: an event the runtime failed to receive again and again.
EVENT_NOT_DELIVERED = "Runtime.EventNotDelivered"
# What the Invoke API calls a function error (X-Amz-Function-Error, boto3's FunctionError).
UNHANDLED = "Unhandled"

# --- size limits -------------------------------------------------------------------------
# Every size limit an event, a result or an error report meets on its way: who enforces it,
# and what the caller sees when it is passed.
#
# MAX_SYNC_PAYLOAD      a result (and a synchronous event). The worker reports a larger
#                       result as RESPONSE_TOO_LARGE instead of sending it. The supervisor
#                       kills a worker that sends one anyway, with the same error, and never
#                       reads a reply announcing more than this plus ERROR_REPLY_SLACK. The
#                       Runtime API answers a larger post 413, reported the same way. The
#                       emulator answers a larger post 413, a larger invoke 413
#                       RequestEntityTooLargeException.
# MAX_STREAMED_PAYLOAD  a streamed response, as the emulator accepts it.
# MAX_EVENT_BYTES       an event on the pipe, as the worker reads it: far above anything the
#                       Runtime API hands out, so a larger frame means a broken pipe.
# MAX_ANSWER_BYTES      a Runtime API answer's body, as the supervisor reads it: a larger one
#                       is a broken answer, retried like a dropped connection.
# ERROR_BODY_BYTES      an encoded error report: the worker cuts errorMessage and stackTrace
#                       to fit (with a note of the cut), so the log record carrying it stays
#                       inside one CloudWatch Logs event.
# STREAM_ERROR_BODY_BYTES  an encoded error report that ends a stream: it goes base64 into a
#                       trailer line, which servers refuse past 64 KiB, so the worker cuts it
#                       to this (the supervisor cuts a forged one again).
# ERROR_TYPE_CHARS      an errorType in a report; the Lambda-Runtime-Function-Error-Type
#                       header carries at most ERROR_TYPE_HEADER_CHARS of it.
# XRAY_CAUSE_BYTES      the X-Ray cause header: built to fit by the worker, a forged one cut
#                       to the same by the supervisor (worker/reports.py), since servers refuse
#                       a header line past 64 KiB and the error would be lost with it.
# MAX_FRAME_METADATA    a frame's metadata on the pipe; the supervisor reports a larger one
#                       as PROTOCOL_ERROR.
# ERROR_REPLY_SLACK     what an error reply may carry beyond MAX_SYNC_PAYLOAD, and all an
#                       init report may carry (PROTOCOL_ERROR past it).
MAX_SYNC_PAYLOAD = 6_291_556
MAX_STREAMED_PAYLOAD = 200 * 1024 * 1024
MAX_EVENT_BYTES = 64 << 20
MAX_ANSWER_BYTES = 64 << 20
ERROR_BODY_BYTES = 64 << 10
STREAM_ERROR_BODY_BYTES = 16 << 10
ERROR_TYPE_CHARS = 256
ERROR_TYPE_HEADER_CHARS = 128
XRAY_CAUSE_BYTES = 4 << 10
MAX_FRAME_METADATA = 1 << 20
ERROR_REPLY_SLACK = 1 << 20


class ErrorReport(TypedDict):
    """The four keys every Lambda error carries; encoded (``encode``), the error body."""

    errorMessage: str
    errorType: str
    requestId: str
    stackTrace: list[str]


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


def report(
    message: str, error_type: str, request_id: str = "", stack_trace: list[str] | None = None
) -> ErrorReport:
    """The four-key report every Lambda error carries."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }


def encode(error: ErrorReport) -> bytes:
    """A report as it is sent: UTF-8 JSON, lone surrogates (from user code) escaped."""
    return json.dumps(error, ensure_ascii=False).encode("utf-8", "backslashreplace")


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


def timeout_message(timeout_seconds: float) -> str:
    """The platform's sentence for an invocation that ran out of time."""
    return f"Task timed out after {timeout_seconds:.2f} seconds"


def exit_error(wait_status: int, request_id: str) -> ErrorReport:
    return report(describe_exit(wait_status), EXIT_ERROR, request_id)


def timeout_error(timeout_seconds: float, request_id: str) -> ErrorReport:
    return report(timeout_message(timeout_seconds), TIMEOUT, request_id)


def response_too_large(size: int, limit: int, request_id: str) -> ErrorReport:
    return report(
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes).",
        RESPONSE_TOO_LARGE,
        request_id,
    )
