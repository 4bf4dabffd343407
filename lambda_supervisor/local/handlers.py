"""Where a local run finds the handler: ``path/to/file.py:fn`` or ``module:fn``.

Checked here because a typo is far easier to understand as "file not found" than as an
import error reported by a runtime process. The result is what the runtime needs to be
started with: its task root and its ``HANDLER``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from .settings import UsageError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class HandlerLocation:
    """Where the code is (``task_root``) and what the runtime's ``HANDLER`` should be."""

    task_root: Path
    handler: str

    @property
    def module(self) -> str:
        return self.handler.split(":", 1)[0]


def parse_handler(text: str, *, cwd: Path | None = None) -> HandlerLocation:
    """Turn ``path/to/file.py:fn`` or ``module:fn`` into a task root and a handler."""
    cwd = cwd or Path.cwd()
    target, sep, function = text.rpartition(":")
    if not sep or not target or not function:
        raise UsageError(f"bad handler {text!r}: expected path/to/file.py:function or module:function")
    if not _IDENTIFIER.match(function):
        raise UsageError(f"bad handler {text!r}: {function!r} is not a Python function name")
    if target.endswith(".py") or "/" in target or os.sep in target:
        return _file_handler(text, Path(target), function, cwd)
    if not _MODULE.match(target):
        raise UsageError(f"bad handler {text!r}: {target!r} is not a module name")
    _check_module_exists(target, cwd)
    return HandlerLocation(cwd.resolve(), f"{target}:{function}")


def _file_handler(text: str, path: Path, function: str, cwd: Path) -> HandlerLocation:
    path = path if path.is_absolute() else cwd / path
    if path.suffix != ".py":
        raise UsageError(f"bad handler {text!r}: the file must end in .py")
    if not path.is_file():
        raise UsageError(f"handler file not found: {path}")
    if not _IDENTIFIER.match(path.stem):
        raise UsageError(f"bad handler {text!r}: {path.name!r} cannot be imported as a module")
    return HandlerLocation(path.parent.resolve(), f"{path.stem}:{function}")


def _check_module_exists(module: str, task_root: Path) -> None:
    top = module.split(".", 1)[0]
    if (task_root / f"{top}.py").is_file() or (task_root / top).is_dir():
        return
    if find_spec(top) is None:
        raise UsageError(f"module not found: {top!r} (looked in {task_root} and on sys.path)")
