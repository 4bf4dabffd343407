"""Response streaming: a handler's chunks reach the Runtime API as it yields them, and every
way a stream can fail ends it with the error in its trailers while the runtime serves on.

The first tests speak to the emulator's Runtime API directly over a raw socket, as a
streaming runtime does; the rest run handlers through bin/bootstrap against it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import time

import pytest
from fake_runtime_api import ACCEPTED, ManualRuntimeAPI
from fake_runtime_api import event as fake_event
from http_support import INVOKE_PATH, exchange, post
from proc_support import peak_rss_kb, rss_kb, wait_until
from runtime_harness import handler_files, invoke, log_records, only_answer, running_runtime, write_task

from lambda_supervisor.emulator import Invocation, Outcome, ResponseStream, RuntimeAPIEmulator
from lambda_supervisor.process import RuntimeProcess

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
STREAM_HEADERS = (
    "Lambda-Runtime-Function-Response-Mode: streaming\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
)


# --- the emulator's side, over a raw socket -------------------------------------------------


def _take(emulator: RuntimeAPIEmulator, timeout: float = 30.0) -> str:
    """Submit an event and take it from /next as the runtime would; its request id."""
    invocation = emulator.submit({}, timeout=timeout)
    status, headers, _ = exchange(
        emulator.address, f"GET {NEXT_PATH} HTTP/1.1\r\nHost: {emulator.address}\r\n\r\n".encode()
    )
    assert status == 200
    assert headers["lambda-runtime-aws-request-id"] == invocation.request_id
    return invocation.request_id


class _StreamPost:
    """A streamed /response written by hand: head, then chunks, then trailers."""

    def __init__(self, emulator: RuntimeAPIEmulator, request_id: str, headers: str = STREAM_HEADERS) -> None:
        host, _, port = emulator.address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=20)
        head = (
            f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\n"
            f"Host: {emulator.address}\r\nContent-Type: text/event-stream\r\n{headers}\r\n"
        )
        self.sock.sendall(head.encode())

    def chunk(self, data: bytes) -> None:
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def finish(self, trailers: dict[str, str] | None = None) -> tuple[int, bytes]:
        lines = "".join(f"{name}: {value}\r\n" for name, value in (trailers or {}).items())
        self.sock.sendall(f"0\r\n{lines}\r\n".encode())
        return self.answer()

    def answer(self) -> tuple[int, bytes]:
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            data = self.sock.recv(65536)
            if not data:
                break
            received += data
        self.sock.close()
        head, _, body = received.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


@pytest.mark.timeout(20)
def test_emulator_records_each_chunk_as_it_arrives_and_the_trailers(emulator):
    """Chunks written 100 ms apart are each recorded (and followed) before the next is sent;
    the trailers and content type are kept, and the buffered outcome holds the whole body."""
    request_id = _take(emulator)
    invocation = emulator.invocation(request_id)
    post = _StreamPost(emulator, request_id)
    stream = emulator.await_response(invocation)
    assert isinstance(stream, ResponseStream)
    assert stream.content_type == "text/event-stream"
    followed = stream.follow(timeout=5)
    for index in range(3):
        sent_at = time.time()
        post.chunk(b"data: %d\n\n" % index)
        chunk = next(followed)
        assert chunk.data == b"data: %d\n\n" % index
        assert 0 <= chunk.received_at_epoch - sent_at < 0.1
        time.sleep(0.1)
    assert not invocation.done
    error_body = base64.b64encode(b'{"errorType": "Boom"}').decode()
    status, _ = post.finish(
        {"Lambda-Runtime-Function-Error-Type": "Boom", "Lambda-Runtime-Function-Error-Body": error_body}
    )
    assert status == 202
    assert list(followed) == []
    assert stream.ended and stream.error_type == "Boom" and stream.error_body == b'{"errorType": "Boom"}'
    outcome = invocation.result(1)
    assert (outcome.kind, outcome.status, outcome.body) == (
        "response",
        202,
        b"data: 0\n\ndata: 1\n\ndata: 2\n\n",
    )
    assert outcome.error_type == "Boom"


@pytest.mark.timeout(20)
def test_emulator_refuses_another_answer_once_a_stream_has_begun(emulator):
    """An /error posted while the stream is open, and a second stream, are refused 403; the
    stream stays the one answer."""
    request_id = _take(emulator)
    post = _StreamPost(emulator, request_id)
    post.chunk(b"first")
    stream = emulator.await_response(emulator.invocation(request_id))
    next(stream.follow(timeout=5))
    error = (
        f"POST /2018-06-01/runtime/invocation/{request_id}/error HTTP/1.1\r\n"
        f"Host: {emulator.address}\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    assert exchange(emulator.address, error.encode())[0] == 403
    assert _StreamPost(emulator, request_id).finish()[0] == 403
    assert post.finish()[0] == 202
    assert [outcome.body for outcome in emulator.outcomes(request_id)] == [b"first"]


@pytest.mark.timeout(20)
def test_emulator_refuses_a_response_mode_other_than_streaming(emulator):
    request_id = _take(emulator)
    post = _StreamPost(emulator, request_id, STREAM_HEADERS.replace(": streaming", ": buffered"))
    assert post.finish()[0] == 400
    assert emulator.invocation(request_id).stream is None


@pytest.mark.timeout(20)
def test_emulator_cuts_a_stream_past_its_limit(emulator):
    """Past ``max_streamed_payload`` the stream ends with Function.ResponseSizeTooLarge and the
    post is answered 413."""
    emulator.max_streamed_payload = 1000
    request_id = _take(emulator)
    post = _StreamPost(emulator, request_id)
    post.chunk(b"x" * 600)
    post.chunk(b"y" * 600)
    assert post.finish()[0] == 413
    stream = emulator.invocation(request_id).stream
    assert stream.error_type == "Function.ResponseSizeTooLarge"
    assert json.loads(stream.error_body)["errorMessage"].startswith(
        "Response payload size (600 bytes) exceeded"
    )
    assert emulator.invocation(request_id).result(1).error_type == "Function.ResponseSizeTooLarge"


@pytest.mark.timeout(20)
def test_emulator_ends_a_stream_whose_connection_breaks(emulator):
    request_id = _take(emulator)
    post = _StreamPost(emulator, request_id)
    post.chunk(b"partial")
    post.sock.close()
    outcome = emulator.invocation(request_id).result(5)
    assert (outcome.body, outcome.error_type, outcome.status) == (b"partial", "Runtime.TruncatedResponse", 0)


@pytest.mark.timeout(20)
def test_emulator_ends_a_stream_at_its_deadline(emulator):
    """A stream still open at the deadline (plus the invoke grace) ends with Sandbox.Timedout."""
    emulator.invoke_grace = 0.2
    request_id = _take(emulator, timeout=1)
    post = _StreamPost(emulator, request_id)
    post.chunk(b"slow")
    stream = emulator.await_response(emulator.invocation(request_id))
    assert stream.wait_ended(5)
    assert stream.error_type == "Sandbox.Timedout"
    assert json.loads(stream.error_body)["errorMessage"] == "Task timed out after 1.00 seconds"
    assert 1.1 < stream.ended_at - stream.started_at < 2.0
    post.sock.close()


# --- through bin/bootstrap ----------------------------------------------------------------------

STREAM_POST_HEADERS = {
    "Lambda-Runtime-Function-Response-Mode": "streaming",
    "Transfer-Encoding": "chunked",
    "Trailer": "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
}


@pytest.fixture
def runtime(emulator, tmp_path):
    env = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}
    with running_runtime(
        emulator, tmp_path, handler_files("stream_every_way"), "app:route", env=env
    ) as runtime:
        yield runtime


def _stream(emulator, do: str, timeout: float = 30, **event) -> tuple[Invocation, ResponseStream, Outcome]:
    """Run one streaming invocation to its end: the invocation, its stream and its outcome."""
    invocation = emulator.submit({"do": do, **event}, timeout=timeout)
    outcome = only_answer(emulator, invocation)
    assert invocation.stream is not None, outcome
    assert outcome.kind == "response"
    return invocation, invocation.stream, outcome


def _worker_pid(emulator) -> int:
    """The pid of the worker serving now, from a buffered event (which also shows the
    runtime still serves)."""
    outcome = invoke(emulator, {"do": "ok"})
    assert outcome.kind == "response" and outcome.json()["ok"] is True, outcome
    return outcome.json()["pid"]


def _trailer_report(stream: ResponseStream, invocation: Invocation) -> dict:
    """The error report the stream's trailers carry, checked to be the four-key one."""
    report = json.loads(stream.error_body)
    assert set(report) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert report["errorType"] == stream.error_type
    assert report["requestId"] == invocation.request_id
    return report


@pytest.mark.timeout(30)
def test_chunks_reach_the_api_as_they_are_yielded(emulator, runtime):
    """A handler yields 5 chunks 200 ms apart, each carrying its yield time: each is recorded
    by the emulator within 100 ms of its yield, long before the handler is done, on a post
    with the streaming headers."""
    invocation, stream, outcome = _stream(emulator, "timed_chunks", count=5, interval=0.2)
    yielded = [json.loads(chunk.data) for chunk in stream.chunks]
    assert [chunk["index"] for chunk in yielded] == [0, 1, 2, 3, 4]
    for chunk, sent in zip(stream.chunks, yielded, strict=True):
        assert 0 <= chunk.received_at_epoch - sent["yielded_at"] < 0.1, (chunk, sent)
    assert stream.chunks[0].received_at_epoch < yielded[4]["yielded_at"] - 0.7
    assert stream.content_type == "application/octet-stream"
    for name, value in STREAM_POST_HEADERS.items():
        assert stream.headers[name] == value
    assert "Content-Length" not in stream.headers
    assert stream.error_type is None and dict(stream.trailers) == {}
    assert outcome.body == b"".join(chunk.data for chunk in stream.chunks)


@pytest.mark.timeout(30)
def test_a_first_item_that_is_a_mapping_is_the_http_prelude(emulator, runtime):
    """The body is the JSON prelude, 8 NULs, then the body chunks, byte for byte as Node's
    HttpResponseStream.from writes it, with the HTTP integration content type."""
    _, stream, outcome = _stream(emulator, "http_response")
    prelude = '{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Kind":"ünï"},"cookies":["a=1"]}'
    assert outcome.body == prelude.encode() + b"\0" * 8 + b"hello world"
    assert stream.content_type == "application/vnd.awslambda.http-integration-response"
    assert [chunk.data for chunk in stream.chunks] == [prelude.encode() + b"\0" * 8, b"hello ", b"world"]


@pytest.mark.timeout(30)
def test_the_handler_sets_the_content_type_through_its_context(emulator, runtime):
    """``context.response_content_type`` set before the first yield is the stream's; str,
    bytearray and memoryview items arrive as they were yielded."""
    _, stream, _ = _stream(emulator, "server_sent_events")
    assert stream.content_type == "text/event-stream"
    assert [chunk.data for chunk in stream.chunks] == [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]


@pytest.mark.timeout(30)
def test_a_returned_iterator_streams_and_an_empty_one_is_an_empty_stream(emulator, runtime):
    _, stream, outcome = _stream(emulator, "returns_an_iterator")
    assert [chunk.data for chunk in stream.chunks] == [b"from ", b"a list iterator"]
    _, stream, outcome = _stream(emulator, "nothing_yielded")
    assert (outcome.body, stream.chunks, stream.error_type) == (b"", [], None)


@pytest.mark.timeout(30)
def test_an_exception_before_the_first_chunk_is_an_ordinary_error(emulator, runtime):
    invocation = emulator.submit({"do": "raise_before_first"})
    outcome = only_answer(emulator, invocation)
    assert (outcome.kind, outcome.error_type, invocation.stream) == ("error", "KeyError", None)
    assert outcome.json()["errorMessage"] == "'no stream today'"


@pytest.mark.timeout(30)
def test_an_exception_after_the_first_chunk_ends_the_stream_with_its_report(emulator, runtime):
    """The chunks sent stay sent; the trailers carry the class name and the base64 four-key
    report with the handler's frames; the same worker serves the next event."""
    pid = _worker_pid(emulator)
    invocation, stream, outcome = _stream(emulator, "raise_after_first", n=2)
    assert outcome.body == b"firstsecond"
    assert stream.error_type == "ValueError" == outcome.error_type
    report = _trailer_report(stream, invocation)
    assert report["errorMessage"] == "broke after 2 chunks"
    # The generator's own frame (route returned before it ran), no runtime frames.
    assert len(report["stackTrace"]) == 1
    assert "in raise_after_first" in report["stackTrace"][0]
    assert _worker_pid(emulator) == pid


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("do", "status"),
    [
        ("exit_after_first", "exit status 3"),
        ("sigkill_after_first", "signal: killed"),
        ("segfault_after_first", "signal: segmentation fault"),
    ],
)
def test_a_worker_dying_mid_stream_ends_it_with_an_exit_error(emulator, runtime, do, status):
    """os._exit, SIGKILL and a segfault after the first chunk: Runtime.ExitError with the exit
    status in the trailers, and a fresh worker serves the next event."""
    pid = _worker_pid(emulator)
    invocation, stream, outcome = _stream(emulator, do)
    assert outcome.body == b"first"
    assert stream.error_type == "Runtime.ExitError"
    assert _trailer_report(stream, invocation)["errorMessage"] == f"Runtime exited with error: {status}"
    assert _worker_pid(emulator) != pid


@pytest.mark.timeout(30)
def test_a_stream_still_open_at_the_deadline_ends_with_a_timeout(emulator, runtime):
    """A handler that yields once, then hangs: its worker is killed before the deadline and the
    stream ends with Sandbox.Timedout; a fresh worker serves the next event."""
    pid = _worker_pid(emulator)
    invocation, stream, outcome = _stream(emulator, "hang_after_first", timeout=2)
    assert outcome.body == b"first"
    assert stream.error_type == "Sandbox.Timedout"
    assert _trailer_report(stream, invocation)["errorMessage"] == "Task timed out after 2.00 seconds"
    assert 1.8 < stream.ended_at - invocation.handed_out_at < 2.0
    assert _worker_pid(emulator) != pid


@pytest.mark.timeout(60)
def test_a_stream_past_200_mb_is_cut_with_a_size_error(emulator, runtime):
    """26 blocks of 8 MiB (208 MiB): the supervisor sends no more than 200 MiB, ends the stream
    with Function.ResponseSizeTooLarge and replaces the worker."""
    pid = _worker_pid(emulator)
    block = 8 << 20
    invocation, stream, outcome = _stream(emulator, "big", block=block, count=26)
    assert stream.error_type == "Function.ResponseSizeTooLarge"
    assert len(outcome.body) == 200 << 20  # 25 blocks of 8 MiB went; the 26th would pass the limit
    report = _trailer_report(stream, invocation)
    assert report["errorMessage"] == (
        f"Response payload size ({(200 << 20) + (1 << 20)} bytes) exceeded maximum allowed payload size"
        f" ({200 << 20} bytes)."
    )
    assert _worker_pid(emulator) != pid


@pytest.mark.timeout(60)
def test_a_100_mb_stream_leaves_the_supervisor_memory_flat(emulator, runtime):
    """100 blocks of 1 MiB through the supervisor: its peak resident size grows by less than
    16 MiB over what it held before (it holds one chunk at a time)."""
    _worker_pid(emulator)
    before_kb = rss_kb(runtime.pid)
    _, stream, outcome = _stream(emulator, "big", block=1 << 20, count=100)
    assert (stream.error_type, len(outcome.body)) == (None, 100 << 20)
    grown_kb = peak_rss_kb(runtime.pid) - before_kb
    assert grown_kb < 16 * 1024, f"supervisor grew by {grown_kb} KiB"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("do", "message"),
    [
        ("bad_item", "a streaming handler yielded int; items are bytes, bytearray, memoryview or str"),
        ("mapping_later", "a mapping (the HTTP metadata) can only be the first item streamed"),
    ],
)
def test_a_bad_item_after_the_first_ends_the_stream_with_a_marshal_error(emulator, runtime, do, message):
    pid = _worker_pid(emulator)
    invocation, stream, _ = _stream(emulator, do)
    assert stream.error_type == "Runtime.MarshalError"
    assert _trailer_report(stream, invocation)["errorMessage"] == f"Unable to marshal response: {message}"
    assert _worker_pid(emulator) == pid


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("do", "message"),
    [
        (
            "bad_first_item",
            "a streaming handler yielded float; items are bytes, bytearray, memoryview or str",
        ),
        (
            "bad_content_type",
            "response_content_type 'text/plain\\r\\nX-Injected: 1' is not a header value",
        ),
    ],
)
def test_a_bad_first_item_or_content_type_is_an_ordinary_error(emulator, runtime, do, message):
    invocation = emulator.submit({"do": do})
    outcome = only_answer(emulator, invocation)
    assert (outcome.kind, outcome.error_type, invocation.stream) == ("error", "Runtime.MarshalError", None)
    assert outcome.json()["errorMessage"] == f"Unable to marshal response: {message}"
    _worker_pid(emulator)


@pytest.mark.timeout(60)
def test_a_runtime_api_that_stops_reading_blocks_the_handlers_yield(tmp_path):
    """Tried: a Runtime API (a raw socket) that reads the head of the streamed post and then
    nothing while the handler has 150 MiB to yield. The handler must be held at its yield
    once the pipe and the socket buffers are full (a bounded number of 1 MiB blocks taken,
    and no more while the API stalls); when the API reads again, the whole stream arrives."""
    block, count = 1 << 20, 150
    counter = tmp_path / "counter"
    with ManualRuntimeAPI() as api:
        write_task(tmp_path / "task", handler_files("stream_every_way"))
        runtime = RuntimeProcess("app:route", runtime_api=api.address, task_root=tmp_path / "task")
        runtime.start()
        try:
            poll = api.accept(30)
            assert poll is not None, f"the runtime never connected:\n{runtime.output()}"
            assert api.read_request(poll).path == NEXT_PATH
            body = json.dumps(
                {"do": "counted_blocks", "block": block, "count": count, "counter": str(counter)}
            )
            poll.sendall(fake_event("stalled", body.encode()))
            head = b""
            while b"\r\n\r\n" not in head:
                head += poll.recv(1)
            assert head.startswith(b"POST /2018-06-01/runtime/invocation/stalled/response HTTP/1.1\r\n")
            assert b"\r\nTransfer-Encoding: chunked\r\n" in head
            taken = wait_until(lambda: counter.exists() and int(counter.read_text() or 0), 10)
            time.sleep(1.5)
            held_at = int(counter.read_text())
            time.sleep(0.5)
            assert int(counter.read_text()) == held_at, "the handler went on yielding while the API stalled"
            assert taken <= held_at < 24, f"{held_at} MiB taken while the API read nothing"
            received = bytearray()
            while not received.endswith(b"\r\n0\r\n\r\n"):
                data = poll.recv(1 << 20)
                assert data, "the stream was cut"
                received += data
            assert received.count(b"x") == block * count
            poll.sendall(ACCEPTED.data)
            assert api.read_request(poll).path == NEXT_PATH  # served, and polling again
        finally:
            runtime.stop()


@pytest.mark.timeout(30)
def test_sigterm_mid_stream_ends_it_within_the_shutdown_grace(emulator, runtime):
    """Tried: SIGTERM to the runtime while a handler that yielded once hangs. The worker gets
    the shutdown grace (1.5 s), is then killed, the stream ends with Runtime.ExitError, and
    the runtime exits 0."""
    invocation = emulator.submit({"do": "hang_after_first"}, timeout=60)
    stream = emulator.await_response(invocation, queue_timeout=10)
    assert isinstance(stream, ResponseStream)
    assert next(stream.follow(timeout=10)).data == b"first"
    os.kill(runtime.pid, signal.SIGTERM)
    signalled = time.monotonic()
    assert stream.wait_ended(5)
    assert stream.error_type == "Runtime.ExitError"
    assert _trailer_report(stream, invocation)["errorMessage"] == "Runtime exited with error: signal: killed"
    assert 1.4 < stream.ended_at - signalled < 2.5
    assert runtime.wait(5) == 0


@pytest.mark.timeout(30)
def test_garbage_on_the_pipe_mid_stream_ends_it_with_a_protocol_error(emulator, runtime):
    """Tried: handler code writing a frame of no known kind on the reply pipe after its first
    chunk. The stream ends with Runtime.WorkerProtocolError and a fresh worker serves on."""
    pid = _worker_pid(emulator)
    invocation, stream, outcome = _stream(emulator, "garbage_mid_stream")
    assert outcome.body == b"first"
    assert stream.error_type == "Runtime.WorkerProtocolError"
    assert "unexpected frame kind b'Z'" in _trailer_report(stream, invocation)["errorMessage"]
    assert _worker_pid(emulator) != pid


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sleep", [0, 0.5], ids=["then-goes-on", "then-goes-on-late"])
def test_a_forged_error_too_large_for_a_trailer_is_cut_to_fit(emulator, runtime, sleep):
    """Tried: handler code ending its stream with a forged error frame carrying a 250 KB
    report, which base64 in a trailer line no server would take, then yielding on (at once,
    or after the next event has been handed over). The supervisor cuts the report to 16 KiB
    (its errorType kept) and ends the stream with it; what the stream sends after is no fault
    of the next event, which gets its own result, and the worker is replaced."""
    pid = _worker_pid(emulator)
    invocation = emulator.submit({"do": "forge_a_huge_stream_error", "sleep": sleep})
    following = emulator.submit({"do": "ok"})
    outcome = only_answer(emulator, invocation)
    stream = invocation.stream
    assert (outcome.body, stream.error_type) == (b"first", "Forged")
    assert len(stream.error_body) <= 16 << 10
    report = json.loads(stream.error_body)
    assert report["errorType"] == "Forged" and report["errorMessage"].startswith("mmmm")
    answer = only_answer(emulator, following)
    assert (answer.kind, answer.json()["ok"]) == ("response", True), answer
    assert _worker_pid(emulator) != pid


@pytest.mark.timeout(30)
def test_the_buffered_invoke_api_gives_a_streamed_body_whole_and_a_trailer_error(emulator, runtime):
    """A caller of the classic Invoke API asking for the log tail (a header, so the answer is
    buffered; without it the body is passed on chunked as it arrives) gets a streamed
    function's whole body with its content type, and for a stream that failed the error its
    trailers carried, flagged as a function error."""
    host, _, port = emulator.address.rpartition(":")
    tail = {"X-Amz-Log-Type": "Tail"}
    status, headers, body = post(host, int(port), INVOKE_PATH, b'{"do": "server_sent_events"}', tail)
    assert (status, headers["content-type"], body) == (
        200,
        "text/event-stream",
        b"data: one\n\ndata: two\n\ndata: three\n\n",
    )
    assert "x-amz-function-error" not in headers
    status, headers, body = post(host, int(port), INVOKE_PATH, b'{"do": "raise_after_first", "n": 2}', tail)
    assert (status, headers["x-amz-function-error"]) == (200, "Unhandled")
    assert json.loads(body)["errorType"] == "ValueError"
    assert json.loads(body)["errorMessage"] == "broke after 2 chunks"


@pytest.mark.timeout(30)
def test_a_runtime_api_that_breaks_off_mid_stream_costs_that_stream_only(emulator, runtime):
    """Tried: the Runtime API restarting (every connection cut) while a handler streams 20
    chunks 100 ms apart. The stream ends there (the emulator words it Runtime.TruncatedResponse),
    the supervisor gives up on it, kills the worker, and the next event is served."""
    pid = _worker_pid(emulator)
    invocation = emulator.submit({"do": "timed_chunks", "count": 20, "interval": 0.1})
    stream = emulator.await_response(invocation, queue_timeout=10)
    assert isinstance(stream, ResponseStream)
    next(stream.follow(timeout=10))
    emulator.restart()
    assert stream.wait_ended(5)
    assert stream.error_type == "Runtime.TruncatedResponse"
    assert len(stream.chunks) < 20
    assert _worker_pid(emulator) != pid
    [record] = log_records(runtime, "response stream to the Runtime API broke")
    assert record["requestId"] == invocation.request_id
