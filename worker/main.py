"""The worker's life: init once, then answer events from the supervisor until told to stop.

Runs in a process forked from the supervisor. Everything a handler can do wrong short of
killing this process is turned into a ``Failed`` reply here; anything worse (``os._exit``,
a signal, ``sys.exit``) ends the process, and the supervisor reports it. A handler that
returns an iterator streams (``send_stream``): each item goes to the supervisor as it is
yielded.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from worker import errors, marshal, protocol, snapshot_hooks
from worker.context import ContextUnmarshalError, LambdaContext
from worker.handler_loader import Handler, InitError, load_handler
from worker.logs import LambdaLogHandler, LineSink, RequestIdHolder, SharedOutput, configure_handler_logging
from worker.reports import XRayCause, bounded_report, exception_report

_log_handler: LambdaLogHandler | None = None


def unbuffered_stdio() -> None:
    """Send every ``print`` straight to the file descriptor.

    A worker can be killed at its deadline at any moment; output sitting in a buffer would
    be lost, exactly when it is needed most. When several workers share the output
    (``SharedOutput``), only a line not yet ended waits, so that lines never mix.
    """
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            raw: io.RawIOBase = io.FileIO(fd, "w", closefd=False)
        except OSError:
            continue
        if SharedOutput.path is not None:
            raw = LineSink(fd)
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
    _prepare_process()
    # Read before the function's code runs, as the supervisor read it.
    snap_start = snapshot_hooks.snap_start(os.environ)
    try:
        handler = load_handler(handler_name)
    except InitError as exc:
        protocol.write_init_failed(to_supervisor, _init_failed(exc))
        return
    _leave_if_forked(worker_pid)
    protocol.write_ready(to_supervisor, (time.monotonic() - started) * 1000)
    if snap_start and not run_snapshot_hooks(from_supervisor, to_supervisor, worker_pid):
        return
    _serve(handler, from_supervisor, to_supervisor, max_response_bytes, worker_memory_mb, worker_pid)


class Preloaded(NamedTuple):
    """The function as the fork server initialised it, for every worker forked from it: its
    handler, or the init failure each of them reports."""

    handler: Handler | None
    failure: protocol.InitFailed | None


def preload(handler_name: str) -> Preloaded:
    """Init once, in the fork server (``LAMBDA_SUPERVISOR_PRELOAD``): import the handler as
    ``run`` does, then run the before-snapshot hooks, once, before the first fork."""
    _prepare_process()
    try:
        handler = load_handler(handler_name)
    except InitError as exc:
        return Preloaded(None, _init_failed(exc))
    failure = snapshot_hooks.run_before_snapshot()
    if failure is not None:
        return Preloaded(None, _hook_failed(failure, errors.BEFORE_SNAPSHOT_ERROR))
    return Preloaded(handler, None)


def run_preloaded(
    preloaded: Preloaded,
    from_supervisor: int,
    to_supervisor: int,
    max_response_bytes: int,
    worker_memory_mb: float | None = None,
) -> None:
    """``run`` for a worker forked from a preloaded fork server: the after-restore hooks are
    its whole init (an init failure is the fork server's, reported by every worker)."""
    started = time.monotonic()
    worker_pid = os.getpid()
    if preloaded.handler is None:
        assert preloaded.failure is not None
        protocol.write_init_failed(to_supervisor, preloaded.failure)
        return
    failure = snapshot_hooks.run_after_restore()
    if failure is not None:
        protocol.write_init_failed(to_supervisor, _hook_failed(failure, errors.AFTER_RESTORE_ERROR))
        return
    _leave_if_forked(worker_pid)
    protocol.write_ready(to_supervisor, (time.monotonic() - started) * 1000)
    handler = preloaded.handler
    _serve(handler, from_supervisor, to_supervisor, max_response_bytes, worker_memory_mb, worker_pid)


def _prepare_process() -> None:
    """What a worker sets up before it imports the function: its output, its logging and
    the function's code root first on ``sys.path``, as AWS's runtime puts it."""
    global _log_handler
    unbuffered_stdio()
    _log_handler = configure_handler_logging()
    task_root = code_root()
    if task_root and (not sys.path or sys.path[0] != task_root):
        sys.path.insert(0, task_root)


def _init_failed(exc: InitError) -> protocol.InitFailed:
    report = bounded_report(errors.report(exc.message, exc.error_type, "", exc.stack_trace))
    return protocol.InitFailed(errors.encode(report), report["errorType"])


def _hook_failed(report: errors.ErrorReport, error_type: str) -> protocol.InitFailed:
    """A runtime hook's failure: the report keeps the exception's type, and is posted under
    the phase that failed (``Runtime.BeforeSnapshotError``, ``Runtime.AfterRestoreError``)."""
    return protocol.InitFailed(errors.encode(bounded_report(report)), error_type)


def _serve(
    handler: Handler,
    from_supervisor: int,
    to_supervisor: int,
    max_response_bytes: int,
    worker_memory_mb: float | None,
    worker_pid: int,
) -> None:
    """Answer events from the supervisor until the pipe closes."""
    while True:
        try:
            reply_token, meta, payload = protocol.read_event(from_supervisor)
        except protocol.Closed:
            return
        reply = invoke(handler, meta, payload, max_response_bytes, worker_memory_mb)
        if isinstance(reply, Streamed):
            send_stream(reply, to_supervisor, reply_token, worker_pid, worker_memory_mb)
        else:
            _leave_if_forked(worker_pid)
            protocol.write_reply(to_supervisor, reply_token, reply)
        # Neither the event nor the result is kept while waiting for the next event: each
        # can be 6 MB, held for as long as the environment idles.
        del payload, reply


def run_snapshot_hooks(from_supervisor: int, to_supervisor: int, worker_pid: int) -> bool:
    """SnapStart: run the phases of runtime hooks the supervisor asks for, in its order
    (before-snapshot, then after-restore), and say how each went. True once the
    after-restore hooks have run and events may come; False when a hook raised (the
    supervisor reports it, and this worker is done) or the supervisor closed the pipe."""
    while True:
        try:
            phase = protocol.read_run_hooks(from_supervisor)
        except protocol.Closed:
            return False
        started = time.monotonic()
        if phase == protocol.BEFORE_SNAPSHOT:
            failure = snapshot_hooks.run_before_snapshot()
        else:
            failure = snapshot_hooks.run_after_restore()
        _leave_if_forked(worker_pid)
        if failure is not None:
            protocol.write_hooks_failed(to_supervisor, protocol.HooksFailed(errors.encode(failure)))
            return False
        protocol.write_hooks_ran(to_supervisor, (time.monotonic() - started) * 1000)
        if phase == protocol.AFTER_RESTORE:
            return True


def code_root() -> str:
    """Where the function's code is: first on its search path, as AWS's runtime puts it."""
    return os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()


def _leave_if_forked(worker_pid: int) -> None:
    """End a process that handler code forked and that came back into this loop (both sides
    of a fork returning): only the worker answers, one reply per event."""
    if os.getpid() != worker_pid:
        os._exit(0)


class Streamed(NamedTuple):
    """A handler that streams: the iterator it returned, to be sent as it yields."""

    items: Iterator[Any]
    context: LambdaContext


def invoke(
    handler: Handler,
    meta: protocol.EventMeta,
    payload: bytes | bytearray,
    max_response_bytes: int,
    worker_memory_mb: float | None = None,
) -> protocol.Result | protocol.Failed | Streamed:
    """Run one event through the handler; the reply to send back, or the stream to send."""
    request_id = meta["request_id"]
    RequestIdHolder.current = request_id
    _set_trace_id(meta.get("trace_id"))
    try:
        context = LambdaContext(meta)
        event = marshal.decode_event(payload, meta.get("content_type"))
        result = handler(event, context)
        if marshal.is_stream(result):
            return Streamed(result, context)
        result_payload, content_type = marshal.encode_result(result)
    except Exception as exc:
        return _failure(exc, request_id, worker_memory_mb)
    finally:
        RequestIdHolder.current = None
    if len(result_payload) > max_response_bytes:
        return _failed(errors.response_too_large(len(result_payload), max_response_bytes, request_id))
    return protocol.Result(result_payload, content_type)


def send_stream(
    streamed: Streamed,
    to_supervisor: int,
    reply_token: object,
    worker_pid: int,
    worker_memory_mb: float | None = None,
) -> None:
    """Send what a streaming handler yields, each item as soon as it is yielded.

    Nothing is sent before the first item: a handler that fails before it gets an ordinary
    error reply. After it, a failure ends the stream with the error (for its trailers). Each
    write blocks while the pipe is full, so a slow Runtime API slows the handler's yields
    instead of filling this process's memory.
    """
    context = streamed.context
    request_id = context.aws_request_id
    RequestIdHolder.current = request_id
    started = False
    try:
        for item in streamed.items:
            if started:
                data = marshal.encode_chunk(item)
            else:
                data, content_type = marshal.encode_first_chunk(item, _stream_content_type(context))
                _leave_if_forked(worker_pid)
                protocol.write_stream_start(to_supervisor, reply_token, content_type)
                started = True
            _leave_if_forked(worker_pid)
            protocol.write_chunk(to_supervisor, data)
            del item, data  # not kept while the handler makes the next one
    except Exception as exc:
        _close_quietly(streamed.items)
        failed = _failure(exc, request_id, worker_memory_mb, started)
        _leave_if_forked(worker_pid)
        if started:
            protocol.write_stream_failed(to_supervisor, failed)
        else:
            protocol.write_reply(to_supervisor, reply_token, failed)
        return
    finally:
        RequestIdHolder.current = None
    _leave_if_forked(worker_pid)
    if not started:
        content_type = _stream_content_type(context) or marshal.STREAM_CONTENT_TYPE
        protocol.write_stream_start(to_supervisor, reply_token, content_type)
    protocol.write_stream_end(to_supervisor)


def _stream_content_type(context: LambdaContext) -> str | None:
    """What the handler set as its stream's content type (``context.response_content_type``)."""
    content_type = getattr(context, "response_content_type", None)
    if content_type is None or (isinstance(content_type, str) and protocol.is_header_value(content_type)):
        return content_type
    raise marshal.MarshalError(
        f"Unable to marshal response: response_content_type {content_type!r:.80} is not a header value"
    )


def _close_quietly(items: Iterator[Any]) -> None:
    """Close a generator left half-way, so that its ``finally`` blocks run now."""
    close = getattr(items, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


def _failure(
    exc: Exception, request_id: str, worker_memory_mb: float | None, streamed: bool = False
) -> protocol.Failed:
    """The reply for a handler (or its result) that raised ``exc``."""
    limit = errors.STREAM_ERROR_BODY_BYTES if streamed else errors.ERROR_BODY_BYTES
    if isinstance(exc, ContextUnmarshalError):
        return _failed(errors.report(str(exc), errors.CONTEXT_UNMARSHAL_ERROR, request_id))
    if isinstance(exc, marshal.UnmarshalError):
        return _failed(errors.report(str(exc), errors.UNMARSHAL_ERROR, request_id))
    if isinstance(exc, marshal.MarshalError):
        return _failed(errors.report(str(exc), errors.MARSHAL_ERROR, request_id), limit=limit)
    if isinstance(exc, MemoryError):
        # The heap is suspect after this: answer, then ask to be replaced.
        if worker_memory_mb:
            message = f"The handler exceeded the worker memory limit of {worker_memory_mb:g} MB"
            report, _ = exception_report(exc, request_id, errors.OUT_OF_MEMORY, message)
        else:
            report, _ = exception_report(exc, request_id)
        return _failed(report, retire=True, limit=limit)
    report, cause = exception_report(exc, request_id)
    return _failed(report, None if streamed else cause, limit=limit)


def _failed(
    report: errors.ErrorReport,
    cause: XRayCause | None = None,
    *,
    retire: bool = False,
    limit: int = errors.ERROR_BODY_BYTES,
) -> protocol.Failed:
    """The reply for a failed invocation, its report bounded (to ``limit`` bytes) and logged."""
    report = bounded_report(report, limit)
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
