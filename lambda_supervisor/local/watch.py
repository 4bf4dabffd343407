"""``serve --watch``: notice when the function's code changes on disk.

The standard library has no file-change notification, and the trees in question are
small (a function's code root), so this polls: every ``POLL_INTERVAL`` it takes a
snapshot of the modification time and size of each watched file and compares it with the
last one. A file added, removed or rewritten is a change. What is watched is what a
restarted runtime would read differently: Python sources, ``requirements.txt`` and
``.env``. Folders that are not the function's code (virtualenvs, caches, hidden folders
such as ``.git``) are skipped, so that a code root holding a virtualenv costs nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_INTERVAL = 0.3
WATCHED_NAMES = frozenset(("requirements.txt", ".env"))
WATCHED_SUFFIXES = (".py",)
_SKIPPED_FOLDERS = frozenset(("__pycache__", "node_modules", "site-packages"))

# path -> (mtime in ns, size): a rewrite within one mtime tick still changes the size.
Snapshot = dict[str, tuple[int, int]]


def is_watched(name: str) -> bool:
    return name in WATCHED_NAMES or name.endswith(WATCHED_SUFFIXES)


def _skipped(folder: Path, name: str) -> bool:
    if name.startswith(".") or name in _SKIPPED_FOLDERS:
        return True
    return (folder / name / "pyvenv.cfg").is_file()  # a virtualenv


def _watched_files(root: Path) -> Iterator[os.DirEntry[str]]:
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = [name for name in subfolders if not _skipped(Path(folder), name)]
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # removed while we walked
        for entry in entries:
            if is_watched(entry.name) and entry.is_file():
                yield entry


def snapshot(root: Path) -> Snapshot:
    """The modification time and size of every watched file under ``root``."""
    files: Snapshot = {}
    for entry in _watched_files(root):
        try:
            stat = entry.stat()
        except OSError:
            continue
        files[entry.path] = (stat.st_mtime_ns, stat.st_size)
    return files


def changed_paths(before: Snapshot, after: Snapshot) -> list[str]:
    """The files added, removed or rewritten between two snapshots, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def describe_changes(paths: list[Path], root: Path) -> str:
    """``app.py, pkg/mod.py and 2 more changed``, paths relative to ``root``."""
    names = [os.path.relpath(path, root) for path in sorted(paths)]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{shown} changed"


def drop_stale_bytecode(paths: list[Path]) -> None:
    """Remove the cached bytecode (``__pycache__/NAME.*.pyc``) of the Python files ``paths``.

    Python trusts a cached module whose source has the recorded modification time, in
    whole seconds, and size: a file saved twice within a second at the same size would be
    run from the first version's bytecode. Whatever interpreter the runtime uses, its
    cache for a changed file goes, and that file is compiled afresh.
    """
    for path in paths:
        if path.suffix != ".py":
            continue
        for cached in path.parent.joinpath("__pycache__").glob(f"{path.stem}.*.pyc"):
            try:
                cached.unlink()
            except OSError:
                pass


class CodeWatcher:
    """Calls ``on_change(paths)`` from a thread of its own whenever watched files under
    ``root`` change (the files added, removed or rewritten, as absolute paths)."""

    def __init__(
        self, root: Path, on_change: Callable[[list[Path]], None], interval: float = POLL_INTERVAL
    ) -> None:
        self.root = root
        self.on_change = on_change
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CodeWatcher:
        # Taken before returning, so a save right after ``start`` is seen as a change.
        last = snapshot(self.root)
        self._thread = threading.Thread(target=self._poll, args=(last,), name="code-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _poll(self, last: Snapshot) -> None:
        while not self._stop.wait(self.interval):
            current = snapshot(self.root)
            changed = changed_paths(last, current)
            last = current
            if changed:
                self.on_change([Path(path) for path in changed])
