"""The function's own files: which ones go in, and whether the handler is among them.

Checking the handler here, before any dependency is downloaded, turns the commonest
deployment mistake (a typo in ``--handler`` or a source directory that is one level off)
into an immediate, explicit error instead of a ``Runtime.ImportModuleError`` at the first
invocation in the cloud.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lambda_supervisor.runtime_modules import handler_names

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
    """The handler as Lambda's Handler setting spells it (``text``: ``module.function`` or
    ``package/module.function``)."""

    text: str
    module: str
    function: str

    @classmethod
    def parse(cls, text: str) -> HandlerSpec:
        """Any form the runtime accepts (``worker/handler_names.py``): ``mod.fn``, ``mod:fn``,
        ``pkg/sub/mod.fn`` or ``pkg/mod.py:fn``, a file's path relative to SOURCE."""
        try:
            name = handler_names.parse(text)
            if name.module is None:
                raise handler_names.MalformedHandler(text, "give the file's path relative to SOURCE")
        except handler_names.MalformedHandler as exc:
            raise DeployError(f"{exc} (e.g. app.handler or package/module.handler)") from None
        # Lambda's own form is kept as written; the others become it.
        return cls(text if ":" not in text else name.lambda_form(), name.module, name.function)

    def candidate_files(self) -> tuple[str, str]:
        """The two files that can define the module: ``a/b.py`` or ``a/b/__init__.py``."""
        base = self.module.replace(".", "/")
        return f"{base}.py", f"{base}/__init__.py"


# Links into these are never followed: they hold the build machine's live state
# (``/proc/self/environ`` carries its credentials), not files of the function.
SYSTEM_ROOTS = ("/proc", "/dev", "/sys")


@dataclass(frozen=True)
class SourceSelection:
    """The files to package, and the secret-looking paths the default rules left out."""

    files: list[SourceFile]
    withheld: list[str]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.walk hands undecodable bytes over as surrogates
        return False
    return True


def _printable(relative: str) -> str:
    """A path as readable text even when its bytes are not UTF-8: ``caf\\xe9.txt``."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def brief_list(items: Sequence[str], shown: int = 5) -> str:
    """``a, b, c and 4 more``: enough to act on, short enough for one line."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def select_source_files(
    source: Path, rules: IgnoreRules, skip: Iterable[Path] = (), allow_outside_links: bool = False
) -> SourceSelection:
    """Every file under ``source`` the rules keep, sorted by package path.

    Symbolic links are followed (their content is packaged, since Lambda's unpacked tree is
    plain files) while they stay inside ``source``, or anywhere with ``allow_outside_links``
    except into ``SYSTEM_ROOTS``; a directory reached twice through links is visited once.
    A link that goes further, or a name a zip cannot hold (not UTF-8), stops the build with
    every such path named, rather than silently shipping or dropping it. ``skip`` names
    files or directories to leave out whatever the rules say (the package being written).
    """
    root = os.path.realpath(source)
    skipped = {p.resolve() for p in skip}
    seen_dirs: set[str] = set()
    files: list[SourceFile] = []
    withheld: list[str] = []
    escaping_links: list[str] = []
    not_utf8: list[str] = []

    def admit(relative: str, path: Path, is_dir: bool) -> bool:
        """Whether the walk keeps ``path``, noting the refusals that must be told."""
        rule = rules.match(relative, is_dir)
        if rule is not None and not rule.negated:
            if rule.secret:
                withheld.append(relative + "/" if is_dir else relative)
            return False
        if path.resolve() in skipped:
            return False
        if path.is_symlink():
            target = os.path.realpath(path)
            into_system = any(_within(target, system) for system in SYSTEM_ROOTS)
            if into_system or not (allow_outside_links or _within(target, root)):
                escaping_links.append(f"{_printable(relative)} -> {_printable(target)}")
                return False
        if not _is_utf8(relative):
            not_utf8.append(_printable(relative))
            return False
        return True

    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        base = Path(dirpath)
        relative_dir = base.relative_to(source).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if admit(prefix + d, base / d, is_dir=True))
        for name in sorted(filenames):
            path = base / name
            if not path.exists():  # a dangling symbolic link, or a loop of them
                continue
            if not admit(prefix + name, path, is_dir=False):
                continue
            mode = path.stat().st_mode
            if stat.S_ISREG(mode):
                files.append(SourceFile(prefix + name, path, bool(mode & 0o111)))
    if escaping_links:
        raise DeployError(
            f"Symbolic links in {source} lead out of it: {brief_list(escaping_links)}. "
            "Exclude them (.lambdaignore or --exclude) or replace them with the files; "
            "--allow-outside-links follows links out of the source, never into /proc, /dev or /sys"
        )
    if not_utf8:
        raise DeployError(
            f"File names in {source} are not UTF-8, which a zip cannot hold: {brief_list(not_utf8)}. "
            "Rename them, or exclude them (.lambdaignore or --exclude; ? matches one such byte)"
        )
    files.sort(key=lambda f: f.relative)
    return SourceSelection(files, sorted(withheld))


def collect_source_files(source: Path, rules: IgnoreRules, skip: Iterable[Path] = ()) -> list[SourceFile]:
    """The files of :func:`select_source_files`, for trees that hold no secrets to report."""
    return select_source_files(source, rules, skip).files


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
