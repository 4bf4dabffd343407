"""A broken or hostile Runtime API, and bad configuration: the supervisor survives, and every
event it takes gets exactly one answer.

Faults no well-behaved HTTP server produces (an answer cut short after its head, repeated
or undecodable request-id headers, a post read and never answered, a strict proxy refusing
long headers) come from a raw-socket fake API (tests/fake_runtime_api.py); the rest from
the project's emulator. The runtime under test is always the real bin/bootstrap.
"""

from __future__ import annotations

import json
import os
import signal
import time
from urllib.parse import unquote_to_bytes

import pytest
from chaos_support import HANDLER, worker_replacements
from fake_runtime_api import ACCEPTED, DROP, HOLD, FakeRuntimeAPI, Reply, answer, event
from proc_support import catches_signal, wait_until
from runtime_harness import copy_handler, handler_files, invoke, log_records, only_answer, running_runtime

from lambda_supervisor.process import RuntimeProcess

ENV = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}
XRAY_HEADER = "lambda-runtime-function-xray-error-cause"


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        yield runtime


def _ok(n: int) -> bytes:
    return json.dumps({"do": "ok", "n": n}).encode()


def _served(api: FakeRuntimeAPI, request_id: str, n: int, timeout: float = 30) -> None:
    """Hand out one ordinary event on the fake API and check its single response."""
    api.queue(event(request_id, _ok(n)))
    assert api.wait_for(
        lambda requests: any(r.route == "response" for r in _posts_for(requests, request_id)), timeout
    )
    [post] = _posts_for(api.requests, request_id)
    assert post.route == "response" and post.json()["n"] == n


def _posts_for(requests, segment: str):
    return [r for r in requests if r.route in ("response", "error") and r.id_segment == segment]


# ----------------------------------------------------------------------- deadlines


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "deadline",
    [
        "9" * 400,
        "1",
        "-5",
        "0",
        str(int(time.time() * 1_000_000)),
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
        "1e15",
    ],
    ids=["400-digits", "1970", "negative", "zero", "microseconds", "arabic-indic-digits", "float"],
)
def test_a_deadline_that_is_not_a_sane_epoch_is_treated_as_missing(emulator, runtime, deadline):
    """Tried: Lambda-Runtime-Deadline-Ms of 400 nines (float overflow), 1 (1970), -5, 0, the
    time in microseconds (year 50,000-odd), a 13-digit value in Arabic-Indic digits (which
    int() reads), and 1e15. Each is not a deadline: the handler runs with Lambda's longest
    timeout (900 s), as when the header is missing, and the supervisor serves on."""
    invocation = emulator.submit(
        {"do": "context_info"}, timeout=30, headers={"Lambda-Runtime-Deadline-Ms": deadline}
    )
    outcome = only_answer(emulator, invocation)
    assert outcome.kind == "response", outcome
    assert 880_000 < outcome.json()["remaining_ms"] <= 900_000
    assert invoke(emulator, {"do": "ok", "n": 2}).json()["n"] == 2
    assert runtime.running


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [100, 6_000_000], ids=["small", "6MB"])
def test_an_event_already_expired_on_arrival_is_a_timeout_and_the_worker_is_kept(emulator, runtime, size):
    """Tried: events whose Lambda-Runtime-Deadline-Ms is a minute in the past when they
    arrive, of 100 bytes and of 6 MB. Each is answered Sandbox.Timedout without being
    handed to the worker, which therefore serves the next event (same pid, no replacement)."""
    before = invoke(emulator, {"do": "ok", "n": 1}).json()["pid"]
    past = str(int(time.time() * 1000) - 60_000)
    body = json.dumps({"do": "ok", "n": 2, "pad": "p" * size}).encode()
    invocation = emulator.submit(body, timeout=30, headers={"Lambda-Runtime-Deadline-Ms": past})
    outcome = only_answer(emulator, invocation)
    assert outcome.error_type == "Sandbox.Timedout", outcome
    assert outcome.json()["errorMessage"].startswith("Task timed out after")
    assert invoke(emulator, {"do": "ok", "n": 3}).json()["pid"] == before
    assert worker_replacements(runtime) == []


@pytest.mark.timeout(60)
def test_a_deadline_passing_while_a_6mb_event_is_handed_over_is_a_timeout(emulator, runtime):
    """Tried: a 6 MB event (1.5 s timeout) for a worker that has been stopped (SIGSTOP by a
    child the previous handler left), so the pipe fills and the deadline passes while the
    event is being handed over. That is the event's timeout, not a worker death; the worker
    holds part of the event, so it is replaced, once, and the next event is served."""
    assert invoke(emulator, {"do": "freeze_soon", "n": 1, "seconds": 10}).kind == "response"
    time.sleep(0.5)  # the worker is stopped now
    body = json.dumps({"do": "ok", "n": 2, "pad": "p" * 6_000_000}).encode()
    outcome = only_answer(emulator, emulator.submit(body, timeout=1.5))
    assert outcome.error_type == "Sandbox.Timedout", outcome
    assert invoke(emulator, {"do": "ok", "n": 3}).json()["n"] == 3
    [replacement] = worker_replacements(runtime)
    assert replacement["reason"] == "worker killed at deadline"


# ----------------------------------------------------------------------- /next answers


def _fake_runtime(api: FakeRuntimeAPI, tmp_path, env=None, *, wait_ready: bool = True):
    env = {**ENV, **(env or {})}
    return running_runtime(api, tmp_path, handler_files("chaos_app"), HANDLER, env=env, wait_ready=wait_ready)


@pytest.mark.timeout(60)
def test_next_answers_without_a_request_id_are_backed_off_and_logged_once(tmp_path):
    """Tried: a Runtime API answering every GET /next with 200 and an event but no request id
    for 1.5 s, then a proper event. Such an event cannot be answered; the runtime backs off
    as for a 5xx (not thousands of polls a second), logs the episode once, and serves the
    proper event when it comes."""
    polls: list[float] = []

    def script(request):
        if request.route == "next":
            polls.append(time.monotonic())
            if polls[-1] < polls[0] + 1.5:
                return Reply(answer(200, _ok(1)))
        return None

    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path) as runtime:
        bad_polls = len(polls) - 1  # the last one is waiting for the proper event
        _served(api, "good-1", 2)
        assert 3 <= bad_polls <= 12, bad_polls
        records = log_records(
            runtime, "event without Lambda-Runtime-Aws-Request-Id cannot be answered; skipped"
        )
        assert len(records) == 1, records
        assert runtime.running


@pytest.mark.timeout(60)
def test_next_answers_without_a_request_id_for_the_whole_retry_window_end_the_runtime(tmp_path):
    """Tried: every GET /next answered 200 with no request id, and a 1 s retry window: like
    a 5xx for that long, it ends the runtime (exit status 3) after a few polls."""

    def script(request):
        return Reply(answer(200, _ok(1))) if request.route == "next" else None

    env = {"LAMBDA_SUPERVISOR_API_RETRY_SECONDS": "1"}
    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path, env, wait_ready=False) as runtime:
        assert runtime.wait(10) == 3
        assert 3 <= len(api.routed("next")) <= 12, len(api.routed("next"))
        assert any(r.get("message") == "runtime API failure, exiting" for r in runtime.json_lines())


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "cut",
    [
        b"Content-Length: 1000\r\n\r\n" + b'{"do": "ok"',
        b"Content-Length: 1000\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + b'{"do": "ok"',
        b"Content-Length: 999999999999\r\n\r\n",
    ],
    ids=["mid-body", "before-the-body", "mid-chunk", "length-out-of-range"],
)
def test_a_next_answer_cut_short_after_its_head_gets_one_error(tmp_path, cut):
    """Tried: /next answers whose head (with request id "cut-1") is complete but whose body
    never is: the connection closed after 11 of 1000 bytes, before any byte, inside a
    chunk, and a Content-Length far past any payload. The event was handed out and its id
    is known: it gets exactly one /error, and the runtime serves the next event."""
    head = b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: cut-1\r\nContent-Type: application/json\r\n"
    cut_sent: list[object] = []

    def script(request):
        if request.route == "next" and not cut_sent:
            cut_sent.append(request)
            return Reply(head + cut, "close")
        return None

    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path):
        _served(api, "after-1", 2)
        [post] = _posts_for(api.requests, "cut-1")
    assert post.route == "error"
    assert post.header("lambda-runtime-function-error-type") == b"Runtime.IncompleteEvent"
    body = post.json()
    assert body["requestId"] == "cut-1" and body["errorType"] == "Runtime.IncompleteEvent"
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}


@pytest.mark.timeout(60)
def test_an_event_with_two_different_request_ids_is_never_answered_under_either(tmp_path):
    """Tried: a /next answer carrying Lambda-Runtime-Aws-Request-Id twice, "dup-a" and
    "dup-b". Which invocation it is cannot be known: an answer under either id, or under
    the joined "dup-a, dup-b", could answer another invocation. It is skipped (logged,
    backed off) and the next event is served."""
    lines = [b"Lambda-Runtime-Aws-Request-Id: dup-b"]
    with FakeRuntimeAPI() as api, _fake_runtime(api, tmp_path) as runtime:
        api.queue(event("dup-a", _ok(1), header_lines=lines))
        _served(api, "after-1", 2)
        posts = [r for r in api.requests if r.route in ("response", "error")]
        assert [r.id_segment for r in posts] == ["after-1"]
        records = log_records(runtime, "event with more than one request id cannot be answered; skipped")
        assert len(records) == 1 and records[0]["requestIds"] == ["dup-a", "dup-b"]


@pytest.mark.timeout(60)
def test_an_event_with_its_request_id_repeated_identically_is_answered_once(tmp_path):
    """Tried: Lambda-Runtime-Aws-Request-Id sent twice with the same value "same-1": one id,
    answered under it (not under "same-1, same-1")."""
    with FakeRuntimeAPI() as api, _fake_runtime(api, tmp_path):
        api.queue(event("same-1", _ok(1), header_lines=[b"Lambda-Runtime-Aws-Request-Id: same-1"]))
        _served(api, "after-1", 2)
        [post] = _posts_for(api.requests, "same-1")
        assert post.route == "response" and post.json()["n"] == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "raw_id",
    [b"id-\xff\xfe", b"voil\xc3\xa0", b"nbsp\xa0", b"\x85nel", "ид-✓".encode()],
    ids=["not-utf8", "utf8-ending-in-a0", "latin1-nbsp", "latin1-nel", "utf8"],
)
def test_request_id_bytes_are_posted_back_exactly(tmp_path, raw_id):
    """Tried: request ids whose bytes are not UTF-8 (ff fe), UTF-8 ending in the byte a0
    ("voilà"), a lone a0 and a lone 85 (both whitespace once read as latin-1), and plain
    UTF-8. The answer's path carries exactly the bytes received, percent-encoded; the
    handler sees the UTF-8 text, with any undecodable byte as a \\xNN escape."""
    with FakeRuntimeAPI() as api, _fake_runtime(api, tmp_path):
        api.queue(event(raw_id, json.dumps({"do": "context_info"}).encode()))
        assert api.wait_for(lambda requests: any(r.route == "response" for r in requests), 30)
        [post] = [r for r in api.requests if r.route == "response"]
    segment = post.id_segment
    assert segment.isascii() and "/" not in segment and " " not in segment
    assert unquote_to_bytes(segment) == raw_id
    assert post.json()["request_id"] == raw_id.decode("utf-8", "backslashreplace")


# ----------------------------------------------------------------------- posts


@pytest.mark.timeout(60)
def test_sigterm_ends_a_post_the_api_reads_and_never_answers(tmp_path):
    """Tried: a Runtime API that reads the /response post and never answers it, then
    SIGTERM to the supervisor. The answer cannot be confirmed; the runtime exits cleanly
    and promptly instead of waiting for ever."""

    def script(request):
        return HOLD if request.route == "response" else None

    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path) as runtime:
        api.queue(event("held-1", _ok(1)))
        assert api.wait_for(lambda requests: any(r.route == "response" for r in requests), 30)
        assert wait_until(lambda: catches_signal(runtime.pid, signal.SIGTERM), 10)
        os.kill(runtime.pid, signal.SIGTERM)
        started = time.monotonic()
        assert runtime.wait(10) == 0
        assert time.monotonic() - started < 2.5
        assert len(api.routed("response")) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nth", [1, 2], ids=["first-event", "after-the-hand-over-to-urllib3"])
def test_a_connection_the_api_closes_while_the_handler_runs_is_replaced_before_the_post(tmp_path, nth):
    """Tried: a Runtime API that closes the keep-alive connection right after handing out an
    event whose handler then runs 0.2 s, on the first event's connection (before urllib3 is
    loaded) and on a later one's (urllib3's). The drop is found before the post, which goes
    out once, on a fresh connection, with no retry; the runtime serves on."""
    polls = 0

    def script(request):
        nonlocal polls
        if request.route != "next":
            return None
        polls += 1
        if polls != nth:
            return None
        slow = json.dumps({"do": "sleep_ok", "seconds": 0.2, "n": 0}).encode()
        return Reply(event("dropped-1", slow), "close")

    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path) as runtime:
        if nth > 1:
            _served(api, "before-1", 1)
        assert api.wait_for(lambda requests: _posts_for(requests, "dropped-1"), 30)
        _served(api, "after-1", 2)
        [post] = _posts_for(api.requests, "dropped-1")
        assert post.route == "response"
        assert not [r for r in runtime.json_lines() if "retrying" in str(r.get("message"))]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("second", [202, 403], ids=["then-accepted", "then-403-the-first-landed"])
def test_a_post_the_api_reads_and_never_answers_is_retried_after_a_timeout(tmp_path, second):
    """Tried: a Runtime API that reads the first /response post and never answers; the retry
    is answered 202, or 403 (the first attempt had landed). The runtime gives up waiting
    after its answer timeout (10 s), retries once, takes either answer as the event's one
    answer, logs no refusal, and serves the next event."""

    def script(request):
        if request.route == "response" and request.id_segment == "held-1":
            if len(_posts_for(api.requests, "held-1")) == 1:
                return HOLD
            return Reply(answer(second)) if second != 202 else ACCEPTED
        return None

    api = FakeRuntimeAPI(script)
    with api, _fake_runtime(api, tmp_path) as runtime:
        api.queue(event("held-1", _ok(1)))
        assert api.wait_for(lambda requests: len(_posts_for(requests, "held-1")) == 2, 30)
        first, retry = _posts_for(api.requests, "held-1")
        assert 9.5 < retry.at - first.at < 13
        assert retry.body == first.body
        _served(api, "after-1", 2)
        assert not [r for r in runtime.json_lines() if r.get("message") == "runtime API refused the post"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "replies",
    [[DROP, Reply(answer(403))], [Reply(answer(502)), Reply(answer(400))]],
    ids=["dropped-then-403", "502-then-400"],
)
def test_a_refusal_after_a_retry_means_the_first_attempt_landed(tmp_path, replies):
    """Tried: a /response post whose connection is dropped, or answered 502, after the API
    read it, and whose retry is then refused 403 or 400 (the API has the answer already).
    The runtime makes no third attempt and reports no refusal: the event has its answer."""

    def script(request):
        if request.route == "response" and request.id_segment == "twice-1":
            return replies[len(_posts_for(api.requests, "twice-1")) - 1]
        return None

    api = FakeRuntimeAPI(script)
    with api, _fake_runtime(api, tmp_path) as runtime:
        api.queue(event("twice-1", _ok(1)))
        _served(api, "after-1", 2)
        assert len(_posts_for(api.requests, "twice-1")) == 2
        assert not [r for r in runtime.json_lines() if r.get("message") == "runtime API refused the post"]


# ----------------------------------------------------------------------- X-Ray error cause


def _cause_header(outcome) -> dict:
    raw = outcome.headers.get("Lambda-Runtime-Function-XRay-Error-Cause")
    assert raw is not None, "the X-Ray cause was dropped"
    assert len(raw.encode()) <= 4096, len(raw)
    return json.loads(raw)


@pytest.mark.timeout(60)
def test_a_huge_exception_message_keeps_the_error_and_a_capped_xray_cause(emulator, runtime):
    """Tried: a handler raising ValueError with a 200 KB message; its X-Ray cause would be a
    header far over the 64 KiB a standard HTTP server accepts (431: the error would be
    lost). The error is posted once with a cause of at most 4 KiB, valid JSON, keeping the
    start of the message."""
    invocation = emulator.submit(b'{"do": "raise", "n": "' + b"m" * 200_000 + b'"}', timeout=30)
    outcome = only_answer(emulator, invocation, 15)
    assert outcome.error_type == "ValueError"
    cause = _cause_header(outcome)
    [exception] = cause["exceptions"]
    assert exception["type"] == "ValueError"
    assert exception["message"].startswith("bad value mmmm") and len(exception["message"]) < 4096


FORGED_CAUSES = {
    "long-message": {
        "working_directory": "/var/task",
        "exceptions": [{"message": "q" * 500_000, "type": "ValueError", "stack": []}],
        "paths": [],
    },
    "deep-stack": {
        "working_directory": "/var/task",
        "exceptions": [
            {
                "message": "deep",
                "type": "RecursionError",
                "stack": [{"label": f"f{i}", "path": f"/var/task/m{i}.py", "line": i} for i in range(8_000)],
            }
        ],
        "paths": [f"/var/task/m{i}.py" for i in range(8_000)],
    },
    "foreign-shape": {"exceptions": "not a list", "junk": "j" * 300_000, "paths": {"a": 1}},
    "many-exceptions": {
        "working_directory": "w" * 100_000,
        "exceptions": [{"message": "e" * 1000, "type": "T" * 1000, "stack": [1, "x", None]}] * 300,
    },
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shape", list(FORGED_CAUSES))
def test_a_forged_xray_cause_is_capped_by_the_supervisor(emulator, runtime, shape):
    """Tried: handler code that takes the reply token from the worker's stack and writes its
    own error frame, with an X-Ray cause of a 500 KB message, 8,000 stack frames, a
    foreign shape (exceptions not a list, 300 KB of unknown keys), or 300 exceptions (with
    stack entries that are not frames) under a 100 KB working directory. The supervisor
    alone keeps the header to at most 4 KiB of valid JSON in the cause's own shape (none at
    all for the foreign shape), and the error is posted once."""
    event_body = json.dumps({"do": "forge_error", "n": 1, "cause": FORGED_CAUSES[shape]}).encode()
    outcome = only_answer(emulator, emulator.submit(event_body, timeout=30), 15)
    assert outcome.error_type == "ValueError" and outcome.json()["errorMessage"] == "forged"
    if shape == "foreign-shape":
        # Nothing in it is a cause: no header at all, rather than one of junk.
        assert "Lambda-Runtime-Function-XRay-Error-Cause" not in outcome.headers
        return
    cause = _cause_header(outcome)
    assert set(cause) == {"working_directory", "exceptions", "paths"}
    if shape == "deep-stack":
        stack = cause["exceptions"][0]["stack"]
        assert 10 < len(stack) < 8_000
        assert stack[-1] == {"label": "f7999", "path": "/var/task/m7999.py", "line": 7999}
        assert cause["paths"] == sorted({frame["path"] for frame in stack})
    assert invoke(emulator, {"do": "ok", "n": 2}).json()["n"] == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", [431, 400])
def test_an_error_post_refused_for_its_xray_header_is_sent_again_without_it(tmp_path, status):
    """Tried: a strict proxy in front of the Runtime API that refuses any /error post
    carrying the X-Ray cause header, with 431 or 400. The error is posted once more without
    that header and accepted: it is never lost."""

    def script(request):
        if request.route == "error" and request.header(XRAY_HEADER) is not None:
            return Reply(answer(status))
        return None

    with FakeRuntimeAPI(script) as api, _fake_runtime(api, tmp_path):
        api.queue(event("xray-1", json.dumps({"do": "raise", "n": 1}).encode()))
        _served(api, "after-1", 2)
        first, second = _posts_for(api.requests, "xray-1")
    assert first.route == second.route == "error"
    assert first.header(XRAY_HEADER) is not None and second.header(XRAY_HEADER) is None
    assert second.body == first.body and second.json()["errorType"] == "ValueError"


# ----------------------------------------------------------------------- configuration

NUMERIC_SETTINGS = [
    "LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS",
    "LAMBDA_SUPERVISOR_INIT_TIMEOUT",
    "LAMBDA_SUPERVISOR_API_RETRY_SECONDS",
    "LAMBDA_SUPERVISOR_MAX_INVOCATIONS",
    "LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB",
    "LAMBDA_SUPERVISOR_WORKER_MEMORY_MB",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e308"])
@pytest.mark.parametrize("name", NUMERIC_SETTINGS)
def test_a_numeric_setting_out_of_range_is_refused_at_start_and_reported(emulator, tmp_path, name, value):
    """Tried: each LAMBDA_SUPERVISOR_* number set to nan, inf, -1 and 1e308. The runtime
    refuses it at start with one line naming the variable, reports it to /init/error as
    Runtime.InvalidConfiguration, and exits 2 without polling for an event."""
    copy_handler(tmp_path, "chaos_app")
    runtime = RuntimeProcess(HANDLER, runtime_api=emulator.address, task_root=tmp_path, env={name: value})
    with runtime:
        assert runtime.wait(15) == 2
        output = runtime.output()
    [line] = [line for line in output.splitlines() if line.startswith("lambda-supervisor:")]
    assert line.startswith(f"lambda-supervisor: {name}={value!r}"), output
    [report] = emulator.init_errors
    assert report.error_type == "Runtime.InvalidConfiguration"
    body = report.json()
    assert body["errorType"] == "Runtime.InvalidConfiguration"
    assert body["errorMessage"] == line.removeprefix("lambda-supervisor: ")
    assert not [route for _, _, _, route in emulator.requests if route == "next"]


@pytest.mark.timeout(60)
def test_numeric_settings_at_the_edges_of_their_range_are_accepted(emulator, tmp_path):
    """Tried: a 0 ms deadline margin, a one-day init timeout, a half-second retry window,
    1e3 invocations, a 1 TiB RSS limit and an empty worker memory limit (the default): all
    accepted, and the runtime serves an event."""
    env = {
        "LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "0",
        "LAMBDA_SUPERVISOR_INIT_TIMEOUT": "86400",
        "LAMBDA_SUPERVISOR_API_RETRY_SECONDS": "0.5",
        "LAMBDA_SUPERVISOR_MAX_INVOCATIONS": "1e3",
        "LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB": "1048576",
        "LAMBDA_SUPERVISOR_WORKER_MEMORY_MB": "",
    }
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        assert invoke(emulator, {"do": "ok", "n": 1}).json()["n"] == 1
        assert runtime.running
    assert emulator.init_errors == []


@pytest.mark.timeout(30)
def test_a_count_that_is_not_whole_is_refused(emulator, tmp_path):
    """Tried: LAMBDA_SUPERVISOR_MAX_INVOCATIONS=2.5 (used to be cut to 2 without a word)."""
    copy_handler(tmp_path, "chaos_app")
    env = {"LAMBDA_SUPERVISOR_MAX_INVOCATIONS": "2.5"}
    with RuntimeProcess(HANDLER, runtime_api=emulator.address, task_root=tmp_path, env=env) as runtime:
        assert runtime.wait(15) == 2
        assert (
            "lambda-supervisor: LAMBDA_SUPERVISOR_MAX_INVOCATIONS='2.5' is not a whole number"
            in runtime.output()
        )
    assert [report.error_type for report in emulator.init_errors] == ["Runtime.InvalidConfiguration"]
