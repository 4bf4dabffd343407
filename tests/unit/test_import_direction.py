"""Dependencies point one way: the supervisor may import the worker's modules, the worker
nothing of the supervisor, and nothing before the first fork loads structlog."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULES = sorted(
    f"worker.{path.stem}" for path in (ROOT / "worker").glob("*.py") if path.stem != "__init__"
)
# What supervisor/__main__.py imports before it forks the first worker.
BEFORE_THE_FIRST_FORK = [
    "supervisor.config",
    "worker.child",
    "supervisor.keeper",
    "supervisor.worker_process",
]
# And what it imports then, on the way to the first answer.
BEFORE_THE_FIRST_ANSWER = [
    *BEFORE_THE_FIRST_FORK,
    "supervisor.loop",
    "supervisor.runtime_api",
    "supervisor.logs",
]


def _loaded_after_importing(modules: list[str]) -> list[str]:
    """The top-level packages in sys.modules of a fresh interpreter that imported ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-E", "-c", code], cwd=ROOT, capture_output=True, timeout=20)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_every_worker_module_imports_without_the_supervisor():
    """Tried: importing each of the worker's modules in a fresh interpreter; no module of the
    supervisor (nor urllib3 or structlog, which only the supervisor uses) is loaded."""
    assert "worker.main" in WORKER_MODULES and "worker.protocol" in WORKER_MODULES
    loaded = _loaded_after_importing(WORKER_MODULES)
    assert "worker" in loaded
    assert {"supervisor", "urllib3", "structlog"}.isdisjoint(loaded)


def test_no_worker_source_names_the_supervisor_anywhere():
    """Tried: every import statement in worker/, those inside functions and under
    TYPE_CHECKING included, which the fresh interpreter above does not run."""
    offenders = []
    for path in sorted((ROOT / "worker").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if name.partition(".")[0] == "supervisor"]
    assert offenders == []


def test_the_supervisors_path_to_its_first_answer_leaves_urllib3_and_structlog_out():
    """Tried: the modules supervisor/__main__.py imports before it forks the first worker and
    then before its first answer, in a fresh interpreter: neither loads urllib3 (loaded while
    the long poll after the first answer waits) nor structlog (loaded when the supervisor
    first logs, which a healthy one never does)."""
    loaded = _loaded_after_importing(BEFORE_THE_FIRST_ANSWER)
    assert {"supervisor", "worker"} <= set(loaded)
    assert {"urllib3", "structlog"}.isdisjoint(loaded)


def test_the_runtime_path_to_the_first_event_loads_no_introspection_machinery():
    """Tried: importing every module of the worker, then what the supervisor loads before
    the first answer, in a fresh interpreter. dataclasses pulls in inspect, dis and ast (over
    20 ms of a cold start and a megabyte or two of each process): neither loads any of them."""
    machinery = {"dataclasses", "inspect", "dis", "ast"}
    assert machinery.isdisjoint(_loaded_after_importing(WORKER_MODULES))
    assert machinery.isdisjoint(_loaded_after_importing(BEFORE_THE_FIRST_ANSWER))
