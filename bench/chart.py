"""Draw ``chart.png``: every ratio with its spread, and every cold-start run.

The tables give the figures; the chart is for seeing at a glance which rows meet their
target, how wide each row's pair spread is, and whether the cold starts are one cluster or
carry outliers that a median hides. It is apart from the tables because it alone needs
matplotlib.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from report import comparison_rows, lmi_rows, python_rows
from runtimes import AWS, OURS


def render_chart(results: dict[str, Any], path: Path) -> None:
    """Ratios with their pair spread, left; every cold-start run as a dot, right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison_rows(results) + python_rows(results) + lmi_rows(results)
    if not rows:
        return  # nothing side by side yet (a run of --only ceiling into a new folder)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, max(5.0, 0.42 * len(rows) + 1.5)))
    labels = [row.label for row in rows][::-1]
    for y, row in enumerate(rows[::-1]):
        pairs = row.pair_ratios
        colour = "#888888" if row.met is None else ("#2a9d3f" if row.met else "#d1495b")
        # Bars grow from 1.0 (parity) towards the ratio, left or right, on a log scale.
        left.barh(y, row.ratio - 1.0, left=1.0, color=colour, alpha=0.75)
        left.plot([min(pairs), max(pairs)], [y, y], color="black", linewidth=1.2)
        left.plot([statistics.median(pairs)], [y], marker="|", color="black", markersize=10)
        if row.target is not None:
            left.plot([row.target], [y], marker="D", color="black", markersize=4)
    left.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    left.set_yticks(range(len(labels)), labels, fontsize=8)
    left.set_xscale("log")
    ratios = [r for row in rows for r in (*row.pair_ratios, row.ratio, row.target or 1.0)]
    ticks = [
        t
        for t in (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0)
        if min(ratios) / 1.5 <= t <= max(ratios) * 1.5
    ]
    left.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    left.minorticks_off()
    left.set_xlabel("ours / awslambdaric (bar: ratio of medians; line: pair min–max; ◆ target)")
    left.set_title("Ratios (green: target met, red: missed, grey: no target)")

    series: list[tuple[str, list[float]]] = []
    cold = results.get("runs", {}).get("cold")
    if cold:
        series += [
            ("ours", [r["first_next_ms"] for r in cold[OURS]]),
            ("awslambdaric", [r["first_next_ms"] for r in cold[AWS]]),
        ]
    bytecode = results.get("runs", {}).get("bytecode")
    if bytecode:
        series += [
            ("ours, package\nsource only", [r["first_next_ms"] for r in bytecode["source only"]]),
            ("ours, package\nwith .pyc", [r["first_next_ms"] for r in bytecode["with .pyc"]]),
        ]
    for x, (_, values) in enumerate(series):
        jitter = [x + (i % 7 - 3) * 0.03 for i in range(len(values))]
        right.scatter(jitter, values, s=14, alpha=0.7)
        right.plot([x - 0.25, x + 0.25], [statistics.median(values)] * 2, color="black")
    right.set_xticks(range(len(series)), [name for name, _ in series], fontsize=8)
    right.set_ylabel("ms from spawn to first GET /next")
    right.set_title("Cold start, every run (line: median)")
    right.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
