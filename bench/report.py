"""Turn the raw figures of ``run.py`` into the tables of ``results.md``.

Every comparison row shows both medians, the ratio of the medians (what the targets are
judged on) and the min/median/max of the per-pair ratios: each pair is one run of ours and
one of awslambdaric taken back to back, so a pair shares the machine's momentary load and
the spread of pair ratios shows how much one noisy run could mislead.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lmi
from pythons import phase_prefix
from runtimes import AWS, OURS

# label, phase, key of the figure, unit, higher is better, target on the ratio ours/awslambdaric
Spec = tuple[str, str, str, str, bool, float | None]

SCENARIOS = ("noop", "echo-100KB", "echo-5MB")
RECOVERY_BUDGET_MS = 30.0


@dataclass
class Row:
    label: str
    phase: str
    key: str
    unit: str
    higher_is_better: bool
    target: float | None  # on the ratio ours/awslambdaric
    ours: list[float]
    aws: list[float]

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def aws_median(self) -> float:
        return statistics.median(self.aws)

    @property
    def ratio(self) -> float:
        return self.ours_median / self.aws_median

    @property
    def pair_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.aws, strict=True)]

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≥' if self.higher_is_better else '≤'} {self.target:g}×"


def comparison_rows(results: dict[str, Any]) -> list[Row]:
    """The main rows: both runtimes on the bench's own interpreter. The targets are the
    project's current ones; the payloads of everyday functions (no-op, 100 KiB) have them."""
    specs: list[Spec] = [
        ("cold start → first GET /next", "cold", "first_next_ms", "ms", False, 1.5),
        ("cold start → first response posted", "cold", "first_response_ms", "ms", False, None),
        ("cold start, boto3 init → first GET /next", "cold-sdk", "first_next_ms", "ms", False, 1.0),
        ("cold start, boto3 init → first response", "cold-sdk", "first_response_ms", "ms", False, 1.0),
        ("cold start, boto3 init, 1 CPU → GET /next", "cold-sdk-1cpu", "first_next_ms", "ms", False, 1.0),
    ]
    # (invocations/s at least, p50 at most) on all CPUs and on one.
    warm_targets = {"noop": ((0.85, 1.2), (0.95, 1.1)), "echo-100KB": ((0.85, 1.2), (0.95, 1.1))}
    for scenario in SCENARIOS:
        phase = f"warm:{scenario}"
        ips, p50 = warm_targets.get(scenario, ((None, None), (None, None)))[0]
        specs += [
            (f"warm {scenario}: invocations/s", phase, "ips", "/s", True, ips),
            (f"warm {scenario}: p50 latency", phase, "p50_ms", "ms", False, p50),
            (f"warm {scenario}: p99 latency", phase, "p99_ms", "ms", False, None),
            (f"PSS of the tree after {scenario}", phase, "pss_mb", "MB", False, 1.8),
        ]
    for scenario in SCENARIOS:
        phase = f"warm-1cpu:{scenario}"
        ips, p50 = warm_targets.get(scenario, ((None, None), (None, None)))[1]
        specs += [
            (f"warm {scenario}, 1 CPU: invocations/s", phase, "ips", "/s", True, ips),
            (f"warm {scenario}, 1 CPU: p50 latency", phase, "p50_ms", "ms", False, p50),
        ]
    return _rows(results.get("runs", {}), specs, "cold")


def python_rows(results: dict[str, Any]) -> list[Row]:
    """Both runtimes on each other Python measured; none for a Python that was absent."""
    rows = []
    for minor, found in results.get("pythons", {}).items():
        if "absent" in found:
            continue
        prefix, label = phase_prefix(minor), f"Python {minor}"
        specs: list[Spec] = [
            (f"{label}: cold start → first GET /next", f"{prefix}cold", "first_next_ms", "ms", False, None),
            (f"{label}, warm noop: invocations/s", f"{prefix}warm:noop", "ips", "/s", True, None),
            (f"{label}, warm noop: p50 latency", f"{prefix}warm:noop", "p50_ms", "ms", False, None),
            (f"{label}, warm noop: p99 latency", f"{prefix}warm:noop", "p99_ms", "ms", False, None),
            (f"{label}: PSS of the tree after noop", f"{prefix}warm:noop", "pss_mb", "MB", False, None),
        ]
        rows += _rows(results.get("runs", {}), specs, f"{prefix}cold")
    return rows


def lmi_rows(results: dict[str, Any]) -> list[Row]:
    """The concurrent (LMI) rows: throughput at each N; at N = 16 with a boto3 init, the
    time to all N ready and the PSS, ours by default and with preload, each against
    awslambdaric. A round in which either runtime of a row did not get all N workers
    ready at once has no figures in that row (``lmi_not_ready`` says so)."""
    runs = results.get("runs", {})
    rows = []
    for n in lmi.THROUGHPUT_N:
        found = runs.get(lmi.phase("throughput", n))
        if found:
            ours, aws = ([row["ips"] for row in found[name]] for name in (OURS, AWS))
            label = f"LMI N={n}, 20 ms handler: invocations/s"
            rows.append(Row(label, lmi.phase("throughput", n), "ips", "/s", True, 1.0, ours, aws))
    found = runs.get(lmi.phase("init", lmi.INIT_N))
    if not found:
        return rows
    specs = [
        ("start → all {n} ready", "ready_ms", "ms", OURS, None),
        ("start → all {n} ready, preload", "ready_ms", "ms", lmi.PRELOAD, 0.3),
        ("PSS of the tree", "pss_mb", "MB", OURS, 1.0),
        ("PSS of the tree, preload", "pss_mb", "MB", lmi.PRELOAD, 0.3),
    ]
    for label, key, unit, name, target in specs:
        pairs = [
            (mine[key], theirs[key])
            for mine, theirs in zip(found[name], found[AWS], strict=True)
            if mine["ready"] == theirs["ready"] == lmi.INIT_N
        ]
        if pairs:
            label = f"LMI N={lmi.INIT_N}, boto3 init: {label.format(n=lmi.INIT_N)}"
            ours, aws = ([pair[side] for pair in pairs] for side in (0, 1))
            rows.append(Row(label, lmi.phase("init", lmi.INIT_N), key, unit, False, target, ours, aws))
    return rows


def lmi_not_ready(results: dict[str, Any]) -> list[str]:
    """A line for each runtime that, in some round of the init rows, never had all N
    workers ready at once."""
    found = results.get("runs", {}).get(lmi.phase("init", lmi.INIT_N)) or {}
    lines = []
    for name, rounds in found.items():
        short = [row["ready"] for row in rounds if row["ready"] < lmi.INIT_N]
        if short:
            lines.append(
                f"- {name}: in {len(short)} of {len(rounds)} runs at most {max(short)} of {lmi.INIT_N} "
                "workers were ready at once; those runs have no figures above."
            )
    return lines


def _lmi_section(results: dict[str, Any]) -> list[str]:
    runs = results.get("runs", {})
    rows = lmi_rows(results)
    capacity = {n: runs[lmi.phase("capacity", n)] for n in lmi.CAPACITY_N if lmi.phase("capacity", n) in runs}
    if not rows and not capacity:
        return []
    lines = [
        "",
        "## Lambda Managed Instances (N concurrent workers in one environment)",
        "",
        "Both runtimes with `AWS_LAMBDA_MAX_CONCURRENCY=N` (awslambdaric in its own "
        "multi-concurrent mode: N forked processes, never replaced). The throughput handler "
        "waits 20 ms (I/O bound), so N busy workers make 50 × N invocations/s; a backlog of "
        f"events keeps them busy. The N = {lmi.INIT_N} rows import boto3 and make a client at "
        "init; preload is `LAMBDA_SUPERVISOR_PRELOAD=1` (init once, fork every worker from it). "
        "PSS is read once every worker has served a few events.",
    ]
    if rows:
        lines += ["", *_table(rows)]
    not_ready = lmi_not_ready(results)
    if not_ready:
        lines += ["", *not_ready]
    if capacity:
        timeout_s = lmi.FUNCTION_TIMEOUT_MS / 1000
        lines += [
            "",
            f"Capacity after 3 crashes (`os._exit`) and 3 hangs past a {timeout_s:g} s function "
            f"timeout, with N workers ready first: then N events of {lmi.PROBE_S:g} s each, and the "
            "most of them in flight at once is how many slots still serve (the fewest over the runs; "
            "in brackets, how many workers were ready before the faults). A fault the runtime does not "
            "answer is answered to the caller by the platform at the deadline.",
            "",
            "| N | ours: slots serving | awslambdaric: slots serving "
            "| faults answered by the runtime: ours / awslambdaric | runs | target | met? |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, found in capacity.items():
            ours, aws = (
                (
                    min(r["slots_after"] for r in found[name]),
                    min(r["ready_before"] for r in found[name]),
                    min(r["faults_answered"] for r in found[name]),
                )
                for name in (OURS, AWS)
            )
            lines.append(
                f"| {n} | {ours[0]} of {n} ({ours[1]}) | {aws[0]} of {n} ({aws[1]}) "
                f"| {ours[2]} / {aws[2]} of {len(lmi.FAULTS)} | {len(found[OURS])} "
                f"| {n} of {n} | {_met(ours[0] == n)} |"
            )
    return lines


def _rows(runs: dict[str, Any], specs: list[Spec], cold: str) -> list[Row]:
    """A row for each spec whose phase ran, and after each invocations/s row its CPU per
    invocation (which needs the cold start of the same runtimes, phase ``cold``)."""
    rows = []
    for label, phase, key, unit, higher, target in specs:
        if phase not in runs:
            continue
        ours = [row[key] for row in runs[phase][OURS]]
        aws = [row[key] for row in runs[phase][AWS]]
        rows.append(Row(label, phase, key, unit, higher, target, ours, aws))
        if key == "ips" and cold in runs and "cpu_s" in runs[phase][OURS][0]:
            cpu = [cpu_per_invocation(runs, phase, name, cold) for name in (OURS, AWS)]
            rows.append(
                Row(f"{label.rpartition(':')[0]}: CPU per invocation", phase, "cpu", "us", False, None, *cpu)
            )
    return rows


def cpu_per_invocation(runs: dict[str, Any], phase: str, name: str, cold: str = "cold") -> list[float]:
    """CPU µs per invocation: the tree's CPU after the warm run, less what a cold start with
    one event cost (the median of the cold phase), over the number of events."""
    start = statistics.median(row["cpu_s"] for row in runs[cold][name])
    return [max(0.0, row["cpu_s"] - start) / row["events"] * 1e6 for row in runs[phase][name]]


def _fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "us":
        return f"{value:.0f} µs" if value < 1000 else f"{value / 1000:.2f} ms"
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def _spread(values: Sequence[float], unit: str = "") -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    if unit:
        return f"{_fmt(low, unit)} / {_fmt(mid, unit)} / {_fmt(high, unit)}"
    return f"{low:.2f} / {mid:.2f} / {high:.2f}"


def _met(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "**no**")


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| metric | ours (median) | awslambdaric (median) | ratio of medians | pairs min / med / max "
        "| runs | target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {_fmt(row.ours_median, row.unit)} | {_fmt(row.aws_median, row.unit)} | "
            f"{row.ratio:.2f}× | {_spread(row.pair_ratios)} | {len(row.ours)} | {row.target_text} | "
            f"{_met(row.met)} |"
        )
    return lines


def _streaming_lines(streaming: dict[str, Any] | None) -> list[str]:
    """The streaming section (ours only: awslambdaric cannot stream), when it was measured."""
    if not streaming:
        return []
    ttfb_stream, ttfb_buffered = streaming["ttfb_stream_ms"], streaming["ttfb_buffered_ms"]
    return [
        "",
        "## Response streaming (ours only: awslambdaric cannot stream)",
        "",
        "Against the project's emulator, in the bench's process; times from the event's hand-out.",
        "",
        "| figure | min / median / max | samples |",
        "|---|---|---|",
        f"| first byte at the caller, 10 chunks 50 ms apart, streamed | {_spread(ttfb_stream, 'ms')} "
        f"| {len(ttfb_stream)} |",
        f"| first byte at the caller, the same handler buffered | {_spread(ttfb_buffered, 'ms')} "
        f"| {len(ttfb_buffered)} |",
        f"| 50 MiB stream (1 MiB blocks), MiB/s | {_spread(streaming['mib_per_s'])} "
        f"| {len(streaming['mib_per_s'])} |",
        f"| supervisor peak RSS after the streams, MiB (before: {streaming['rss_before_mib']:.1f}) "
        f"| {_spread(streaming['peak_rss_mib'])} | {len(streaming['peak_rss_mib'])} |",
    ]


def render_markdown(results: dict[str, Any]) -> str:
    runs = results.get("runs", {})
    lines = [
        "# lambda-supervisor vs awslambdaric",
        "",
        f"Runtime measured: {results.get('runtime_revision', 'unknown')}. "
        f"Mode: {results.get('mode')}; {results.get('machine', {}).get('cpus')} CPUs; Python "
        f"{results.get('machine', {}).get('python')}; wall time {results.get('seconds', 0):.0f} s. "
        "Ratio = ours / awslambdaric (below 1 is better for times and memory, above 1 for "
        'invocations/s). "pairs min/med/max" are the ratios of each back-to-back pair of runs.',
        "",
    ]
    side_by_side = comparison_rows(results)
    if side_by_side:
        lines += ["## Side by side", "", *_table(side_by_side)]
    pythons = results.get("pythons")
    if pythons:
        lines += [
            "",
            "## On Lambda's other Pythons",
            "",
            "Each row compares both runtimes on that Python, in a venv of its own "
            "(`bench/.venv-X.Y`): the no-op cold start and warm no-op invocations. They have no "
            "target: the targets are judged on the rows above.",
            "",
        ]
        for minor, found in pythons.items():
            if "absent" in found:
                lines.append(f"- Python {minor}: not measured, {found['absent']}.")
            else:
                lines.append(f"- Python {minor}: {found['version']} (`{found['interpreter']}`).")
        rows = python_rows(results)
        if rows:
            lines += ["", *_table(rows)]
    lines += _lmi_section(results)
    recovery = runs.get("recovery")
    if recovery:
        init = statistics.median(recovery["init_ms"]) if recovery["init_ms"] else 0.0
        budget = RECOVERY_BUDGET_MS + init
        lines += [
            "",
            "## Recovery after a worker crash (ours only: awslambdaric exits with its handler)",
            "",
            "The handler calls `os._exit(1)` on every other event. Spans are on the stand-in's clock.",
            "",
            "| span | min / median / max | samples | target | met? |",
            "|---|---|---|---|---|",
        ]
        spans = [
            ("crash event handed out → next event's response received", "out_to_served_ms", True),
            ("crash reported (/error received) → next GET /next", "to_next_ms", False),
            ("crash reported (/error received) → next event's response received", "to_served_ms", True),
            ("replacement worker's init (its own report, handler import included)", "init_ms", False),
        ]
        for label, key, judged in spans:
            values = recovery.get(key) or []
            if not values:
                continue
            target = f"≤ {budget:.1f} ms (30 ms + init)" if judged else "-"
            met = _met(statistics.median(values) <= budget) if judged else "-"
            lines.append(f"| {label} | {_spread(values, 'ms')} | {len(values)} | {target} | {met} |")
    lines += _streaming_lines(runs.get("streaming"))
    bytecode = runs.get("bytecode")
    if bytecode:
        plain, compiled = bytecode["source only"], bytecode["with .pyc"]
        lines += [
            "",
            "## Bytecode in the deployment package (ours, cold start, read-only code directory)",
            "",
            "| metric | source only (median) | with .pyc (median) | with .pyc / source only | "
            "pairs min / med / max |",
            "|---|---|---|---|---|",
        ]
        cold_spans = (("to first GET /next", "first_next_ms"), ("to first response", "first_response_ms"))
        for label, key in cold_spans:
            a = [r[key] for r in plain]
            b = [r[key] for r in compiled]
            pairs = [y / x for x, y in zip(a, b, strict=True)]
            lines.append(
                f"| cold start {label} | {_fmt(statistics.median(a), 'ms')} | "
                f"{_fmt(statistics.median(b), 'ms')} | "
                f"{statistics.median(b) / statistics.median(a):.2f}× | {_spread(pairs)} |"
            )
    ceiling = results.get("ceiling")
    if ceiling:
        client = ceiling.get("client", "python")
        lines += [
            "",
            "## The stand-in's own ceiling",
            "",
            (
                "Served to `bench/minimal_client.c`, a keep-alive client in C that does nothing but "
                "GET /next and POST the result, so that the figure is the stand-in's, not the client's."
                if client == "c"
                else "Served to the bench's minimal client in Python (no C compiler was found): the "
                "figure is the stand-in's and that client's together, a lower bound of the ceiling."
            ),
            "",
            "| payload | stand-in + minimal client | fastest runtime measured | headroom |",
            "|---|---|---|---|",
        ]
        for key in [*SCENARIOS, *(f"1cpu:{scenario}" for scenario in SCENARIOS)]:
            if key not in ceiling:
                continue
            top = statistics.median(ceiling[key]["ips"])
            phase = runs.get(f"warm-{key}" if key.startswith("1cpu:") else f"warm:{key}")
            fastest = (
                max(statistics.median(r["ips"] for r in phase[name]) for name in (OURS, AWS))
                if phase
                else None
            )
            p50 = statistics.median(ceiling[key]["p50_ms"])
            label = f"{key[5:]}, 1 CPU" if key.startswith("1cpu:") else key
            lines.append(
                f"| {label} | {top:,.0f} inv/s (p50 {p50:.3f} ms) | "
                + (f"{fastest:,.0f} inv/s | {top / fastest:.1f}× |" if fastest else "- | - |")
            )
    lines.append("")
    return "\n".join(lines)
