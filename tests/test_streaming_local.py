"""A streaming function's local callers get each chunk as it is yielded: boto3's
``invoke_with_response_stream`` and a plain Invoke (chunked, as ``curl -N`` reads it) against
``serve``, the ``invoke`` command's stdout, and ``lambda_invoke_stream``; a stream that ends
in an error reaches each of them as a function error with the type its trailers carry.

Handlers run through bin/bootstrap; a few edge cases of the emulator's Invoke side are
driven by a runtime written by hand over a raw socket.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from http_support import INVOKE_PATH, exchange
from local_support import CLI, REPO_ROOT, ServeProcess
from proc_support import wait_until
from runtime_harness import copy_handler

from lambda_supervisor.testing import FunctionError, lambda_invoke, lambda_invoke_stream

STREAM_PATH = "/2021-11-15/functions/function/response-streaming-invocations"
EVENT_STREAM = "application/vnd.amazon.eventstream"
# How long after its yield a chunk may reach the caller.
PROMPT = 0.1


@pytest.fixture(scope="module")
def app_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_handler(tmp_path_factory.mktemp("stream_to_callers"), "stream_to_callers")


@pytest.fixture(scope="module")
def serve(app_path: Path) -> Iterator[ServeProcess]:
    """One ``serve`` of every handler (``route`` picks by ``event["do"]``) for the module."""
    with ServeProcess(f"{app_path}:route", "--timeout", "10") as server:
        yield server


def _client(server: ServeProcess):
    return boto3.client(
        "lambda",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}, read_timeout=20, connect_timeout=5),
    )


def _stream_events(server: ServeProcess, event: dict, **options) -> tuple[dict, list[tuple[float, dict]]]:
    """boto3's answer to invoke_with_response_stream and its events, each with the
    ``time.time()`` it was read at."""
    response = _client(server).invoke_with_response_stream(
        FunctionName="function", Payload=json.dumps(event).encode(), **options
    )
    events = [(time.time(), item) for item in response["EventStream"]]
    return response, events


def _assert_prompt(received: list[tuple[float, bytes]], count: int) -> None:
    """Each of ``count`` timed_chunks lines reached the caller within PROMPT of its yield,
    and the first one long before the handler yielded its last."""
    lines = [(at, json.loads(data)) for at, data in received]
    assert [line["index"] for _, line in lines] == list(range(count))
    for at, line in lines:
        assert 0 <= at - line["yielded_at"] < PROMPT, (at, line)
    # The handler yields 200 ms apart: it was still at work when the first line came.
    assert lines[0][0] < lines[-1][1]["yielded_at"] - 0.2 * (count - 1) + PROMPT


# ----------------------------------------------------------------------------- boto3


@pytest.mark.timeout(30)
def test_boto3_gets_each_chunk_as_it_is_yielded_then_invoke_complete(serve: ServeProcess) -> None:
    """Tried: invoke_with_response_stream of a handler yielding 5 lines 200 ms apart, with
    LogType Tail. Each PayloadChunk arrives within 100 ms of its yield (the first long
    before the handler is done), then one InvokeComplete holding only the log tail; the
    answer is a 200 in event-stream framing for $LATEST."""
    response, events = _stream_events(serve, {"do": "timed_chunks", "count": 5}, LogType="Tail")
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == EVENT_STREAM
    *chunks, (_, complete) = events
    _assert_prompt([(at, item["PayloadChunk"]["Payload"]) for at, item in chunks], 5)
    assert set(complete) == {"InvokeComplete"}
    assert set(complete["InvokeComplete"]) == {"LogResult"}
    log_tail = base64.b64decode(complete["InvokeComplete"]["LogResult"]).decode()
    assert "streaming 5 chunks\n" in log_tail


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("do", "chunks", "error_type", "message"),
    [
        ("fail_midway", [b"first\n", b"second\n"], "ValueError", "broke after 2 chunks"),
        ("exit_midway", [b"first\n"], "Runtime.ExitError", None),
    ],
)
def test_boto3_sees_a_mid_stream_error_in_invoke_complete(serve, do, chunks, error_type, message) -> None:
    """Tried: a handler raising after two chunks, and one whose worker exits after one. The
    chunks sent come as PayloadChunks, then InvokeComplete names the error (ErrorCode) and
    carries its four-key report (ErrorDetails), as the stream's trailers had them."""
    _, events = _stream_events(serve, {"do": do})
    assert [item["PayloadChunk"]["Payload"] for _, item in events[:-1]] == chunks
    complete = events[-1][1]["InvokeComplete"]
    assert set(complete) == {"ErrorCode", "ErrorDetails"}
    assert complete["ErrorCode"] == error_type
    report = json.loads(complete["ErrorDetails"])
    assert set(report) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert report["errorType"] == error_type
    if message is not None:
        assert report["errorMessage"] == message


@pytest.mark.timeout(30)
def test_boto3_gets_a_buffered_answer_and_an_early_error_on_the_streaming_route(serve) -> None:
    """Tried: a handler that returns a dict, and one that raises before its first chunk. The
    dict is one PayloadChunk of its JSON then an empty InvokeComplete; the early error is an
    InvokeComplete alone, with its type and report."""
    _, events = _stream_events(serve, {"do": "buffered", "n": 1})
    assert [item for _, item in events] == [
        {"PayloadChunk": {"Payload": b'{"buffered": true, "event": {"do": "buffered", "n": 1}}'}},
        {"InvokeComplete": {}},
    ]
    _, events = _stream_events(serve, {"do": "fail_before_streaming"})
    ((_, only),) = events
    assert only["InvokeComplete"]["ErrorCode"] == "KeyError"
    assert json.loads(only["InvokeComplete"]["ErrorDetails"])["errorMessage"] == "'no stream today'"


@pytest.mark.timeout(30)
def test_the_streaming_route_takes_a_dry_run_and_refuses_an_asynchronous_call(serve) -> None:
    """Tried: InvocationType DryRun and Event on the streaming route. DryRun is a 204 that
    runs nothing; Event, which InvokeWithResponseStream does not have, a 400
    ValidationException; then a call is served as usual."""
    conn = http.client.HTTPConnection(serve.host, serve.port, timeout=10)
    try:
        conn.request("POST", STREAM_PATH, body=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})
        dry = conn.getresponse()
        assert (dry.status, dry.read()) == (204, b"")
        conn.request("POST", STREAM_PATH, body=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
        refused = conn.getresponse()
        assert (refused.status, refused.getheader("X-Amzn-Errortype")) == (400, "ValidationException")
        assert "Event" in json.loads(refused.read())["message"]
    finally:
        conn.close()
    _, events = _stream_events(serve, {"do": "buffered"})
    assert [set(item) for _, item in events] == [{"PayloadChunk"}, {"InvokeComplete"}]


# ----------------------------------------------------------------------------- plain Invoke


def _read_lines_as_they_come(response: http.client.HTTPResponse) -> list[tuple[float, bytes]]:
    """The body's lines, each with the ``time.time()`` its last byte was read at."""
    lines, pending = [], b""
    while True:
        data = response.read1(65536)
        if not data:
            return lines
        pending += data
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            lines.append((time.time(), line + b"\n"))


@pytest.mark.timeout(30)
def test_plain_invoke_passes_a_stream_on_chunked_as_it_arrives(serve: ServeProcess) -> None:
    """Tried: the classic Invoke path, read chunk by chunk as curl -N does, for a handler
    yielding 5 lines 200 ms apart; then a buffered handler, and the streamed one with
    LogType Tail. The stream comes chunked (no Content-Length), each line within 100 ms of
    its yield; the buffered answer and the one asking for the log tail (a header, known
    only at the end) keep their Content-Length."""
    conn = http.client.HTTPConnection(serve.host, serve.port, timeout=10)
    try:
        conn.request("POST", INVOKE_PATH, body=json.dumps({"do": "timed_chunks", "count": 5}))
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.getheader("Content-Length") is None
        assert response.getheader("Content-Type") == "application/octet-stream"
        assert response.getheader("X-Amz-Function-Error") is None
        _assert_prompt(_read_lines_as_they_come(response), 5)

        conn.request("POST", INVOKE_PATH, body=b'{"do": "buffered"}')
        buffered = conn.getresponse()
        body = buffered.read()
        assert buffered.getheader("Transfer-Encoding") is None
        assert buffered.getheader("Content-Length") == str(len(body))
        assert json.loads(body)["buffered"] is True

        tail = {"X-Amz-Log-Type": "Tail"}
        conn.request("POST", INVOKE_PATH, body=b'{"do": "timed_chunks", "count": 2}', headers=tail)
        with_tail = conn.getresponse()
        body = with_tail.read()
        assert with_tail.getheader("Content-Length") == str(len(body))
        assert [json.loads(line)["index"] for line in body.splitlines()] == [0, 1]
        assert "streaming 2 chunks" in base64.b64decode(with_tail.getheader("X-Amz-Log-Result")).decode()
    finally:
        conn.close()


def _raw_chunked_answer(address: str, request: bytes) -> tuple[bytes, list[bytes], dict[str, str]]:
    """Send ``request``, read a chunked answer to its end: the head, the chunks, the trailers."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
    head, _, rest = received.partition(b"\r\n\r\n")
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    trailers = dict(line.split(": ", 1) for line in rest.decode().split("\r\n") if line)
    return head, chunks, trailers


@pytest.mark.timeout(30)
def test_plain_invoke_ends_a_failed_stream_with_its_error_in_the_trailers(serve: ServeProcess) -> None:
    """Tried: the classic Invoke path for a handler that raises after two chunks, read raw.
    The head declares the trailers; the two chunks come, then trailers flag the function
    error (X-Amz-Function-Error: Unhandled) with the stream's type and base64 report."""
    body = b'{"do": "fail_midway"}'
    request = (
        f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: {serve.host}:{serve.port}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    head, chunks, trailers = _raw_chunked_answer(f"{serve.host}:{serve.port}", request)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nTrailer: X-Amz-Function-Error, Lambda-Runtime-Function-Error-Type" in head
    assert chunks == [b"first\n", b"second\n"]
    assert set(trailers) == {
        "X-Amz-Function-Error",
        "Lambda-Runtime-Function-Error-Type",
        "Lambda-Runtime-Function-Error-Body",
    }
    assert trailers["X-Amz-Function-Error"] == "Unhandled"
    assert trailers["Lambda-Runtime-Function-Error-Type"] == "ValueError"
    report = json.loads(base64.b64decode(trailers["Lambda-Runtime-Function-Error-Body"]))
    assert (report["errorType"], report["errorMessage"]) == ("ValueError", "broke after 2 chunks")


@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_shows_a_stream_live(serve: ServeProcess) -> None:
    """Tried: ``curl -N`` on the classic Invoke path for 4 lines 200 ms apart, its stdout read
    as it writes. Each line is out of curl within 100 ms of its yield."""
    event = json.dumps({"do": "timed_chunks", "count": 4})
    curl = subprocess.Popen(
        ["curl", "-sSN", "--max-time", "10", "-d", event, f"{serve.endpoint}{INVOKE_PATH}"],
        stdout=subprocess.PIPE,
    )
    assert curl.stdout is not None
    lines = [(time.time(), line) for line in iter(curl.stdout.readline, b"")]
    assert curl.wait(10) == 0
    _assert_prompt(lines, 4)


@pytest.mark.timeout(30)
def test_a_stream_that_fails_before_its_first_chunk_is_a_buffered_error_on_invoke(emulator) -> None:
    """Tried: a runtime (by hand, raw socket) that begins a streamed /response and ends it
    with error trailers before any chunk. A plain Invoke caller gets the buffered answer,
    which flags the error in its headers (X-Amz-Function-Error) and holds the report."""
    answers: list[tuple[int | None, dict[str, str], bytes]] = []
    request = f"POST {INVOKE_PATH} HTTP/1.1\r\nHost: {emulator.address}\r\nContent-Length: 2\r\n\r\n{{}}"
    caller = threading.Thread(target=lambda: answers.append(exchange(emulator.address, request.encode())))
    caller.start()
    next_request = f"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {emulator.address}\r\n\r\n"
    _, next_headers, _ = exchange(emulator.address, next_request.encode())
    request_id = next_headers["lambda-runtime-aws-request-id"]
    report = json.dumps({"errorType": "Function.Broken", "errorMessage": "at once"})
    encoded = base64.b64encode(report.encode()).decode()
    post = (
        f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
        f"Host: {emulator.address}\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
        f"0\r\nLambda-Runtime-Function-Error-Type: Function.Broken\r\n"
        f"Lambda-Runtime-Function-Error-Body: {encoded}\r\n\r\n"
    )
    assert exchange(emulator.address, post.encode())[0] == 202
    caller.join(10)
    ((status, headers, body),) = answers
    assert (status, headers.get("x-amz-function-error")) == (200, "Unhandled")
    assert "transfer-encoding" not in headers
    assert json.loads(body) == json.loads(report)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("path", [STREAM_PATH, INVOKE_PATH])
def test_a_caller_that_hangs_up_mid_stream_does_not_stop_the_function(serve, path) -> None:
    """Tried: a caller that reads the first chunk of a 5-chunk stream and closes its socket,
    on either route. The function streams on to its end (its REPORT says it ran the whole
    800 ms, no error is logged), and the next call is served."""
    before = serve.stderr().count("\nEND RequestId: ")
    body = b'{"do": "timed_chunks", "count": 5}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {serve.host}:{serve.port}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((serve.host, serve.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b'"index": 0' not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
    hung_up_at = time.monotonic()
    _, events = _stream_events(serve, {"do": "buffered"})
    assert [set(item) for _, item in events] == [{"PayloadChunk"}, {"InvokeComplete"}]
    # The next call waited for the stream to end: 4 more chunks, 200 ms apart.
    assert time.monotonic() - hung_up_at > 0.6
    assert wait_until(lambda: serve.stderr().count("\nEND RequestId: ") == before + 2, 10)
    request_id = re.search(rb"(?i)x-amzn-requestid: (\S+)", received).group(1).decode()
    report = re.search(rf"REPORT RequestId: {request_id}\tDuration: ([\d.]+) ms", serve.stderr())
    assert report is not None, serve.stderr()
    assert float(report.group(1)) >= 800  # all 5 chunks, 200 ms apart
    assert "Traceback" not in serve.stderr() and "Runtime.ExitError" not in serve.stderr()


# ----------------------------------------------------------------------------- the CLI


def _run_invoke(app_path: Path, event: dict) -> tuple[int, list[tuple[float, bytes]], str]:
    """``lambda-supervisor invoke`` with its stdout read as it writes: the exit status, each
    stdout line with the ``time.time()`` it came at, and stderr."""
    process = subprocess.Popen(
        [*CLI, "invoke", f"{app_path}:route", "--event", json.dumps(event)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()), daemon=True)
    reader.start()
    lines = [(time.time(), line) for line in iter(process.stdout.readline, b"")]
    returncode = process.wait(20)
    reader.join(10)
    return returncode, lines, b"".join(stderr).decode()


@pytest.mark.timeout(40)
def test_cli_invoke_prints_each_chunk_as_it_arrives(app_path: Path) -> None:
    """Tried: ``invoke`` of a handler yielding 5 lines 200 ms apart, stdout read line by
    line with timestamps. Each line is printed within 100 ms of its yield; nothing else is
    on stdout and the exit status is 0."""
    returncode, lines, stderr = _run_invoke(app_path, {"do": "timed_chunks", "count": 5})
    assert returncode == 0, stderr
    _assert_prompt(lines, 5)


@pytest.mark.timeout(40)
def test_cli_invoke_reports_a_mid_stream_error_as_a_function_error(app_path: Path) -> None:
    """Tried: ``invoke`` of a handler raising after two chunks. stdout holds exactly the two
    chunks; stderr the stream's error report and ``function error: ValueError``; exit 1."""
    returncode, lines, stderr = _run_invoke(app_path, {"do": "fail_midway"})
    assert returncode == 1
    assert [line for _, line in lines] == [b"first\n", b"second\n"]
    assert "function error: ValueError\n" in stderr
    assert '"errorMessage": "broke after 2 chunks"' in stderr


# ----------------------------------------------------------------------------- lambda_invoke


@pytest.mark.timeout(40)
def test_lambda_invoke_returns_a_stream_whole_and_stream_gives_its_chunks(app_path: Path) -> None:
    """Tried: lambda_invoke and lambda_invoke_stream of a handler yielding 3 lines 200 ms
    apart. lambda_invoke returns the whole body; lambda_invoke_stream yields one Chunk per
    line, each received within 100 ms of its yield, the first before the handler is done;
    a buffered handler is one chunk of its JSON result."""
    handler = f"{app_path}:route"
    body = lambda_invoke(handler, {"do": "timed_chunks", "count": 3})
    assert isinstance(body, bytes)
    assert [json.loads(line)["index"] for line in body.splitlines()] == [0, 1, 2]
    chunks = list(lambda_invoke_stream(handler, {"do": "timed_chunks", "count": 3}))
    _assert_prompt([(chunk.received_at_epoch, chunk.data) for chunk in chunks], 3)
    assert chunks[1].received_at - chunks[0].received_at == pytest.approx(0.2, abs=PROMPT)
    (only,) = lambda_invoke_stream(handler, {"do": "buffered"})
    assert json.loads(only.data) == {"buffered": True, "event": {"do": "buffered"}}


@pytest.mark.timeout(40)
def test_lambda_invoke_raises_a_mid_stream_error_with_the_trailers_type(
    app_path: Path, lambda_invoke
) -> None:
    """Tried: the fixture's lambda_invoke and its ``stream`` for a handler raising after two
    chunks, and one whose worker exits after one. lambda_invoke raises FunctionError with
    the trailer's type and message; the stream yields the chunks sent, then raises it."""
    handler = f"{app_path}:route"
    with pytest.raises(FunctionError) as failure:
        lambda_invoke(handler, {"do": "fail_midway"})
    assert (failure.value.error_type, failure.value.error_message) == ("ValueError", "broke after 2 chunks")
    received = []
    with pytest.raises(FunctionError) as failure:
        for chunk in lambda_invoke.stream(handler, {"do": "fail_midway"}):
            received.append(chunk.data)
    assert received == [b"first\n", b"second\n"]
    assert failure.value.error_type == "ValueError"
    received = []
    with pytest.raises(FunctionError) as failure:
        for chunk in lambda_invoke.stream(handler, {"do": "exit_midway"}):
            received.append(chunk.data)
    assert received == [b"first\n"]
    assert failure.value.error_type == "Runtime.ExitError"


# ----------------------------------------------------------------------------- who may call


@pytest.mark.timeout(30)
def test_the_streaming_route_refuses_what_a_web_page_could_send(app_path: Path) -> None:
    """Tried: the streaming route with another site's Host (DNS rebinding), a cross-origin
    Origin and Sec-Fetch-Site cross-site. Each is a 403 AccessDeniedException in the Invoke
    API's shape that runs nothing; a local Host is served."""
    with ServeProcess(f"{app_path}:route", "--timeout", "10") as server:
        port = server.port
        refused = [
            f"Host: evil.example:{port}",
            f"Host: 127.0.0.1:{port}\r\nOrigin: http://evil.example",
            f"Host: 127.0.0.1:{port}\r\nOrigin: null",
            f"Host: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site",
        ]
        body = '{"do": "buffered"}'
        for headers in refused:
            request = f"POST {STREAM_PATH} HTTP/1.1\r\n{headers}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            status, answer_headers, answer = exchange(f"127.0.0.1:{port}", request.encode())
            assert (status, answer_headers.get("x-amzn-errortype")) == (403, "AccessDeniedException"), headers
            assert json.loads(answer)["message"].startswith("Request refused: "), headers
        _, events = _stream_events(server, {"do": "buffered"})
        assert [set(item) for _, item in events] == [{"PayloadChunk"}, {"InvokeComplete"}]
        returncode, stderr = server.stop()
    assert returncode == 0
    assert stderr.count("START RequestId:") == 1
