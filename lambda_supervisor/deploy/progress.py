"""A progress line for the waits that AWS makes us do (role propagation, function updates).

A silent pause of twenty seconds looks like a hang; an updating counter does not. On a
terminal the line redraws itself; in a log (CI) it prints a start line, a reminder every
ten seconds, and the outcome, so the log stays short.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

_TTY_INTERVAL = 0.5
_LOG_INTERVAL = 10.0


@contextlib.contextmanager
def progress(message: str, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``message`` with the elapsed time while the ``with`` body runs."""
    out = stream or sys.stderr
    interactive = out.isatty()
    started = time.monotonic()
    finished = threading.Event()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.1f}s"

    def tick() -> None:
        interval = _TTY_INTERVAL if interactive else _LOG_INTERVAL
        while not finished.wait(interval):
            if interactive:
                out.write(f"\r{message} ... {elapsed()}")
            else:
                out.write(f"{message}: still waiting ({elapsed()})\n")
            out.flush()

    out.write(f"{message} ..." if interactive else f"{message} ...\n")
    out.flush()
    ticker = threading.Thread(target=tick, name="progress", daemon=True)
    ticker.start()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        finished.set()
        ticker.join()
        if interactive:
            out.write(f"\r{message} ... {outcome} ({elapsed()})\n")
        else:
            out.write(f"{message}: {outcome} ({elapsed()})\n")
        out.flush()
