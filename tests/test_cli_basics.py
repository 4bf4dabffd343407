"""The console script's own options, run as a user runs them: a subprocess."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

CLI = [sys.executable, "-m", "lambda_supervisor.cli"]


@pytest.mark.timeout(30)
def test_version_prints_the_installed_version_and_exits_0():
    """Tried: ``lambda-supervisor --version``, which used to be an unknown option."""
    done = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=25)
    assert (done.returncode, done.stdout.strip()) == (0, f"lambda-supervisor {version('lambda-supervisor')}")
