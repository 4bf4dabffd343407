"""A Runtime API that drops connections, errs or refuses: no event lost, none answered twice.

Faults are injected by the project's emulator over real HTTP; the runtime under test is
the real bin/bootstrap.
"""

from __future__ import annotations

import pytest
from runtime_harness import STARTUP_TIMEOUT, handler_files, invoke, log_records, running_runtime

from lambda_supervisor.emulator import RuntimeAPIEmulator
from supervisor.runtime_api import path_segment

# Every runtime here serves tests/handlers/echo_event.py: an answer shows which event it is for.
ECHO = handler_files("echo_event")


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, ECHO) as runtime:
        yield runtime


def _exactly_one(emulator, invocation, kind="response"):
    outcome = invocation.result(30)
    assert outcome.kind == kind
    assert len(emulator.outcomes(invocation.request_id)) == 1
    return outcome


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("action", "status"),
    [("drop", 0), ("status", 502), ("status", 503), ("status", 504), ("delay", 0)],
)
def test_next_that_fails_transiently_is_retried(emulator, runtime, action, status):
    """Tried: the answer to GET /next dropped, a 502/503/504, and a slow answer."""
    emulator.inject_fault("next", action, status=status or 500, delay=0.3, count=2)
    invocation = emulator.submit({"n": 1}, timeout=30)
    assert _exactly_one(emulator, invocation).json() == {"got": {"n": 1}}
    assert invoke(emulator, {"n": 2}).json() == {"got": {"n": 2}}


@pytest.mark.timeout(60)
def test_next_answering_500_ends_the_runtime_promptly(emulator, runtime):
    """The contract: a 500 on /next is a container error, non-recoverable; exit."""
    emulator.inject_fault("next", "status", status=500)
    emulator.submit({"n": 1}, timeout=30)  # wakes the pending long-poll... which got the fault first
    exit_code = runtime.wait(20)
    assert exit_code != 0
    assert any(r.get("message") == "runtime API failure, exiting" for r in runtime.json_lines())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("route", ["response", "error"])
@pytest.mark.parametrize(("action", "status"), [("drop", 0), ("status", 500), ("status", 503)])
def test_post_that_fails_transiently_is_retried_and_answered_once(emulator, runtime, route, action, status):
    """Tried: the post's connection dropped before an answer, and 500/503 answers."""
    emulator.inject_fault(route, action, status=status or 500, count=1)
    event = {"n": 1} if route == "response" else b"{not json"
    invocation = emulator.submit(event, timeout=30)
    _exactly_one(emulator, invocation, kind=route)
    assert invoke(emulator, {"n": 2}).json() == {"got": {"n": 2}}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("route", ["response", "error"])
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_every_transient_answer_to_a_post_is_retried_under_one_policy(emulator, runtime, route, status):
    """Tried: the /response or /error post answered 429, 500, 502, 503 or 504 five times in a
    row (a 429 used to get no retry, a 5xx three attempts within 20 ms): retried with
    backoff within the retry window, and answered once."""
    emulator.inject_fault(route, "status", status=status, count=5)
    event = {"n": 1} if route == "response" else b"{not json"
    invocation = emulator.submit(event, timeout=30)
    _exactly_one(emulator, invocation, kind=route)
    assert [r for _, _, _, r in emulator.requests if r in ("response", "error")] == [route] * 6
    assert invoke(emulator, {"n": 2}).json() == {"got": {"n": 2}}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("action", "status"), [("drop", 0), ("status", 503), ("status", 429), ("status", 500)]
)
def test_a_post_failing_for_the_whole_retry_window_is_given_up_once(emulator, tmp_path, action, status):
    """Tried: every /response post dropped, or answered 503, 429 or 500, with a 1 s retry
    window. Each kind of failure meets the same policy: attempts with backoff for about the
    window, one warning for the episode (not one per attempt), then one record that the
    post is given up."""
    emulator.inject_fault("response", action, status=status or 500, count=1000)
    env = {"LAMBDA_SUPERVISOR_API_RETRY_SECONDS": "1"}
    with running_runtime(emulator, tmp_path, ECHO, env=env) as runtime:
        invocation = emulator.submit({"n": 1}, timeout=30)
        [given_up] = log_records(runtime, "runtime API post given up")
        warnings = [
            r for r in runtime.json_lines() if r.get("message") == "runtime API post failed, retrying"
        ]
    assert 0.5 <= given_up["seconds"] <= 1.05, given_up
    assert 3 <= given_up["failed_attempts"] <= 8, given_up
    assert [r for _, _, _, r in emulator.requests if r == "response"] == ["response"] * given_up[
        "failed_attempts"
    ]
    assert len(warnings) == 1
    assert emulator.outcomes(invocation.request_id) == []


@pytest.mark.timeout(60)
def test_an_init_error_post_answered_503_is_retried(emulator, tmp_path):
    """Tried: a module that fails to import, and its /init/error post answered 503 four
    times: retried under the same policy, reported once, and the runtime exits 1."""
    emulator.inject_fault("init_error", "status", status=503, count=4)
    # The module's text is the case: an import that fails.
    with running_runtime(
        emulator, tmp_path, {"app.py": "import no_such_module\n"}, wait_ready=False
    ) as runtime:
        assert runtime.wait(20) == 1
    [report] = emulator.init_errors
    assert report.json()["errorType"] == "Runtime.ImportModuleError"
    assert [r for _, _, _, r in emulator.requests if r == "init_error"] == ["init_error"] * 5


@pytest.mark.timeout(60)
def test_410_for_a_late_post_is_logged_and_the_runtime_serves_on(emulator, runtime):
    emulator.inject_fault("response", "status", status=410)
    late = emulator.submit({"n": 1}, timeout=30)
    assert invoke(emulator, {"n": 2}).json() == {"got": {"n": 2}}
    assert emulator.outcomes(late.request_id) == []
    record = runtime.wait_for_json(lambda r: "already timed out" in str(r.get("message")), 10)
    assert record is not None and record["level"] == "WARNING"


@pytest.mark.timeout(60)
def test_413_from_the_api_becomes_a_response_too_large_error(tmp_path):
    """Tried: a result the Runtime API refuses with 413 (its limit set lower than ours)."""
    with RuntimeAPIEmulator(max_payload=1000) as emulator:
        with running_runtime(emulator, tmp_path, ECHO):
            invocation = emulator.submit({"pad": "x" * 2000}, timeout=30)
            outcome = _exactly_one(emulator, invocation, kind="error")
    assert outcome.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert [o.status for o in invocation.rejected] == [413]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("request_id", ["a/b", "..", "../../runtime/init", "50%", "x y", "id?q=1#f", "ünï"])
def test_request_ids_that_are_not_plain_tokens_are_percent_encoded(emulator, runtime, request_id):
    """Tried: request ids with slashes, dot segments, percent signs, spaces, query marks, non-ASCII."""
    invocation = emulator.submit({"n": 1}, timeout=30, request_id=request_id)
    assert _exactly_one(emulator, invocation).json() == {"got": {"n": 1}}
    [path] = [path for _, method, path, route in emulator.requests if route == "response"]
    segment = path.split("/runtime/invocation/", 1)[1].rsplit("/response", 1)[0]
    assert "/" not in segment and ".." not in segment and "?" not in segment and " " not in segment


@pytest.mark.timeout(5)
def test_path_segment_never_lets_control_characters_through():
    """Tried: CR/LF and NUL in a request id (could split the request line)."""
    encoded = path_segment("abc\r\nHost: evil\x00")
    assert encoded == "abc%0D%0AHost%3A%20evil%00"
    assert path_segment("8476a536-e9f4-11e8-9739-2dfe598c3fcd") == "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


@pytest.mark.timeout(60)
def test_runtime_started_before_the_api_is_up_retries_until_it_is(tmp_path):
    """Tried: a Runtime API address with nothing listening yet (connection refused)."""
    emulator = RuntimeAPIEmulator()
    emulator.start()
    address = emulator.address
    emulator.stop()
    host, port = address.rsplit(":", 1)
    late = RuntimeAPIEmulator(host=host, port=int(port))
    with running_runtime(late, tmp_path, ECHO, wait_ready=False) as runtime:
        import time

        time.sleep(0.5)  # the runtime is now retrying against a closed port
        assert runtime.running
        late.start()
        try:
            assert late.wait_for_poll(STARTUP_TIMEOUT), runtime.output()
            assert invoke(late, {"n": 3}).json() == {"got": {"n": 3}}
        finally:
            late.stop()
