"""A byte-for-byte reproducible zip of a staged package tree, checked against Lambda's quotas.

The same inputs must give the same bytes, so a rebuild can be compared with what is
deployed (Lambda reports ``CodeSha256``) and unchanged code is not uploaded for nothing.
Timestamps, entry order and permissions are therefore fixed rather than taken from the
build machine.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import DeployError
from .targets import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES

# The earliest time a zip can record; any fixed value would do.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
COMPRESS_LEVEL = 6
_UNIX = 3


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of the package: its name inside the zip, its bytes on disk, its mode."""

    name: str
    path: Path
    mode: int


@dataclass(frozen=True)
class ArchiveReport:
    path: Path
    files: int
    unzipped_bytes: int
    zipped_bytes: int


def human_size(size: int) -> str:
    """``12.3 MB`` style, in binary megabytes as Lambda's quotas are."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def entries_for_tree(root: Path) -> list[ArchiveEntry]:
    """Every file under ``root``, named by POSIX path, sorted, with a normalised mode:
    0755 when any execute bit is set on disk, else 0644."""
    entries = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            executable = bool(path.stat().st_mode & 0o111)
            entries.append(
                ArchiveEntry(
                    path.relative_to(root).as_posix(),
                    path,
                    EXECUTABLE_MODE if executable else FILE_MODE,
                )
            )
    entries.sort(key=lambda e: e.name)
    return entries


def unzipped_size(entries: Sequence[ArchiveEntry]) -> int:
    return sum(entry.path.stat().st_size for entry in entries)


def check_unzipped_size(total: int, what: str = "The package") -> None:
    if total > MAX_UNZIPPED_BYTES:
        raise DeployError(
            f"{what} is {human_size(total)} unzipped, over Lambda's limit of "
            f"{human_size(MAX_UNZIPPED_BYTES)} (code, dependencies and layers together). "
            "Exclude files with .lambdaignore or --exclude, move large dependencies to a "
            "layer, or use the container image format (--format image, up to 10 GB)."
        )


def write_zip(entries: Sequence[ArchiveEntry], output: Path) -> ArchiveReport:
    """Write ``output`` atomically: past the quotas, or on any failure, nothing is left behind."""
    total = unzipped_size(entries)
    check_unzipped_size(total)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for entry in entries:
                info = zipfile.ZipInfo(entry.name, date_time=FIXED_TIMESTAMP)
                info.create_system = _UNIX
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entry.path.read_bytes(), compresslevel=COMPRESS_LEVEL)
        zipped = partial.stat().st_size
        if zipped > MAX_ZIPPED_BYTES:
            raise DeployError(
                f"The package is {human_size(zipped)} zipped, over Lambda's limit of "
                f"{human_size(MAX_ZIPPED_BYTES)} for a direct upload. Exclude files with "
                ".lambdaignore or --exclude, move large dependencies to a layer, or use the "
                "container image format (--format image)."
            )
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ArchiveReport(output, len(entries), total, zipped)
