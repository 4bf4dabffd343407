"""The bench's end of the stand-in Runtime API: ``fake_api.py`` in a process of its own.

The stand-in runs apart from the bench so that the bench's own work (waiting on runtimes,
reading ``/proc``) never slows what the runtimes are served, and so that it can be pinned
to a CPU by itself. It is driven over a line-oriented JSON pipe: arm a trial, wait for its
report, reset; ``fake_api.py`` says what each message means. A trial's reports come when
the runtime makes them happen, so one may arrive while the bench awaits another (its
"done" while it arms the next trial): each is kept until it is asked for.
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
        self.unclaimed: list[dict[str, Any]] = []
        self.port = int(self._expect("port", 10.0)["port"])
        self.address = f"127.0.0.1:{self.port}"

    def _expect(self, key: str, timeout: float) -> dict[str, Any]:
        """The first message carrying ``key``; the others are kept for their own callers."""
        for index, message in enumerate(self.unclaimed):
            if key in message:
                return self.unclaimed.pop(index)
        give_up = time.monotonic() + timeout
        while True:
            while b"\n" not in self.buf:
                left = give_up - time.monotonic()
                if left <= 0 or not select.select([self.out_fd], [], [], left)[0]:
                    raise TimeoutError("the stand-in Runtime API did not answer in time")
                chunk = os.read(self.out_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("the stand-in Runtime API exited")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            message = json.loads(line)
            if key in message:
                return message
            self.unclaimed.append(message)

    def _say(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def arm(
        self,
        events: int,
        size: int,
        crash_at: Sequence[int] = (),
        tag: str = "t",
        *,
        bodies: Sequence[str] = (),
        timeout_ms: int | None = None,
        report_held: int | None = None,
    ) -> None:
        """The next trial: ``events`` events of ``size`` bytes (or one per body of ``bodies``),
        their deadline ``timeout_ms`` after each is handed out, and a report when
        ``report_held`` ``GET /next`` calls are outstanding at once."""
        spec: dict[str, Any] = {"cmd": "arm", "events": events, "size": size, "crash_at": list(crash_at)}
        spec.update(tag=tag, bodies=list(bodies))
        if timeout_ms is not None:
            spec["timeout_ms"] = timeout_ms
        if report_held is not None:
            spec["report_held"] = report_held
        self._say(spec)
        self._expect("armed", 10.0)
        # The stand-in answers in order: whatever it said before "armed" was the last trial's.
        self.unclaimed.clear()

    def wait_done(self, timeout: float) -> dict[str, Any]:
        """The trial's report once its last event is answered."""
        return self._expect("done", timeout)

    def wait_held(self, timeout: float) -> float:
        """When the armed number of ``GET /next`` calls were first outstanding at once."""
        return float(self._expect("held", timeout)["at"])

    def status(self) -> dict[str, Any]:
        """The trial's figures so far, whatever has been answered."""
        self._say({"cmd": "status"})
        return self._expect("status", 10.0)

    def reset(self) -> None:
        """Drop every connection and the trial; forget its reports not asked for."""
        self._say({"cmd": "reset"})
        self._expect("reset", 10.0)
        self.unclaimed.clear()

    def close(self) -> None:
        try:
            self._say({"cmd": "quit"})
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
