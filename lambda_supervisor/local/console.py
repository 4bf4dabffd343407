"""The console of a local run: log lines written to a stream from a thread of its own.

The lines come from the runtime's output reader and from the threads answering the
Runtime API; none of them may wait for a console that stalled (a paused pager, a full
pipe) or went away (a closed pipe), or the runtime and every caller would wait too.
"""

from __future__ import annotations

import collections
import threading
from typing import TextIO

# Log text waiting for a console that does not keep up; past it, lines are dropped.
ECHO_BACKLOG_CHARS = 1024 * 1024
# How long stopping waits for the console to take the lines still waiting.
ECHO_DRAIN_TIMEOUT = 5.0


class LogEcho:
    """Log lines to a stream (the console) from a thread of its own.

    Lines are queued, at most ``backlog`` characters of them: past that they are dropped
    and counted, and what the stream refuses is dropped, as Lambda goes on when nobody
    reads its logs.
    """

    def __init__(self, stream: TextIO, backlog: int = ECHO_BACKLOG_CHARS) -> None:
        self.stream = stream
        self.backlog = backlog
        self._lines: collections.deque[str] = collections.deque()
        self._queued = 0
        self._dropped = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="log-echo", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        with self._changed:
            if self._queued + len(line) > self.backlog:
                self._dropped += 1
                return
            self._lines.append(line)
            self._queued += len(line)
            self._changed.notify()

    def close(self, timeout: float) -> None:
        """Write what is queued (waiting at most ``timeout``), then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._lines or self._dropped or self._closed)
                if not self._lines and not self._dropped:
                    return
                text = "".join(line + "\n" for line in self._lines)
                if self._dropped:
                    text += (
                        f"[lambda-supervisor: {self._dropped} log lines dropped, the console fell behind]\n"
                    )
                self._lines.clear()
                self._queued = self._dropped = 0
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream: serving goes on without its console
