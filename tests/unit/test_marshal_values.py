"""Events in, results out, as AWS's Python runtime marshals them."""

from __future__ import annotations

import decimal
import json

import pytest

from worker import marshal

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, b"null"),
        ("é", '"é"'.encode()),
        ({"n": decimal.Decimal("1.10")}, b'{"n": 1.10}'),
        ([decimal.Decimal("12345678901234567890.5")], b"[12345678901234567890.5]"),
        ({"s": "\x00decimal-"}, json.dumps({"s": "\x00decimal-"}, ensure_ascii=False).encode()),
    ],
)
def test_json_results(result, expected):
    assert marshal.encode_result(result) == (expected, "application/json")


def test_bytes_pass_through_untouched():
    assert marshal.encode_result(b"\xff\x00") == (b"\xff\x00", "application/unknown")
    assert marshal.encode_result(bytearray(b"ab")) == (b"ab", "application/unknown")


@pytest.mark.parametrize("result", [{1, 2}, object(), {"nested": {"deeper": {3}}}])
def test_a_result_json_cannot_hold_is_a_marshal_error(result):
    with pytest.raises(marshal.MarshalError, match="Unable to marshal response: Object of type"):
        marshal.encode_result(result)


def test_a_circular_result_is_a_marshal_error_not_a_crash():
    loop: list = []
    loop.append(loop)
    with pytest.raises(marshal.MarshalError):
        marshal.encode_result(loop)


def test_json_events_are_decoded_and_others_handed_over_as_bytes():
    assert marshal.decode_event(b'{"a": 1}', "application/json") == {"a": 1}
    assert marshal.decode_event(b'{"a": 1}', None) == {"a": 1}
    assert marshal.decode_event(bytearray(b"raw"), "application/octet-stream") == b"raw"


def test_an_event_that_is_not_json_is_an_unmarshal_error():
    with pytest.raises(marshal.UnmarshalError, match="Unable to unmarshal input: "):
        marshal.decode_event(b"{nope", "application/json")
