"""Warm throughput and latency: invocations back to back, on all CPUs and on one.

What a warm function does most of its life is fetch an event, run the handler and post the
result, so the rows that weigh most are these: invocations/s over a run of events (the first
5% are warm-up and not counted), the latency of each (from the stand-in starting to write
the ``/next`` answer to it having read the whole ``/response``), the CPU the runtime's tree
spent, and its PSS once idle again. The payloads are a no-op, 100 KiB and 5 MiB echoed back,
so that the cost of moving the payload through every layer shows beside the fixed cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from cpus import stand_in_pinned
from runtimes import AWS, OURS, Runtime
from session import Session
from trial import SIZES, Run, alternate, median_of, run_trial


def run(session: Session) -> None:
    """Back-to-back invocations for each payload; PSS of the idle tree afterwards.

    Then again with the stand-in and the runtime on one CPU, as everything in a Lambda
    function of up to 1,769 MB is (one vCPU or less): there the worker and the
    supervisor hand an event over without waking another CPU.
    """
    counts = {
        "noop": session.n(3000, 1000),
        "echo-100KB": session.n(1000, 300),
        "echo-5MB": session.n(100, 30),
    }
    for phase, cpus, scenarios in (
        ("warm", None, SIZES),
        ("warm-1cpu", session.cpus.one, ("noop", "echo-100KB")),
    ):
        with stand_in_pinned(session.stand_in, cpus, session.cpus):
            for scenario in scenarios:
                compare(session, f"{phase}:{scenario}", scenario, counts[scenario], cpus)


def compare(
    session: Session,
    phase: str,
    scenario: str,
    events: int,
    cpus: set[int] | None = None,
    *,
    pairs: int | None = None,
    runtimes: tuple[Runtime, Runtime] | None = None,
) -> None:
    """``pairs`` ABBA pairs of warm runs of ``scenario`` (default: 7, or 3 quick) of the
    session's two runtimes, or of ``runtimes`` (ours, awslambdaric) on another Python."""
    ours, aws = runtimes or (session.ours, session.aws)
    runs: dict[str, list[dict[str, float]]] = {OURS: [], AWS: []}
    for _, ours_first in alternate(pairs or session.n(7, 3)):
        order = (ours, aws) if ours_first else (aws, ours)
        for runtime in order:
            run = run_trial(session.stand_in, runtime, scenario, events, cpus=cpus)
            runs[runtime.name].append(warm_figures(run, SIZES[scenario]))
    session.results["runs"][phase] = runs
    session.say(
        f"{phase}: ours {median_of(runs[OURS], 'ips'):,.0f} inv/s p50 "
        f"{median_of(runs[OURS], 'p50_ms'):.3f} ms; awslambdaric {median_of(runs[AWS], 'ips'):,.0f} inv/s "
        f"p50 {median_of(runs[AWS], 'p50_ms'):.3f} ms"
    )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def warm_figures(run: Run, expected_size: int) -> dict[str, float]:
    """Invocations/s and latency percentiles over the events after a short warm-up."""
    report = run.report
    count = len(report["out_at"])
    skip = max(1, count // 20)
    out_at, in_at = report["out_at"][skip:], report["in_at"][skip:]
    latencies = [(done - sent) * 1000 for sent, done in zip(out_at, in_at, strict=True)]
    bad = [k for k in report["kind"] if k != "response"]
    if bad:
        raise RuntimeError(f"{run.runtime}: {len(bad)} events were not answered with a response")
    short = [n for n in report["in_bytes"] if n < expected_size]
    if short:
        raise RuntimeError(f"{run.runtime}: a response was {short[0]} bytes, the event {expected_size}")
    return {
        "ips": len(latencies) / (in_at[-1] - out_at[0]),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "pss_mb": run.pss_kb / 1024,
        "processes": run.processes,
        "cpu_s": run.cpu_s,
        "events": count,
    }
