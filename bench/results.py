"""Where a run's figures go, and what is kept from the last run.

A full run writes ``bench/results/``, which is committed: it is the record the targets are
judged on. A quick run has too few repeats to judge anything, so unless ``--out`` says
otherwise it writes ``bench/work/quick/`` (git-ignored) and never replaces a full run's
figures. ``--only`` re-runs some phases and keeps the others' figures from the
``results.json`` already in the folder it writes to.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from chart import render_chart
from paths import QUICK_RESULTS, RESULTS
from report import render_markdown


def out_dir(out: str | None, quick: bool) -> Path:
    """``--out`` if given, else the folder for a full or a quick run."""
    if out is not None:
        return Path(out)
    return QUICK_RESULTS if quick else RESULTS


def write(fresh: dict[str, Any], out: Path, *, merge: bool) -> None:
    """``results.json`` with every figure, then ``results.md`` and ``chart.png`` from it."""
    merged = merge_previous(out / "results.json", fresh) if merge else fresh
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    (out / "results.md").write_text(render_markdown(merged))
    render_chart(merged, out / "chart.png")


def runtime_revision(root: Path) -> str:
    """The commit the measured runtime came from, marked when its code differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "supervisor", "worker", "bin"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{root} (not a git checkout)"
    return f"{head} with uncommitted changes to the runtime" if changes else head


def merge_previous(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """With ``--only``, keep the other phases' figures from the last run."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh
    previous.setdefault("runs", {}).update(fresh["runs"])
    for key in ("ceiling", "pythons"):  # figures kept beside the runs, whole
        if key in fresh:
            previous[key] = fresh[key]
    previous["mode"] = fresh["mode"]
    previous["runtime_revision"] = fresh.get("runtime_revision")
    return previous
