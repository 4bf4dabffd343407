"""The worker's life: init once, then answer events from the supervisor until told to stop.

Runs in a process forked from the supervisor. Everything a handler can do wrong short of
killing this process is turned into an error frame here; anything worse (``os._exit``,
a signal, ``sys.exit``) ends the process, and the supervisor reports it.
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import Any

from supervisor import protocol
from supervisor.logs import LambdaLogHandler, RequestIdHolder, configure_handler_logging
from worker import errors, marshal
from worker.context import ContextUnmarshalError, LambdaContext
from worker.handler_loader import Handler, InitError, load_handler
from worker.reports import bounded_report, exception_report

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
    max_response: int,
    memory_limit_mb: float | None = None,
) -> None:
    """Initialise, report ready or the init error, then serve events until the pipe closes."""
    started = time.monotonic()
    worker_pid = os.getpid()
    global _log_handler
    unbuffered_stdio()
    _log_handler = configure_handler_logging()
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if task_root and (not sys.path or sys.path[0] != task_root):
        sys.path.insert(0, task_root)
    try:
        handler = load_handler(handler_name)
    except InitError as exc:
        report = bounded_report(errors.report(exc.message, exc.error_type, "", exc.stack_trace))
        meta = {"error_type": report["errorType"]}
        protocol.write_frame(to_supervisor, protocol.INIT_ERROR, meta, errors.encode(report))
        return
    _leave_if_forked(worker_pid)
    init_ms = (time.monotonic() - started) * 1000
    protocol.write_frame(to_supervisor, protocol.READY, {"init_ms": round(init_ms, 3)})
    while True:
        try:
            frame = protocol.read_frame(
                from_supervisor, max_body=errors.MAX_EVENT_BYTES, allowed=frozenset((protocol.EVENT,))
            )
        except protocol.PeerClosed:
            return
        reply_token = frame.meta.pop("reply_token", None)
        kind, meta, body = invoke(handler, frame.meta, frame.body, max_response, memory_limit_mb)
        _leave_if_forked(worker_pid)
        meta["reply_token"] = reply_token
        protocol.write_frame(to_supervisor, kind, meta, body)
        # Neither the event nor the result is kept while waiting for the next event: each
        # can be 6 MB, held for as long as the environment idles.
        del frame, body


def _leave_if_forked(worker_pid: int) -> None:
    """End a process that handler code forked and that came back into this loop (both sides
    of a fork returning): only the worker answers, one reply per event."""
    if os.getpid() != worker_pid:
        os._exit(0)


def invoke(
    handler: Handler,
    meta: dict[str, Any],
    body: bytes,
    max_response: int,
    memory_limit_mb: float | None = None,
) -> tuple[bytes, dict, bytes]:
    """Run one event through the handler; return the frame to send back."""
    request_id = meta["request_id"]
    RequestIdHolder.current = request_id
    _set_trace_id(meta.get("trace_id"))
    try:
        context = LambdaContext(meta)
        event = marshal.decode_event(body, meta.get("content_type"))
        result = handler(event, context)
        payload, content_type = marshal.encode_result(result)
    except ContextUnmarshalError as exc:
        return _error_frame(errors.report(str(exc), errors.CONTEXT_UNMARSHAL_ERROR, request_id))
    except marshal.UnmarshalError as exc:
        return _error_frame(errors.report(str(exc), errors.UNMARSHAL_ERROR, request_id))
    except marshal.MarshalError as exc:
        return _error_frame(errors.report(str(exc), errors.MARSHAL_ERROR, request_id))
    except MemoryError as exc:
        # The heap is suspect after this: answer, then ask to be replaced.
        if memory_limit_mb:
            message = f"The handler exceeded the worker memory limit of {memory_limit_mb:g} MB"
            report, _ = exception_report(exc, request_id, errors.OUT_OF_MEMORY, message)
        else:
            report, _ = exception_report(exc, request_id)
        kind, meta_, payload_ = _error_frame(report)
        meta_["retire"] = True
        return kind, meta_, payload_
    except Exception as exc:
        return _error_frame(*exception_report(exc, request_id))
    finally:
        RequestIdHolder.current = None
    if len(payload) > max_response:
        return _error_frame(errors.response_too_large(len(payload), max_response, request_id))
    return protocol.RESULT, {"content_type": content_type}, payload


def _error_frame(
    report: errors.ErrorReport, cause: dict[str, Any] | None = None
) -> tuple[bytes, dict, bytes]:
    report = bounded_report(report)
    if _log_handler is not None:
        _log_handler.emit_error(report)
    meta: dict[str, Any] = {"error_type": report["errorType"]}
    if cause is not None:
        meta["xray_cause"] = cause
    return protocol.ERROR, meta, errors.encode(report)


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
