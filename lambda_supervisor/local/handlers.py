"""Where a local run finds the handler, read with the runtime's own grammar.

Every form the runtime's ``HANDLER`` takes is accepted (``worker/handler_names.py``):
``mod.fn`` (Lambda's), ``mod:fn``, ``pkg/sub/mod.fn`` and ``path/to/file.py:fn``. A
module is looked up from the current directory, which is then the code root; a file's code
root is found the way Lambda's would be (above its package, if it is in one). It is
checked here because a typo is far easier to understand as "file not found" than as an
import error reported by a runtime process. The result is what the runtime needs to be
started with: its task root and its ``HANDLER``, in Lambda's form.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from lambda_supervisor.runtime_modules import handler_names

from .settings import UsageError


@dataclass(frozen=True)
class HandlerLocation:
    """Where the code is (``task_root``) and what the runtime's ``HANDLER`` is (``module.function``)."""

    task_root: Path
    handler: str

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]


def parse_handler(text: str, *, cwd: Path | None = None) -> HandlerLocation:
    """Turn any handler form into a task root and a handler, or explain in a ``UsageError``."""
    cwd = (cwd or Path.cwd()).resolve()
    try:
        name = handler_names.parse(text)
    except handler_names.MalformedHandler as exc:
        raise UsageError(str(exc)) from None
    if name.file is None:
        assert name.module is not None
        _check_module_exists(name.module, cwd)
        return HandlerLocation(cwd, name.lambda_form())
    path = Path(name.file)
    path = path if path.is_absolute() else cwd / path
    if not path.is_file():
        raise UsageError(f"handler file not found: {path}")
    try:
        task_root, module = handler_names.find_code_root(path)
    except handler_names.MalformedHandler as exc:
        raise UsageError(str(exc)) from None
    return HandlerLocation(task_root.resolve(), name.lambda_form(module))


def _check_module_exists(module: str, task_root: Path) -> None:
    top = module.split(".", 1)[0]
    if (task_root / f"{top}.py").is_file() or (task_root / top).is_dir():
        return
    if find_spec(top) is None:
        raise UsageError(f"module not found: {top!r} (looked in {task_root} and on sys.path)")
