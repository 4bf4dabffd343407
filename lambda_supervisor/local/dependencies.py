"""The function's interpreter and its dependencies for a local run.

A handler runs on the interpreter of the active virtualenv (``VIRTUAL_ENV``), where the
developer installed what the function needs, or on ``--python``; else on the CLI's own.
When the code root holds a ``requirements.txt`` whose packages that interpreter lacks, a
run says so in one line, with the fix; ``--install-deps`` installs them with pip into
``.lambda-supervisor/deps/<hash>`` under the code root, a folder the run puts on the
function's ``sys.path`` (as Lambda has them in the code root) and reuses while the file,
and the interpreter it was built for, are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from .settings import UsageError

REQUIREMENTS_FILE = "requirements.txt"
DEPS_DIR = Path(".lambda-supervisor") / "deps"
# What the supervisor itself imports besides the standard library (pyproject.toml).
RUNTIME_LIBRARIES = ("urllib3", "structlog")
# The runtime's oldest Python (pyproject.toml's requires-python).
OLDEST_PYTHON = (3, 10)
_PROBE_TIMEOUT = 30.0
# A requirement line's project name: ``name``, ``name[extra]>=1``, ``name @ url``.
_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(@|[<>=!~;]|$)")

# Run on the function's interpreter: its version, and which of the given distributions
# and modules it lacks. Standard library only; '' (the current directory) left out.
_PROBE = """
import importlib.util, json, platform, sys
sys.path[:] = [p for p in sys.path if p]
from importlib import metadata
asked = json.loads(sys.argv[1])
def has(name):
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True
print(json.dumps({
    "version": list(sys.version_info[:2]),
    "tag": sys.implementation.cache_tag + "-" + platform.machine(),
    "missing": [name for name in asked["distributions"] if not has(name)],
    "missing_modules": [name for name in asked["modules"] if importlib.util.find_spec(name) is None],
    "pip": importlib.util.find_spec("pip") is not None,
}))
"""


def function_python(explicit: str | None) -> str:
    """``--python`` (a path, a command on PATH or a version), else the active virtualenv's
    interpreter, else the CLI's own."""
    if explicit:
        # A version alone (``3.12``) means that version's ``python3.12`` on PATH.
        name = f"python{explicit}" if re.fullmatch(r"\d+\.\d+", explicit) else explicit
        path = shutil.which(name) or explicit
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise UsageError(f"--python {explicit}: no such interpreter")
        return os.path.abspath(path)
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        python = Path(venv) / "bin" / "python"
        if not python.is_file():
            raise UsageError(f"VIRTUAL_ENV={venv} has no bin/python: activate another one or give --python")
        return str(python)
    return sys.executable


def requirement_names(requirements: Path) -> list[str]:
    """The project names ``requirements`` lists; options, paths and URLs without a name are
    skipped (nothing to check them by), as are lines with an environment marker."""
    names = []
    for raw in requirements.read_text(encoding="utf-8", errors="replace").splitlines():
        line = re.split(r"(^|\s)#", raw, maxsplit=1)[0].strip()
        match = _REQUIREMENT_NAME.match(line)
        if match and ";" not in line:
            names.append(match.group(1))
    return names


@dataclass
class Interpreter:
    """What the probe found out about the function's interpreter."""

    python: str
    version: tuple[int, int]
    tag: str
    missing: list[str]
    missing_modules: list[str]
    has_pip: bool


def probe(python: str, distributions: Sequence[str] = (), paths: Sequence[Path] = ()) -> Interpreter:
    """Ask ``python`` (with ``paths`` first on its sys.path) what it is and what it lacks."""
    asked = json.dumps({"distributions": list(distributions), "modules": list(RUNTIME_LIBRARIES)})
    given = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), *given])}
    try:
        done = subprocess.run(
            [python, "-c", _PROBE, asked], capture_output=True, env=env, timeout=_PROBE_TIMEOUT, cwd="/"
        )
        found = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        raise UsageError(f"{python} does not run as a Python interpreter") from None
    return Interpreter(
        python,
        (found["version"][0], found["version"][1]),
        found["tag"],
        found["missing"],
        found["missing_modules"],
        found["pip"],
    )


@dataclass
class FunctionPython:
    """The interpreter a local run starts the runtime with, and what goes on its sys.path.

    ``paths`` come first on the function's sys.path after the code root: installed
    dependencies, then the runtime's own libraries where the interpreter lacks them
    (links into the CLI's, in ``scratch``, removed by ``close``).
    """

    python: str
    paths: list[Path] = field(default_factory=list)
    scratch: tempfile.TemporaryDirectory[str] | None = None
    # What ``prepare`` said about missing dependencies, for whoever reports a failed init.
    hints: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None


def prepare(
    code_root: Path, python: str | None, install_deps: bool, say: Callable[[str], None]
) -> FunctionPython:
    """The interpreter for a run of the code in ``code_root``, its dependencies checked or
    installed; ``say`` gets the one line about missing ones. ``UsageError`` if unusable."""
    chosen = function_python(python)
    requirements = code_root / REQUIREMENTS_FILE
    if not requirements.is_file():
        if install_deps:
            raise UsageError(f"--install-deps: there is no {REQUIREMENTS_FILE} in {code_root}")
        if chosen == sys.executable:
            return FunctionPython(chosen)
    names = requirement_names(requirements) if requirements.is_file() else []
    interpreter = probe(chosen, names)
    if interpreter.version < OLDEST_PYTHON:
        oldest = ".".join(map(str, OLDEST_PYTHON))
        raise UsageError(
            f"{chosen} is Python {'.'.join(map(str, interpreter.version))}; the runtime needs {oldest}+"
        )
    result = FunctionPython(chosen)
    if install_deps:
        deps = install(requirements, interpreter, code_root, say)
        result.paths.append(deps)
    elif interpreter.missing:
        missing = ", ".join(interpreter.missing)
        result.hints.append(
            f"lambda-supervisor: {requirements} lists {missing}, missing from {chosen}: "
            f"run with --install-deps, or install them: {chosen} -m pip install -r {requirements}"
        )
        say(result.hints[-1])
    if interpreter.missing_modules:
        result.scratch = tempfile.TemporaryDirectory(prefix="lambda-supervisor-runtime-")
        result.paths.append(_link_runtime_libraries(Path(result.scratch.name), interpreter.missing_modules))
    return result


def _link_runtime_libraries(directory: Path, modules: Sequence[str]) -> Path:
    """Links in ``directory`` to the CLI's copies of ``modules``, for an interpreter without
    them: only what it lacks, so nothing of its own is shadowed."""
    for name in modules:
        spec = find_spec(name)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if locations:
            (directory / name).symlink_to(locations[0], target_is_directory=True)
    return directory


def deps_folder(requirements: Path, interpreter: Interpreter, code_root: Path) -> Path:
    """Where ``requirements`` installed for ``interpreter`` lives: keyed by both."""
    digest = hashlib.sha256(requirements.read_bytes() + b"\0" + interpreter.tag.encode()).hexdigest()
    return code_root / DEPS_DIR / digest[:24]


def install(
    requirements: Path, interpreter: Interpreter, code_root: Path, say: Callable[[str], None]
) -> Path:
    """``requirements`` installed for ``interpreter``: the cached folder, or a fresh one.

    pip installs into a folder of its own, renamed into place only when it succeeded, so
    an interrupted install is never taken for a finished one.
    """
    target = deps_folder(requirements, interpreter, code_root)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    pip = [interpreter.python, "-m", "pip"] if interpreter.has_pip else [sys.executable, "-m", "pip"]
    if not interpreter.has_pip:
        pip += ["--python", interpreter.python]
    command = [*pip, "install", "--quiet", "--disable-pip-version-check", "--target", str(staging)]
    say(f"lambda-supervisor: installing {requirements} into {target}")
    # pip reads a requirement's relative path from its working directory: the code root.
    done = subprocess.run(
        [*command, "-r", str(requirements)], cwd=code_root, capture_output=True, text=True, errors="replace"
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        output = (done.stderr or done.stdout).strip().splitlines()
        detail = output[-1] if output else f"exit status {done.returncode}"
        raise UsageError(f"--install-deps: pip could not install {requirements}: {detail}")
    try:
        staging.rename(target)
    except OSError:  # another run finished the same install first
        shutil.rmtree(staging, ignore_errors=True)
    return target
