"""HTTP requests into payload format 2.0 events, and function results back into responses,
as API Gateway's HTTP APIs and function URLs translate them."""

from __future__ import annotations

import base64
import json

import pytest

from lambda_supervisor.emulator import HttpRequest, Outcome
from lambda_supervisor.local.http_front import (
    ApiGatewayFront,
    MalformedAnswer,
    request_event,
    result_answer,
    streamed_answer,
    streamed_head,
)

pytestmark = pytest.mark.timeout(10)

NOW = 1_700_000_000.123


def event_for(
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    method: str = "GET",
) -> dict:
    request = HttpRequest(
        method=method,
        target=target,
        headers=headers if headers is not None else [("Host", "127.0.0.1:9000")],
        body=body,
        source_ip="127.0.0.1",
        request_id="req-1",
    )
    return request_event(request, account_id="123456789012", now=NOW)


def test_a_request_becomes_the_events_fields_as_api_gateway_sends_them():
    event = event_for(
        "/shop/caf%C3%A9?q=a%20b&tag=x&tag=y&empty=",
        [
            ("Host", "localhost:9000"),
            ("User-Agent", "browser/1.0"),
            ("Accept", "text/html"),
            ("Accept", "application/json"),
            ("Cookie", "session=abc; theme=dark"),
            ("Cookie", "extra=1"),
            ("Connection", "keep-alive"),
        ],
        method="POST",
    )
    assert event == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/shop/caf%C3%A9",
        "rawQueryString": "q=a%20b&tag=x&tag=y&empty=",
        "cookies": ["session=abc", "theme=dark", "extra=1"],
        "headers": {
            "host": "localhost:9000",
            "user-agent": "browser/1.0",
            "accept": "text/html,application/json",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-proto": "http",
            "x-forwarded-port": "9000",
        },
        "queryStringParameters": {"q": "a b", "tag": "x,y", "empty": ""},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": "POST",
                "path": "/shop/caf%C3%A9",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "browser/1.0",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": 1_700_000_000_123,
        },
        "isBase64Encoded": False,
    }


def test_no_query_and_no_cookie_leave_their_fields_out():
    event = event_for("/")
    assert "queryStringParameters" not in event and "cookies" not in event and "body" not in event
    assert (event["rawPath"], event["rawQueryString"]) == ("/", "")


@pytest.mark.parametrize(
    ("host", "domain", "port"),
    [("localhost:9000", "localhost", "9000"), ("[::1]:9001", "[::1]", "9001"), ("[::1]", "[::1]", "80")],
)
def test_the_host_header_gives_the_domain_and_forwarded_port(host, domain, port):
    event = event_for("/", [("Host", host)])
    assert (event["requestContext"]["domainName"], event["headers"]["x-forwarded-port"]) == (domain, port)


def test_a_forwarded_for_header_gets_the_callers_address_appended():
    headers = [("Host", "127.0.0.1:9000"), ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "https")]
    event = event_for("/", headers)
    assert event["headers"]["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert event["headers"]["x-forwarded-proto"] == "https"


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        ("application/json", b'{"a": 1}', False),
        ("text/plain; charset=utf-8", "café".encode(), False),
        ("application/x-www-form-urlencoded", b"a=1&b=2", False),
        ("application/vnd.api+json", b"{}", False),
        (None, b"plain words", False),
        ("image/png", b"\x89PNG\r\n", True),
        ("application/octet-stream", b"ascii but binary type", True),
        ("text/plain", b"\xff\xfe not utf-8", True),
        (None, b"\xff\x00", True),
    ],
)
def test_a_body_is_text_or_base64(content_type, body, encoded):
    headers = [("Host", "127.0.0.1:9000")] + ([("Content-Type", content_type)] if content_type else [])
    event = event_for("/", headers, body, "POST")
    assert event["isBase64Encoded"] is encoded
    decoded = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    assert decoded == body


def test_a_proxy_result_becomes_status_header_lines_and_body():
    result = {
        "statusCode": 302,
        "headers": {"Location": "/next", "X-Count": 3, "Content-Length": "999", "X-Both": "single"},
        "multiValueHeaders": {"X-Both": ["one", "two"]},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "moved",
    }
    answer = result_answer(json.dumps(result).encode(), "application/json")
    assert answer.status == 302
    assert list(answer.headers) == [
        ("X-Both", "one"),
        ("X-Both", "two"),
        ("Location", "/next"),
        ("X-Count", "3"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; HttpOnly"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    assert answer.body == b"moved"


def test_a_base64_body_is_decoded():
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    result = {
        "statusCode": 200,
        "headers": {"content-type": "image/png"},
        "body": base64.b64encode(png).decode(),
        "isBase64Encoded": True,
    }
    answer = result_answer(json.dumps(result).encode())
    assert (answer.status, list(answer.headers), answer.body) == (200, [("content-type", "image/png")], png)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": "hi"}', b'{"message": "hi"}'),
        (b'"Hello from Lambda!"', b"Hello from Lambda!"),
        (b"[1, 2]", b"[1, 2]"),
        (b"null", b"null"),
        (b"42", b"42"),
    ],
)
def test_a_plain_value_is_a_200_json_response(body, expected):
    answer = result_answer(body, "application/json")
    assert (answer.status, list(answer.headers), answer.body) == (
        200,
        [("Content-Type", "application/json")],
        expected,
    )


@pytest.mark.parametrize(
    "result",
    [
        b"not json",
        b'{"statusCode": "teapot"}',
        b'{"statusCode": 99}',
        b'{"statusCode": true}',
        b'{"statusCode": 200, "body": {"not": "a string"}}',
        b'{"statusCode": 200, "headers": ["x"]}',
        b'{"statusCode": 200, "headers": {"x": {"nested": 1}}}',
        b'{"statusCode": 200, "cookies": "a=1"}',
        b'{"statusCode": 200, "multiValueHeaders": {"x": "one"}}',
        b'{"statusCode": 200, "body": "@@@", "isBase64Encoded": true}',
    ],
)
def test_a_result_api_gateway_cannot_read_is_refused(result):
    with pytest.raises(MalformedAnswer):
        result_answer(result, "application/json")


def test_the_front_answers_function_errors_and_malformed_results_with_a_502():
    front = ApiGatewayFront()
    failed = Outcome(
        "error", b'{"errorType": "RuntimeError"}', {"Lambda-Runtime-Function-Error-Type": "x"}, 202
    )
    malformed = Outcome("response", b'{"statusCode": "no"}', {}, 202)
    for outcome in (failed, malformed):
        answer = front.answer(outcome)
        assert (answer.status, json.loads(answer.body)) == (502, {"message": "Internal Server Error"})
    ok = front.answer(Outcome("response", b'{"statusCode": 204}', {}, 202))
    assert (ok.status, ok.body) == (204, b"")
    assert json.loads(front.failure(413).body) == {"message": "Request Entity Too Large"}


def test_a_streamed_answers_prelude_gives_status_and_headers():
    prelude = {"statusCode": 201, "headers": {"Content-Type": "text/event-stream"}, "cookies": ["s=1"]}
    body = json.dumps(prelude).encode() + b"\0" * 8 + b"data: 1\n\ndata: 2\n\n"
    answer = result_answer(body, "application/vnd.awslambda.http-integration-response")
    assert answer.status == 201
    assert list(answer.headers) == [("Content-Type", "text/event-stream"), ("Set-Cookie", "s=1")]
    assert answer.body == b"data: 1\n\ndata: 2\n\n"
    assert streamed_head(b"{}") == (200, [("Content-Type", "text/plain; charset=utf-8")])
    with pytest.raises(MalformedAnswer):
        result_answer(b'{"statusCode": 200}', "application/vnd.awslambda.http-integration-response")


def test_a_streams_head_is_known_once_its_prelude_has_ended():
    """Tried: a prelude read as it arrives, cut inside its JSON and inside its 8 NULs; then
    a plain event stream. No head until the NULs are all in, then the prelude's with the
    body's start; the plain stream is a 200 of its own type at once, its start the body."""
    integration = "application/vnd.awslambda.http-integration-response"
    start = b'{"statusCode":202,"cookies":["a=1"]}' + b"\0" * 8 + b"first"
    assert streamed_answer(integration, start[:10]) is None
    assert streamed_answer(integration, start[:40]) is None
    answer = streamed_answer(integration, start)
    assert answer is not None
    assert (answer.status, list(answer.headers), answer.body) == (
        202,
        [("Set-Cookie", "a=1"), ("Content-Type", "text/plain; charset=utf-8")],
        b"first",
    )
    with pytest.raises(MalformedAnswer):
        streamed_answer(integration, b"[1]" + b"\0" * 8)
    answer = streamed_answer("text/event-stream", b"data: 1\n\n")
    assert answer is not None
    assert (answer.status, list(answer.headers), answer.body) == (
        200,
        [("Content-Type", "text/event-stream")],
        b"data: 1\n\n",
    )
