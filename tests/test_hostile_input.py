"""Hostile input from both sides of the supervisor: a Runtime API sending odd request ids,
huge or malformed headers, bad client context and events at the size limit; and a worker
whose handler writes garbage on its reply pipe, forges frames or closes the pipe.

Whatever arrives, each event the runtime can identify gets exactly one answer, of the
kind the contract names, and the runtime goes on serving the next one.
"""

from __future__ import annotations

import http.client
import json
import struct
import time

import pytest
from chaos_support import CHAOS_APP, HANDLER, MAX_PAYLOAD, wait_until, worker_replacements
from runtime_harness import invoke, running_runtime

pytestmark = pytest.mark.chaos

ENV = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}
FRAME = struct.Struct("!cII")


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, {"app.py": CHAOS_APP}, HANDLER, env=ENV) as runtime:
        yield runtime


def _serving(emulator, n: int = -1) -> None:
    outcome = invoke(emulator, {"do": "ok", "n": n}, timeout=30)
    assert outcome.kind == "response" and outcome.json()["n"] == n, outcome


def _only_answer(emulator, invocation, timeout: float = 30):
    outcome = invocation.result(timeout)
    assert emulator.outcomes(invocation.request_id) == [outcome]
    assert invocation.rejected == []
    assert outcome.status == 202
    return outcome


# ----------------------------------------------------------------------- request ids

ODD_IDS = [
    "a/b",
    "..",
    "../../runtime/init/error",
    "/",
    "50%",
    "%2F..%2F",
    "%00",
    "x%0D%0Ay",
    "100%25",
    "id?q=1#frag",
    "tab\tin",
    "ünïcødé-ид",
    "a" * 1000,
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["ok", "raise", "exit", "hang"])
def test_odd_request_ids_are_answered_under_their_own_id(emulator, runtime, kind):
    """Tried: request ids with '/', '..', percent signs and percent-encoded CR/LF and NUL,
    '?' and '#', a tab, Latin-1 letters and 1000 characters; each for a
    result, a handler exception, a worker death and a deadline kill (the last two answered
    by the supervisor itself)."""
    timeout = 1.0 if kind == "hang" else 30
    invocations = [
        emulator.submit({"do": kind, "n": i, "code": 3}, timeout=timeout, request_id=rid)
        for i, rid in enumerate(ODD_IDS)
    ]
    for rid, invocation in zip(ODD_IDS, invocations, strict=True):
        outcome = _only_answer(emulator, invocation)
        if kind == "ok":
            assert outcome.kind == "response"
        else:
            assert outcome.kind == "error"
            assert outcome.json()["requestId"] == rid
    # Every post went to a path the API maps back to the id: nothing was addressed elsewhere.
    posts = [path for _, _, path, route in emulator.requests if route in ("response", "error")]
    assert len(posts) == len(ODD_IDS)
    assert not any(route in (None, "init_error") for _, _, _, route in emulator.requests)
    _serving(emulator)


@pytest.mark.timeout(60)
def test_a_bare_crlf_in_a_request_id_splits_the_header_and_is_survived(emulator, runtime):
    """Tried: an API that sends a request id containing a bare CR/LF, so that the id ends
    early and a forged header ('Lambda-Runtime-Deadline-Ms: 1', a deadline in 1970) follows.
    The runtime can only answer the id it was given; it must do so once and serve on.
    (The emulator never splits a header line itself: the forged line is sent raw.)"""
    evil = emulator.submit(
        {"do": "ok", "n": 1},
        timeout=30,
        request_id="evil",
        raw_header_lines=[b"Lambda-Runtime-Deadline-Ms: 1"],
    )
    assert evil.handed_out.wait(30)
    _serving(emulator)
    posted_ids = [
        path.split("/invocation/", 1)[1].rsplit("/", 1)[0]
        for _, _, path, r in emulator.requests
        if r in ("response", "error")
    ]
    assert posted_ids.count("evil") <= 1
    assert runtime.running


# ----------------------------------------------------------------------- headers


@pytest.mark.timeout(60)
def test_a_large_but_legal_client_context_reaches_the_handler(emulator, runtime):
    """Tried: a 60 KB client context header (under the HTTP parser's 64 KiB line limit)."""
    custom = {"k": "v" * 60_000}
    invocation = emulator.submit(
        {"do": "context_info"}, timeout=30, client_context=json.dumps({"custom": custom})
    )
    assert _only_answer(emulator, invocation).json()["custom"] == custom
    _serving(emulator)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param([b"X-Huge: " + b"h" * 70_000], id="header-line-over-64KiB"),
        pytest.param([b"X-Many-%d: v" % i for i in range(150)], id="150-extra-headers"),
    ],
)
def test_an_unparseable_next_answer_is_survived(emulator, runtime, raw):
    """Tried: a /next answer the HTTP parser refuses (a 70 KB header line; 150 headers).
    The event cannot be identified, so it cannot be answered; the runtime must log, poll
    again, and serve the next event, without posting anything for an id it never read."""
    bad = emulator.submit({"do": "ok", "n": 1}, timeout=30, raw_header_lines=raw)
    assert bad.handed_out.wait(30)
    _serving(emulator, 2)
    assert emulator.outcomes(bad.request_id) == []
    assert runtime.running
    posts = [r for _, _, _, r in emulator.requests if r in ("response", "error")]
    assert len(posts) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("headers", "raw"),
    [
        pytest.param({"Lambda-Runtime-Deadline-Ms": "soon"}, [], id="deadline-not-a-number"),
        pytest.param({"Lambda-Runtime-Deadline-Ms": "9" * 40}, [], id="deadline-40-digits"),
        pytest.param(
            {"Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1_000_000) + 30_000_000)},
            [],
            id="deadline-in-microseconds",
        ),
        pytest.param(
            {"Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30 * 86_400_000)},
            [],
            id="deadline-30-days-ahead",
        ),
        pytest.param({"Lambda-Runtime-Deadline-Ms": "-5"}, [], id="deadline-negative"),
        pytest.param({}, [b"this line has no colon"], id="line-without-colon"),
        pytest.param({}, [b"X-Latin: \xff\xfe\x80"], id="non-ascii-bytes"),
        pytest.param({}, [b"X-Nul: a\x00b"], id="nul-byte"),
        pytest.param({}, [b"Bad Name: v"], id="space-in-name"),
        pytest.param({"Lambda-Runtime-Invocation-Id": "x\ty z"}, [], id="invocation-id-not-a-token"),
        pytest.param({"Lambda-Runtime-Trace-Id": "t" * 8000}, [], id="8KB-trace-id"),
        pytest.param({"Lambda-Runtime-Aws-Tenant-Id": "\x01\x7f"}, [], id="control-bytes-in-tenant-id"),
    ],
)
def test_malformed_headers_on_next_still_get_one_answer(emulator, runtime, headers, raw):
    """Tried: deadlines that are not numbers, negative, 30 days ahead, in microseconds instead
    of milliseconds, or 40 digits long; a header line
    without a colon, with bytes beyond ASCII, with a NUL, with a space in its name; an
    invocation id that is not a token; an 8 KB trace id; control bytes in the tenant id.
    Each is the handler's own answer: a deadline that is not a sane epoch counts as missing
    (Lambda's longest timeout), and the other oddities are only carried to the context."""
    invocation = emulator.submit({"do": "ok", "n": 7}, timeout=30, headers=headers, raw_header_lines=raw)
    outcome = _only_answer(emulator, invocation)
    assert outcome.kind == "response", outcome
    assert outcome.json()["n"] == 7
    _serving(emulator)


@pytest.mark.timeout(60)
def test_an_empty_request_id_is_skipped_and_the_runtime_serves_on(emulator, runtime):
    """Tried: a /next answer whose Lambda-Runtime-Aws-Request-Id header is empty."""
    bad = emulator.submit({"do": "ok", "n": 1}, timeout=30, headers={"Lambda-Runtime-Aws-Request-Id": ""})
    assert bad.handed_out.wait(30)
    _serving(emulator)
    assert runtime.wait_for_json(lambda r: "Request-Id" in str(r.get("message")), 10) is not None
    assert emulator.outcomes(bad.request_id) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("client_context", "{not json", "Runtime.LambdaContextUnmarshalError"),
        ("client_context", "\x7f\x01", "Runtime.LambdaContextUnmarshalError"),
        ("cognito_identity", "{'single': 'quotes'}", "Runtime.LambdaContextUnmarshalError"),
        ("client_context", "[1, 2]", None),
        ("client_context", "null", None),
        ("client_context", '"a string"', None),
    ],
)
def test_client_context_that_is_not_a_json_object(emulator, runtime, field, value, error_type):
    """Tried: client context and Cognito identity headers that are not JSON, and client
    contexts that are JSON but not objects (a list, null, a string)."""
    invocation = emulator.submit({"do": "context_info"}, timeout=30, **{field: value})
    outcome = _only_answer(emulator, invocation)
    if error_type is None:
        assert outcome.kind == "response" and outcome.json()["custom"] is None
    else:
        assert outcome.kind == "error" and outcome.error_type == error_type
        assert outcome.json()["requestId"] == invocation.request_id
    _serving(emulator)
    assert worker_replacements(runtime) == []


# ----------------------------------------------------------------------- size limits


def _invoke_api(emulator, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(emulator.address, timeout=60)
    try:
        conn.request("POST", "/2015-03-31/functions/function/invocations", body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_an_event_of_exactly_the_size_limit_and_one_byte_over(emulator, runtime):
    """Tried: through the Invoke API, a JSON event of exactly 6,291,556 bytes (served) and
    one of 6,291,557 bytes (refused with 413 before any runtime sees it)."""
    exact = b'"' + b"e" * (MAX_PAYLOAD - 2) + b'"'
    status, body = _invoke_api(emulator, exact)
    assert status == 200, body[:300]
    assert json.loads(body) == {"len": MAX_PAYLOAD - 2}
    posts = sum(1 for _, _, _, r in emulator.requests if r in ("response", "error"))
    status, body = _invoke_api(emulator, exact + b" ")
    assert status == 413, body[:300]
    assert emulator.pending() == [], "the over-limit event must never be queued for the runtime"
    assert sum(1 for _, _, _, r in emulator.requests if r in ("response", "error")) == posts
    _serving(emulator)


@pytest.mark.timeout(120)
def test_an_over_limit_event_delivered_anyway_is_served(emulator, runtime):
    """Tried: a Runtime API that delivers an event one byte over the limit (and one of
    20 MB) regardless; the runtime has no reason to refuse what the platform let in."""
    for size in (MAX_PAYLOAD + 1, 20 * 1024 * 1024):
        event = b'"' + b"o" * (size - 2) + b'"'
        outcome = _only_answer(emulator, emulator.submit(event, timeout=60), 60)
        assert outcome.json() == {"len": size - 2}
    _serving(emulator)


@pytest.mark.timeout(120)
def test_a_result_of_exactly_the_size_limit_and_one_byte_over(emulator, runtime):
    """Tried: results of exactly 6,291,556 bytes (posted) and 6,291,557 bytes (reported as
    Function.ResponseSizeTooLarge)."""
    exact = _only_answer(emulator, emulator.submit({"do": "exact_limit", "size": MAX_PAYLOAD}, timeout=60))
    assert exact.kind == "response" and len(exact.body) == MAX_PAYLOAD
    over = _only_answer(emulator, emulator.submit({"do": "exact_limit", "size": MAX_PAYLOAD + 1}, timeout=60))
    assert over.kind == "error" and over.error_type == "Function.ResponseSizeTooLarge"
    assert str(MAX_PAYLOAD + 1) in over.json()["errorMessage"]
    _serving(emulator)


# ----------------------------------------------------------------------- the reply pipe


def _frame(
    kind: bytes, meta: bytes, body: bytes, *, meta_len: int | None = None, body_len: int | None = None
) -> bytes:
    header = FRAME.pack(
        kind, len(meta) if meta_len is None else meta_len, len(body) if body_len is None else body_len
    )
    return header + meta + body


GARBAGE = [
    pytest.param(b"zzzz-not-a-frame", None, "Runtime.WorkerProtocolError", id="junk"),
    pytest.param(
        _frame(b"O", b"", b"", meta_len=1 << 30),
        None,
        "Runtime.WorkerProtocolError",
        id="huge-metadata-length",
    ),
    pytest.param(
        _frame(b"O", b"{}", b"", body_len=500 << 20),
        None,
        "Function.ResponseSizeTooLarge",
        id="huge-body-length",
    ),
    pytest.param(_frame(b"O", b"notjs", b""), None, "Runtime.WorkerProtocolError", id="metadata-not-json"),
    pytest.param(_frame(b"X", b"[1]", b""), None, "Runtime.WorkerProtocolError", id="metadata-not-an-object"),
    pytest.param(
        _frame(b"O", b"[" * 200_000 + b"]" * 200_000, b""),
        None,
        "Runtime.WorkerProtocolError",
        id="metadata-nested-too-deep",
    ),
    pytest.param(
        _frame(b"R", b"{}", b""), None, "Runtime.WorkerProtocolError", id="ready-frame-mid-invocation"
    ),
    pytest.param(b"O\x00\x00", "exit", "Runtime.ExitError", id="half-a-header-then-exit"),
    pytest.param(b"O\x00\x00", "hang", "Sandbox.Timedout", id="half-a-header-then-hang"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("data", "then", "error_type"), GARBAGE)
def test_a_handler_writing_garbage_on_the_reply_pipe(emulator, runtime, data, then, error_type):
    """Tried: a handler that finds the worker's reply pipe in /proc/self/fd and writes junk,
    frame headers announcing a 1 GiB metadata block or a 500 MB body, metadata that is not
    JSON, not an object or nested too deep to decode, a READY frame in the middle of an invocation, and half a header
    followed by the worker exiting or hanging."""
    event = {"do": "garbage", "n": 1, "hex": data.hex()}
    if then:
        event["then"] = then
    invocation = emulator.submit(event, timeout=3 if then == "hang" else 30)
    outcome = _only_answer(emulator, invocation)
    assert outcome.kind == "error" and outcome.error_type == error_type, outcome
    _serving(emulator)
    assert len(worker_replacements(runtime)) == 1, "the tainted worker must be replaced"


@pytest.mark.timeout(60)
def test_a_handler_closing_the_reply_pipe_and_returning(emulator, runtime):
    """Tried: a handler that closes the worker's reply pipe, then returns a result the
    worker can no longer send."""
    outcome = _only_answer(emulator, emulator.submit({"do": "close_pipe", "n": 1}, timeout=30))
    assert outcome.kind == "error"
    assert outcome.error_type in ("Runtime.ExitError", "Runtime.WorkerProtocolError"), outcome
    _serving(emulator)


@pytest.mark.timeout(60)
def test_a_handler_closing_the_reply_pipe_and_hanging_is_not_waited_for_until_the_deadline(emulator, runtime):
    """Tried: a handler that closes the reply pipe and then sleeps; nothing can come back,
    so waiting for the 30 s deadline would only waste it."""
    started = time.monotonic()
    outcome = _only_answer(
        emulator, emulator.submit({"do": "close_pipe", "n": 1, "then": "hang"}, timeout=30)
    )
    assert outcome.kind == "error" and outcome.error_type == "Runtime.WorkerProtocolError", outcome
    assert time.monotonic() - started < 15
    _serving(emulator)


@pytest.mark.timeout(60)
def test_a_forged_frame_never_becomes_another_invocations_answer(emulator, runtime):
    """Tried: a handler that writes a complete, well-formed RESULT frame on the reply pipe and
    then returns normally, so two replies are queued for one event. Whatever the first event
    is answered with, the next event must be answered with its own result, not with the
    reply left over from the event before."""
    forged = _frame(b"O", b'{"content_type":"application/json"}', b'{"forged": true}')
    first = emulator.submit({"do": "garbage", "n": 1, "hex": forged.hex()}, timeout=30)
    _only_answer(emulator, first)
    second = emulator.submit({"do": "ok", "n": 2}, timeout=30)
    outcome = _only_answer(emulator, second)
    assert outcome.kind == "response", outcome
    assert outcome.json().get("n") == 2, (
        f"event n=2 was answered with {outcome.body[:200]!r}: the leftover reply of the previous event"
    )


@pytest.mark.timeout(60)
def test_garbage_in_a_burst_of_events_taints_only_its_own(emulator, runtime):
    """Tried: 60 queued events where every third handler writes junk on the reply pipe."""
    items = []
    for n in range(60):
        event = {"do": "garbage", "n": n, "hex": "7a7a7a"} if n % 3 == 0 else {"do": "ok", "n": n}
        items.append((n, emulator.submit(event, timeout=30)))
    for n, invocation in items:
        outcome = _only_answer(emulator, invocation)
        if n % 3 == 0:
            assert outcome.error_type == "Runtime.WorkerProtocolError", (n, outcome)
        else:
            assert outcome.kind == "response" and outcome.json()["n"] == n, (n, outcome)
    assert wait_until(lambda: len(worker_replacements(runtime)) == 20, 10)


TAMPERING_APP = """
import sys

def handler(event, context):
    if event.get("content_type"):
        # Handler code can reach the worker's own modules (through its caller's globals,
        # as they are not importable); the supervisor must not trust what they produce.
        marshal = sys._getframe(1).f_globals["marshal"]
        marshal.encode_result = lambda result: (b'"x"', event["content_type"])
    return event.get("n")
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain\r\nX-Injected: 1", "text/\u2713", "", "x" * 300],
    ids=["crlf", "not-latin-1", "empty", "too-long"],
)
def test_a_content_type_that_cannot_be_a_header_is_a_protocol_error(emulator, tmp_path, content_type):
    """Tried: a handler that patches the worker's marshalling to reply with a content type
    holding CR/LF (request splitting), a character outside latin-1, nothing, or 300 bytes.
    The event gets one WorkerProtocolError, nothing reaches the Runtime API's headers,
    and a fresh worker serves the next event."""
    with running_runtime(emulator, tmp_path, {"app.py": TAMPERING_APP}, "app.handler") as runtime:
        invocation = emulator.submit({"content_type": content_type}, timeout=30)
        outcome = _only_answer(emulator, invocation)
        served = invoke(emulator, {"n": 7})
        assert runtime.running
    if content_type == "":
        # An empty content type means "the default", as it always has.
        assert outcome.kind == "response" and outcome.headers["Content-Type"] == "application/json"
    else:
        assert outcome.kind == "error" and outcome.error_type == "Runtime.WorkerProtocolError", outcome
        assert "content type" in outcome.json()["errorMessage"]
    # No request was split in two: every request the emulator saw is one it knows.
    assert all(route is not None for _, _, _, route in emulator.requests), emulator.requests
    assert "X-Injected" not in outcome.headers
    assert served.kind == "response" and served.json() == 7


def _forging_module(frame: bytes) -> str:
    """The chaos app, writing ``frame`` on the worker's reply pipe as it is imported."""
    return CHAOS_APP + f"\nos.write(reply_pipe(), bytes.fromhex({frame.hex()!r}))\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "meta", [b'{"init_ms": "soon"}', b'{"init_ms": [1]}'], ids=["init-ms-a-string", "init-ms-a-list"]
)
def test_a_ready_report_forged_at_import_is_survived(emulator, tmp_path, meta):
    """Tried: handler code that, while it is imported, writes a READY frame whose init_ms is
    not a number ahead of the worker's own report. The supervisor takes it, the worker's
    real report then arrives where the first reply is due and is refused, and each event
    gets one WorkerProtocolError while the runtime goes on."""
    app = _forging_module(_frame(b"R", meta, b""))
    with running_runtime(emulator, tmp_path, {"app.py": app}, HANDLER) as runtime:
        first = _only_answer(emulator, emulator.submit({"do": "ok", "n": 1}, timeout=30))
        # The replacement imports the module, and forges, again: so it goes every time.
        second = _only_answer(emulator, emulator.submit({"do": "ok", "n": 2}, timeout=30))
        assert runtime.running
    for outcome in (first, second):
        assert outcome.kind == "error" and outcome.error_type == "Runtime.WorkerProtocolError", outcome


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body", [b"[1]", b"[" * 200_000 + b"]" * 200_000, b"\xff\xfe"], ids=["a-list", "nested", "not-utf8"]
)
def test_an_init_error_forged_at_import_is_reported_and_the_runtime_exits_cleanly(emulator, tmp_path, body):
    """Tried: handler code that, while it is imported, writes an init-error frame whose body
    is a JSON list, JSON nested 200,000 deep, or not UTF-8. The body is posted to
    /init/error as it is, and the supervisor exits with its init-failure status, not a
    traceback."""
    app = _forging_module(_frame(b"I", b'{"error_type": "Forged"}', body))
    with running_runtime(emulator, tmp_path, {"app.py": app}, HANDLER, wait_ready=False) as runtime:
        assert wait_until(lambda: not runtime.running, 20), "the runtime should exit after an init error"
        output = runtime.output()
    assert len(emulator.init_errors) == 1
    assert "Traceback" not in output, output[-2000:]
    assert '"message":"init failed"' in output
