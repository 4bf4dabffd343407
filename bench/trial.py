"""One trial: start a runtime against the armed stand-in, wait for every answer, measure, kill.

Every phase is made of trials, and a comparison of two runtimes is made of pairs of trials
taken back to back in ABBA order (ours first in even pairs, awslambdaric first in odd ones),
so that neither always runs on a machine that has just warmed up or just got busier. A
trial's timestamps are the stand-in's (``time.monotonic()``, one clock for all processes on
Linux); its memory and CPU are read while the runtime idles on its next ``GET /next``.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cpus import pinned_to
from paths import HANDLERS, WORK
from process_tree import kill_tree, tree_cpu_seconds, tree_pss_kb
from runtimes import Runtime, base_env
from stand_in import StandIn

SIZES = {"noop": 0, "echo-100KB": 100 * 1024, "echo-5MB": 5 * 1024 * 1024}
HANDLER_OF = {"noop": "noop", "echo-100KB": "echo", "echo-5MB": "echo"}


@dataclass
class Run:
    """What one runtime process did in one trial."""

    runtime: str
    spawned_at: float
    report: dict[str, Any]
    pss_kb: int
    processes: int
    cpu_s: float = 0.0
    log: str = ""

    @property
    def to_first_next_ms(self) -> float:
        return (self.report["first_next"] - self.spawned_at) * 1000

    @property
    def to_first_response_ms(self) -> float:
        return (self.report["in_at"][0] - self.spawned_at) * 1000


def run_trial(
    stand_in: StandIn,
    runtime: Runtime,
    scenario: str,
    events: int,
    *,
    module: str | None = None,
    crash_at: Sequence[int] = (),
    timeout: float = 120.0,
    capture_log: bool = False,
    cpus: set[int] | None = None,
) -> Run:
    """Start one runtime against an armed stand-in, wait for all answers, measure, kill."""
    module = module or HANDLER_OF[scenario]
    # Request ids are plain tokens, as Lambda's are (a space would be percent-encoded).
    tag = "".join(c if c.isalnum() else "-" for c in runtime.name) + f"-{time.monotonic_ns()}"
    stand_in.arm(events, SIZES.get(scenario, 0), crash_at, tag=tag)
    env = base_env(stand_in.address, module)
    env.update(runtime.extra_env)
    argv = runtime.argv + ([f"{module}.handler"] if runtime.needs_module_arg else [])
    # Both runtimes log a line or two per trial at most: a file costs them what /dev/null
    # would, and it explains a trial that fails.
    log_path = WORK / "last-run.log"
    with open(log_path, "wb") as out:
        spawned_at = time.monotonic()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=str(HANDLERS),
            stdout=out,
            stderr=out,
            preexec_fn=pinned_to(cpus),
        )
        try:
            try:
                report = stand_in.wait_done(timeout)
            except TimeoutError:
                state = "still running" if proc.poll() is None else f"exited with {proc.returncode}"
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"{runtime.name} ({scenario}) answered no events in {timeout:.0f}s; {state}; "
                    f"its output:\n{tail}"
                ) from None
            time.sleep(0.05)  # let it post and go back to its idle GET /next
            pss, count = tree_pss_kb(proc.pid)
            cpu = tree_cpu_seconds(proc.pid)
        finally:
            kill_tree(proc)
            stand_in.reset()
    if report.get("init_error"):
        raise RuntimeError(f"{runtime.name} reported an init error for {scenario}")
    log = log_path.read_text(errors="replace") if capture_log else ""
    return Run(runtime.name, spawned_at, report, pss, count, cpu, log)


def alternate(pairs: int) -> Iterator[tuple[int, bool]]:
    """ABBA: pair 0 runs ours first, pair 1 awslambdaric first, and so on."""
    for index in range(pairs):
        yield index, index % 2 == 0


def median_of(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)
