"""The files of lambda-supervisor itself that every package carries.

They are taken from the installed packages rather than from a copy made at release time,
so a package always contains exactly the runtime that was tested on the build machine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from .errors import DeployError
from .ignore import IgnoreRules
from .sources import SourceFile, collect_source_files

RUNTIME_PACKAGES = ("supervisor", "worker")
# Where a package keeps them: a directory of their own, which ``bin/bootstrap`` puts on
# sys.path only while it imports them, so that neither shadows a module of the function's
# (a ``worker.py``, a dependency called ``supervisor``) at the package's root. Not a valid
# module name, so the function cannot import it or collide with it either.
RUNTIME_DIR = "lambda-supervisor-runtime"
# Distributions the runtime imports; pinned to the build machine's versions.
RUNTIME_DISTRIBUTIONS = ("urllib3", "structlog")
BOOTSTRAP_PATH = "bin/bootstrap"
BOOTSTRAP_ENV = "LAMBDA_SUPERVISOR_BOOTSTRAP"

_PACKAGE_RULES = IgnoreRules.from_patterns(["__pycache__/", "*.pyc", "*.pyo"])


def runtime_package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise DeployError(f"The runtime package {name!r} is not importable; reinstall lambda-supervisor")
    return Path(locations[0])


def find_bootstrap() -> Path:
    """``$LAMBDA_SUPERVISOR_BOOTSTRAP``, else ``bin/bootstrap`` beside the runtime packages,
    else a copy shipped inside this package."""
    candidates = []
    if os.environ.get(BOOTSTRAP_ENV):
        candidates.append(Path(os.environ[BOOTSTRAP_ENV]))
    candidates.append(runtime_package_dir("supervisor").parent / BOOTSTRAP_PATH)
    candidates.append(Path(__file__).with_name("bootstrap"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DeployError(
        "Cannot find bin/bootstrap (looked in "
        + ", ".join(str(c) for c in candidates)
        + f"); set {BOOTSTRAP_ENV} to its path"
    )


def runtime_files() -> list[SourceFile]:
    """``supervisor/`` and ``worker/`` under ``RUNTIME_DIR``, and ``bin/bootstrap`` (always
    executable)."""
    files: list[SourceFile] = []
    for name in RUNTIME_PACKAGES:
        root = runtime_package_dir(name)
        for item in collect_source_files(root, _PACKAGE_RULES):
            files.append(SourceFile(f"{RUNTIME_DIR}/{name}/{item.relative}", item.path, item.executable))
    files.append(SourceFile(BOOTSTRAP_PATH, find_bootstrap(), executable=True))
    return files


def runtime_requirements() -> list[str]:
    """``urllib3==X`` and ``structlog==Y`` as installed here, so the package matches what
    the runtime was tested with and two builds on the same machine resolve identically."""
    pins = []
    for dist in RUNTIME_DISTRIBUTIONS:
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(dist)
    return pins
