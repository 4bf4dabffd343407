"""Stack traces as Lambda shows them: the user's frames only, formatted by ``traceback``."""

from __future__ import annotations

import importlib
import os
import traceback
from types import TracebackType

# Frames from the worker's own files are runtime plumbing, not the user's code.
_WORKER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_IMPORT_MACHINERY = ("<frozen importlib._bootstrap", os.path.abspath(importlib.__file__))


def _is_runtime_frame(filename: str) -> bool:
    return filename.startswith(_IMPORT_MACHINERY) or os.path.abspath(filename).startswith(_WORKER_DIR)


def user_frames(tb: TracebackType | None) -> traceback.StackSummary:
    """Drop the leading runtime frames; the rest, from the first user frame on, stay."""
    frames = traceback.extract_tb(tb)
    for index, frame in enumerate(frames):
        if not _is_runtime_frame(frame.filename):
            return traceback.StackSummary.from_list(frames[index:])
    return traceback.StackSummary.from_list([])


def format_frames(frames: traceback.StackSummary) -> list[str]:
    """``traceback.format_list`` entries without the column carets newer Pythons add, so the
    strings are the ones AWS's runtime posts."""
    return traceback.format_list(
        [traceback.FrameSummary(f.filename, f.lineno, f.name, line=f.line) for f in frames]
    )
