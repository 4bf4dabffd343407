"""The function's own files: which ones go in, and whether the handler is among them.

Checking the handler here, before any dependency is downloaded, turns the commonest
deployment mistake (a typo in ``--handler`` or a source directory that is one level off)
into an immediate, explicit error instead of a ``Runtime.ImportModuleError`` at the first
invocation in the cloud.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import DeployError
from .ignore import IgnoreRules


@dataclass(frozen=True)
class SourceFile:
    """A file to package: where it is now, and where it goes inside the package."""

    relative: str
    path: Path
    executable: bool


@dataclass(frozen=True)
class HandlerSpec:
    """``module.function`` as Lambda's Python runtime reads it."""

    text: str
    module: str
    function: str

    @classmethod
    def parse(cls, text: str) -> HandlerSpec:
        """Split at the last dot; ``/`` in the module part is a package separator."""
        module, dot, function = text.rpartition(".")
        module = module.replace("/", ".")
        parts = module.split(".")
        if not dot or not function.isidentifier() or not all(p.isidentifier() for p in parts):
            raise DeployError(
                f"Bad handler {text!r}: expected module.function, e.g. app.handler or package/module.handler"
            )
        return cls(text, module, function)

    def candidate_files(self) -> tuple[str, str]:
        """The two files that can define the module: ``a/b.py`` or ``a/b/__init__.py``."""
        base = self.module.replace(".", "/")
        return f"{base}.py", f"{base}/__init__.py"


def collect_source_files(source: Path, rules: IgnoreRules, skip: Iterable[Path] = ()) -> list[SourceFile]:
    """Every file under ``source`` the rules keep, sorted by package path.

    Symbolic links are followed (their content is packaged, since Lambda's unpacked tree is
    plain files); a directory reached twice through links is visited once. ``skip`` names
    files or directories to leave out whatever the rules say (the package being written).
    """
    skipped = {p.resolve() for p in skip}
    seen_dirs: set[str] = set()
    files: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        base = Path(dirpath)
        relative_dir = base.relative_to(source).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not rules.is_ignored(prefix + d, is_dir=True) and (base / d).resolve() not in skipped
        )
        for name in sorted(filenames):
            relative = prefix + name
            path = base / name
            if rules.is_ignored(relative, is_dir=False) or path.resolve() in skipped:
                continue
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:  # a dangling symbolic link
                continue
            if not stat.S_ISREG(mode):
                continue
            files.append(SourceFile(relative, path, bool(mode & 0o111)))
    files.sort(key=lambda f: f.relative)
    return files


def require_handler_file(handler: HandlerSpec, source: Path, files: Iterable[SourceFile]) -> str:
    """Return the packaged file that defines the handler's module, or explain its absence."""
    present = {f.relative for f in files}
    for candidate in handler.candidate_files():
        if candidate in present:
            return candidate
    expected = " or ".join(handler.candidate_files())
    hint = ""
    if any((source / c).exists() for c in handler.candidate_files()):
        hint = " (it exists but an ignore rule excludes it; see .lambdaignore and --exclude)"
    raise DeployError(f"Handler {handler.text!r} needs {expected} in {source}, and there is none{hint}")
