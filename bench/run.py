"""Benchmark this runtime against AWS's ``awslambdaric``, side by side, in one command.

    python3 bench/run.py            # full run, 2-3 minutes
    python3 bench/run.py --quick    # about a minute, fewer repeats

The first run creates ``bench/.venv`` from ``bench/requirements.txt`` and re-executes
itself there, so both runtimes run on the same interpreter with the same libraries; the
rows for Python 3.12 and 3.13 get ``bench/.venv-3.12`` and ``bench/.venv-3.13`` the same
way. A full run's results go to ``bench/results/`` (``results.md``, ``chart.png``,
``results.json``), a quick run's to ``bench/work/quick/``. See ``bench/README.md`` for what
each figure means.

Every comparison alternates the two runtimes (ABBA order, so neither always runs first
on a machine that warms up or gets busier) and reports medians, and the ratio of each
pair of runs, because a shared two-core machine is noisy and a single run proves little.

This module is the command line: each phase lives in a module of its own (``ceiling``,
``cold``, ``warm``, ``recovery``, ``bytecode``, ``pythons``, ``streaming``), a function of the
``Session`` they share (``streaming`` measures this runtime alone).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bytecode
import ceiling
import cold
import pythons
import recovery
import results
import streaming
import warm
from paths import REPO, WORK
from runtimes import compile_runtime
from session import Session
from venvs import reexec_in_bench_venv

PHASES: dict[str, Callable[[Session], None]] = {
    "ceiling": ceiling.run,
    "cold": cold.run,
    "warm": warm.run,
    "recovery": recovery.run,
    "bytecode": bytecode.run,
    "pythons": pythons.run,
    "streaming": streaming.run,
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats and events (about a minute); results go to bench/work/quick/",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=tuple(PHASES),
        help="run only this phase (repeatable); results merge",
    )
    parser.add_argument(
        "--runtime-root",
        default=str(REPO),
        help="checkout whose bin/bootstrap, supervisor/ and worker/ are measured (default: this one)",
    )
    parser.add_argument(
        "--out",
        help="directory for results.md, chart.png and results.json "
        "(default: bench/results/, or bench/work/quick/ with --quick)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    reexec_in_bench_venv(Path(__file__).resolve())

    WORK.mkdir(exist_ok=True)
    out = results.out_dir(args.out, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    compile_runtime(sys.executable, Path(args.runtime_root))
    # A SIGTERM (a CI timeout, a kill) unwinds like Ctrl-C, so no runtime is left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    session = Session(args.quick, Path(args.runtime_root).resolve())
    started = time.monotonic()
    session.say(
        f"{session.results['mode']} run; stand-in on {session.stand_in.address}; runtime from {session.root}"
    )
    try:
        for phase in args.only or PHASES:
            PHASES[phase](session)
    finally:
        session.close()
    session.results["seconds"] = round(time.monotonic() - started, 1)
    session.results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    session.results["runtime_revision"] = results.runtime_revision(session.root)
    results.write(session.results, out, merge=bool(args.only))
    session.say(f"done in {session.results['seconds']:.0f} s; see {out / 'results.md'}")
    return 0


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
