"""Where the Lambda Managed Instances throughput goes: N slots as threads of one supervisor,
against N one-slot runtimes side by side, against the design at its barest, against
awslambdaric at N.

    python3 bench/lmi_slots.py              # N = 1, 4 and 16, six pairs each
    python3 bench/lmi_slots.py 4 --pairs 10

Not part of ``run.py``'s figures; it explains the "LMI N=..." throughput rows. With
``AWS_LAMBDA_MAX_CONCURRENCY=N`` this runtime keeps its N slots as threads of one
supervisor (``supervisor/slots.py``). Started N times without the variable, as N separate
processes against the same stand-in, it is one single-threaded supervisor per slot: what a
process per slot would reach. The handler and the backlog are those of ``lmi.py`` (20 ms
waits, every worker kept busy), in ABBA order, medians of invocations/s. If the separate
runtimes do better than the slots, that much is the slots sharing one process; what is
left between them and awslambdaric is each slot's own hand-over to its worker.

The design at its barest is ``floor.py``: a relay of events to a forked worker over a pipe
with none of the runtime's guarantees (no deadline, no error report, no check of anything),
N of them side by side at N. What it reaches is the most this design can serve; how far it
is from awslambdaric is what the second process costs, and how far the runtime is from it
is what its guarantees cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from lmi import HANDLER_S, lmi_env, throughput_figures
from paths import BENCH, WORK
from runtimes import AWS, OURS, Runtime, aws_runtime, compile_runtime, our_runtime
from stand_in import StandIn
from trial import Run, alternate, run_trial, started, trial_tag
from venvs import reexec_in_bench_venv

SEPARATE = "ours, N one-slot runtimes"
FLOOR = "the design at its barest"
EVENTS_PER_SLOT = 100
JSON_LOGS = {"AWS_LAMBDA_LOG_FORMAT": "JSON"}


def separate_runtimes(stand_in: StandIn, runtime: Runtime, n: int) -> float:
    """Invocations/s of ``n`` one-slot runtimes started side by side on one backlog."""
    events = n * EVENTS_PER_SLOT
    stand_in.arm(events, 0, tag=trial_tag(runtime))
    with ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(started(stand_in, runtime, "sleeper", env=JSON_LOGS))
        report = stand_in.wait_done(events * HANDLER_S * 2 + 60)
    return throughput_figures(Run(SEPARATE, 0.0, report, 0, 0), n)["ips"]


def slots(stand_in: StandIn, runtime: Runtime, n: int) -> float:
    """Invocations/s of one runtime at ``AWS_LAMBDA_MAX_CONCURRENCY=n`` (as ``lmi.py``)."""
    events = n * EVENTS_PER_SLOT
    run = run_trial(
        stand_in,
        runtime,
        "noop",
        events,
        module="sleeper",
        env=lmi_env(n),
        timeout=events * HANDLER_S * 2 + 60,
    )
    return throughput_figures(run, n)["ips"]


def compare(
    stand_in: StandIn, ours: Runtime, floor: Runtime, aws: Runtime, n: int, pairs: int
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {OURS: [], SEPARATE: [], FLOOR: [], AWS: []}
    at_n = {OURS: ours, FLOOR: floor, AWS: aws}
    for _, ours_first in alternate(pairs):
        order = [OURS, SEPARATE, FLOOR, AWS] if ours_first else [AWS, FLOOR, SEPARATE, OURS]
        for name in order:
            if name == SEPARATE:
                rates[name].append(separate_runtimes(stand_in, ours, n))
            else:
                rates[name].append(slots(stand_in, at_n[name], n))
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="*", type=int, default=[1, 4, 16], help="concurrencies to compare")
    parser.add_argument("--pairs", type=int, default=6, help="ABBA pairs per concurrency")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    reexec_in_bench_venv(Path(__file__).resolve())
    WORK.mkdir(exist_ok=True)
    root = BENCH.parent
    compile_runtime(sys.executable, root)
    ours, aws = our_runtime(root), aws_runtime()
    floor = Runtime(FLOOR, [sys.executable, str(BENCH / "floor.py")])
    stand_in = StandIn()
    try:
        for n in args.n:
            rates = compare(stand_in, ours, floor, aws, n, args.pairs)
            aws_median = statistics.median(rates[AWS])
            for name, found in rates.items():
                median = statistics.median(found)
                print(
                    f"N={n:<3} {name:<27} {median:8.1f} inv/s  {median / aws_median:5.3f}x  "
                    f"runs {', '.join(f'{rate:.1f}' for rate in found)}",
                    flush=True,
                )
    finally:
        stand_in.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
