"""Output lines: assembled from raw reads, kept within a bound, parsed when they are JSON.

A runtime's output is whatever its handler prints: lines of any length, any number of
them, JSON log records mixed with plain text. Whoever keeps it must neither slow down
on a line of megabytes nor grow without end while serving, so lines are assembled in
linear time and cut at ``MAX_LINE_BYTES``, and a ``LineTail`` keeps only the newest.
"""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Iterator
from typing import Any

# What is kept of one output line; the rest is counted, not stored. CloudWatch Logs takes
# events up to 256 KiB, so a longer line could not reach Lambda's logs whole either.
MAX_LINE_BYTES = 256 * 1024


class LineTail:
    """The newest lines of a stream: as many as cover ``limit`` characters, or all (None).

    A long-running server keeps only what it can still show (a 4 KB log tail), while a
    test that inspects a short run keeps every line. ``count`` numbers lines ever added,
    so a reader can ask for what came after the lines it has already seen.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.count = 0
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0

    def append(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        self.count += 1
        if self.limit is None:
            return
        # Drop the oldest line only while the rest still cover the limit.
        while len(self._lines) > 1 and self._size - len(self._lines[0]) - 1 >= self.limit:
            self._size -= len(self._lines.popleft()) + 1

    def since(self, count: int) -> list[str]:
        """The kept lines added after the first ``count`` ever added."""
        new = min(self.count - count, len(self._lines))
        return list(itertools.islice(reversed(self._lines), new))[::-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


class LineAssembler:
    """Bytes in, complete lines out, in time linear in the input however long a line is.

    A line's pieces are collected and joined once at its newline (never concatenated chunk
    by chunk), and only its first ``MAX_LINE_BYTES`` are kept; the rest is counted.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._kept = 0
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        *complete, last = chunk.split(b"\n")
        lines = []
        for piece in complete:
            self._add(piece)
            lines.append(self._take())
        self._add(last)
        return lines

    def flush(self) -> bytes | None:
        """The unterminated last line, if there is one."""
        return self._take() if self._kept or self._dropped else None

    def _add(self, piece: bytes) -> None:
        room = MAX_LINE_BYTES - self._kept
        if len(piece) > room:
            self._dropped += len(piece) - room
            piece = piece[:room]
        if piece:
            self._parts.append(piece)
            self._kept += len(piece)

    def _take(self) -> bytes:
        line = b"".join(self._parts)
        if self._dropped:
            line += f" [... {self._dropped} more bytes of this line dropped]".encode()
        self._parts, self._kept, self._dropped = [], 0, 0
        return line


def parse_json_object(line: str) -> dict[str, Any] | None:
    """``line`` as a JSON object, or None when it is plain text or another JSON value."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
