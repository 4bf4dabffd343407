"""The frames of a streamed reply over a real pipe, and how a streaming handler's items become
bytes: what the worker writes the supervisor reads back as the same parts, in order."""

from __future__ import annotations

import array
import os
import threading

import pytest

from worker import marshal, protocol

pytestmark = pytest.mark.timeout(10)


def _read_parts(read_fd: int, count: int) -> list:
    return [
        protocol.parse_stream_part(
            protocol.read_frame(read_fd, max_body=protocol.MAX_STREAM_FRAME, allowed=protocol.STREAM_KINDS)
        )
        for _ in range(count)
    ]


def test_a_stream_round_trips_start_chunks_and_end(pipe):
    read_fd, write_fd = pipe
    protocol.write_stream_start(write_fd, "token-1", "text/event-stream")
    protocol.write_chunk(write_fd, b"one")
    protocol.write_chunk(write_fd, bytearray(b"two"))
    protocol.write_stream_end(write_fd)
    start = protocol.read_frame(read_fd, max_body=0, allowed=protocol.REPLY_KINDS)
    assert protocol.reply_token(start) == "token-1"
    assert protocol.parse_reply(start, 0) == protocol.StreamStart("text/event-stream")
    parts = _read_parts(read_fd, 3)
    assert [bytes(part) for part in parts[:2]] == [b"one", b"two"]
    assert parts[2] == protocol.StreamEnd()


def test_a_large_item_is_cut_into_chunks_of_at_most_the_chunk_size(pipe):
    """2.5 MiB in one item crosses as three chunks (1 MiB, 1 MiB, 0.5 MiB), so the supervisor
    never holds more than one of them."""
    read_fd, write_fd = pipe
    data = os.urandom((5 << 20) // 2)
    writer = threading.Thread(target=protocol.write_chunk, args=(write_fd, memoryview(data)))
    writer.start()
    parts = _read_parts(read_fd, 3)
    writer.join(5)
    assert [len(part) for part in parts] == [1 << 20, 1 << 20, 1 << 19]
    assert b"".join(parts) == data


def test_an_empty_item_writes_nothing_and_a_typed_memoryview_goes_as_its_bytes(pipe):
    """An empty HTTP chunk would end the body, so none is sent; a memoryview of 4-byte ints is
    sent as its 16 bytes, not as 4."""
    read_fd, write_fd = pipe
    protocol.write_chunk(write_fd, b"")
    ints = array.array("i", [1, 2, 3, 4])
    protocol.write_chunk(write_fd, memoryview(ints))
    protocol.write_stream_end(write_fd)
    parts = _read_parts(read_fd, 2)
    assert (bytes(parts[0]), parts[1]) == (ints.tobytes(), protocol.StreamEnd())


def test_a_failed_stream_carries_its_error_type_and_retire(pipe):
    read_fd, write_fd = pipe
    protocol.write_stream_failed(
        write_fd, protocol.Failed(b'{"errorType": "MemoryError"}', "MemoryError", None, True)
    )
    [failed] = _read_parts(read_fd, 1)
    assert failed == protocol.Failed(b'{"errorType": "MemoryError"}', "MemoryError", None, retire=True)


def test_a_stream_start_whose_content_type_could_split_a_header_is_garbled(pipe):
    read_fd, write_fd = pipe
    protocol.write_stream_start(write_fd, "t", "text/plain\r\nX-Injected: 1")
    frame = protocol.read_frame(read_fd, max_body=0, allowed=protocol.REPLY_KINDS)
    with pytest.raises(protocol.Garbled, match="cannot be a header value"):
        protocol.parse_reply(frame, 0)


def test_a_chunk_outside_a_stream_and_a_stream_part_as_a_reply_are_refused(pipe):
    """A CHUNK is not a reply kind, and a RESULT is not a stream kind: either is a protocol error."""
    read_fd, write_fd = pipe
    protocol.write_chunk(write_fd, b"stray")
    with pytest.raises(protocol.Garbled, match="unexpected frame kind"):
        protocol.read_frame(read_fd, max_body=100, allowed=protocol.REPLY_KINDS)
    protocol.write_frame(write_fd, protocol.RESULT, {}, b"x")
    with pytest.raises(protocol.Garbled, match="unexpected frame kind"):
        protocol.read_frame(read_fd, max_body=100, allowed=protocol.STREAM_KINDS)


def _generator():
    yield b"x"


@pytest.mark.parametrize(
    ("result", "streams"),
    [
        (_generator(), True),
        (iter([1]), True),
        (map(str, [1]), True),
        ([b"a"], False),
        ((b"a",), False),
        ({"a": 1}, False),
        ("text", False),
        (b"bytes", False),
        (None, False),
        (3, False),
    ],
)
def test_only_iterators_stream(result, streams):
    assert marshal.is_stream(result) is streams


def test_a_mapping_first_is_the_compact_json_prelude_and_its_delimiter():
    data, content_type = marshal.encode_first_chunk({"statusCode": 200, "headers": {"a": "é"}}, "text/plain")
    assert data == '{"statusCode":200,"headers":{"a":"é"}}'.encode() + b"\0" * 8
    assert content_type == "application/vnd.awslambda.http-integration-response"


def test_other_first_items_take_the_handlers_content_type_or_octet_stream():
    assert marshal.encode_first_chunk("é", None) == ("é".encode(), "application/octet-stream")
    assert marshal.encode_first_chunk(b"x", "text/event-stream") == (b"x", "text/event-stream")


@pytest.mark.parametrize("item", [1, 2.5, None, [b"x"], {"statusCode": 200}])
def test_items_after_the_first_must_be_bytes_or_text(item):
    with pytest.raises(marshal.MarshalError, match="Unable to marshal response"):
        marshal.encode_chunk(item)
