"""The report of a failed init or invocation: built so that it cannot fail, and always fits.

Handler code decides what goes into an error report: an exception whose ``__str__``
raises, a message of megabytes, a ``RecursionError`` a thousand frames deep, a working
directory it deleted. None of that may take the worker down or make the report one the
supervisor or the Runtime API refuses, so every piece is taken with a fallback, and the
body and the X-Ray cause are cut to fixed budgets.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any

from worker import errors
from worker.errors import ERROR_BODY_BYTES, ERROR_TYPE_CHARS, XRAY_CAUSE_BYTES
from worker.tracebacks import format_frames, user_frames

# What the cause keeps of the message and of the stack (the outermost and innermost frames).
_CAUSE_MESSAGE_CHARS = 1024
_CAUSE_FRAMES = 16
# One stackTrace entry (a frame, its source line included) at most.
_ENTRY_BYTES = 2048
# Python's own wording when an exception cannot be printed.
UNPRINTABLE = "<exception str() failed>"


def describe(exc: BaseException) -> tuple[str, str]:
    """The exception's errorType and errorMessage, whatever its class does."""
    try:
        error_type = _text(type(exc).__name__) or "Exception"
    except Exception:
        error_type = "Exception"  # a metaclass that makes __name__ fail
    return error_type[:ERROR_TYPE_CHARS], _text(exc)


def user_stack(exc: BaseException) -> tuple[traceback.StackSummary, list[str]]:
    """The user's frames of the exception's traceback, and their stackTrace entries."""
    try:
        frames = user_frames(exc.__traceback__)
        return frames, format_frames(frames)
    except Exception:
        return traceback.StackSummary(), []


def exception_report(
    exc: BaseException, request_id: str = "", error_type: str | None = None, message: str | None = None
) -> tuple[errors.ErrorReport, dict[str, Any]]:
    """The error report and the X-Ray cause for an exception from user code.

    ``error_type`` and ``message`` replace the exception's own where the runtime words the
    failure itself (out of memory).
    """
    own_type, own_message = describe(exc)
    error_type = own_type if error_type is None else error_type
    message = own_message if message is None else message
    frames, stack = user_stack(exc)
    report = bounded_report(errors.report(message, error_type, request_id, stack))
    return report, xray_cause(report["errorType"], message, frames)


def bounded_report(report: errors.ErrorReport) -> errors.ErrorReport:
    """``report`` with errorMessage and stackTrace cut so that it encodes to at most
    ``ERROR_BODY_BYTES``; errorType and requestId are kept, and it stays the four keys."""
    report = errors.report(
        _text(report.get("errorMessage")),
        _text(report.get("errorType"))[:ERROR_TYPE_CHARS],
        _text(report.get("requestId")),
        [_text(entry) for entry in report.get("stackTrace") or []],
    )
    if _size(report) <= ERROR_BODY_BYTES:
        return report
    # The stack gets what the message leaves, and at least a quarter; the message the rest.
    stack = report["stackTrace"]
    report["stackTrace"] = []
    report["stackTrace"] = _clip_entries(stack, max(ERROR_BODY_BYTES // 4, ERROR_BODY_BYTES - _size(report)))
    message = report["errorMessage"]
    report["errorMessage"] = ""
    report["errorMessage"] = _clip_text(message, ERROR_BODY_BYTES - _size(report))
    return report


def xray_cause(error_type: str, message: str, frames: traceback.StackSummary) -> dict[str, Any]:
    """The X-Ray error cause document Lambda attaches to a failed invocation, at most
    ``XRAY_CAUSE_BYTES`` once encoded as the supervisor sends it."""
    try:
        working_directory = os.getcwd()
    except OSError:
        working_directory = ""  # the handler removed it
    try:
        stack = [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames]
    except Exception:
        stack = []
    exception: dict[str, Any] = {
        "message": _clip_text(message, _CAUSE_MESSAGE_CHARS, ascii=True),
        "type": error_type,
    }
    cause: dict[str, Any] = {
        "working_directory": _clip_text(working_directory, _CAUSE_MESSAGE_CHARS, ascii=True)
    }
    # Fewer frames (the outermost and innermost kept) until it fits; the message and the
    # type alone still say what failed.
    kept = _CAUSE_FRAMES
    while True:
        exception["stack"] = _ends(stack, kept)
        cause.update(exceptions=[exception], paths=sorted({entry["path"] for entry in exception["stack"]}))
        if kept == 0 or _size(cause, ascii=True) <= XRAY_CAUSE_BYTES:
            return cause
        kept //= 2


def _ends(items: list[Any], count: int) -> list[Any]:
    """The first and last of ``items``, ``count`` in all (the last one when ``count`` is 1)."""
    if len(items) <= count:
        return items
    head = count // 2
    return items[:head] + items[len(items) - (count - head) :]


def _text(value: Any) -> str:
    """``value`` as a plain ``str``; a ``str`` subclass's methods are user code too."""
    try:
        text = value if isinstance(value, str) else "" if value is None else str(value)
        return str.__str__(text)
    except Exception:
        return UNPRINTABLE


def _size(value: Any, ascii: bool = False) -> int:
    """Encoded length: as ``errors.encode`` writes a report, or (``ascii``) as the supervisor
    writes the X-Ray cause into its header."""
    if not ascii:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace"))
    return len(json.dumps(value, separators=(",", ":")))


def _clip_text(text: str, max_bytes: int, ascii: bool = False) -> str:
    """The longest prefix of ``text`` (with a note of the cut) whose JSON string is at most
    ``max_bytes``; ``text`` itself when it fits."""
    if _size(text, ascii) <= max_bytes:
        return text
    note = f"... [truncated, {len(text)} characters in all]"
    room = max(0, max_bytes - _size(note, ascii))
    keep = min(len(text), room)  # every character takes at least one byte
    while keep and _size(text[:keep], ascii) - 2 > room:
        # Shrink in proportion to the overshoot: escapes and multi-byte characters.
        keep = min(keep - 1, keep * room // (_size(text[:keep], ascii) - 2))
    return text[:keep] + note


def _clip_entries(entries: list[str], max_bytes: int) -> list[str]:
    """As many entries as fit in ``max_bytes``, taken from both ends (where a stack trace
    says most: where it started and where it failed), with one entry saying how many went."""
    entries = [_clip_text(entry, _ENTRY_BYTES) for entry in entries]
    if _size(entries) <= max_bytes:
        return entries
    head: list[str] = []
    tail: list[str] = []
    used = _size(["... 000000 frames omitted ...\n"])
    front, back = 0, len(entries) - 1
    while front <= back:
        entry = entries[front] if len(head) <= len(tail) else entries[back]
        cost = _size(entry) + 2  # the string and its separator
        if used + cost > max_bytes:
            break
        used += cost
        if len(head) <= len(tail):
            head.append(entry)
            front += 1
        else:
            tail.append(entry)
            back -= 1
    omitted = back - front + 1
    return head + [f"... {omitted} frames omitted ...\n"] + tail[::-1]
