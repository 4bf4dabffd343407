"""The ``application/vnd.amazon.eventstream`` framing of ``InvokeWithResponseStream`` answers.

Lambda answers ``POST /2021-11-15/functions/{name}/response-streaming-invocations`` with a
body of binary event-stream messages, which the SDKs (botocore's ``EventStream``) decode
as they arrive: a ``PayloadChunk`` event for each piece of the function's stream, then
one ``InvokeComplete`` event with the error, if any, and the log tail. Each message is

    total length (4 bytes) | headers length (4) | CRC32 of those 8 bytes (4)
    headers | payload | CRC32 of everything before it (4)

all integers big-endian; a header is its name's length (1 byte), the name, its type (7:
string), the value's length (2 bytes) and the value. Pure functions, no I/O.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterator, Mapping

CONTENT_TYPE = "application/vnd.amazon.eventstream"
PAYLOAD_CHUNK = "PayloadChunk"
INVOKE_COMPLETE = "InvokeComplete"

_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
_STRING_HEADER = 7
# botocore refuses a message whose payload exceeds 24 MB; a stream's chunk may be larger
# (one HTTP chunk of the runtime's), so it is split into events no larger than this.
MAX_EVENT_PAYLOAD = 1024 * 1024


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message with string ``headers`` and ``payload``."""
    encoded_headers = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + _CRC.size + len(encoded_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    message = prelude + _CRC.pack(binascii.crc32(prelude)) + encoded_headers + payload
    return message + _CRC.pack(binascii.crc32(message))


def _encode_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
        raise ValueError(f"header {name!r} is too long for an event-stream message")
    value_prelude = struct.pack(">BH", _STRING_HEADER, len(raw_value))
    return struct.pack(">B", len(raw_name)) + raw_name + value_prelude + raw_value


def event(event_type: str, payload: bytes, content_type: str) -> bytes:
    """An ``event`` message of ``event_type``, as the SDKs match it to the operation's model."""
    headers = {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    return encode_message(headers, payload)


def payload_chunks(data: bytes) -> Iterator[bytes]:
    """``PayloadChunk`` events carrying ``data`` (``Payload``, raw bytes), in order; one
    event unless ``data`` is longer than ``MAX_EVENT_PAYLOAD``, none when it is empty."""
    view = memoryview(data)
    for start in range(0, len(data), MAX_EVENT_PAYLOAD):
        yield event(PAYLOAD_CHUNK, bytes(view[start : start + MAX_EVENT_PAYLOAD]), "application/octet-stream")


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """The ``InvokeComplete`` event that ends the stream: a JSON object holding those of
    ``ErrorCode``, ``ErrorDetails`` and ``LogResult`` (base64 log tail) that are given."""
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    body = json.dumps({name: value for name, value in fields.items() if value is not None})
    return event(INVOKE_COMPLETE, body.encode(), "application/json")
