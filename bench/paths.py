"""Where the bench keeps things, in one place so that every module agrees.

``work/`` and the venv are git-ignored: they hold what a run builds (the C client, the
deployment-like copies of the runtime, the last trial's log); ``results/`` is committed.
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
HANDLERS = BENCH / "handlers"
REQUIREMENTS = BENCH / "requirements.txt"
