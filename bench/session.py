"""What every phase of one bench run shares: the stand-in, the runtimes, the scale, the figures.

One stand-in serves every phase, so that no phase measures a stand-in that has just started.
A phase is a function of a ``Session``: it takes its trials through ``session.stand_in``,
sizes them with ``session.n`` (a full run or a quick one), says what it found with
``session.say`` and leaves its figures in ``session.results``, from which the results are
written at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cpus import CPUs
from runtimes import Runtime, aws_runtime, our_runtime
from stand_in import StandIn


class Session:
    def __init__(self, quick: bool, root: Path) -> None:
        self.quick = quick
        self.root = root
        self.ours: Runtime = our_runtime(root)
        self.aws: Runtime = aws_runtime()
        self.stand_in = StandIn()
        self.results: dict[str, Any] = {"mode": "quick" if quick else "full", "runs": {}}
        self.cpus = CPUs.of_this_process()

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # How much of everything: (full, quick).
    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def close(self) -> None:
        self.stand_in.close()
