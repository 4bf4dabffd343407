"""The runtime's own error types and exit wording, for the calls a local runner answers.

When the runtime dies or its init runs out of time, the local runner answers the calls
it left on the runtime's behalf, and those answers must read exactly as the runtime's
own (and Lambda's) would: the same ``errorType`` and the same sentence for an exit.
So they come from the runtime's ``supervisor/errors.py`` rather than a copy of it.
"""

from __future__ import annotations

from importlib.util import module_from_spec, spec_from_file_location
from types import ModuleType
from typing import TYPE_CHECKING

from lambda_supervisor.process import REPO_ROOT

if TYPE_CHECKING:
    from supervisor import errors


def _runtime_errors() -> ModuleType:
    """The runtime's ``supervisor/errors.py``, where its error types and exit wording live.

    Loaded from beside this package, not imported by name: ``python -m`` puts the current
    directory first on sys.path, and a function's directory may hold a ``supervisor``
    package of its own (a dependency of that name), which must not be taken for ours.
    """
    path = REPO_ROOT / "supervisor" / "errors.py"
    spec = spec_from_file_location("lambda_supervisor._runtime_errors", path)
    assert spec is not None and spec.loader is not None, path
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if not TYPE_CHECKING:
    errors = _runtime_errors()


def exit_message(returncode: int) -> str:
    """The platform's sentence for a runtime that exited, in the supervisor's own words.

    ``returncode`` is ``Popen``'s (negative for a signal); the supervisor describes wait
    statuses, so it is turned back into one.
    """
    wait_status = -returncode if returncode < 0 else returncode << 8
    return errors.describe_exit(wait_status)


__all__ = ["errors", "exit_message"]
