"""Handlers that fight their supervisor: leave its process group, fork and fall through into the
runtime's loop, forge their own reply, start processes in sessions of their own, block the
signal meant to take them down with it. And SIGTERM racing an event on its way in.

Every test runs the real runtime (bin/bootstrap, supervisor, forked worker) against the
project's emulator or a raw-socket Runtime API, and judges it by what the API receives and
by what /proc shows is still running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_support import serving, worker_replacements
from fake_runtime_api import ACCEPTED, INVOCATION_PREFIX, NEXT_PATH, ManualRuntimeAPI, event
from local_support import run_cli
from proc_support import catches_signal, children_of, is_running, start_time, wait_until
from runtime_harness import copy_handler, handler_files, invoke, log_records, running_runtime, write_task

from lambda_supervisor.process import RuntimeProcess

ENV = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}

# tests/handlers/fight_the_supervisor.py, copied into the task root as app.py.
HANDLER = "app.route"


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(
        emulator, tmp_path / "task", handler_files("fight_the_supervisor"), HANDLER, env=ENV
    ) as runtime:
        yield runtime


def _noted(path: Path, timeout: float = 30) -> dict[str, tuple[int, int]]:
    """The processes the handler noted, each by pid and start time (a pid alone could be
    reused by the time it is checked)."""
    assert wait_until(path.exists, timeout), f"the handler never wrote {path}"
    return {name: (pid, start) for name, (pid, start) in json.loads(path.read_text()).items()}


def _alive(identities: dict[str, tuple[int, int]]) -> dict[str, int]:
    """The ones still running (a zombie has finished running)."""
    return {
        name: pid for name, (pid, start) in identities.items() if is_running(pid) and start_time(pid) == start
    }


def _kill_left(identities: dict[str, tuple[int, int]]) -> None:
    for pid in _alive(identities).values():
        os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------- a worker leaving its group


@pytest.mark.timeout(60)
def test_a_worker_that_joins_the_supervisors_group_is_still_killed_at_its_deadline(
    emulator, runtime, tmp_path
):
    """Tried: a handler that forks a child (left in the worker's own process group), moves
    the worker itself into the supervisor's process group, then sleeps past its deadline.
    A kill of the worker's group reaches the child only; the supervisor must kill the
    worker itself and never wait for it without a bound."""
    pids_file = tmp_path / "pids.json"
    invocation = emulator.submit(
        # A whole-second timeout, as Lambda's are: a fraction is stated as measured from the
        # event's arrival, a little short of it on a busy machine.
        {"do": "join_supervisor_group", "then": "hang", "pids": str(pids_file)},
        timeout=2,
    )
    identities = _noted(pids_file)
    try:
        outcome = invocation.result(20)
        assert outcome.error_type == "Sandbox.Timedout", outcome
        assert outcome.json()["errorMessage"] == "Task timed out after 2.00 seconds"
        assert emulator.outcomes(invocation.request_id) == [outcome]
        assert wait_until(lambda: not _alive(identities), 5), _alive(identities)
        assert serving(emulator) != identities["worker"][0]
    finally:
        _kill_left(identities)
    assert runtime.running


# --------------------------------------------------------------- two replies for one event


@pytest.mark.timeout(60)
def test_a_handler_that_forks_and_falls_through_taints_no_other_event(emulator, runtime):
    """Tried: a handler that forks and returns in both processes, so the child runs on into
    the worker's own loop. The event gets one answer; the child leaves without writing a
    second reply; the next events are answered with their own results by the worker."""
    first = emulator.submit({"do": "fork_and_fall_through", "n": 1}, timeout=30)
    outcome = first.result(30)
    assert outcome.kind == "response" and outcome.json()["n"] == 1, outcome
    worker = outcome.json()["pid"]
    for n in range(2, 6):
        assert serving(emulator, n) == worker
    assert emulator.outcomes(first.request_id) == [outcome]
    # The child left at once (a zombie until the worker reaps it or is replaced).
    assert [p.pid for p in children_of(worker) if p.state != "Z"] == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sleep", [0, 0.5], ids=["then-returns", "then-returns-late"])
def test_a_reply_forged_with_the_events_own_token_taints_only_that_event(emulator, runtime, sleep):
    """Tried: a handler that digs the reply token out of the worker's loop and writes a
    well-formed reply with it on the pipe, then returns (at once, or after the next event has
    been handed over), so that two replies carrying its token are queued. Its own event may
    take either; the next one must get its own result, and the worker that answered twice is
    replaced."""
    first = emulator.submit({"do": "forge_own_reply", "n": 1, "sleep": sleep}, timeout=30)
    second = emulator.submit({"do": "ok", "n": 2}, timeout=30)
    outcome = first.result(30)
    assert outcome.kind == "response" and outcome.json()["n"] == 1, outcome
    answer = second.result(30)
    assert answer.kind == "response" and answer.json()["n"] == 2, answer
    assert emulator.outcomes(first.request_id) == [outcome]
    assert emulator.outcomes(second.request_id) == [answer]
    assert wait_until(lambda: len(worker_replacements(runtime)) == 1, 10), worker_replacements(runtime)
    assert worker_replacements(runtime)[0]["reason"] == "worker answered an event twice"
    serving(emulator, 3)


@pytest.mark.timeout(60)
def test_bytes_written_on_the_reply_pipe_between_events_taint_no_event(emulator, runtime, tmp_path):
    """Tried: a handler that returns at once, leaving a child that writes junk on the reply
    pipe a moment later, while the worker waits for its next event. That event must get its
    own result (from a fresh worker), not a protocol error."""
    written = tmp_path / "written"
    first = invoke(emulator, {"do": "write_when_idle", "n": 1, "hex": "7a7a7a", "written": str(written)})
    assert first.kind == "response" and first.json()["n"] == 1, first
    assert wait_until(written.exists, 10)
    serving(emulator, 2)
    assert [r["reason"] for r in worker_replacements(runtime)] == [
        "worker wrote on its reply pipe between events"
    ]


# --------------------------------------------------------------- processes in sessions of their own


@pytest.mark.timeout(60)
@pytest.mark.parametrize("then", ["hang", "exit"])
def test_processes_a_handler_moves_out_of_its_group_go_with_the_worker(emulator, runtime, tmp_path, then):
    """Tried: a handler that starts a process in a new session (Popen start_new_session), a
    double-forked daemon in a session of its own, a child in a process group of its own and
    one in the worker's group, then sleeps past its deadline or exits. Everything the worker
    started must go when it is killed or replaced, and be reaped."""
    pids_file = tmp_path / "pids.json"
    timeout = 1.5 if then == "hang" else 30
    invocation = emulator.submit({"do": "escape", "then": then, "pids": str(pids_file)}, timeout=timeout)
    identities = _noted(pids_file)
    try:
        outcome = invocation.result(20)
        expected = "Sandbox.Timedout" if then == "hang" else "Runtime.ExitError"
        assert outcome.error_type == expected, outcome
        assert wait_until(lambda: not _alive(identities), 5), _alive(identities)
        serving(emulator)
        zombies = [p for p in children_of(runtime.pid) if p.state == "Z"]
        assert zombies == []
    finally:
        _kill_left(identities)


@pytest.mark.timeout(60)
def test_processes_a_handler_moves_out_of_its_group_go_when_the_worker_is_recycled(emulator, tmp_path):
    """Tried: the same escapes from a handler that returns normally, with
    LAMBDA_SUPERVISOR_MAX_INVOCATIONS=1, so the worker is retired after the event."""
    pids_file = tmp_path / "pids.json"
    env = {**ENV, "LAMBDA_SUPERVISOR_MAX_INVOCATIONS": "1"}
    with running_runtime(
        emulator, tmp_path / "task", handler_files("fight_the_supervisor"), HANDLER, env=env
    ) as runtime:
        outcome = invoke(emulator, {"do": "escape", "n": 1, "pids": str(pids_file)}, timeout=30)
        assert outcome.kind == "response", outcome
        identities = _noted(pids_file)
        try:
            assert log_records(runtime, "worker started")
            assert wait_until(lambda: not _alive(identities), 5), _alive(identities)
            serving(emulator)
        finally:
            _kill_left(identities)


@pytest.mark.timeout(60)
def test_invoke_returns_at_its_timeout_when_the_handler_left_a_process_in_a_new_session(tmp_path):
    """Tried: ``lambda-supervisor invoke --timeout 2`` of a handler that starts
    ``sleep 8`` in a new session (it holds the runtime's output open) and hangs."""
    app = copy_handler(tmp_path, "fight_the_supervisor")
    started = time.monotonic()
    event = json.dumps({"do": "hold_stdout_in_a_new_session", "seconds": 8})
    done = run_cli("invoke", f"{app}:route", "--timeout", "2", "--event", event, timeout=30)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr.decode()
    assert json.loads(done.stdout)["errorMessage"] == "Task timed out after 2.00 seconds"
    assert elapsed < 6, f"invoke took {elapsed:.1f} s"


# --------------------------------------------------------------- dying with the supervisor


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ignore", [False, True], ids=["blocked", "blocked-and-ignored"])
def test_a_worker_blocking_its_death_signal_still_dies_with_a_killed_supervisor(
    emulator, runtime, tmp_path, ignore
):
    """Tried: a handler that blocks (and ignores) SIGRTMIN, forks a child, and sleeps; then
    SIGKILL to the supervisor. The worker and its child must be gone within two seconds."""
    pids_file = tmp_path / "pids.json"
    emulator.submit({"do": "block_death_signal", "ignore": ignore, "pids": str(pids_file)}, timeout=120)
    identities = _noted(pids_file)
    try:
        os.kill(runtime.pid, signal.SIGKILL)
        assert runtime.wait(10) == -signal.SIGKILL
        assert wait_until(lambda: not _alive(identities), 2), _alive(identities)
    finally:
        _kill_left(identities)


# --------------------------------------------------------------- SIGTERM racing an event


@pytest.fixture
def raw_api() -> Iterator[ManualRuntimeAPI]:
    with ManualRuntimeAPI() as api:
        yield api


def _start_against(raw_api: ManualRuntimeAPI, tmp_path: Path) -> tuple[RuntimeProcess, socket.socket]:
    """The runtime, started against ``raw_api``, and the connection of its first /next."""
    write_task(tmp_path / "task", handler_files("fight_the_supervisor"))
    runtime = RuntimeProcess(HANDLER, runtime_api=raw_api.address, task_root=tmp_path / "task", env=ENV)
    runtime.start()
    poll = raw_api.accept(30)
    assert poll is not None, f"the runtime never connected:\n{runtime.output()}"
    request = raw_api.read_request(poll)
    assert (request.method, request.path, request.version) == ("GET", NEXT_PATH, "HTTP/1.1")
    assert wait_until(lambda: catches_signal(runtime.pid, signal.SIGTERM), 30)
    return runtime, poll


@pytest.mark.timeout(60)
def test_an_event_handed_out_as_sigterm_arrives_is_still_answered(raw_api, tmp_path):
    """Tried: SIGTERM while /next is pending, and the API's answer sent just after the
    runtime gave up the long poll (its end of the connection closed for sending), as when
    the API handed the event out a moment before it saw the runtime go. The event must be
    served and answered, and the runtime exit 0."""
    runtime, poll = _start_against(raw_api, tmp_path)
    try:
        os.kill(runtime.pid, signal.SIGTERM)
        assert poll.recv(1) == b"", "the runtime did not give up the long poll"
        poll.sendall(event("raced", b'{"do": "ok", "n": 7}', timeout=60))
        post = raw_api.accept(10)
        assert post is not None, f"the event handed out was never answered:\n{runtime.output()}"
        request = raw_api.read_request(post)
        post.sendall(ACCEPTED.data)
        assert (request.method, request.path, request.version) == (
            "POST",
            INVOCATION_PREFIX + "raced/response",
            "HTTP/1.1",
        )
        assert request.json()["n"] == 7
        assert runtime.wait(10) == 0
    finally:
        runtime.stop()


@pytest.mark.timeout(60)
def test_sigterm_ends_a_long_poll_the_api_neither_answers_nor_closes(raw_api, tmp_path):
    """Tried: SIGTERM while /next is pending on an API that ignores the runtime's half-closed
    connection (never answers, never closes). The runtime must not wait on it: it exits 0
    within a second."""
    runtime, poll = _start_against(raw_api, tmp_path)
    try:
        os.kill(runtime.pid, signal.SIGTERM)
        started = time.monotonic()
        assert runtime.wait(10) == 0
        assert time.monotonic() - started < 1.0
    finally:
        poll.close()
        runtime.stop()
