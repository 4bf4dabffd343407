"""Logs: one JSON object per line with Lambda's field names, Text on request, level filter,
request ids that never leak from one invocation into the next, and no payloads or secrets."""

from __future__ import annotations

import json
import threading

import pytest
from runtime_harness import handler_files, invoke, log_records, running_runtime


def _records(runtime, predicate, timeout=10):
    record = runtime.wait_for_json(predicate, timeout)
    assert record is not None, runtime.output()
    return record


@pytest.mark.timeout(60)
def test_json_logs_carry_lambdas_field_names_and_the_request_id(emulator, tmp_path):
    env = {"AWS_LAMBDA_LOG_LEVEL": "INFO"}
    with running_runtime(emulator, tmp_path, handler_files("log_things"), "app:route", env=env) as runtime:
        invocation = emulator.submit({"do": "log_things"}, timeout=30)
        invocation.result(30)
        warned = _records(runtime, lambda r: r.get("message") == "warned here")
        failed = _records(runtime, lambda r: r.get("message") == "failed")
        runtime.wait_for_line(lambda line: line == "plain print", 10)
        lines = runtime.lines()
    assert list(warned)[:5] == ["timestamp", "level", "message", "logger", "requestId"]
    assert warned["level"] == "WARNING" and warned["logger"] == "orders"
    assert warned["requestId"] == invocation.request_id
    assert warned["order_id"] == 42
    assert warned["timestamp"].endswith("Z") and "T" in warned["timestamp"]
    assert failed["errorType"] == "ZeroDivisionError"
    assert failed["errorMessage"] == "division by zero"
    assert failed["stackTrace"] and "1 / 0" in failed["stackTrace"][-1]
    assert any(r.get("message") == "info line" for r in runtime.json_lines())
    assert not any(r.get("message") == "debug line" for r in runtime.json_lines()), "INFO filters DEBUG"
    assert "plain print" in lines
    for line in lines:  # every log record is a whole JSON object on one line
        if line.startswith("{"):
            json.loads(line)


@pytest.mark.timeout(60)
def test_default_level_keeps_the_standard_warning_threshold(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("log_things"), "app:route") as runtime:
        invoke(emulator, {"do": "log_things"})
        _records(runtime, lambda r: r.get("message") == "warned here")
        assert not any(r.get("message") == "info line" for r in runtime.json_lines())


@pytest.mark.timeout(60)
def test_level_filter_applies_to_the_supervisor_too(emulator, tmp_path):
    env = {"AWS_LAMBDA_LOG_LEVEL": "ERROR"}
    with running_runtime(emulator, tmp_path, handler_files("log_things"), "app:route", env=env) as runtime:
        invoke(emulator, {"do": "log_things"})
        _records(runtime, lambda r: r.get("message") == "failed")
        messages = [r.get("message") for r in runtime.json_lines()]
    assert "warned here" not in messages
    assert "worker started" not in messages


@pytest.mark.timeout(60)
def test_text_format(emulator, tmp_path):
    env = {"AWS_LAMBDA_LOG_FORMAT": "Text", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    with running_runtime(emulator, tmp_path, handler_files("log_things"), "app:route", env=env) as runtime:
        invocation = emulator.submit({"do": "log_things"}, timeout=30)
        invocation.result(30)
        line = runtime.wait_for_line(lambda text: "warned here" in text, 10)
        started = runtime.wait_for_line(lambda text: "worker started" in text, 10)
    assert line is not None and started is not None
    level, timestamp, request_id, message = line.split("\t", 3)
    assert level == "[WARNING]"
    assert timestamp.endswith("Z")
    assert request_id == invocation.request_id
    assert message.startswith("warned here")
    assert started.startswith("[DEBUG]\t"), "the first worker's start is a DEBUG record"


@pytest.mark.timeout(60)
def test_request_id_is_reset_between_invocations(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("log_things"), "app:route") as runtime:
        invocation = emulator.submit({"do": "log_later"}, timeout=30)
        invocation.result(30)
        record = _records(runtime, lambda r: r.get("message") == "after the invocation")
    assert "requestId" not in record, record


@pytest.mark.timeout(90)
def test_supervisor_logs_its_lifecycle_as_json(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("crash_or_hang_on_demand")) as runtime:
        invoke(emulator, {"do": "die"})
        hang = emulator.submit({"do": "hang"}, timeout=1)
        hang.result(30)
        invoke(emulator, {"do": "ok"})
        records = runtime.json_lines()
    started = [r for r in records if r.get("message") == "worker started"]
    # At the default level only replacements are news; the first start is DEBUG.
    assert [r["reason"] for r in started] == ["worker died", "worker killed at deadline"]
    assert all(r["init_duration_ms"] >= 0 and r["level"] == "INFO" for r in started)
    assert started[0]["logger"] == "supervisor"
    [died] = log_records(runtime, "worker died")
    assert died["status"] == "exit status 5" and died["level"] == "ERROR"
    [killed] = log_records(runtime, "worker killed at deadline")
    assert killed["requestId"] == hang.request_id and killed["timeout_s"] == 1.0


@pytest.mark.timeout(60)
def test_payloads_and_environment_secrets_are_never_logged(emulator, tmp_path):
    """Tried: a secret in the event, in the result, in an error and in the environment."""
    env = {"DB_PASSWORD": "env-secret-6a1f", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    with running_runtime(emulator, tmp_path, handler_files("echo_or_raise"), env=env) as runtime:
        invoke(emulator, {"card": "event-secret-93b2"})
        invoke(emulator, {"card": "event-secret-93b2", "fail": True})
        threading.Event().wait(0.2)
        output = runtime.output()
    assert "event-secret-93b2" not in output
    assert "env-secret-6a1f" not in output
