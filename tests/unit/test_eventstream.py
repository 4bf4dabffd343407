"""The event-stream framing of InvokeWithResponseStream answers, read back by botocore's own
decoder (``botocore.eventstream``) and by the event stream boto3 hands its callers."""

from __future__ import annotations

import binascii
import json
import struct

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.parsers import EventStreamJSONParser

from lambda_supervisor.emulator import eventstream

pytestmark = pytest.mark.timeout(10)


def _decoded(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


class _RawBody:
    """What botocore's EventStream reads a response body through: ``stream()``, in pieces."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece = data, piece

    def stream(self):
        for start in range(0, len(self.data), self.piece):
            yield self.data[start : start + self.piece]

    def close(self) -> None:
        pass


def _boto3_events(data: bytes, piece: int = 7) -> list[dict]:
    """The events as ``invoke_with_response_stream(...)["EventStream"]`` yields them."""
    model = botocore.session.get_session().get_service_model("lambda")
    output = model.operation_model("InvokeWithResponseStream").output_shape
    stream_shape = output.members["EventStream"]
    parser = EventStreamJSONParser()
    return list(EventStream(_RawBody(data, piece), stream_shape, parser, "InvokeWithResponseStream"))


def test_a_message_has_the_prelude_headers_payload_and_checksums_botocore_checks():
    """A message built by hand-checked layout: total and header lengths, both CRC32s, and
    botocore decodes the same headers and payload from it."""
    message = eventstream.encode_message({":event-type": "PayloadChunk", "x": "é"}, b"hello")
    total, headers_length = struct.unpack(">II", message[:8])
    assert total == len(message)
    assert headers_length == (1 + 11 + 1 + 2 + 12) + (1 + 1 + 1 + 2 + 2)
    assert struct.unpack(">I", message[8:12])[0] == binascii.crc32(message[:8])
    assert struct.unpack(">I", message[-4:])[0] == binascii.crc32(message[:-4])
    assert message[12 + headers_length : -4] == b"hello"
    (decoded,) = _decoded(message)
    assert decoded.headers == {":event-type": "PayloadChunk", "x": "é"}
    assert decoded.payload == b"hello"


def test_a_damaged_message_fails_botocores_checksum():
    """Flipping one payload byte is caught by the message CRC, so the checksums are real."""
    message = bytearray(eventstream.encode_message({":event-type": "PayloadChunk"}, b"hello"))
    message[-6] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        _decoded(bytes(message))


def test_boto3_reads_payload_chunks_and_the_invoke_complete():
    """Chunks (one empty, which yields no event) and InvokeComplete, fed to botocore in 7-byte
    pieces, come out as boto3's PayloadChunk and InvokeComplete dicts."""
    body = b"".join(
        [
            *eventstream.payload_chunks(b"first "),
            *eventstream.payload_chunks(b""),
            *eventstream.payload_chunks(b"\x00\xffbinary"),
            eventstream.invoke_complete(),
        ]
    )
    assert _boto3_events(body) == [
        {"PayloadChunk": {"Payload": b"first "}},
        {"PayloadChunk": {"Payload": b"\x00\xffbinary"}},
        {"InvokeComplete": {}},
    ]


def test_the_invoke_complete_carries_the_error_and_the_log_tail():
    """ErrorCode, ErrorDetails and LogResult reach boto3 as given; the headers are those of
    an event (``:message-type`` event) with a JSON payload."""
    details = json.dumps({"errorType": "ValueError", "errorMessage": "bad"})
    message = eventstream.invoke_complete("ValueError", details, "bG9ncw==")
    (decoded,) = _decoded(message)
    assert decoded.headers == {
        ":event-type": "InvokeComplete",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert _boto3_events(message) == [
        {"InvokeComplete": {"ErrorCode": "ValueError", "ErrorDetails": details, "LogResult": "bG9ncw=="}}
    ]


def test_a_chunk_larger_than_an_event_is_split_in_order():
    """A 2.5 MB chunk becomes three events of at most MAX_EVENT_PAYLOAD that join back to it."""
    data = bytes(range(256)) * (10 * 1024)
    assert len(data) == 2_621_440
    events = list(eventstream.payload_chunks(data))
    payloads = [message.payload for message in _decoded(b"".join(events))]
    assert [len(payload) for payload in payloads] == [1_048_576, 1_048_576, 524_288]
    assert b"".join(payloads) == data
