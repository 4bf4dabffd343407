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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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


@dataclass
class Started:
    """A runtime process started against the stand-in, and where its output goes."""

    runtime: Runtime
    proc: subprocess.Popen[bytes]
    spawned_at: float
    log_path: Path

    def failure(self, what: str) -> RuntimeError:
        """``what`` went wrong, with the process's state and the end of its output."""
        state = "still running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        tail = self.log_path.read_text(errors="replace")[-2000:]
        return RuntimeError(f"{self.runtime.name}: {what}; {state}; its output:\n{tail}")


def trial_tag(runtime: Runtime) -> str:
    """A fresh prefix for a trial's request ids: plain tokens, as Lambda's are (a space
    would be percent-encoded), so that an answer never counts for another trial."""
    return "".join(c if c.isalnum() else "-" for c in runtime.name) + f"-{time.monotonic_ns()}"


@contextmanager
def started(
    stand_in: StandIn,
    runtime: Runtime,
    module: str,
    *,
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
) -> Iterator[Started]:
    """``runtime`` with the handler ``module`` running against the stand-in (armed first),
    with ``env`` added to Lambda's environment; its process tree is killed and the stand-in
    reset at the end."""
    full_env = base_env(stand_in.address, module)
    full_env.update(runtime.extra_env)
    full_env.update(env or {})
    argv = runtime.argv + ([f"{module}.handler"] if runtime.needs_module_arg else [])
    # Both runtimes log a line or two per trial at most: a file costs them what /dev/null
    # would, and it explains a trial that fails.
    log_path = WORK / "last-run.log"
    with open(log_path, "wb") as out:
        spawned_at = time.monotonic()
        proc = subprocess.Popen(
            argv,
            env=full_env,
            cwd=str(HANDLERS),
            stdout=out,
            stderr=out,
            preexec_fn=pinned_to(cpus),
        )
        try:
            yield Started(runtime, proc, spawned_at, log_path)
        finally:
            kill_tree(proc)
            stand_in.reset()


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
    env: dict[str, str] | None = None,
) -> Run:
    """Start one runtime against an armed stand-in, wait for all answers, measure, kill.

    ``env`` is added to Lambda's environment for this trial alone."""
    module = module or HANDLER_OF[scenario]
    stand_in.arm(events, SIZES.get(scenario, 0), crash_at, tag=trial_tag(runtime))
    with started(stand_in, runtime, module, env=env, cpus=cpus) as process:
        try:
            report = stand_in.wait_done(timeout)
        except TimeoutError:
            raise process.failure(f"({scenario}) did not answer every event in {timeout:.0f}s") from None
        time.sleep(0.05)  # let it post and go back to its idle GET /next
        pss, count = tree_pss_kb(process.proc.pid)
        cpu = tree_cpu_seconds(process.proc.pid)
    if report.get("init_error"):
        raise RuntimeError(f"{runtime.name} reported an init error for {scenario}")
    log = process.log_path.read_text(errors="replace") if capture_log else ""
    return Run(runtime.name, process.spawned_at, report, pss, count, cpu, log)


def alternate(pairs: int) -> Iterator[tuple[int, bool]]:
    """ABBA: pair 0 runs ours first, pair 1 awslambdaric first, and so on."""
    for index in range(pairs):
        yield index, index % 2 == 0


def median_of(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)
