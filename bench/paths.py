"""Where the bench keeps things, in one place so that every module agrees.

``work/`` and the venvs are git-ignored: they hold what a run builds (the C client, the
deployment-like copies of the runtime, the last trial's log) and the figures of quick runs,
which must never replace the committed figures of a full run in ``results/``.
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
QUICK_RESULTS = WORK / "quick"
HANDLERS = BENCH / "handlers"
REQUIREMENTS = BENCH / "requirements.txt"
# What the runtimes alone need: the venvs of the other Pythons install only this.
RUNTIME_REQUIREMENTS = BENCH / "requirements-runtimes.txt"
