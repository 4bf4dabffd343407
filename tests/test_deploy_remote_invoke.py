"""``lambda-supervisor remote-invoke`` against the project's own emulator, via ``--endpoint-url``.

Two set-ups: the local runner (emulator plus the runtime from this checkout, which also
returns a log tail), and a packaged zip unpacked as Lambda would and started the way the
managed Python runtime starts an ``AWS_LAMBDA_EXEC_WRAPPER``, which proves the zip runs
on its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import (
    CLI,
    BuiltPackage,
    fake_credentials_env,
    isolated_env,
    run_cli,
    unpack_like_lambda,
)
from runtime_harness import copy_handler

from lambda_supervisor.emulator import RuntimeAPIEmulator
from lambda_supervisor.local import LocalRunner, parse_handler
from lambda_supervisor.process import platform_environment

pytest_plugins = ["deploy_support"]


@pytest.fixture(scope="module")
def local_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRunner]:
    """The project's emulator serving a handler through the real runtime."""
    path = copy_handler(tmp_path_factory.mktemp("remote"), "greet_and_print")
    runner = LocalRunner(parse_handler(f"{path}:handler"), function_name="greeter", restart=True)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def remote_invoke(runner_address: str, tmp_path: Path, *args: str, stdin: bytes | None = None):
    return run_cli(
        ["remote-invoke", "greeter", "--endpoint-url", f"http://{runner_address}", *args],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
        stdin=stdin,
    )


@pytest.mark.timeout(60)
def test_prints_the_result_then_the_decoded_log_tail(local_runner: LocalRunner, tmp_path: Path) -> None:
    result = remote_invoke(local_runner.address, tmp_path, "--payload", '{"name": "inline"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": "inline", "function": "greeter"}
    tail = result.stderr.split("--- log tail (last 4 KB) ---\n", 1)[1]
    assert "handling inline" in tail
    assert "START RequestId:" in tail and "REPORT RequestId:" in tail


@pytest.mark.timeout(60)
def test_payload_from_a_file_and_from_stdin(local_runner: LocalRunner, tmp_path: Path) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text('{"name": "file"}')
    from_file = remote_invoke(local_runner.address, tmp_path, "--payload-file", str(event_file))
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["hello"] == "file"
    from_stdin = remote_invoke(
        local_runner.address, tmp_path, "--payload-file", "-", stdin=b'{"name": "stdin"}'
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert json.loads(from_stdin.stdout)["hello"] == "stdin"


@pytest.mark.timeout(60)
def test_function_error_exits_non_zero(local_runner: LocalRunner, tmp_path: Path) -> None:
    result = remote_invoke(local_runner.address, tmp_path, "--payload", '{"name": "x", "fail": true}')
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "asked to fail"
    assert "Function error: Unhandled" in result.stderr
    assert "handling x" in result.stderr


@pytest.mark.timeout(60)
def test_unsigned_requests_need_no_credentials(local_runner: LocalRunner, tmp_path: Path) -> None:
    result = run_cli(
        ["remote-invoke", "greeter", "--no-sign-request", "--region", "us-east-1"]
        + ["--endpoint-url", f"http://{local_runner.address}", "--payload", '{"name": "anon"}'],
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hello"] == "anon"


@pytest.mark.timeout(30)
def test_bad_payloads_are_refused_before_sending(tmp_path: Path) -> None:
    env = fake_credentials_env(tmp_path)
    not_json = run_cli(["remote-invoke", "fn", "--payload", "{nope"], env=env, cwd=tmp_path)
    assert not_json.returncode == 2
    assert "The payload is not valid JSON" in not_json.stderr
    both = run_cli(["remote-invoke", "fn", "--payload", "{}", "--payload-file", "-"], env=env, cwd=tmp_path)
    assert both.returncode == 2
    assert "either --payload or --payload-file" in both.stderr
    missing = run_cli(
        ["remote-invoke", "fn", "--payload-file", str(tmp_path / "none.json")], env=env, cwd=tmp_path
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def invoke_while_watching(
    runtime: subprocess.Popen[bytes], emulator: RuntimeAPIEmulator, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """``remote-invoke`` the packaged function; if the runtime dies first, answer the call
    with ``Runtime.ExitError`` (as Lambda would) instead of leaving it waiting."""
    command = CLI + ["remote-invoke", "packaged", "--endpoint-url", f"http://{emulator.address}"]
    command += ["--payload", '{"name": "lambda"}']
    caller = subprocess.Popen(
        command,
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while caller.poll() is None and time.monotonic() < deadline:
        if runtime.poll() is not None:
            emulator.fail_pending("Runtime.ExitError", f"runtime exited with status {runtime.returncode}")
        time.sleep(0.1)
    if caller.poll() is None:
        caller.kill()
    stdout, stderr = caller.communicate()
    return subprocess.CompletedProcess(command, caller.returncode, stdout, stderr)


@pytest.mark.timeout(90)
def test_the_packaged_zip_runs_as_an_exec_wrapper(built: BuiltPackage, tmp_path: Path) -> None:
    task_root = tmp_path / "var" / "task"
    unpack_like_lambda(built.zip_path, task_root)
    bootstrap = task_root / "bin" / "bootstrap"
    assert os.access(bootstrap, os.X_OK)
    # Bytecode is "unchecked hash": Lambda's code never changes, so the .pyc is used even
    # when the source beside it differs. Editing the source proves the .pyc is valid.
    (task_root / "helpers" / "greeting.py").write_text("def greet(name):\n    return 'source was used'\n")
    # No site-packages: only the standard library and what the zip holds.
    interpreter = tmp_path / "python-no-site"
    interpreter.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    interpreter.chmod(0o755)

    with RuntimeAPIEmulator(function_name="packaged") as emulator:
        env = isolated_env(tmp_path)
        env.update(platform_environment(runtime_api=emulator.address, handler=None, task_root=task_root))
        env.update(
            _HANDLER="app.handler",
            LAMBDA_SUPERVISOR_PYTHON=str(interpreter),
            AWS_LAMBDA_EXEC_WRAPPER=str(bootstrap),
        )
        env.pop("HANDLER", None)
        log = (tmp_path / "runtime.log").open("wb")
        # Lambda runs the wrapper with the managed runtime's own command as arguments.
        runtime = subprocess.Popen(
            [str(bootstrap), "/var/runtime/bootstrap"],
            env=env,
            cwd=task_root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            result = invoke_while_watching(runtime, emulator, tmp_path)
        finally:
            os.killpg(runtime.pid, signal.SIGTERM)
            runtime.wait(timeout=10)
            log.close()
    output = (tmp_path / "runtime.log").read_text()
    assert result.returncode == 0, result.stderr + output
    assert json.loads(result.stdout) == {"greeting": "hello lambda", "value": 42}
    assert "handling {'name': 'lambda'}" in output
