"""Everything a handler can do wrong becomes one reported answer, and the runtime serves on.

Each test drives bin/bootstrap against the emulator over HTTP: a bad invocation must get
exactly one /error post of the right kind, and the very next event must be served.
"""

from __future__ import annotations

import os
import time

import pytest
from proc_support import is_running, peak_rss_kb, wait_until
from runtime_harness import handler_files, invoke, log_records, running_runtime


def _env() -> dict[str, str]:
    return {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(
        emulator, tmp_path, handler_files("fail_every_way"), "app:route", env=_env()
    ) as runtime:
        yield runtime


def _still_serving(emulator) -> dict:
    outcome = invoke(emulator, {"do": "ok"}, timeout=30)
    assert outcome.kind == "response", outcome
    return outcome.json()


@pytest.mark.timeout(60)
def test_handler_exception_posts_the_four_key_body_with_user_frames_only(emulator, runtime):
    before = _still_serving(emulator)
    outcome = invoke(emulator, {"do": "raises", "n": 7})
    assert outcome.kind == "error"
    body = outcome.json()
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad value 7"
    assert outcome.error_type == "ValueError"
    assert len(body["stackTrace"]) == 3  # route -> raises -> helper, no runtime frames
    assert body["stackTrace"][0].startswith('  File "') and "app.py" in body["stackTrace"][0]
    assert "in helper" in body["stackTrace"][-1]
    # AWS's format: a location line and the source line, no column carets.
    assert body["stackTrace"][-1].endswith("in helper\n    raise ValueError(f\"bad value {event['n']}\")\n")
    assert all(entry.count("\n") == 2 for entry in body["stackTrace"])
    assert all("worker" + os.sep not in line for line in body["stackTrace"])
    assert body["requestId"] == outcome_request_id(emulator, outcome)
    # The same worker serves on: warm state survives a handled exception.
    assert _still_serving(emulator) == before


@pytest.mark.timeout(60)
def test_exception_class_name_is_bare(emulator, runtime):
    body = invoke(emulator, {"do": "raises_custom"}).json()
    assert body["errorType"] == "CustomError"
    assert body["errorMessage"] == "custom"


def outcome_request_id(emulator, outcome) -> str:
    [invocation] = [i for i in emulator_invocations(emulator) if outcome in i.accepted]
    return invocation.request_id


def emulator_invocations(emulator):
    seen = {}
    for _, _, path, route in emulator.requests:
        if route in ("response", "error"):
            request_id = path.split("/invocation/", 1)[1].rsplit("/", 1)[0]
            seen[request_id] = emulator.invocation(request_id)
    return [inv for inv in seen.values() if inv is not None]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("exit_3", "Runtime exited with error: exit status 3"),
        ("sys_exit_4", "Runtime exited with error: exit status 4"),
        ("keyboard_interrupt", "Runtime exited with error: signal: interrupt"),
        ("segfault", "Runtime exited with error: signal: segmentation fault"),
        ("sigkill_self", "Runtime exited with error: signal: killed"),
        ("close_stdout_and_exit", "Runtime exited with error: exit status 120"),
    ],
)
def test_worker_death_is_reported_and_a_fresh_worker_reruns_init(emulator, runtime, action, message):
    before = _still_serving(emulator)
    outcome = invoke(emulator, {"do": action})
    assert outcome.kind == "error", outcome
    body = outcome.json()
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"] == message
    assert outcome.error_type == "Runtime.ExitError"
    after = _still_serving(emulator)
    assert after["pid"] != before["pid"], "a fresh worker must serve the next event"
    assert after["init_id"] != before["init_id"], "the fresh worker must run init again"
    died = log_records(runtime, "worker died")
    assert died and died[-1]["status"] in message


@pytest.mark.timeout(90)
@pytest.mark.parametrize("action", ["sleep_forever", "busy_loop", "ignore_sigterm"])
def test_handler_past_its_deadline_is_killed_with_its_process_group(emulator, runtime, tmp_path, action):
    before = _still_serving(emulator)
    child_pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    outcome = invoke(emulator, {"do": action, "child_pid_file": str(child_pid_file)}, timeout=2)
    elapsed = time.monotonic() - started
    # Accepted (not 410) means it was posted before the deadline.
    assert outcome.kind == "error" and outcome.status == 202, outcome
    body = outcome.json()
    assert body == {
        **body,
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 2.00 seconds",
    }
    assert elapsed < 10
    if child_pid_file.exists():
        child = int(child_pid_file.read_text())
        # SIGKILLed with the group: gone, or a zombie until init reaps it.
        assert wait_until(lambda: not is_running(child), 10), (
            f"process {child} left behind by the handler survived the kill"
        )
    killed = log_records(runtime, "worker killed at deadline")
    assert killed and killed[-1]["requestId"] == body["requestId"]
    after = _still_serving(emulator)
    assert after["pid"] != before["pid"]


@pytest.mark.timeout(60)
def test_unserialisable_result_is_a_marshal_error(emulator, runtime):
    body = invoke(emulator, {"do": "returns_set"}).json()
    assert body["errorType"] == "Runtime.MarshalError"
    assert body["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    _still_serving(emulator)


@pytest.mark.timeout(60)
def test_event_that_is_not_json_is_an_unmarshal_error(emulator, runtime):
    """Tried: a body of '{"unterminated' sent as application/json."""
    outcome = emulator.submit(b'{"unterminated', timeout=30).result(30)
    body = outcome.json()
    assert body["errorType"] == "Runtime.UnmarshalError"
    assert body["errorMessage"].startswith("Unable to unmarshal input: ")
    _still_serving(emulator)


@pytest.mark.timeout(60)
def test_result_over_the_sync_limit_is_an_error_post(emulator, runtime):
    """Tried: a 7 MiB JSON string, over the 6,291,556-byte limit."""
    outcome = invoke(emulator, {"do": "returns_big_json"})
    assert outcome.kind == "error"
    body = outcome.json()
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556" in body["errorMessage"]
    _still_serving(emulator)


@pytest.mark.timeout(120)
def test_a_huge_result_never_reaches_the_supervisors_memory(emulator, runtime):
    """Tried: a handler returning 300 MB of bytes; the supervisor must not read it."""
    _still_serving(emulator)
    outcome = invoke(emulator, {"do": "returns_huge_bytes"})
    assert outcome.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert peak_rss_kb(runtime.pid) / 1024 < 100
    _still_serving(emulator)
