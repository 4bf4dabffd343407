"""Events in, results out: JSON as AWS's Python runtime reads and writes it.

``Decimal`` becomes a JSON number with all its digits (DynamoDB results are full of
them), ``bytes`` pass through untouched, and non-ASCII text is written as UTF-8 rather
than escaped. A handler that returns an iterator streams: each item it yields is sent as
it comes (``encode_first_chunk``, ``encode_chunk``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/unknown"


class UnmarshalError(Exception):
    pass


class MarshalError(Exception):
    pass


def decode_event(payload: bytes | bytearray, content_type: str | None) -> Any:
    """JSON events become Python objects; anything else is handed over as bytes."""
    if content_type and content_type.split(";", 1)[0].strip().lower() != JSON_CONTENT_TYPE:
        return bytes(payload)  # a large payload arrives as a bytearray; handlers are given bytes
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise UnmarshalError(f"Unable to unmarshal input: {exc}") from None


class _DecimalAwareEncoder:
    """Stdlib JSON has no way to emit a raw number, so each ``Decimal`` is first written as a
    string carrying a per-process random marker, and the quoted marker is then replaced by
    the digits. Only results that contain a Decimal take this path."""

    def __init__(self) -> None:
        self.marker = "\x00decimal-" + os.urandom(8).hex() + ":"
        self.quoted_marker = json.dumps(self.marker)[:-1]  # '"\u0000decimal-...:'
        self.encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=True, default=self.default)

    def default(self, obj: Any) -> Any:
        import decimal  # only results holding a non-JSON type get here

        if isinstance(obj, decimal.Decimal):
            if obj.is_nan():
                return math.nan
            return self.marker + str(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    def encode(self, obj: Any) -> str:
        text = self.encoder.encode(obj)
        if self.quoted_marker not in text:
            return text
        parts = text.split(self.quoted_marker)
        out = [parts[0]]
        for part in parts[1:]:
            digits, _, rest = part.partition('"')
            out.append(digits)
            out.append(rest)
        return "".join(out)


_encoder: _DecimalAwareEncoder | None = None


def encode_result(result: Any) -> tuple[bytes, str]:
    """The bytes to post and their content type."""
    global _encoder
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), BINARY_CONTENT_TYPE
    if _encoder is None:
        _encoder = _DecimalAwareEncoder()
    try:
        return _encoder.encode(result).encode("utf-8", "surrogatepass"), JSON_CONTENT_TYPE
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from None


# --- streamed results ----------------------------------------------------------------------

# A streamed body that starts with the HTTP metadata (function URLs, API Gateway), as Node's
# ``HttpResponseStream.from`` and the Rust runtime send it: the JSON prelude, then 8 NULs.
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8
STREAM_CONTENT_TYPE = "application/octet-stream"
# Results that are never streamed, whatever they implement: checked first, as it is cheap.
_PLAIN_RESULTS = (dict, list, tuple, str, bytes, bytearray, memoryview, int, float, type(None))


def is_stream(result: Any) -> bool:
    """Does the handler stream? It does when it returned an iterator (a generator function's
    generator, among others) rather than a value; a list or a str is a value."""
    return not isinstance(result, _PLAIN_RESULTS) and isinstance(result, Iterator)


def encode_first_chunk(item: Any, content_type: str | None) -> tuple[bytes | bytearray | memoryview, str]:
    """The bytes of a stream's first item and the stream's content type: a mapping is the HTTP
    metadata (the prelude), anything else the start of the body, sent as ``content_type``
    (the handler's ``context.response_content_type``) or ``application/octet-stream``."""
    if isinstance(item, Mapping):
        try:
            prelude = json.dumps(dict(item), separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise MarshalError(f"Unable to marshal response: the HTTP metadata is not JSON: {exc}") from None
        return prelude.encode("utf-8", "surrogatepass") + PRELUDE_DELIMITER, HTTP_INTEGRATION_CONTENT_TYPE
    return encode_chunk(item), content_type or STREAM_CONTENT_TYPE


def encode_chunk(item: Any) -> bytes | bytearray | memoryview:
    """The bytes of an item a streaming handler yielded after its first one."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return item
    if isinstance(item, str):
        return item.encode("utf-8", "surrogatepass")
    if isinstance(item, Mapping):
        raise MarshalError(
            "Unable to marshal response: a mapping (the HTTP metadata) can only be the first item streamed"
        )
    raise MarshalError(
        f"Unable to marshal response: a streaming handler yielded {type(item).__name__};"
        " items are bytes, bytearray, memoryview or str"
    )
