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
        "## Side by side",
        "",
        *_table(comparison_rows(results)),
    ]
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
