"""The runtime's modules that the dev tooling shares with it: ``errors``, ``procfs``, ``handler_names``.

Lambda's error words and limits (``worker/errors.py``), the /proc readers
(``worker/procfs.py``) and the handler string's grammar (``worker/handler_names.py``) are
the runtime's own; the emulator and the local runner use the same
ones rather than copies that drift (``from lambda_supervisor.runtime_modules import errors``).
They are loaded from beside this package, not imported by name: ``python -m`` puts the
current directory first on sys.path, and a function's directory may hold a ``worker``
module or a ``supervisor`` package of its own (a dependency of that name), which must not
be taken for the runtime's. Each imports nothing but the standard library, so each can be
loaded on its own.
"""

from __future__ import annotations

import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

# Where ``supervisor/`` and ``worker/`` are: beside this package, in a checkout and installed.
RUNTIME_ROOT = Path(__file__).resolve().parents[1]


def load(relative_path: str) -> ModuleType:
    """The runtime's module at ``relative_path`` (``worker/errors.py``), loaded once."""
    name = "lambda_supervisor._runtime_" + relative_path.removesuffix(".py").replace("/", "_")
    module = sys.modules.get(name)
    if module is not None:
        return module
    path = RUNTIME_ROOT / relative_path
    spec = spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = module_from_spec(spec)
    sys.modules[name] = module  # before it runs, as an import would: a class may look itself up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


if TYPE_CHECKING:
    from worker import errors, handler_names, procfs
else:
    errors = load("worker/errors.py")
    procfs = load("worker/procfs.py")
    handler_names = load("worker/handler_names.py")

__all__ = ["RUNTIME_ROOT", "errors", "handler_names", "load", "procfs"]
