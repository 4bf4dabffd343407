"""Bytecode for the target Python, or an honest note that none could be made.

``.pyc`` files spare Lambda from compiling every module at each cold start (the unpacked
code is read-only, so it cannot cache them itself). They are only valid for one Python
version, so they are produced by an interpreter of the target's version: the build
machine's own when it matches, otherwise ``pythonX.Y`` from ``PATH`` or
``--bytecode-python``. With none available the package ships source only, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DeployError
from .targets import TASK_ROOT, Target

_COMPILER_SCRIPT = Path(__file__).with_name("compile_for_target.py")
_PROBE = "import sys; print('%d.%d %s' % (sys.version_info[0], sys.version_info[1], sys.implementation.name))"


@dataclass(frozen=True)
class BytecodeOutcome:
    """What happened, for the build report."""

    interpreter: str | None
    compiled: int = 0
    failed: tuple[str, ...] = field(default_factory=tuple)
    skipped_reason: str | None = None


def _interpreter_version(executable: str) -> str | None:
    """``"3.12 cpython"`` for a working interpreter; None for a missing or broken one
    (a pyenv shim for an inactive version exists on PATH but fails to run)."""
    try:
        result = subprocess.run(
            [executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_target_interpreter(target: Target, explicit: str | None) -> tuple[str | None, str]:
    """The interpreter to compile with, or None and the reason there is none."""
    wanted = f"{target.python_version} cpython"
    if explicit:
        found = _interpreter_version(explicit)
        if found != wanted:
            raise DeployError(
                f"--bytecode-python {explicit} is {found or 'not a working interpreter'}, "
                f"but the target is CPython {target.python_version}"
            )
        return explicit, ""
    if sys.version_info[:2] == target.version_tuple and sys.implementation.name == "cpython":
        return sys.executable, ""
    candidate = shutil.which(f"python{target.python_version}")
    if candidate and _interpreter_version(candidate) == wanted:
        return candidate, ""
    return None, (
        f"the build machine runs Python {sys.version_info[0]}.{sys.version_info[1]} and no "
        f"working python{target.python_version} was found on PATH (pass --bytecode-python); "
        "the package ships source only and Lambda compiles it at each cold start"
    )


def compile_tree(
    root: Path, relative_paths: Sequence[str], target: Target, explicit: str | None
) -> BytecodeOutcome:
    """Write ``__pycache__/*.cpython-XY.pyc`` next to each source file under ``root``."""
    interpreter, reason = find_target_interpreter(target, explicit)
    if interpreter is None:
        return BytecodeOutcome(None, skipped_reason=reason)
    # A fixed hash seed keeps the order of set constants, hence the bytes, stable.
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [interpreter, str(_COMPILER_SCRIPT), str(root), TASK_ROOT],
        input=json.dumps(list(relative_paths)),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise DeployError(f"Compiling bytecode with {interpreter} failed:\n{result.stderr.strip()}")
    report = json.loads(result.stdout)
    failed = tuple(report["failed"])
    return BytecodeOutcome(interpreter, len(relative_paths) - len(failed), failed)
