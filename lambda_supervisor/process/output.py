"""The runtime's output, read into lines by a thread of its own while it runs.

Tests wait for a log line instead of sleeping, and the local runner gives each line to
the invocation that printed it; both need to know when every byte written so far has
become a line. The reader therefore reads the pipe raw and says when it is idle, and
nothing a line holds (or a callback does with it) may stop it: the runtime would block
on a full pipe with nobody reading.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from .lines import LineAssembler, LineTail

_READ_CHUNK = 65536


class OutputReader:
    """A stream's lines, kept (``retain_chars`` bounds them; None keeps all) and passed on.

    ``pass_on`` gets each line as it arrives; whatever it raises is ignored.
    """

    def __init__(self, retain_chars: int | None, pass_on: Callable[[str], None]) -> None:
        self.pass_on = pass_on
        self._lines = LineTail(retain_chars)
        self._lines_changed = threading.Condition()
        self._stream: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._busy = False

    def start(self, stream: IO[bytes], name: str) -> None:
        """Read ``stream`` to its end in a thread called ``name``, then close it."""
        self._stream = stream
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _read(self) -> None:
        """Split the output into lines; raw reads so ``wait_idle`` can work.

        ``_busy`` is set before bytes leave the pipe and cleared only once they are
        lines, so "not busy and the pipe is empty" really means "everything is a line".
        Nothing a line contains, and no failure to pass it on, may end this loop.
        """
        assert self._stream is not None
        fd = self._stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        line = LineAssembler()
        while True:
            poller.poll()
            with self._lines_changed:
                self._busy = True
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                chunk = b""
            for raw in line.feed(chunk):
                self._emit(raw)
            with self._lines_changed:
                self._busy = False
                self._lines_changed.notify_all()
            if not chunk:
                break
        rest = line.flush()
        if rest is not None:
            self._emit(rest)
        self._stream.close()
        with self._lines_changed:
            self._lines_changed.notify_all()

    def _emit(self, raw: bytes) -> None:
        """Keep one line and pass it on; a line that cannot be passed on is dropped."""
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        with self._lines_changed:
            self._lines.append(line)
            self._lines_changed.notify_all()
        try:
            self.pass_on(line)
        except Exception:
            pass  # a closed stream or a line a callback chokes on must not stop the reader

    def wait_idle(self, timeout: float) -> bool:
        """True once every byte written to the stream so far has been turned into lines."""
        if self._stream is None:
            return True
        deadline = time.monotonic() + timeout
        with self._lines_changed:
            while True:
                if not self._busy and _unread_bytes(self._stream) == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lines_changed.wait(min(remaining, 0.01))

    def lines(self) -> list[str]:
        """The lines kept so far, after draining the pipe (up to a second)."""
        if threading.current_thread() is not self._thread:
            self.wait_idle(1.0)
        with self._lines_changed:
            return list(self._lines)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first line (past or future) matching ``predicate``, or None on timeout/end."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lines_changed:
            while True:
                for line in self._lines.since(seen):
                    if predicate(line):
                        return line
                seen = self._lines.count
                remaining = deadline - time.monotonic()
                reader_done = self._thread is not None and not self._thread.is_alive()
                if remaining <= 0 or reader_done:
                    return None
                self._lines_changed.wait(min(remaining, 0.5))


def _unread_bytes(stream: Any) -> int:
    """Bytes waiting in a pipe (FIONREAD); 0 once it is closed."""
    try:
        if stream.closed:
            return 0
        return struct.unpack("i", fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    except (OSError, ValueError):
        return 0
