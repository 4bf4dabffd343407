"""The bench's end of the stand-in Runtime API: ``fake_api.py`` in a process of its own.

The stand-in runs apart from the bench so that the bench's own work (waiting on runtimes,
reading ``/proc``) never slows what the runtimes are served, and so that it can be pinned
to a CPU by itself. It is driven over a line-oriented JSON pipe: arm a trial, wait for its
report, reset; ``fake_api.py`` says what each message means.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from paths import BENCH


class StandIn:
    """Drives ``fake_api.py`` in its own process over a line-oriented JSON pipe."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "fake_api.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.out_fd = self.proc.stdout.fileno()
        self.buf = b""
        self.port = int(self._read(10.0)["port"])
        self.address = f"127.0.0.1:{self.port}"

    def _read(self, timeout: float) -> dict[str, Any]:
        give_up = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = give_up - time.monotonic()
            if left <= 0 or not select.select([self.out_fd], [], [], left)[0]:
                raise TimeoutError("the stand-in Runtime API did not answer in time")
            chunk = os.read(self.out_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("the stand-in Runtime API exited")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _say(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def arm(self, events: int, size: int, crash_at: Sequence[int] = (), tag: str = "t") -> None:
        self._say({"cmd": "arm", "events": events, "size": size, "crash_at": list(crash_at), "tag": tag})
        assert self._read(10.0).get("armed")

    def wait_done(self, timeout: float) -> dict[str, Any]:
        return self._read(timeout)

    def reset(self) -> None:
        self._say({"cmd": "reset"})
        assert self._read(10.0).get("reset")

    def close(self) -> None:
        try:
            self._say({"cmd": "quit"})
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
