"""The bench's own environment: ``bench/.venv``, on the interpreter that started the bench.

``awslambdaric`` (and matplotlib, for the chart) are only ever installed there, so that
neither becomes a dependency of the project, and the runtime's dependencies are the
versions a fresh install would get. Both runtimes then run on that one interpreter with the
same libraries. The venv is rebuilt when ``requirements.txt`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

from paths import REPO, REQUIREMENTS, VENV


def reexec_in_bench_venv(script: Path) -> None:
    """Re-run ``script`` inside ``bench/.venv``, creating or refreshing it first when needed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"setting up {VENV.relative_to(REPO)} from {REQUIREMENTS.relative_to(REPO)} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(wanted)
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(python), [str(python), str(script), *sys.argv[1:]])
