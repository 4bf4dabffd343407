"""Worker recycling, the worker memory limit and graceful shutdown, end to end."""

from __future__ import annotations

import os
import signal
import time

import pytest
from proc_support import children_of, is_running, wait_until
from runtime_harness import copy_handler, handler_files, invoke, log_records, running_runtime


@pytest.mark.timeout(90)
def test_worker_is_recycled_after_n_invocations_without_losing_one(emulator, tmp_path):
    env = {"LAMBDA_SUPERVISOR_MAX_INVOCATIONS": "3"}
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep"), env=env) as runtime:
        results = [invoke(emulator, {"n": n}).json() for n in range(7)]
        started = log_records(runtime, "worker started")
    pids = [r["pid"] for r in results]
    assert pids[0] == pids[1] == pids[2] != pids[3]
    assert pids[3] == pids[4] == pids[5] != pids[6]
    assert len({r["init_id"] for r in results}) == 3, "each new worker runs init again"
    assert [r.get("reason") for r in started] == ["recycled after 3 invocations"] * 2


@pytest.mark.timeout(90)
def test_worker_is_recycled_above_an_rss_threshold(emulator, tmp_path):
    env = {"LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB": "80"}
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep"), env=env) as runtime:
        first = invoke(emulator, {"do": "grow", "mb": 120}).json()
        second = invoke(emulator, {}).json()
        third = invoke(emulator, {}).json()
        reasons = [r.get("reason") for r in log_records(runtime, "worker started")]
    assert first["pid"] != second["pid"], "the bloated worker is replaced between invocations"
    assert second["pid"] == third["pid"], "a small worker is kept"
    assert reasons[0].startswith("recycled at ") and reasons[0].endswith(" MiB resident")


@pytest.mark.timeout(90)
def test_runaway_allocation_is_reported_as_out_of_memory(emulator, tmp_path):
    """Tried: a handler allocating 2 GB under a 256 MB worker memory limit."""
    env = {"LAMBDA_SUPERVISOR_WORKER_MEMORY_MB": "256"}
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep"), env=env):
        before = invoke(emulator, {}).json()
        outcome = invoke(emulator, {"do": "allocate", "mb": 2048})
        after = invoke(emulator, {}).json()
        small = invoke(emulator, {"do": "allocate", "mb": 16}).json()
    body = outcome.json()
    assert outcome.kind == "error"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert "256 MB" in body["errorMessage"]
    assert after["pid"] != before["pid"], "the worker is replaced after running out of memory"
    assert small == 16 * 1024 * 1024


@pytest.mark.timeout(60)
def test_a_worker_that_dies_after_answering_is_replaced_before_the_next_event_is_fetched(emulator, tmp_path):
    """Tried: a handler whose thread ends the worker (exit status 7) 0.2 s after it answers,
    while the Runtime API takes 1 s to accept that answer. The supervisor finds the death in
    its look at the exited children before the next ``/next``, and starts the replacement
    then, not once the next event is in hand."""
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep")) as runtime:
        emulator.inject_fault("response", "delay", delay=1.0)
        first = invoke(emulator, {"do": "exit_soon", "after": 0.2}).json()
        died = log_records(runtime, "worker died between invocations")
        second = invoke(emulator, {}).json()
        started = log_records(runtime, "worker started")
        messages = [record.get("message") for record in runtime.json_lines()]
    assert [record.get("status") for record in died] == ["exit status 7"]
    assert second["pid"] != first["pid"]
    assert [record.get("reason") for record in started] == ["worker died between invocations"]
    assert "worker gone before the event was handed over" not in messages


@pytest.mark.timeout(60)
def test_sigterm_while_idle_runs_the_workers_hook_and_exits_cleanly(emulator, tmp_path):
    hook_file = tmp_path / "hook.log"
    env = {"HOOK_FILE": str(hook_file)}
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep"), env=env) as runtime:
        worker_pid = invoke(emulator, {}).json()["pid"]
        os.kill(runtime.pid, signal.SIGTERM)
        assert runtime.wait(10) == 0
        assert hook_file.read_text() == f"hook {worker_pid}\n"
        assert log_records(runtime, "runtime shut down")


@pytest.mark.timeout(60)
def test_sigterm_mid_invocation_lets_a_short_one_finish(emulator, tmp_path):
    started_file = tmp_path / "started"
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep")) as runtime:
        invoke(emulator, {})
        invocation = emulator.submit(
            {"do": "sleep", "seconds": 0.5, "started_file": str(started_file)}, timeout=30
        )
        _wait_for_file(started_file)
        os.kill(runtime.pid, signal.SIGTERM)
        outcome = invocation.result(10)
        assert runtime.wait(10) == 0
    assert outcome.kind == "response"


@pytest.mark.timeout(60)
def test_sigterm_mid_invocation_reports_a_long_one_instead_of_waiting(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep")) as runtime:
        invoke(emulator, {})
        started_file = tmp_path / "started"
        invocation = emulator.submit(
            {"do": "sleep", "seconds": 60, "started_file": str(started_file)}, timeout=120
        )
        _wait_for_file(started_file)
        started = time.monotonic()
        os.kill(runtime.pid, signal.SIGTERM)
        outcome = invocation.result(10)
        assert runtime.wait(10) == 0
        elapsed = time.monotonic() - started
    assert outcome.kind == "error"
    assert outcome.json()["errorType"] == "Runtime.ExitError"
    assert elapsed < 8, "reported within the shutdown grace, not at the 120 s deadline"


def _wait_for_file(path, timeout: float = 10) -> None:
    """The handler has the event in hand once it has written its marker file."""
    assert wait_until(path.exists, timeout, 0.01), "the handler never started"


@pytest.mark.timeout(60)
def test_as_pid_1_the_supervisor_reaps_what_handlers_leave_behind(emulator, tmp_path):
    """Run as a container entrypoint without an init: orphans must not pile up as zombies."""
    import shutil
    import subprocess

    from lambda_supervisor.process import BOOTSTRAP, RuntimeProcess

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--pid", "--fork", "true"]).returncode != 0:
        pytest.skip("needs unshare --pid (root) to run the runtime as PID 1")
    copy_handler(tmp_path, "leave_an_orphan")
    env = RuntimeProcess("app:handler", runtime_api=emulator.address, task_root=tmp_path).environment()
    process = subprocess.Popen(
        [unshare, "--pid", "--fork", "--kill-child", str(BOOTSTRAP)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        assert emulator.wait_for_poll(30)
        [supervisor] = children_of(process.pid)
        for _ in range(5):
            assert emulator.submit({}, timeout=30).result(30).kind == "response"
            time.sleep(0.3)  # let this round's grandchild exit and become an orphan
        emulator.submit({}, timeout=30).result(30)
        zombies = [p.pid for p in children_of(supervisor.pid) if p.state == "Z"]
        # Reaped after every invocation: at most the newest orphan (exiting just now) is
        # left; without reaping all five earlier ones would still be there.
        assert len(zombies) <= 1, zombies
        os.kill(supervisor.pid, signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


@pytest.mark.timeout(60)
def test_a_worker_does_not_outlive_a_killed_supervisor(emulator, tmp_path):
    """Tried: SIGKILL to the supervisor while its handler sleeps."""
    started_file = tmp_path / "started"
    with running_runtime(emulator, tmp_path, handler_files("hoard_allocate_or_sleep")) as runtime:
        worker_pid = invoke(emulator, {}).json()["pid"]
        emulator.submit({"do": "sleep", "seconds": 60, "started_file": str(started_file)}, timeout=120)
        _wait_for_file(started_file)
        os.kill(runtime.pid, signal.SIGKILL)
        runtime.wait(10)
        assert wait_until(lambda: not is_running(worker_pid), 10), (
            "the worker kept running without its supervisor"
        )
