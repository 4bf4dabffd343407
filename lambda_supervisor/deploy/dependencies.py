"""Third-party packages installed for the Lambda platform, never for the build machine.

pip is asked for wheels tagged for Lambda's Linux, CPU and Python version only, so a build
on macOS, on x86 for arm64, or on another Python gives the same, loadable result; a
dependency that exists only as a source distribution is refused rather than compiled for
the wrong machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import DeployError
from .targets import Target


@dataclass(frozen=True)
class PipSource:
    """Where pip looks for wheels, for offline or private mirrors."""

    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def arguments(self) -> list[str]:
        args = [arg for link in self.find_links for arg in ("--find-links", link)]
        return args + (["--no-index"] if self.no_index else [])


def pip_install_command(
    requirements: Sequence[str],
    requirement_files: Sequence[Path],
    target: Target,
    destination: Path,
    source: PipSource,
) -> list[str]:
    """The exact pip invocation; ``--no-compile`` because bytecode is made for the target
    later, and pip would compile for the build machine's Python."""
    command = [sys.executable, "-m", "pip", "install", "--target", str(destination)]
    command += ["--implementation", "cp", "--python-version", target.python_version]
    for platform in target.pip_platforms:
        command += ["--platform", platform]
    command += [
        "--only-binary=:all:",
        "--no-compile",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--quiet",
    ]
    command += source.arguments()
    command += list(requirements)
    for path in requirement_files:
        command += ["--requirement", str(path)]
    return command


def install_dependencies(
    requirements: Sequence[str],
    requirement_files: Sequence[Path],
    target: Target,
    destination: Path,
    source: PipSource,
) -> None:
    """Install into ``destination`` and drop what cannot work on Lambda.

    Console scripts (``bin/``) are removed: pip writes the build machine's interpreter
    path into them, and they would collide with the runtime's ``bin/bootstrap``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    command = pip_install_command(requirements, requirement_files, target, destination, source)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise DeployError(
            f"Installing dependencies for {target.describe()} failed "
            f"(only wheels for {', '.join(target.pip_platforms)} are accepted; a package "
            f"with no such wheel cannot run on Lambda):\n{detail}"
        )
    shutil.rmtree(destination / "bin", ignore_errors=True)
    for cache in sorted(destination.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
