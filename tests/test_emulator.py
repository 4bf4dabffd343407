"""The Runtime API emulator over real HTTP: what a runtime sees must match the platform.

Every test here talks to the emulator with a plain HTTP client on a real socket, the way
``bin/bootstrap`` does, so a broken status code, header or keep-alive shows up here
before it can mislead an end-to-end test.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import urllib3

from lambda_supervisor.emulator import RuntimeAPIEmulator

NEXT_PATH = "/2018-06-01/runtime/invocation/next"

TOO_LARGE_BODY = {
    "errorType": "RequestEntityTooLarge",
    "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
}


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on ``conn`` and read the whole answer."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def post_json(conn: http.client.HTTPConnection, path: str, payload: Any) -> tuple[int, Any]:
    status, _, body = request(conn, "POST", path, json.dumps(payload).encode())
    return status, json.loads(body) if body else None


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout``, for states with no event to wait on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def take_next(conn: http.client.HTTPConnection) -> tuple[int, dict[str, str], bytes]:
    return request(conn, "GET", NEXT_PATH)


def result_path(request_id: str, kind: str = "response") -> str:
    return f"/2018-06-01/runtime/invocation/{request_id}/{kind}"


class BackgroundNext:
    """A ``GET /next`` running in a thread, so a test can act while it long-polls."""

    def __init__(self, address: str) -> None:
        self.conn = http.client.HTTPConnection(address, timeout=30)
        self.answer: tuple[int, dict[str, str], bytes] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.answer = take_next(self.conn)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        self.conn.close()


@pytest.mark.timeout(20)
def test_next_long_polls_until_an_event_is_submitted(emulator: RuntimeAPIEmulator) -> None:
    poll = BackgroundNext(emulator.address)
    assert emulator.wait_for_poll(10)
    assert poll.answer is None, "GET /next must block while the queue is empty"
    invocation = emulator.submit({"hello": "world"})
    assert invocation.handed_out.wait(10)
    poll.join(10)
    assert poll.answer is not None
    status, headers, body = poll.answer
    assert status == 200
    assert json.loads(body) == {"hello": "world"}
    assert headers["lambda-runtime-aws-request-id"] == invocation.request_id


@pytest.mark.timeout(20)
def test_next_headers_carry_every_given_field(emulator, http_conn) -> None:
    before_ms = int(time.time() * 1000)
    invocation = emulator.submit(
        b"raw-bytes",
        content_type="application/octet-stream",
        timeout=7,
        request_id="req-1",
        client_context='{"custom": {"k": "v"}}',
        cognito_identity='{"cognitoIdentityId": "id"}',
        trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        tenant_id="tenant-a",
    )
    status, headers, body = take_next(http_conn)
    after_ms = int(time.time() * 1000)
    assert status == 200
    assert body == b"raw-bytes"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(body))
    assert headers["lambda-runtime-aws-request-id"] == "req-1"
    deadline = int(headers["lambda-runtime-deadline-ms"])
    assert before_ms + 7000 <= deadline <= after_ms + 7000
    assert deadline == invocation.deadline_ms
    assert headers["lambda-runtime-invoked-function-arn"] == (
        "arn:aws:lambda:us-east-1:012345678912:function:function"
    )
    assert headers["lambda-runtime-client-context"] == '{"custom": {"k": "v"}}'
    assert headers["lambda-runtime-cognito-identity"] == '{"cognitoIdentityId": "id"}'
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-5759e988")
    assert headers["lambda-runtime-aws-tenant-id"] == "tenant-a"
    assert headers["lambda-runtime-invocation-id"] == invocation.invocation_id


@pytest.mark.timeout(20)
def test_optional_headers_are_absent_when_not_given(emulator, http_conn) -> None:
    first = emulator.submit({})
    second = emulator.submit({})
    _, headers_one, _ = take_next(http_conn)
    _, headers_two, _ = take_next(http_conn)
    for name in ("lambda-runtime-trace-id", "lambda-runtime-aws-tenant-id"):
        assert name not in headers_one
    assert headers_one["lambda-runtime-aws-request-id"] == first.request_id
    assert headers_two["lambda-runtime-aws-request-id"] == second.request_id
    # A fresh invocation id per hand-out, distinct from the request id.
    assert headers_one["lambda-runtime-invocation-id"] != headers_two["lambda-runtime-invocation-id"]


@pytest.mark.timeout(20)
def test_keep_alive_connection_is_reused_across_calls(emulator, http_conn) -> None:
    for index in range(3):
        invocation = emulator.submit({"n": index})
        take_next(http_conn)
        sock = http_conn.sock
        status, answer = post_json(http_conn, result_path(invocation.request_id), {"n": index})
        assert (status, answer) == (202, {"status": "OK"})
        assert http_conn.sock is sock, "the emulator closed a keep-alive connection"
        assert invocation.result(5).json() == {"n": index}


@pytest.mark.timeout(20)
def test_urllib3_pool_uses_one_connection(emulator) -> None:
    pool = urllib3.HTTPConnectionPool(emulator.host, emulator.port, maxsize=1, block=True)
    for index in range(3):
        invocation = emulator.submit({"n": index})
        got = pool.request("GET", NEXT_PATH)
        assert got.status == 200
        done = pool.request("POST", result_path(invocation.request_id), body=b"null")
        assert done.status == 202
    assert pool.num_connections == 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize("request_id", ["a/b", "..", "50%", "id with space", "ü-ñ"])
def test_percent_encoded_ids_are_decoded(emulator, http_conn, request_id: str) -> None:
    """Ids that are not plain tokens arrive percent-encoded and must still match."""
    invocation = emulator.submit({}, request_id=request_id)
    take_next(http_conn)
    encoded = quote(request_id, safe="")
    status, answer = post_json(http_conn, result_path(encoded), "done")
    assert status == 202, answer
    assert [outcome.json() for outcome in emulator.outcomes(request_id)] == ["done"]
    assert invocation.result(1).request_id == request_id


@pytest.mark.timeout(20)
def test_unknown_request_id_is_400(emulator, http_conn) -> None:
    status, answer = post_json(http_conn, result_path("never-submitted"), "x")
    assert status == 400
    assert answer["errorType"]
    assert emulator.outcomes("never-submitted") == []


@pytest.mark.timeout(20)
def test_second_post_is_403_and_not_an_outcome(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    assert post_json(http_conn, result_path(invocation.request_id), 1)[0] == 202
    status, _ = post_json(http_conn, result_path(invocation.request_id, "error"), {})
    assert status == 403
    assert len(emulator.outcomes(invocation.request_id)) == 1
    assert [outcome.status for outcome in invocation.rejected] == [403]


@pytest.mark.timeout(20)
def test_post_after_deadline_is_410(emulator, http_conn) -> None:
    invocation = emulator.submit({}, timeout=0.05)
    take_next(http_conn)
    assert wait_until(lambda: time.time() * 1000 > (invocation.deadline_ms or 0) + 5, 5)
    status, _ = post_json(http_conn, result_path(invocation.request_id), "late")
    assert status == 410
    assert emulator.outcomes(invocation.request_id) == []
    with pytest.raises(TimeoutError):
        invocation.result(0.1)


@pytest.mark.timeout(20)
def test_oversized_response_is_413_and_error_can_follow(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    sock = http_conn.sock
    big = b'"' + b"x" * 6_291_556 + b'"'
    status, _, body = request(http_conn, "POST", result_path(invocation.request_id), big)
    assert status == 413
    assert json.loads(body) == TOO_LARGE_BODY
    assert emulator.outcomes(invocation.request_id) == []
    # The body was drained, so the same connection goes on; the invocation stays open.
    error = {"errorType": "Function.ResponseSizeTooLarge", "errorMessage": "too big"}
    status, _, _ = request(
        http_conn,
        "POST",
        result_path(invocation.request_id, "error"),
        json.dumps(error).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Function.ResponseSizeTooLarge"},
    )
    assert status == 202
    assert http_conn.sock is sock
    outcome = invocation.result(5)
    assert outcome.kind == "error"
    assert outcome.error_type == "Function.ResponseSizeTooLarge"


@pytest.mark.timeout(20)
def test_payload_exactly_at_the_limit_is_accepted(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    exact = b"y" * 6_291_556
    status, _, _ = request(http_conn, "POST", result_path(invocation.request_id), exact)
    assert status == 202
    assert len(invocation.result(5).body) == 6_291_556


def send_chunked(address: str, path: str, chunks: list[bytes], trailers: str = "") -> bytes:
    """Write a chunked request by hand (stdlib clients add no trailers) and read the reply."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"0\r\n" + trailers.encode() + b"\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        head_bytes, _, rest = reply.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head_bytes.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(rest) < length:
            rest += sock.recv(65536)
        return head_bytes.split(b"\r\n")[0] + b"\n" + rest


@pytest.mark.timeout(20)
def test_chunked_response_with_trailers_is_accepted(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    error_body = base64.b64encode(b'{"errorType": "Boom"}').decode()
    trailers = (
        "Lambda-Runtime-Function-Error-Type: Function.Boom\r\n"
        f"Lambda-Runtime-Function-Error-Body: {error_body}\r\n"
    )
    reply = send_chunked(
        emulator.address, result_path(invocation.request_id), [b"part one, ", b"part two"], trailers
    )
    assert reply.startswith(b"HTTP/1.1 202")
    outcome = invocation.result(5)
    assert outcome.body == b"part one, part two"
    assert outcome.trailers["lambda-runtime-function-error-type"] == "Function.Boom"
    assert outcome.error_type == "Function.Boom"


@pytest.mark.timeout(20)
def test_oversized_chunked_response_is_413(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    chunks = [b"z" * 1_000_000] * 7
    reply = send_chunked(emulator.address, result_path(invocation.request_id), chunks)
    assert reply.startswith(b"HTTP/1.1 413")
    assert json.loads(reply.split(b"\n", 1)[1]) == TOO_LARGE_BODY
    assert not invocation.done


@pytest.mark.timeout(20)
def test_error_post_records_error_type(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    body = {"errorMessage": "boom", "errorType": "ValueError", "requestId": "x", "stackTrace": []}
    status, _, _ = request(
        http_conn,
        "POST",
        result_path(invocation.request_id, "error"),
        json.dumps(body).encode(),
        {"Lambda-Runtime-Function-Error-Type": "ValueError"},
    )
    assert status == 202
    outcome = invocation.result(5)
    assert (outcome.kind, outcome.status, outcome.error_type) == ("error", 202, "ValueError")
    assert outcome.headers["LAMBDA-RUNTIME-FUNCTION-ERROR-TYPE"] == "ValueError"
    assert outcome.json()["errorMessage"] == "boom"


@pytest.mark.timeout(20)
def test_init_error_is_recorded(emulator, http_conn) -> None:
    assert emulator.wait_init_error(0.05) is None
    body = {"errorMessage": "Unable to import module 'app'", "errorType": "Runtime.ImportModuleError"}
    status, _, _ = request(
        http_conn,
        "POST",
        "/2018-06-01/runtime/init/error",
        json.dumps(body).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert status == 202
    outcome = emulator.wait_init_error(5)
    assert outcome is not None
    assert outcome.kind == "init_error"
    assert outcome.error_type == "Runtime.ImportModuleError"
    assert outcome.json() == body


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2018-06-01/runtime/invocation/x/response"),
        ("POST", "/2018-06-01/runtime/invocation/next"),
        ("GET", "/nothing-here"),
        ("POST", "/2018-06-01/runtime/invocation/a/b/c/response"),
    ],
)
def test_unknown_paths_are_404(emulator, http_conn, method: str, path: str) -> None:
    body = b"{}" if method == "POST" else None
    status, headers, _ = request(http_conn, method, path, body)
    assert status == 404
    assert "content-length" in headers


@pytest.mark.timeout(20)
def test_stop_releases_a_blocked_long_poll() -> None:
    emulator = RuntimeAPIEmulator().start()
    poll = BackgroundNext(emulator.address)
    assert emulator.wait_for_poll(10)
    emulator.stop()
    poll.join(10)
    assert not poll.thread.is_alive()
    assert poll.answer is None
    assert isinstance(poll.error, (http.client.RemoteDisconnected, ConnectionError))


@pytest.mark.timeout(20)
def test_fault_drop_on_next_keeps_the_event_queued(emulator) -> None:
    emulator.inject_fault("next", "drop")
    invocation = emulator.submit({"kept": True})
    first = http.client.HTTPConnection(emulator.address, timeout=10)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        take_next(first)
    first.close()
    assert not invocation.handed_out.is_set()
    second = http.client.HTTPConnection(emulator.address, timeout=10)
    status, _, body = take_next(second)
    second.close()
    assert status == 200 and json.loads(body) == {"kept": True}
    assert [entry[3] for entry in emulator.requests] == ["next", "next"]


@pytest.mark.timeout(20)
def test_fault_status_on_response_then_normal(emulator, http_conn) -> None:
    emulator.inject_fault("response", "status", status=500, count=2)
    invocation = emulator.submit({})
    take_next(http_conn)
    path = result_path(invocation.request_id)
    assert post_json(http_conn, path, "a")[0] == 500
    assert post_json(http_conn, path, "b")[0] == 500
    assert post_json(http_conn, path, "c")[0] == 202
    assert [outcome.json() for outcome in emulator.outcomes(invocation.request_id)] == ["c"]
    assert [entry[3] for entry in emulator.requests].count("response") == 3


@pytest.mark.timeout(20)
def test_fault_drop_on_response_records_nothing(emulator, http_conn) -> None:
    emulator.inject_fault("response", "drop")
    invocation = emulator.submit({})
    take_next(http_conn)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post_json(http_conn, result_path(invocation.request_id), "lost")
    assert emulator.outcomes(invocation.request_id) == []
    retry = http.client.HTTPConnection(emulator.address, timeout=10)
    assert post_json(retry, result_path(invocation.request_id), "kept")[0] == 202
    retry.close()
    assert invocation.result(5).json() == "kept"


@pytest.mark.timeout(20)
def test_fault_delay_then_normal(emulator, http_conn) -> None:
    emulator.inject_fault("init_error", "delay", delay=0.3)
    started = time.monotonic()
    status, _, _ = request(http_conn, "POST", "/2018-06-01/runtime/init/error", b"{}")
    assert status == 202
    assert time.monotonic() - started >= 0.3
    assert emulator.wait_init_error(1) is not None


@pytest.mark.timeout(20)
def test_fault_status_on_next_does_not_hand_out(emulator, http_conn) -> None:
    emulator.inject_fault("next", "status", status=500)
    invocation = emulator.submit({})
    status, _, body = take_next(http_conn)
    assert status == 500
    assert json.loads(body)["errorType"]
    assert not invocation.handed_out.is_set()
    assert take_next(http_conn)[0] == 200


def test_inject_fault_rejects_unknown_route_and_action(emulator) -> None:
    """Tried: a misspelt route and an unknown action; both must be refused up front."""
    with pytest.raises(ValueError):
        emulator.inject_fault("nxt", "drop")
    with pytest.raises(ValueError):
        emulator.inject_fault("next", "explode")


@pytest.mark.timeout(20)
def test_submit_rejects_a_duplicate_request_id(emulator) -> None:
    """Tried: submitting the same request id twice, which would make outcomes ambiguous."""
    emulator.submit({}, request_id="same")
    with pytest.raises(ValueError):
        emulator.submit({}, request_id="same")


@pytest.mark.timeout(20)
def test_result_times_out_without_a_post(emulator) -> None:
    invocation = emulator.submit({})
    with pytest.raises(TimeoutError):
        invocation.result(0.1)


@pytest.mark.timeout(20)
def test_many_runtimes_polling_get_distinct_events(emulator) -> None:
    polls = [BackgroundNext(emulator.address) for _ in range(4)]
    assert wait_until(lambda: emulator._pollers == 4, 10)
    submitted = {emulator.submit({"i": i}).request_id for i in range(4)}
    for poll in polls:
        poll.join(10)
    got = {poll.answer[1]["lambda-runtime-aws-request-id"] for poll in polls if poll.answer}
    assert got == submitted


@pytest.mark.timeout(20)
def test_a_poller_that_disconnected_never_takes_an_event(emulator) -> None:
    """A runtime killed during GET /next must not swallow the next event."""
    host, port = emulator.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as dead:
        dead.sendall(f"GET {NEXT_PATH} HTTP/1.1\r\nHost: {emulator.address}\r\n\r\n".encode())
        assert emulator.wait_for_poll(10)
    assert wait_until(lambda: emulator._pollers == 0, 10), "the dead poller is still waiting"
    invocation = emulator.submit({"for": "the live runtime"})
    live = http.client.HTTPConnection(emulator.address, timeout=10)
    status, headers, _ = take_next(live)
    live.close()
    assert status == 200
    assert headers["lambda-runtime-aws-request-id"] == invocation.request_id


@pytest.mark.timeout(20)
def test_retain_finished_bounds_what_a_long_session_keeps(emulator, http_conn) -> None:
    emulator.retain_finished = 2
    for index in range(5):
        invocation = emulator.submit({"n": index}, request_id=f"id-{index}")
        take_next(http_conn)
        assert post_json(http_conn, result_path(invocation.request_id), index)[0] == 202
    emulator.submit({}, request_id="open")
    kept = [invocation.request_id for invocation in emulator.all_invocations()]
    assert kept == ["id-3", "id-4", "open"]


@pytest.mark.timeout(20)
def test_caller_gets_a_timeout_when_the_runtime_never_answers(emulator, http_conn) -> None:
    """The invoke side answers for a silent runtime; the runtime's late post is then a 410."""
    emulator.invoke_grace = 0.1
    invocation = emulator.submit({}, timeout=0.2)
    take_next(http_conn)
    outcome = emulator.await_outcome(invocation)
    assert outcome is not None and outcome.status == 0
    assert outcome.error_type == "Sandbox.Timedout"
    assert outcome.json()["errorMessage"] == "Task timed out after 0.20 seconds"
    assert post_json(http_conn, result_path(invocation.request_id), "late")[0] == 410


@pytest.mark.timeout(20)
def test_post_after_a_failure_on_the_runtimes_behalf_is_403(emulator, http_conn) -> None:
    invocation = emulator.submit({})
    take_next(http_conn)
    assert emulator.fail_invocation(
        invocation, "Runtime.ExitError", "Runtime exited with error: exit status 1"
    )
    assert post_json(http_conn, result_path(invocation.request_id), "after")[0] == 403
    assert [outcome.status for outcome in emulator.outcomes(invocation.request_id)] == [0]


@pytest.mark.timeout(20)
def test_non_latin1_request_id_is_sent_as_utf8_and_found_again(emulator, http_conn) -> None:
    """Tried: a request id in Cyrillic, which the stdlib server cannot even write as a header."""
    request_id = "ünïcødé-ид"
    invocation = emulator.submit({}, request_id=request_id)
    status, headers, _ = take_next(http_conn)
    assert status == 200
    # http.client reads header bytes as latin-1; the bytes on the wire are UTF-8.
    assert headers["lambda-runtime-aws-request-id"].encode("latin-1").decode("utf-8") == request_id
    assert post_json(http_conn, result_path(quote(request_id, safe="")), "ok")[0] == 202
    assert invocation.result(5).json() == "ok"


@pytest.mark.timeout(20)
def test_raw_utf8_bytes_in_the_path_are_decoded(emulator) -> None:
    """Tried: a runtime that puts the id's UTF-8 bytes in the path without percent-encoding."""
    request_id = "ид"
    invocation = emulator.submit({}, request_id=request_id)
    host, port = emulator.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {NEXT_PATH} HTTP/1.1\r\nHost: {emulator.address}\r\n\r\n".encode())
        assert invocation.handed_out.wait(10)
        path = result_path(request_id).encode("utf-8")
        host_line = f"Host: {emulator.address}\r\n".encode()
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\n" + host_line + b'Content-Length: 4\r\n\r\n"ok"')
        assert invocation.result(5).json() == "ok"
