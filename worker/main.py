"""The worker's life: init once, then answer events from the supervisor until told to stop.

Runs in a process forked from the supervisor. Everything a handler can do wrong short of
killing this process is turned into a ``Failed`` reply here; anything worse (``os._exit``,
a signal, ``sys.exit``) ends the process, and the supervisor reports it.
"""

from __future__ import annotations

import io
import os
import sys
import time

from worker import errors, marshal, protocol
from worker.context import ContextUnmarshalError, LambdaContext
from worker.handler_loader import Handler, InitError, load_handler
from worker.logs import LambdaLogHandler, RequestIdHolder, configure_handler_logging
from worker.reports import XRayCause, bounded_report, exception_report

_log_handler: LambdaLogHandler | None = None


def unbuffered_stdio() -> None:
    """Send every ``print`` straight to the file descriptor.

    A worker can be killed at its deadline at any moment; output sitting in a buffer would
    be lost, exactly when it is needed most.
    """
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            raw = io.FileIO(fd, "w", closefd=False)
        except OSError:
            continue
        setattr(
            sys, name, io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)
        )


def run(
    handler_name: str,
    from_supervisor: int,
    to_supervisor: int,
    max_response_bytes: int,
    worker_memory_mb: float | None = None,
) -> None:
    """Initialise, report ready or the init error, then serve events until the pipe closes."""
    started = time.monotonic()
    worker_pid = os.getpid()
    global _log_handler
    unbuffered_stdio()
    _log_handler = configure_handler_logging()
    task_root = code_root()
    if task_root and (not sys.path or sys.path[0] != task_root):
        sys.path.insert(0, task_root)
    try:
        handler = load_handler(handler_name)
    except InitError as exc:
        report = bounded_report(errors.report(exc.message, exc.error_type, "", exc.stack_trace))
        protocol.write_init_failed(
            to_supervisor, protocol.InitFailed(errors.encode(report), report["errorType"])
        )
        return
    _leave_if_forked(worker_pid)
    protocol.write_ready(to_supervisor, (time.monotonic() - started) * 1000)
    while True:
        try:
            reply_token, meta, payload = protocol.read_event(from_supervisor)
        except protocol.Closed:
            return
        reply = invoke(handler, meta, payload, max_response_bytes, worker_memory_mb)
        _leave_if_forked(worker_pid)
        protocol.write_reply(to_supervisor, reply_token, reply)
        # Neither the event nor the result is kept while waiting for the next event: each
        # can be 6 MB, held for as long as the environment idles.
        del payload, reply


def code_root() -> str:
    """Where the function's code is: first on its search path, as AWS's runtime puts it."""
    return os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()


def _leave_if_forked(worker_pid: int) -> None:
    """End a process that handler code forked and that came back into this loop (both sides
    of a fork returning): only the worker answers, one reply per event."""
    if os.getpid() != worker_pid:
        os._exit(0)


def invoke(
    handler: Handler,
    meta: protocol.EventMeta,
    payload: bytes | bytearray,
    max_response_bytes: int,
    worker_memory_mb: float | None = None,
) -> protocol.Result | protocol.Failed:
    """Run one event through the handler; the reply to send back."""
    request_id = meta["request_id"]
    RequestIdHolder.current = request_id
    _set_trace_id(meta.get("trace_id"))
    try:
        context = LambdaContext(meta)
        event = marshal.decode_event(payload, meta.get("content_type"))
        result = handler(event, context)
        result_payload, content_type = marshal.encode_result(result)
    except ContextUnmarshalError as exc:
        return _failed(errors.report(str(exc), errors.CONTEXT_UNMARSHAL_ERROR, request_id))
    except marshal.UnmarshalError as exc:
        return _failed(errors.report(str(exc), errors.UNMARSHAL_ERROR, request_id))
    except marshal.MarshalError as exc:
        return _failed(errors.report(str(exc), errors.MARSHAL_ERROR, request_id))
    except MemoryError as exc:
        # The heap is suspect after this: answer, then ask to be replaced.
        if worker_memory_mb:
            message = f"The handler exceeded the worker memory limit of {worker_memory_mb:g} MB"
            report, _ = exception_report(exc, request_id, errors.OUT_OF_MEMORY, message)
        else:
            report, _ = exception_report(exc, request_id)
        return _failed(report, retire=True)
    except Exception as exc:
        return _failed(*exception_report(exc, request_id))
    finally:
        RequestIdHolder.current = None
    if len(result_payload) > max_response_bytes:
        return _failed(errors.response_too_large(len(result_payload), max_response_bytes, request_id))
    return protocol.Result(result_payload, content_type)


def _failed(
    report: errors.ErrorReport, cause: XRayCause | None = None, *, retire: bool = False
) -> protocol.Failed:
    """The reply for a failed invocation, its report bounded and logged."""
    report = bounded_report(report)
    if _log_handler is not None:
        _log_handler.emit_error(report)
    return protocol.Failed(errors.encode(report), report["errorType"], cause, retire)


def _set_trace_id(trace_id: str | None) -> None:
    """``_X_AMZN_TRACE_ID`` for this invocation, or unset.

    A value the environment cannot hold (a NUL byte, from the platform or a local caller's
    header) is dropped rather than allowed to fail every event: no trace id is what X-Ray
    would make of it anyway.
    """
    if trace_id:
        try:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
            return
        except (ValueError, UnicodeError):
            pass
    os.environ.pop("_X_AMZN_TRACE_ID", None)
