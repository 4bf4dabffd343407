"""Response streaming: a handler's chunks reach the Runtime API as it yields them, and every
way a stream can fail ends it with the error in its trailers while the runtime serves on.

The first tests speak to the emulator's Runtime API directly over a raw socket, as a
streaming runtime does; the rest run handlers through bin/bootstrap against it.
"""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest
from http_support import exchange

from lambda_supervisor.emulator import ResponseStream, RuntimeAPIEmulator

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
