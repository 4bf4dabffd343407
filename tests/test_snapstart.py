"""SnapStart on the managed runtime: with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` the
runtime runs the function's before-snapshot hooks, calls ``GET /runtime/restore/next``, runs
the after-restore hooks and only then asks for events, as AWS's runtime does; failures go
where AWS's runtime sends them, with its exit codes.

Everything runs through ``bin/bootstrap`` against the emulator. The handler
(tests/handlers/snapstart_hooks.py) writes each step, with its pid and the monotonic clock
(one clock for every process of the machine), to a file, so the order of the hooks is
proven against the emulator's record of the requests.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from local_support import run_cli
from runtime_harness import STARTUP_TIMEOUT, handler_files, invoke, only_answer, running_runtime

from lambda_supervisor.emulator import RuntimeAPIEmulator

SNAP_START = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
HOOKS = handler_files("snapstart_hooks")
# What the function's init and its hooks write before the first event, in AWS's order.
INIT_AND_HOOKS = ["init", "before-2", "before-1", "after-1", "after-2"]


def _steps(record: Path) -> list[tuple[str, int, float]]:
    """The handler's record: (step, pid, monotonic time) for each line."""
    if not record.exists():
        return []
    steps = []
    for line in record.read_text().splitlines():
        step, pid, at = line.split()
        steps.append((step, int(pid), float(at)))
    return steps


def _requests(emulator: RuntimeAPIEmulator, route: str) -> list[float]:
    """When each request on ``route`` reached the emulator, in order."""
    return [at for at, _, _, called in list(emulator.requests) if called == route]


def _env(tmp_path: Path, misbehave: str = "", **more: str) -> dict[str, str]:
    return {**SNAP_START, "HOOK_RECORD": str(tmp_path / "record"), "HOOK_MISBEHAVE": misbehave, **more}


def _startup_failure(emulator, tmp_path, env) -> tuple[int, float, str]:
    """Run a runtime that must fail before its first /next: its exit code, how long it ran,
    and its output."""
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=env, wait_ready=False) as runtime:
        started = time.monotonic()
        code = runtime.wait(STARTUP_TIMEOUT)
        return code, time.monotonic() - started, runtime.output()


@pytest.mark.timeout(30)
def test_hooks_run_in_awss_order_around_restore_next(emulator, tmp_path):
    """Tried: a function with two hooks of each phase, one event. The before-snapshot hooks
    run last registered first, then /restore/next is called once, then the after-restore
    hooks run in order, then the first /next, all in the one worker; the event is served."""
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=_env(tmp_path)):
        invocation = emulator.submit({})
        assert only_answer(emulator, invocation).json() == {"pid": _steps(tmp_path / "record")[0][1]}
    steps = _steps(tmp_path / "record")
    assert [step for step, _, _ in steps] == [*INIT_AND_HOOKS, "event"]
    assert len({pid for _, pid, _ in steps}) == 1
    at = {step: when for step, _, when in steps}
    [restore_next] = _requests(emulator, "restore_next")
    first_next = _requests(emulator, "next")[0]
    assert at["before-1"] < restore_next < at["after-1"] < first_next
    assert emulator.init_errors == [] and emulator.restore_errors == []


@pytest.mark.timeout(30)
def test_a_failing_before_snapshot_hook_is_an_init_error_and_exit_64(emulator, tmp_path):
    """Tried: the before-snapshot hook that runs first raises ConnectionError. It is posted
    to /init/error as Runtime.BeforeSnapshotError with the four-key report of the exception,
    the other before-snapshot hook never runs, there is no /restore/next and no /next, and
    the runtime exits 64."""
    code, _, output = _startup_failure(emulator, tmp_path, _env(tmp_path, "before-raise"))
    assert code == 64, output
    [posted] = emulator.init_errors
    assert posted.error_type == "Runtime.BeforeSnapshotError"
    body = posted.json()
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == (
        "ConnectionError",
        "pool closed",
        "",
    )
    assert [entry.split(", in ")[1].split("\n")[0] for entry in body["stackTrace"]] == [
        "before_2",
        "misbehave",
    ]
    assert [step for step, _, _ in _steps(tmp_path / "record")] == ["init", "before-2"]
    assert emulator.routes_called() == ["init_error"]


@pytest.mark.timeout(30)
def test_a_failing_after_restore_hook_is_a_restore_error_and_exit_65(emulator, tmp_path):
    """Tried: the first after-restore hook raises ConnectionError. It is posted to
    /restore/error (after /restore/next) as Runtime.AfterRestoreError with the four-key
    report, the second after-restore hook never runs, there is no /next, and the runtime
    exits 65."""
    code, _, output = _startup_failure(emulator, tmp_path, _env(tmp_path, "after-raise"))
    assert code == 65, output
    [posted] = emulator.restore_errors
    assert posted.error_type == "Runtime.AfterRestoreError"
    body = posted.json()
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == (
        "ConnectionError",
        "pool closed",
        "",
    )
    assert [entry.split(", in ")[1].split("\n")[0] for entry in body["stackTrace"]] == [
        "after_1",
        "misbehave",
    ]
    assert [step for step, _, _ in _steps(tmp_path / "record")] == INIT_AND_HOOKS[:-1]
    assert emulator.routes_called() == ["restore_next", "restore_error"]
    assert emulator.init_errors == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("misbehave", "code", "route", "routes"),
    [
        ("before-exit", 64, "init_error", ["init_error"]),
        ("after-exit", 65, "restore_error", ["restore_next", "restore_error"]),
    ],
)
def test_a_worker_that_dies_in_a_hook_is_reported_for_that_phase(
    emulator, tmp_path, misbehave, code, route, routes
):
    """Tried: a hook that ends its process with status 9 (os._exit), in each phase. The
    death is reported where a raising hook of that phase is, with the platform's words for
    it, and the runtime exits with that phase's code."""
    exit_code, _, output = _startup_failure(emulator, tmp_path, _env(tmp_path, misbehave))
    assert exit_code == code, output
    [posted] = emulator.init_errors if route == "init_error" else emulator.restore_errors
    assert posted.error_type == ("Runtime.BeforeSnapshotError" if code == 64 else "Runtime.AfterRestoreError")
    assert posted.json() == {
        "errorMessage": "Runtime exited with error: exit status 9",
        "errorType": "Runtime.ExitError",
        "requestId": "",
        "stackTrace": [],
    }
    assert emulator.routes_called() == routes


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("misbehave", "code", "error_type", "words"),
    [
        ("before-hang", 64, "Runtime.BeforeSnapshotError", "before-snapshot"),
        ("after-hang", 65, "Runtime.AfterRestoreError", "after-restore"),
    ],
)
def test_a_hook_that_hangs_is_killed_at_the_init_timeout(
    emulator, tmp_path, misbehave, code, error_type, words
):
    """Tried: a hook that sleeps for a minute, with LAMBDA_SUPERVISOR_INIT_TIMEOUT=1. The
    worker is killed after a second, the phase's error is reported with a message that
    says so, and the runtime exits with the phase's code long before the hook would end."""
    env = _env(tmp_path, misbehave, LAMBDA_SUPERVISOR_INIT_TIMEOUT="1")
    exit_code, ran_for, output = _startup_failure(emulator, tmp_path, env)
    assert exit_code == code, output
    assert ran_for < 10
    [posted] = emulator.init_errors + emulator.restore_errors
    assert posted.error_type == error_type
    assert posted.json() == {
        "errorMessage": f"The {words} runtime hooks did not finish within 1.00 seconds",
        "errorType": error_type,
        "requestId": "",
        "stackTrace": [],
    }
    pid = _steps(tmp_path / "record")[0][1]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.timeout(30)
def test_a_function_without_hooks_still_serves_under_snap_start(emulator, tmp_path):
    """Tried: a function that never imports snapshot_restore_py, under snap-start. The
    restore flow still runs (/restore/next once, before the first /next) and the event is
    answered."""
    with running_runtime(emulator, tmp_path, handler_files("return_ok"), env=SNAP_START):
        assert only_answer(emulator, emulator.submit({})).json() == {"ok": True}
    routes = emulator.routes_called()
    assert routes[:3] == ["restore_next", "next", "response"]
    assert routes.count("restore_next") == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("init_type", [None, "on-demand", "provisioned-concurrency"])
def test_without_snap_start_no_hook_runs_and_restore_is_never_called(emulator, tmp_path, init_type):
    """Tried: the function with hooks, without the variable and with Lambda's other
    initialization types. No hook runs, /restore/next is never called, the event is served."""
    env = {**_env(tmp_path), "AWS_LAMBDA_INITIALIZATION_TYPE": init_type}
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=env):
        only_answer(emulator, emulator.submit({}))
    assert [step for step, _, _ in _steps(tmp_path / "record")] == ["init", "event"]
    assert emulator.routes_called()[:2] == ["next", "response"]
    assert "restore_next" not in emulator.routes_called()


@pytest.mark.timeout(30)
def test_a_replacement_worker_runs_init_and_both_phases_without_a_second_restore(emulator, tmp_path):
    """Tried: an event that kills the worker after the restore, then another event. The
    first is answered with Runtime.ExitError; the replacement runs init, the before-snapshot
    hooks and the after-restore hooks in AWS's order (so each after-restore hook finds what
    its before-snapshot hook left) and serves the second; /restore/next is not called again,
    since there is no second snapshot."""
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=_env(tmp_path)):
        assert invoke(emulator, {"exit": True}).error_type == "Runtime.ExitError"
        second = only_answer(emulator, emulator.submit({})).json()
    steps = _steps(tmp_path / "record")
    first_pid, replacement_pid = steps[0][1], second["pid"]
    assert first_pid != replacement_pid
    assert [step for step, pid, _ in steps if pid == first_pid] == [*INIT_AND_HOOKS, "event"]
    assert [step for step, pid, _ in steps if pid == replacement_pid] == [*INIT_AND_HOOKS, "event"]
    assert emulator.routes_called().count("restore_next") == 1


@pytest.mark.timeout(30)
def test_a_replacement_whose_hook_fails_ends_the_runtime(emulator, tmp_path):
    """Tried: the first worker dies on an event, and its replacement's first after-restore
    hook raises. The death is answered, nothing goes to /restore/error or /init/error (the
    environment was restored long ago), and the runtime exits 2, as when a replacement's
    init fails; the replacement ran no hook past the failing one."""
    env = _env(tmp_path, "after-raise", HOOK_ONLY_IN_REPLACEMENT="1")
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=env) as runtime:
        assert invoke(emulator, {"exit": True}).error_type == "Runtime.ExitError"
        assert runtime.wait(STARTUP_TIMEOUT) == 2
    assert emulator.restore_errors == [] and emulator.init_errors == []
    steps = [step for step, _, _ in _steps(tmp_path / "record")]
    assert steps == [*INIT_AND_HOOKS, "event", *INIT_AND_HOOKS[:-1]]


@pytest.mark.timeout(30)
def test_restore_next_is_retried_like_next(emulator, tmp_path):
    """Tried: /restore/next dropped unanswered once, then answered 503 once. Both are
    retried under the runtime's one retry policy and the function goes on to serve."""
    emulator.inject_fault("restore_next", "drop")
    emulator.inject_fault("restore_next", "status", status=503)
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=_env(tmp_path)):
        only_answer(emulator, emulator.submit({}))
    routes = emulator.routes_called()
    assert routes[: routes.index("next")] == ["restore_next"] * 3
    assert emulator.init_errors == []


@pytest.mark.timeout(30)
def test_a_refused_restore_next_is_a_before_snapshot_error(emulator, tmp_path):
    """Tried: /restore/next answered 404, as a Runtime API without SnapStart would. AWS's
    runtime reports that as a failed before-snapshot phase: /init/error with
    Runtime.BeforeSnapshotError, exit 64, no hook of the other phase run and no /next."""
    emulator.inject_fault("restore_next", "status", status=404)
    code, _, output = _startup_failure(emulator, tmp_path, _env(tmp_path))
    assert code == 64, output
    [posted] = emulator.init_errors
    assert posted.error_type == "Runtime.BeforeSnapshotError"
    body = posted.json()
    assert body["errorType"] == "Runtime.BeforeSnapshotError"
    assert body["errorMessage"].startswith("GET /restore/next answered 404: ")
    assert emulator.routes_called() == ["restore_next", "init_error"]
    assert [step for step, _, _ in _steps(tmp_path / "record")] == INIT_AND_HOOKS[:3]


@pytest.mark.timeout(30)
def test_the_restore_error_post_is_retried(emulator, tmp_path):
    """Tried: the first /restore/error post answered 503. It is posted again and recorded
    once, and the runtime still exits 65."""
    emulator.inject_fault("restore_error", "status", status=503)
    code, _, output = _startup_failure(emulator, tmp_path, _env(tmp_path, "after-raise"))
    assert code == 65, output
    assert len(emulator.restore_errors) == 1
    assert emulator.routes_called() == ["restore_next", "restore_error", "restore_error"]


@pytest.mark.timeout(30)
def test_sigterm_while_the_snapshot_is_taken_shuts_down_cleanly(emulator, tmp_path):
    """Tried: SIGTERM while /restore/next is held for 5 s. The runtime stops waiting and
    exits 0 within a couple of seconds, without reporting an error or asking for events."""
    emulator.inject_fault("restore_next", "delay", delay=5)
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=_env(tmp_path), wait_ready=False) as runtime:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _requests(emulator, "restore_next") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _requests(emulator, "restore_next"), runtime.output()
        os.kill(runtime.pid, signal.SIGTERM)
        sent = time.monotonic()
        assert runtime.wait(5) == 0
        assert time.monotonic() - sent < 2.5
    assert emulator.init_errors == [] and emulator.restore_errors == []
    assert "next" not in emulator.routes_called()


@pytest.mark.timeout(60)
def test_invoke_runs_the_restore_flow_with_the_variable_in_env(tmp_path):
    """Tried: ``lambda-supervisor invoke`` with ``--env AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``.
    The hooks run in AWS's order before the event, and the result is printed."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(HOOKS["app.py"])
    record = tmp_path / "record"
    done = run_cli(
        "invoke",
        f"{task / 'app.py'}:handler",
        "--env",
        "AWS_LAMBDA_INITIALIZATION_TYPE=snap-start",
        "--env",
        f"HOOK_RECORD={record}",
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == {"pid": _steps(record)[0][1]}
    assert [step for step, _, _ in _steps(record)] == [*INIT_AND_HOOKS, "event"]


@pytest.mark.timeout(60)
def test_invoke_answers_with_the_restore_error(tmp_path):
    """Tried: ``invoke`` of a function whose after-restore hook raises, under snap-start.
    The call is answered with the error the runtime posted to /restore/error (exit 1, the
    four-key body), not with the runtime's exit status."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(HOOKS["app.py"])
    done = run_cli(
        "invoke",
        f"{task / 'app.py'}:handler",
        "--env",
        "AWS_LAMBDA_INITIALIZATION_TYPE=snap-start",
        "--env",
        f"HOOK_RECORD={tmp_path / 'record'}",
        "--env",
        "HOOK_MISBEHAVE=after-raise",
    )
    assert done.returncode == 1, done.stderr.decode()
    body = json.loads(done.stdout)
    assert (body["errorType"], body["errorMessage"]) == ("ConnectionError", "pool closed")


@pytest.mark.timeout(30)
def test_sigterm_while_a_hook_hangs_shuts_down_cleanly(emulator, tmp_path):
    """Tried: SIGTERM while a before-snapshot hook sleeps, with no init timeout of our own.
    The worker is stopped within the shutdown grace, the runtime exits 0, and nothing is
    reported or asked for."""
    env = _env(tmp_path, "before-hang")
    with running_runtime(emulator, tmp_path / "task", HOOKS, env=env, wait_ready=False) as runtime:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "before-2" not in [step for step, _, _ in _steps(tmp_path / "record")]:
            assert time.monotonic() < deadline, runtime.output()
            time.sleep(0.02)
        os.kill(runtime.pid, signal.SIGTERM)
        sent = time.monotonic()
        assert runtime.wait(5) == 0
        assert time.monotonic() - sent < 2.5
    assert emulator.routes_called() == []
    with pytest.raises(ProcessLookupError):
        os.kill(_steps(tmp_path / "record")[0][1], 0)


@pytest.mark.timeout(30)
def test_the_client_takes_a_500_on_restore_next_as_a_broken_environment(emulator):
    """Tried: RuntimeAPIClient.restore_next against a 500, which the contract calls a
    container error on /next; it is not retried but raised at once, and post_restore_error
    sends the error type as a header and is accepted."""
    from supervisor.runtime_api import PostOutcome, RuntimeAPIClient, RuntimeAPIError

    client = RuntimeAPIClient(emulator.address, retry_window=5)
    try:
        emulator.inject_fault("restore_next", "status", status=500)
        with pytest.raises(RuntimeAPIError, match="GET /restore/next answered 500"):
            client.restore_next()
        client.restore_next()
        assert (
            client.post_restore_error(b'{"errorType": "E"}', "Runtime.AfterRestoreError")
            is PostOutcome.ACCEPTED
        )
    finally:
        client.close()
    assert emulator.routes_called() == ["restore_next", "restore_next", "restore_error"]
    [posted] = emulator.restore_errors
    assert (posted.error_type, posted.body) == ("Runtime.AfterRestoreError", b'{"errorType": "E"}')
