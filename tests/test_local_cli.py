"""Local development end to end: the ``invoke`` and ``serve`` commands and the Invoke API.

These run the real ``bin/bootstrap`` (supervisor and forked worker) against the
emulator, and drive it the way users do: the console script, curl-style raw HTTP, and
boto3's ``lambda`` client pointed at ``serve`` with ``endpoint_url``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from http_support import INVOKE_PATH, post
from local_support import ServeProcess, run_cli
from proc_support import running_in_session, wait_until
from runtime_harness import copy_handler

from lambda_supervisor.emulator import RuntimeAPIEmulator
from lambda_supervisor.local import LocalRunner, parse_handler
from lambda_supervisor.process import RuntimeProcess


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    return copy_handler(tmp_path, "local_dev_functions")


# ----------------------------------------------------------------------------- invoke CLI


@pytest.mark.timeout(60)
def test_invoke_prints_result_on_stdout_and_logs_on_stderr() -> None:
    done = run_cli("invoke", "examples/hello.py:handler", "--event", '{"name": "world"}')
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["message"] == "Hello, world!"
    stderr = done.stderr.decode()
    request_id = result["requestId"]
    assert f"START RequestId: {request_id} Version: $LATEST" in stderr
    assert f"END RequestId: {request_id}" in stderr
    report = next(line for line in stderr.splitlines() if line.startswith("REPORT"))
    assert re.search(r"Duration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 3008 MB", report)
    assert re.search(r"Max Memory Used: \d+ MB", report)
    assert re.search(r"Init Duration: \d+\.\d\d ms", report)
    assert "greeting world" in stderr


@pytest.mark.timeout(60)
def test_invoke_function_error_exits_non_zero_with_error_body(app_path: Path) -> None:
    done = run_cli("invoke", f"{app_path}:fail", "--event", '{"n": 7}')
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad value: 7"
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert "ValueError" in done.stderr.decode()


@pytest.mark.timeout(60)
def test_invoke_reads_event_from_stdin(app_path: Path) -> None:
    done = run_cli("invoke", f"{app_path}:echo", "-", stdin=b'{"from": "stdin"}')
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["event"] == {"from": "stdin"}


@pytest.mark.timeout(60)
def test_invoke_reads_event_file(app_path: Path, tmp_path: Path) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text('{"from": "file"}')
    done = run_cli("invoke", f"{app_path}:echo", "--event-file", str(event_file))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["event"] == {"from": "file"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("sample", "probe"),
    [
        ("apigw", lambda event: event["requestContext"]["http"]["method"] == "POST"),
        ("sqs", lambda event: event["Records"][0]["eventSource"] == "aws:sqs"),
        ("s3", lambda event: event["Records"][0]["eventSource"] == "aws:s3"),
        ("eventbridge", lambda event: event["source"] == "aws.events"),
    ],
)
def test_invoke_with_sample_event(app_path: Path, sample: str, probe: Any) -> None:
    done = run_cli("invoke", f"{app_path}:echo", "--event-sample", sample)
    assert done.returncode == 0, done.stderr.decode()
    assert probe(json.loads(done.stdout)["event"])


@pytest.mark.timeout(60)
def test_invoke_module_handler_from_current_directory(app_path: Path) -> None:
    done = run_cli("invoke", "app:echo", "--event", '{"m": 1}', cwd=app_path.parent)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["event"] == {"m": 1}


@pytest.mark.timeout(60)
def test_invoke_sets_platform_environment_and_env_option(app_path: Path) -> None:
    done = run_cli("invoke", f"{app_path}:echo", "--memory", "512", "--env", "GREETING=hi")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["functionName"] == "function"
    assert result["functionVersion"] == "$LATEST"
    assert result["memory"] == "512"
    assert result["logGroup"] == "/aws/lambda/function"
    assert result["logStream"]
    assert result["greeting"] == "hi"
    assert 0 < result["remainingMs"] <= 300_000


@pytest.mark.timeout(60)
def test_invoke_timeout_is_reported_as_function_error(app_path: Path) -> None:
    done = run_cli("invoke", f"{app_path}:slow", "--timeout", "1", "--event", '{"seconds": 20}')
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert body["errorMessage"] == "Task timed out after 1.00 seconds"
    assert body["errorType"] in ("Sandbox.Timedout", "Sandbox.Timeout")


# ----------------------------------------------------------------------------- bad input


def assert_clear_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    """Exit status 2, one ``error:`` line naming the problem, and no traceback."""
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert fragment in stderr
    assert "Traceback" not in stderr
    assert done.stdout == b""


@pytest.mark.timeout(30)
def test_missing_handler_file_is_a_clear_error(tmp_path: Path) -> None:
    """Tried: a handler path to a file that does not exist."""
    done = run_cli("invoke", f"{tmp_path}/nope.py:handler")
    assert_clear_error(done, "handler file not found")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("handler", ["app", "app:", ":handler", "app:fn.sub", "a:b:fn", "..app.fn"])
def test_bad_handler_string_is_a_clear_error(handler: str) -> None:
    """Tried: handler strings without a function or a module, with a dotted function, two
    colons, a relative module; refused in the runtime's words before anything starts."""
    done = run_cli("invoke", handler)
    assert_clear_error(done, f"lambda-supervisor: error: Bad handler '{handler}': ")


@pytest.mark.timeout(30)
def test_unknown_module_is_a_clear_error(tmp_path: Path) -> None:
    """Tried: ``module:fn`` for a module that is neither in the current directory nor installed."""
    done = run_cli("invoke", "no_such_module_here:handler", cwd=tmp_path)
    assert_clear_error(done, "module not found")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("event", ["{not json", "{'single': 'quotes'}", '{"a": 1'])
def test_invalid_event_json_is_a_clear_error(app_path: Path, event: str) -> None:
    """Tried: --event values that are not JSON (broken braces, Python-style quotes)."""
    done = run_cli("invoke", f"{app_path}:echo", "--event", event)
    assert_clear_error(done, "invalid event JSON")


@pytest.mark.timeout(30)
def test_invalid_event_file_json_is_a_clear_error(app_path: Path, tmp_path: Path) -> None:
    """Tried: an --event-file whose content is not JSON, and one that does not exist."""
    bad = tmp_path / "bad.json"
    bad.write_text("name=world")
    assert_clear_error(run_cli("invoke", f"{app_path}:echo", "--event-file", str(bad)), "invalid event JSON")
    missing = tmp_path / "missing.json"
    assert_clear_error(run_cli("invoke", f"{app_path}:echo", "--event-file", str(missing)), "cannot read")


@pytest.mark.timeout(30)
def test_unknown_sample_is_a_clear_error(app_path: Path) -> None:
    """Tried: --event-sample with a name that is not shipped."""
    done = run_cli("invoke", f"{app_path}:echo", "--event-sample", "kinesis-nope")
    assert_clear_error(done, "unknown sample event")


@pytest.mark.timeout(30)
def test_bad_env_option_is_a_clear_error(app_path: Path) -> None:
    """Tried: --env without an equals sign."""
    done = run_cli("invoke", f"{app_path}:echo", "--env", "GREETING")
    assert_clear_error(done, "bad --env")


@pytest.mark.timeout(30)
def test_bad_inherit_env_option_is_a_clear_error(app_path: Path) -> None:
    """Tried: --inherit-env with NAME=VALUE, which belongs to --env."""
    done = run_cli("invoke", f"{app_path}:echo", "--inherit-env", "GREETING=hi")
    assert_clear_error(done, "bad --inherit-env 'GREETING=hi'")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the duration of the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.timeout(30)
def test_serve_on_a_port_in_use_is_a_clear_error(app_path: Path, busy_port: int) -> None:
    """Tried: ``serve --port`` with a port another socket is already listening on."""
    done = run_cli("serve", f"{app_path}:echo", "--port", str(busy_port))
    assert_clear_error(done, f"port {busy_port} on 127.0.0.1 is already in use")


def test_parse_handler_maps_file_path_to_task_root(app_path: Path) -> None:
    spec = parse_handler(f"{app_path}:echo")
    assert spec.task_root == app_path.parent.resolve()
    assert spec.handler == "app.echo"


# ----------------------------------------------------------------------------- serve


@pytest.mark.timeout(60)
def test_serve_answers_curl_style_requests_repeatedly(serve_echo: ServeProcess) -> None:
    request_ids = set()
    for index in range(3):
        status, headers, body = post(
            serve_echo.host, serve_echo.port, INVOKE_PATH, json.dumps({"n": index}).encode()
        )
        assert status == 200
        assert "x-amz-function-error" not in headers
        result = json.loads(body)
        assert result["event"] == {"n": index}
        assert headers["x-amzn-requestid"] == result["requestId"]
        request_ids.add(result["requestId"])
    assert len(request_ids) == 3
    returncode, stderr = serve_echo.stop()
    assert returncode == 0
    for request_id in request_ids:
        assert f"START RequestId: {request_id}" in stderr
        assert f"REPORT RequestId: {request_id}" in stderr
    assert stderr.count("Init Duration") == 1, "only the first call reports init time"


@pytest.mark.timeout(60)
def test_serve_passes_client_context_and_trace_id(serve_echo: ServeProcess) -> None:
    context = {"custom": {"tenant": "acme"}, "client": {}, "env": {}}
    trace = "Root=1-65f0a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
    status, _, body = post(
        serve_echo.host,
        serve_echo.port,
        INVOKE_PATH,
        b"{}",
        {
            "X-Amz-Client-Context": base64.b64encode(json.dumps(context).encode()).decode(),
            "X-Amzn-Trace-Id": trace,
        },
    )
    assert status == 200
    result = json.loads(body)
    assert result["clientCustom"] == {"tenant": "acme"}
    assert result["traceId"] == trace


@pytest.mark.timeout(60)
def test_serve_caller_trace_id_with_a_nul_byte_does_not_kill_the_worker(serve_echo: ServeProcess) -> None:
    """Tried: an ``X-Amzn-Trace-Id`` with a NUL byte in it, passed on to the runtime as its
    trace id (``os.environ`` refuses a NUL, which killed the worker), then a good one."""
    trace = "Root=1-65f0a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
    status, headers, body = post(
        serve_echo.host,
        serve_echo.port,
        INVOKE_PATH,
        b"{}",
        {"X-Amzn-Trace-Id": trace.replace(";", "\x00;", 1)},
    )
    if status == 400:
        # A server may refuse the header outright; then the runtime never meets it.
        assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    else:
        assert (status, headers.get("x-amz-function-error"), json.loads(body)["traceId"]) == (200, None, None)
    status, headers, body = post(
        serve_echo.host, serve_echo.port, INVOKE_PATH, b"{}", {"X-Amzn-Trace-Id": trace}
    )
    assert (status, json.loads(body)["traceId"]) == (200, trace)
    returncode, stderr = serve_echo.stop()
    assert returncode == 0
    assert '"message":"worker died"' not in stderr


@pytest.mark.timeout(60)
def test_serve_rejects_client_context_that_is_not_base64_json(serve_echo: ServeProcess) -> None:
    """Tried: an X-Amz-Client-Context header that is not base64-encoded JSON."""
    status, headers, body = post(
        serve_echo.host, serve_echo.port, INVOKE_PATH, b"{}", {"X-Amz-Client-Context": "%%%"}
    )
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "Client context" in json.loads(body)["message"]


@pytest.fixture
def runner(app_path: Path) -> Iterator[LocalRunner]:
    """The serve machinery in-process: an emulator on an ephemeral port and the runtime."""
    with LocalRunner(parse_handler(f"{app_path}:chatty"), timeout=30, restart=True) as local:
        yield local


@pytest.mark.timeout(60)
def test_function_error_sets_x_amz_function_error(app_path: Path) -> None:
    with LocalRunner(parse_handler(f"{app_path}:fail"), timeout=30) as local:
        status, headers, body = post(local.emulator.host, local.emulator.port, INVOKE_PATH, b'{"n": 1}')
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    error = json.loads(body)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "bad value: 1"


@pytest.mark.timeout(60)
def test_log_type_tail_returns_this_invocations_logs(runner: LocalRunner) -> None:
    host, port = runner.emulator.host, runner.emulator.port
    post(host, port, INVOKE_PATH, b'{"n": "first"}', {"X-Amz-Log-Type": "Tail"})
    status, headers, body = post(host, port, INVOKE_PATH, b'{"n": "second"}', {"X-Amz-Log-Type": "Tail"})
    assert status == 200
    assert json.loads(body) == "second"
    request_id = headers["x-amzn-requestid"]
    raw_tail = base64.b64decode(headers["x-amz-log-result"])
    assert len(raw_tail) <= 4096
    tail = raw_tail.decode()
    assert f"START RequestId: {request_id}" in tail
    assert f"printed line for {request_id}" in tail
    assert "logged line second" in tail
    assert "logged line first" not in tail
    assert f"REPORT RequestId: {request_id}" in tail


@pytest.mark.timeout(60)
def test_log_tail_is_the_last_4kb_cut_on_a_character(app_path: Path) -> None:
    with LocalRunner(parse_handler(f"{app_path}:noisy"), timeout=30) as local:
        _, headers, _ = post(
            local.emulator.host, local.emulator.port, INVOKE_PATH, b"{}", {"X-Amz-Log-Type": "Tail"}
        )
    raw_tail = base64.b64decode(headers["x-amz-log-result"])
    assert 4000 < len(raw_tail) <= 4096
    tail = raw_tail.decode("utf-8")  # must not raise
    assert "19 ü€" in tail
    assert tail.rstrip().splitlines()[-1].startswith("REPORT RequestId:")


@pytest.mark.timeout(60)
def test_no_log_result_without_tail(runner: LocalRunner) -> None:
    _, headers, _ = post(runner.emulator.host, runner.emulator.port, INVOKE_PATH, b'{"n": 1}')
    assert "x-amz-log-result" not in headers


@pytest.mark.timeout(60)
def test_invoke_by_function_name_path(runner: LocalRunner) -> None:
    status, _, body = post(
        runner.emulator.host, runner.emulator.port, "/2015-03-31/functions/my-func/invocations", b'{"n": 5}'
    )
    assert (status, json.loads(body)) == (200, 5)


@pytest.mark.timeout(60)
def test_concurrent_invokes_all_answered(app_path: Path) -> None:
    """Callers arriving together queue behind the single runtime; none is dropped."""
    with LocalRunner(parse_handler(f"{app_path}:slow"), timeout=30) as local:
        host, port = local.emulator.host, local.emulator.port
        results: dict[int, tuple[int, Any]] = {}

        def call(index: int) -> None:
            event = json.dumps({"seconds": 0.1, "n": index}).encode()
            status, _, body = post(host, port, INVOKE_PATH, event)
            results[index] = (status, json.loads(body))

        threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(50)
    assert sorted(results) == list(range(8))
    for index, (status, body) in results.items():
        assert status == 200
        assert body == {"slept": 0.1, "n": index}


@pytest.mark.timeout(60)
def test_runtime_exit_is_reported_and_serve_recovers(app_path: Path, tmp_path: Path) -> None:
    """A handler that kills the runtime process tree must not hang the caller."""
    with LocalRunner(parse_handler(f"{app_path}:crash"), timeout=30, restart=True) as local:
        status, headers, body = post(local.emulator.host, local.emulator.port, INVOKE_PATH, b"{}")
        assert status == 200
        assert headers["x-amz-function-error"] == "Unhandled"
        error = json.loads(body)
        assert error["errorType"].startswith("Runtime.")
        # And the next call is served as well.
        status, headers, _ = post(local.emulator.host, local.emulator.port, INVOKE_PATH, b"{}")
        assert status == 200
        assert headers["x-amz-function-error"] == "Unhandled"


@pytest.mark.timeout(60)
def test_init_error_reaches_the_caller(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    # The module's text is the case: an import that fails.
    broken.write_text("import no_such_dependency_xyz\n\ndef handler(event, context):\n    return 1\n")
    done = run_cli("invoke", f"{broken}:handler")
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_dependency_xyz" in error["errorMessage"]


@pytest.mark.timeout(60)
def test_invoke_api_rejects_a_payload_that_is_not_json(runner: LocalRunner) -> None:
    """Tried: POSTing ``{broken`` to the Invoke API; refused with 400 like the real API, nothing runs."""
    status, headers, body = post(runner.emulator.host, runner.emulator.port, INVOKE_PATH, b"{broken")
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"
    assert "Could not parse request body into json" in json.loads(body)["message"]
    assert runner.emulator.all_invocations() == []


@pytest.mark.timeout(60)
def test_boto3_sees_invalid_json_as_invalid_request_content(runner: LocalRunner) -> None:
    """Tried: boto3 ``invoke`` with a Payload that is not JSON."""
    client = lambda_client(f"http://{runner.address}")
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="function", Payload=b"not json")


@pytest.mark.timeout(60)
def test_oversized_request_is_413(runner: LocalRunner) -> None:
    """Tried: an invoke payload over the 6 MB synchronous limit."""
    big = json.dumps({"blob": "x" * 6_300_000}).encode()
    status, headers, body = post(runner.emulator.host, runner.emulator.port, INVOKE_PATH, big)
    assert status == 413
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert runner.emulator.pending() == []


# ----------------------------------------------------------------------------- boto3


def lambda_client(endpoint: str):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, read_timeout=60, connect_timeout=10),
    )


@pytest.mark.timeout(60)
def test_boto3_invoke_against_serve(serve_echo: ServeProcess) -> None:
    client = lambda_client(serve_echo.endpoint)
    context = base64.b64encode(json.dumps({"custom": {"via": "boto3"}}).encode()).decode()
    response = client.invoke(
        FunctionName="function", Payload=b'{"hello": "boto3"}', LogType="Tail", ClientContext=context
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert result["event"] == {"hello": "boto3"}
    assert result["clientCustom"] == {"via": "boto3"}
    assert f"REPORT RequestId: {result['requestId']}" in base64.b64decode(response["LogResult"]).decode()


@pytest.mark.timeout(60)
def test_boto3_invoke_reports_function_error(app_path: Path) -> None:
    with LocalRunner(parse_handler(f"{app_path}:fail"), timeout=30) as local:
        client = lambda_client(f"http://{local.address}")
        response = client.invoke(FunctionName="function", Payload=b'{"n": 2}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["stackTrace"]


@pytest.mark.timeout(60)
def test_serve_answers_every_call_with_the_init_error(tmp_path: Path) -> None:
    """A handler whose import fails: each call gets the init error, with the logs in the tail."""
    broken = tmp_path / "broken.py"
    # The module's text is the case: an import that fails.
    broken.write_text("import config_missing_xyz\n\ndef handler(event, context):\n    return 1\n")
    with LocalRunner(parse_handler(f"{broken}:handler"), timeout=30, restart=True) as local:
        for _ in range(2):
            status, headers, body = post(
                local.emulator.host, local.emulator.port, INVOKE_PATH, b"{}", {"X-Amz-Log-Type": "Tail"}
            )
            assert status == 200
            assert headers["x-amz-function-error"] == "Unhandled"
            error = json.loads(body)
            assert error["errorType"] == "Runtime.ImportModuleError"
            assert "config_missing_xyz" in error["errorMessage"]
            assert "config_missing_xyz" in base64.b64decode(headers["x-amz-log-result"]).decode()


@pytest.mark.timeout(60)
def test_runtime_that_cannot_start_does_not_hang_the_caller(app_path: Path) -> None:
    """Tried: a runtime interpreter that exits at once (``/bin/false``) while serving."""
    env = {"LAMBDA_SUPERVISOR_PYTHON": "/bin/false"}
    with LocalRunner(parse_handler(f"{app_path}:echo"), timeout=30, env=env, restart=True) as local:
        status, headers, body = post(local.emulator.host, local.emulator.port, INVOKE_PATH, b"{}")
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    assert json.loads(body) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "Runtime exited with error: exit status 1",
    }


def _aws_cli() -> str | None:
    """The AWS CLI installed with the test extras (next to this interpreter), or one on PATH."""
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


@pytest.mark.timeout(60)
@pytest.mark.skipif(_aws_cli() is None, reason="the AWS CLI is not installed")
def test_aws_cli_invoke_against_serve(serve_echo: ServeProcess, tmp_path: Path) -> None:
    outfile = tmp_path / "out.json"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [
            str(_aws_cli()),
            "lambda",
            "invoke",
            "--endpoint-url",
            serve_echo.endpoint,
            "--function-name",
            "function",
            "--payload",
            '{"via": "aws-cli"}',
            "--log-type",
            "Tail",
            str(outfile),
        ],
        capture_output=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )
    if b"--cli-binary-format" in done.stderr or b"Invalid base64" in done.stderr:
        pytest.fail(f"unexpected AWS CLI complaint: {done.stderr.decode()}")
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["StatusCode"] == 200
    assert "REPORT RequestId" in base64.b64decode(summary["LogResult"]).decode()
    assert json.loads(outfile.read_text())["event"] == {"via": "aws-cli"}


@pytest.mark.timeout(60)
def test_event_invocation_type_is_accepted_and_runs(runner: LocalRunner) -> None:
    host, port = runner.emulator.host, runner.emulator.port
    status, headers, body = post(host, port, INVOKE_PATH, b'{"n": 1}', {"X-Amz-Invocation-Type": "Event"})
    assert (status, body) == (202, b"")
    invocation = runner.emulator.invocation(headers["x-amzn-requestid"])
    assert invocation is not None
    assert invocation.result(30).json() == 1


@pytest.mark.timeout(60)
def test_dry_run_invocation_type_runs_nothing(runner: LocalRunner) -> None:
    status, _, _ = post(
        runner.emulator.host, runner.emulator.port, INVOKE_PATH, b"{}", {"X-Amz-Invocation-Type": "DryRun"}
    )
    assert status == 204
    assert [entry for entry in runner.emulator.requests if entry[3] == "invoke"]
    assert runner.emulator.all_invocations() == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("option", "value"), [("--timeout", "0"), ("--timeout", "-3"), ("--memory", "lots")])
def test_bad_timeout_or_memory_is_a_clear_error(app_path: Path, option: str, value: str) -> None:
    """Tried: a zero or negative --timeout and a --memory that is not a number."""
    done = run_cli("invoke", f"{app_path}:echo", option, value)
    assert_clear_error(done, f"argument {option}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["invoke", "serve"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeout", "inf", "timeout must be from 1 to 900 seconds, not inf"),
        ("--timeout", "nan", "timeout must be from 1 to 900 seconds, not nan"),
        ("--timeout", "1e308", "timeout must be from 1 to 900 seconds, not 1e+308"),
        ("--timeout", "901", "timeout must be from 1 to 900 seconds, not 901.0"),
        ("--timeout", "0.5", "timeout must be from 1 to 900 seconds, not 0.5"),
        ("--memory", "5", "memory size must be from 128 to 10240 MB, not 5"),
        ("--memory", "10241", "memory size must be from 128 to 10240 MB, not 10241"),
        ("--memory", "512.5", "'512.5' is not a whole number"),
        ("--init-timeout", "inf", "init timeout must be from 0.1 to 900 seconds, not inf"),
        ("--init-timeout", "0", "init timeout must be from 0.1 to 900 seconds, not 0.0"),
    ],
)
def test_settings_outside_lambdas_ranges_are_refused(
    app_path: Path, command: str, option: str, value: str, message: str
) -> None:
    """Tried: timeouts Lambda would refuse (infinite, NaN, huge, past 900 s, under 1 s), memory
    outside 128-10,240 MB, and such init timeouts; an infinite timeout used to lose the event.

    Refused before anything starts: exit status 2, and the error line names the range.
    """
    port = ["--port", "0"] if command == "serve" else []
    done = run_cli(command, f"{app_path}:echo", option, value, *port)
    assert_clear_error(done, f"error: argument {option}: {message}\n")


@pytest.mark.timeout(60)
def test_the_edges_of_lambdas_ranges_are_accepted(app_path: Path) -> None:
    """Tried: the largest and the smallest timeout and memory size Lambda accepts."""
    done = run_cli(
        "invoke", f"{app_path}:echo", "--timeout", "900", "--memory", "10240", "--init-timeout", "5"
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["memory"] == "10240"
    done = run_cli("invoke", f"{app_path}:echo", "--timeout", "1", "--memory", "128")
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["memory"] == "128"


@pytest.mark.timeout(60)
def test_stop_leaves_no_worker_behind_even_after_the_supervisor_was_killed(app_path: Path) -> None:
    """Workers live in process groups of their own; ``stop`` must still reach them."""
    emulator = RuntimeAPIEmulator().start()
    runtime = RuntimeProcess("app:slow", runtime_api=emulator.address, task_root=app_path.parent).start()
    try:
        assert emulator.wait_for_poll(30), runtime.output()
        invocation = emulator.submit({"seconds": 60})
        assert invocation.handed_out.wait(30)
        assert runtime.pid is not None
        session = runtime.pid
        assert wait_until(lambda: len(running_in_session(session)) >= 2, 10), "no worker running"
        os.kill(session, signal.SIGKILL)
        runtime.wait(10)
    finally:
        runtime.stop()
        emulator.stop()
    assert wait_until(lambda: running_in_session(session) == [], 10), running_in_session(session)
