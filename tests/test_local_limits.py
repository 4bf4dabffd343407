"""The local run's memory size: not enforced, and said so when a run goes past it.

Lambda counts the environment's resident memory; a worker's RLIMIT_DATA counts address
space (every thread's 8 MB stack), so a cap of 128 MB would fail a handler with a dozen
threads that Lambda runs. REPORT's Max Memory Used is the resident peak, and past the
memory size a warning says the size was not enforced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from local_support import run_cli
from runtime_harness import write_task

HOG = """\
    import threading

    def hold(event, context):
        held = b"x" * (event["mb"] << 20)
        return len(held) >> 20

    def threads(event, context):
        done = threading.Event()
        started = [threading.Thread(target=done.wait) for _ in range(event["count"])]
        for thread in started:
            thread.start()
        done.set()
        for thread in started:
            thread.join()
        return len(started)
    """


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write_task(tmp_path, {"app.py": HOG})


def _max_memory_used(stderr: str) -> int:
    report = next(line for line in stderr.splitlines() if line.startswith("REPORT"))
    assert "\tMemory Size: 128 MB\t" in report
    match = re.search(r"\tMax Memory Used: (\d+) MB", report)
    assert match, report
    return int(match.group(1))


@pytest.mark.timeout(60)
def test_a_run_past_the_memory_size_is_reported_as_not_enforced(app: Path) -> None:
    """Tried: holding 200 MB under ``--memory 128``: it runs, and after REPORT a line says the
    peak was past the size and that the size is not enforced locally."""
    done = run_cli("invoke", "app.hold", "--memory", "128", "--event", '{"mb": 200}', cwd=app)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert json.loads(done.stdout) == 200
    used = _max_memory_used(stderr)
    assert used > 200
    assert (
        f"lambda-supervisor: Max Memory Used ({used} MB) is over the memory size (128 MB): on Lambda "
        "this function would run out of memory; locally the memory size is not enforced"
    ) in stderr.splitlines()


@pytest.mark.timeout(60)
def test_a_run_within_the_memory_size_gets_no_warning_and_threads_are_not_capped(app: Path) -> None:
    """Tried: 40 threads under ``--memory 128`` (320 MB of stacks, as address space): they all
    start, as on Lambda, and with a peak under the size no warning is printed."""
    done = run_cli("invoke", "app.threads", "--memory", "128", "--event", '{"count": 40}', cwd=app)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert json.loads(done.stdout) == 40
    assert _max_memory_used(stderr) < 128
    assert "is over the memory size" not in stderr
