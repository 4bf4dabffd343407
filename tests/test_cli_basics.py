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


@pytest.mark.timeout(30)
def test_the_missing_boto3_hint_names_a_command_that_works():
    """Tried: an AWS command where boto3 cannot be imported. The hint used to name
    ``pip install 'lambda-supervisor[deploy]'``, which no package index has."""
    blocked = (
        "import sys\n"
        "class NoBoto3:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('boto3', 'botocore'):\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, NoBoto3())\n"
        "from lambda_supervisor.cli import main\n"
        "sys.exit(main(['iam', '--endpoint-url', 'http://127.0.0.1:9']))\n"
    )
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=25)
    assert done.returncode != 0
    assert "pip install boto3" in done.stderr
    assert "lambda-supervisor[deploy]" not in done.stderr
