"""The interpreters the runtimes run on, each with a venv of the bench's own.

``awslambdaric`` (and matplotlib, for the chart) are only ever installed in these venvs, so
that neither becomes a dependency of the project, and the runtime's dependencies are the
versions a fresh install would get. The bench runs in ``bench/.venv``, on the interpreter
that started it, and both runtimes of the main rows run on that one. Lambda runs other
Pythons too: each of those gets ``bench/.venv-X.Y``, made from the machine's interpreter of
that version with only what the runtimes need, so that both runtimes of its rows again share
one interpreter and the same libraries.

A venv is rebuilt when its requirements or its interpreter's version change (a stamp file
holds the digest of both).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from paths import BENCH, REPO, REQUIREMENTS, RUNTIME_REQUIREMENTS, VENV


def ensure_venv(path: Path, base_python: Path, requirements: Path, version: str) -> Path:
    """The venv's interpreter, after creating or refreshing the venv when it is stale."""
    python = path / "bin" / "python"
    stamp = path / ".requirements.sha256"
    wanted = _digest(requirements, version)
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"setting up {path.relative_to(REPO)} from {requirements.relative_to(REPO)} ...", flush=True)
        subprocess.run([str(base_python), "-m", "venv", "--clear", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(requirements)],
            check=True,
        )
        stamp.write_text(wanted)
    return python


def reexec_in_bench_venv(script: Path) -> None:
    """Re-run ``script`` inside ``bench/.venv``, creating or refreshing it first when needed."""
    python = ensure_venv(VENV, Path(sys.executable), REQUIREMENTS, sys.version)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), str(script), *sys.argv[1:]])


def _digest(requirements: Path, version: str) -> str:
    digest = hashlib.sha256(version.encode())
    for path in _with_includes(requirements):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _with_includes(requirements: Path) -> list[Path]:
    """The requirements file and those it includes with ``-r``."""
    files = [requirements]
    for line in requirements.read_text().splitlines():
        if line.startswith("-r "):
            files += _with_includes(requirements.parent / line[3:].strip())
    return files


# --- the other Pythons ----------------------------------------------------------------------


@dataclass
class Interpreter:
    """A Python found on the machine: its path and its full version (``3.12.1``)."""

    path: Path
    version: str


def find_python(minor: str) -> Interpreter | None:
    """The machine's Python ``minor`` (``"3.12"``): pyenv's newest patch release of it, else
    a ``pythonX.Y`` on PATH. Each candidate is run to check it: pyenv's shims are on PATH
    for every installed version and fail for those not selected."""
    for candidate in [*_pyenv_pythons(minor), shutil.which(f"python{minor}")]:
        if candidate is None:
            continue
        try:
            answer = subprocess.run(
                [str(candidate), "-c", "import sys; print(sys.version.split()[0])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = answer.stdout.strip()
        if answer.returncode == 0 and version.rpartition(".")[0] == minor:
            return Interpreter(Path(candidate), version)
    return None


def where_looked(minor: str) -> str:
    """Where ``find_python`` looks, said in the words of a message."""
    return f"{pyenv_root()}/versions/{minor}.*/bin/python{minor} and python{minor} on PATH"


class SetupFailed(Exception):
    """A venv could not be made; the message says which and what failed."""


def version_venv(minor: str, interpreter: Interpreter) -> Path:
    """``bench/.venv-X.Y``'s interpreter: the runtimes' requirements on ``interpreter``."""
    path = BENCH / f".venv-{minor}"
    try:
        return ensure_venv(path, interpreter.path, RUNTIME_REQUIREMENTS, interpreter.version)
    except subprocess.CalledProcessError as error:
        step = " ".join(str(part) for part in error.cmd[1:3])  # "-m venv" or "-m pip"
        where = path.relative_to(REPO)
        raise SetupFailed(f"could not set up {where}: `{step}` exited with {error.returncode}") from error


def pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    if shutil.which("pyenv"):
        answer = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if answer.returncode == 0 and answer.stdout.strip():
            return Path(answer.stdout.strip())
    return Path.home() / ".pyenv"


def _pyenv_pythons(minor: str) -> list[Path]:
    """pyenv's builds of ``minor``, newest patch first; free-threaded and debug builds are
    left out (Lambda runs neither)."""
    releases = []
    for folder in (pyenv_root() / "versions").glob(f"{minor}.*"):
        found = re.fullmatch(re.escape(minor) + r"\.(\d+)", folder.name)
        python = folder / "bin" / f"python{minor}"
        if found and python.exists():
            releases.append((int(found.group(1)), python))
    return [python for _, python in sorted(releases, reverse=True)]
