"""The pipe's framing, over real pipes: what one side writes the other reads, and every
malformed or oversized frame is refused before its body is read."""

from __future__ import annotations

import os
import threading
import time

import pytest

from worker import protocol

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("size", [0, 1, 64 << 10, (64 << 10) + 1, 300_000])
def test_a_frame_round_trips_whatever_its_body_size(pipe, size):
    """Bodies on both sides of the size read together with the metadata."""
    read_fd, write_fd = pipe
    body = os.urandom(size)
    os.set_blocking(write_fd, False)
    received: list = []
    reader = threading.Thread(target=lambda: received.append(protocol.read_frame(read_fd, max_body=1 << 20)))
    reader.start()
    protocol.write_frame(write_fd, protocol.RESULT, {"a": 1}, body, deadline=time.monotonic() + 5)
    reader.join(5)
    frame = received[0]
    assert (frame.kind, frame.meta, bytes(frame.body)) == (protocol.RESULT, {"a": 1}, body)


def test_a_body_over_the_limit_is_refused_from_the_header_alone(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, protocol.HEADER.pack(protocol.RESULT, 2, 10_000_000) + b"{}")
    with pytest.raises(protocol.Oversized) as refused:
        protocol.read_frame(read_fd, max_body=1000)
    assert refused.value.size == 10_000_000


def test_an_unexpected_kind_is_a_protocol_error(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, protocol.HEADER.pack(b"Z", 0, 0))
    with pytest.raises(protocol.Garbled, match="unexpected frame kind"):
        protocol.read_frame(read_fd, max_body=10, allowed=frozenset((protocol.RESULT,)))


@pytest.mark.parametrize(
    ("meta", "message"),
    [(b"not json", "not JSON"), (b"[1, 2]", "not a JSON object"), (b"[" * 60_000, "nested too deep")],
)
def test_metadata_that_is_not_a_json_object_is_a_protocol_error(pipe, meta, message):
    read_fd, write_fd = pipe
    os.set_blocking(write_fd, False)
    os.write(write_fd, protocol.HEADER.pack(protocol.RESULT, len(meta), 0) + meta)
    with pytest.raises(protocol.Garbled, match=message):
        protocol.read_frame(read_fd, max_body=10)


def test_a_writer_gone_mid_frame_is_peer_closed(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, protocol.HEADER.pack(protocol.RESULT, 2, 100) + b"{}abc")
    os.close(write_fd)
    with pytest.raises(protocol.Closed):
        protocol.read_frame(read_fd, max_body=1000)


def test_a_frame_that_does_not_come_ends_at_the_deadline(pipe):
    read_fd, _ = pipe
    started = time.monotonic()
    with pytest.raises(protocol.TimedOut):
        protocol.read_frame(read_fd, max_body=10, deadline=started + 0.05)
    assert time.monotonic() - started < 1.0


def test_the_interrupt_descriptor_ends_the_wait_only_before_the_frame_begins(pipe):
    read_fd, write_fd = pipe
    interrupt_read, interrupt_write = os.pipe()
    try:
        os.write(interrupt_write, b"x")
        with pytest.raises(protocol.Interrupted):
            protocol.read_frame(read_fd, max_body=10, interrupt=interrupt_read, deadline=time.monotonic() + 5)
        # Once a frame has begun, the same wakeup no longer abandons it.
        os.write(write_fd, protocol.HEADER.pack(protocol.RESULT, 2, 3) + b"{}ab")
        late = threading.Timer(0.1, os.write, (write_fd, b"c"))
        late.start()
        frame = protocol.read_frame(
            read_fd, max_body=10, interrupt=interrupt_read, deadline=time.monotonic() + 5
        )
        late.join()
        assert frame.body == b"abc"
    finally:
        os.close(interrupt_read)
        os.close(interrupt_write)


def test_metadata_is_encoded_as_compact_json_would_be(pipe):
    """The encoder built once for a frame's metadata writes what json.dumps with compact
    separators writes (non-ASCII escaped, floats, nesting), and refuses what JSON cannot
    hold with json's own TypeError."""
    import json

    meta = {"request_id": "ünï\u2028", "deadline_ms": 1_789_000_000_000, "n": 1.5, "ok": True, "none": None}
    meta["nested"] = {"list": [1, "two"]}
    assert protocol._encode_meta(meta) == json.dumps(meta, separators=(",", ":"))
    with pytest.raises(TypeError, match="not JSON serializable"):
        protocol._encode_meta({"x": object()})
    read_fd, write_fd = pipe
    protocol.write_frame(write_fd, protocol.RESULT, meta)
    assert protocol.read_frame(read_fd, max_body=0).meta == meta


@pytest.mark.parametrize("body_size", [3, 300_000])
def test_on_a_nonblocking_pipe_the_rest_of_a_frame_is_awaited_when_it_is_late(pipe, body_size):
    """The supervisor's reply pipe is non-blocking, and once a frame has begun its rest is
    read before it is waited for. Tried: a frame whose last byte comes 100 ms after the
    rest, small and over the pipe's capacity (read whole), and one whose rest never comes
    (ended at the deadline, not blocked on)."""
    read_fd, write_fd = pipe
    os.set_blocking(read_fd, False)
    body = os.urandom(body_size)
    head = protocol.HEADER.pack(protocol.RESULT, 2, body_size) + b"{}"

    def write_late() -> None:
        os.write(write_fd, head + body[:-1])  # blocks while the pipe is full
        time.sleep(0.1)
        os.write(write_fd, body[-1:])

    writer = threading.Thread(target=write_late)
    writer.start()
    frame = protocol.read_frame(read_fd, max_body=1 << 20, deadline=time.monotonic() + 5, nonblocking=True)
    writer.join(5)
    assert bytes(frame.body) == body
    os.write(write_fd, head[:-1])
    started = time.monotonic()
    with pytest.raises(protocol.TimedOut):
        protocol.read_frame(read_fd, max_body=1 << 20, deadline=started + 0.2, nonblocking=True)
    assert 0.2 <= time.monotonic() - started < 2.0
