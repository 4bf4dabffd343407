"""Events in, results out: JSON as AWS's Python runtime reads and writes it.

``Decimal`` becomes a JSON number with all its digits (DynamoDB results are full of
them), ``bytes`` pass through untouched, and non-ASCII text is written as UTF-8 rather
than escaped.
"""

from __future__ import annotations

import json
import math
import os
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
