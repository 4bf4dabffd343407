"""The report of a failed init or invocation: built so that it cannot fail, and always fits.

Handler code decides what goes into an error report: an exception whose ``__str__``
raises, a message of megabytes, a ``RecursionError`` a thousand frames deep, a working
directory it deleted. None of that may take the worker down or make the report one the
supervisor or the Runtime API refuses, so every piece is taken with a fallback, and the
report and the X-Ray cause are cut to fixed budgets.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any, TypedDict

from worker import errors
from worker.errors import ERROR_BODY_BYTES, ERROR_TYPE_CHARS, XRAY_CAUSE_BYTES
from worker.tracebacks import format_frames, user_frames

# What an X-Ray cause keeps at most: of its exceptions, of each one's stack (the outermost
# and innermost frames), and of each text (JSON-encoded bytes); the message gets the most.
_CAUSE_EXCEPTIONS = 4
_CAUSE_FRAMES = 16
_CAUSE_MESSAGE_BYTES = 1024
_CAUSE_TEXT_BYTES = 256
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
) -> tuple[errors.ErrorReport, XRayCause | None]:
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


def bounded_report(report: errors.ErrorReport, limit: int = ERROR_BODY_BYTES) -> errors.ErrorReport:
    """``report`` with errorMessage and stackTrace cut so that it encodes to at most ``limit``
    bytes (``ERROR_BODY_BYTES``); errorType and requestId are kept, and it stays the four keys."""
    report = errors.report(
        _text(report.get("errorMessage")),
        _text(report.get("errorType"))[:ERROR_TYPE_CHARS],
        _text(report.get("requestId")),
        [_text(entry) for entry in report.get("stackTrace") or []],
    )
    if _size(report) <= limit:
        return report
    # The stack gets what the message leaves, and at least a quarter; the message the rest.
    stack = report["stackTrace"]
    report["stackTrace"] = []
    report["stackTrace"] = _clip_entries(stack, max(limit // 4, limit - _size(report)))
    message = report["errorMessage"]
    report["errorMessage"] = ""
    report["errorMessage"] = _clip_text(message, limit - _size(report))
    return report


class XRayFrame(TypedDict):
    label: str
    path: str
    line: int


class XRayException(TypedDict):
    message: str
    type: str
    stack: list[XRayFrame]


class XRayCause(TypedDict):
    """The X-Ray error cause document Lambda attaches to a failed invocation."""

    working_directory: str
    exceptions: list[XRayException]
    paths: list[str]


def xray_cause(error_type: str, message: str, frames: traceback.StackSummary) -> XRayCause | None:
    """The X-Ray cause of an exception from user code, bounded (``bound_xray_cause``)."""
    try:
        working_directory = os.getcwd()
    except OSError:
        working_directory = ""  # the handler removed it
    try:
        stack: list[XRayFrame] = [
            {"label": f.name, "path": f.filename, "line": f.lineno or 0} for f in frames
        ]
    except Exception:
        stack = []
    exception: XRayException = {"message": message, "type": error_type, "stack": stack}
    return bound_xray_cause({"working_directory": working_directory, "exceptions": [exception], "paths": []})


def parse_xray_cause(value: object) -> XRayCause | None:
    """The X-Ray cause a worker's reply carries, which handler code can forge: only the
    cause's own fields are kept, each of its own type, then it is bounded as the worker
    bounds its own. None when there is no exception in it."""
    if not isinstance(value, dict):
        return None
    exceptions = [_parse_exception(item) for item in _list(value.get("exceptions"))[:_CAUSE_EXCEPTIONS]]
    kept = [exception for exception in exceptions if exception is not None]
    if not kept:
        return None
    working_directory = _string(value.get("working_directory"))
    return bound_xray_cause({"working_directory": working_directory, "exceptions": kept, "paths": []})


def bound_xray_cause(cause: XRayCause) -> XRayCause | None:
    """A copy of ``cause`` that encodes (``encode_xray_cause``) to at most
    ``XRAY_CAUSE_BYTES``, or None when it holds no exception.

    Every text is cut to its budget and each stack to its outermost and innermost frames;
    then, until it fits, frames go from the middle of the longest stack (the outermost and
    innermost say where it started and where it failed), then exceptions after the first.
    ``paths`` is rebuilt from the frames kept.
    """
    exceptions: list[XRayException] = [
        {
            "message": _clip_text(exception["message"], _CAUSE_MESSAGE_BYTES, ascii=True),
            "type": _clip_text(exception["type"], _CAUSE_TEXT_BYTES, ascii=True),
            "stack": [
                {
                    "label": _clip_text(frame["label"], _CAUSE_TEXT_BYTES, ascii=True),
                    "path": _clip_text(frame["path"], _CAUSE_TEXT_BYTES, ascii=True),
                    "line": frame["line"],
                }
                for frame in _ends(exception["stack"], _CAUSE_FRAMES)
            ],
        }
        for exception in cause["exceptions"][:_CAUSE_EXCEPTIONS]
    ]
    if not exceptions:
        return None
    bounded: XRayCause = {
        "working_directory": _clip_text(cause["working_directory"], _CAUSE_TEXT_BYTES, ascii=True),
        "exceptions": exceptions,
        "paths": [],
    }
    while True:
        bounded["paths"] = sorted({frame["path"] for exception in exceptions for frame in exception["stack"]})
        if len(encode_xray_cause(bounded)) <= XRAY_CAUSE_BYTES:
            return bounded
        longest = max(exceptions, key=lambda exception: len(exception["stack"]))["stack"]
        if longest:
            del longest[(len(longest) - 1) // 2]  # what _ends would keep of one frame fewer
        elif len(exceptions) > 1:
            exceptions.pop()
        else:
            return None  # never, with every text cut: one exception without frames fits


def encode_xray_cause(cause: XRayCause) -> str:
    """The cause as its header carries it: compact JSON, ASCII only."""
    return json.dumps(cause, separators=(",", ":"))


def _parse_exception(value: object) -> XRayException | None:
    if not isinstance(value, dict):
        return None
    frames = _ends([frame for frame in _list(value.get("stack")) if isinstance(frame, dict)], _CAUSE_FRAMES)
    return {
        "message": _string(value.get("message")),
        "type": _string(value.get("type")),
        "stack": [
            {
                "label": _string(frame.get("label")),
                "path": _string(frame.get("path")),
                "line": _line(frame.get("line")),
            }
            for frame in frames
        ],
    }


def _line(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else 0


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


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
