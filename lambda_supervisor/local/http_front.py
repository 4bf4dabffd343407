"""HTTP requests as API Gateway HTTP API / function URL events, and results back as responses.

``serve --http`` puts this in front of the function, so that a web app behind an adapter
(Mangum, aws-wsgi, Powertools' resolvers) or a handler returning ``{"statusCode": ...}``
answers a browser or curl as it would behind API Gateway or a function URL. Both send
payload format version 2.0, and read the function's answer the same way:

- The event: ``rawPath`` and ``rawQueryString`` as sent (percent-encoded, as function
  URLs keep them), ``headers`` with lower-case names and repeated values joined by
  commas, the ``Cookie`` header moved to ``cookies``, ``queryStringParameters`` decoded
  (repeats joined by commas), ``requestContext.http``, and the body as text, or base64
  with ``isBase64Encoded`` when it is not text. ``x-forwarded-*`` say how the request
  came in, as API Gateway's do.
- The answer: a JSON object with ``statusCode`` gives the status, ``headers``,
  ``multiValueHeaders``, ``cookies`` (one ``Set-Cookie`` line each) and ``body`` (base64
  when ``isBase64Encoded``). Any other JSON value is the body of a 200
  ``application/json`` response: a string as it is, anything else as the function
  returned it. A function error, or an answer that is not one of these, is API Gateway's
  502 ``{"message":"Internal Server Error"}``.
- A streamed answer (``application/vnd.awslambda.http-integration-response``) starts with
  a JSON prelude (``statusCode``, ``headers``, ``cookies``) and eight NUL bytes: the
  prelude gives the status and headers (``streamed_head``), and the rest is the body.
  ``streamed_answer`` reads the head as soon as the prelude is in, so that the body can
  follow chunk by chunk; a stream of any other type is a 200 of that type.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from lambda_supervisor.emulator import DEFAULT_ACCOUNT, HttpAnswer, HttpRequest, Outcome

API_ID = "local"
STREAMED_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
# What API Gateway answers when the function fails or answers in a shape it cannot read.
FAILURE_MESSAGES = {413: "Request Entity Too Large", 502: "Internal Server Error"}
# Framing is this server's business, not the function's (nor the client's, for the event).
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade")
)
_NOT_FROM_THE_FUNCTION = _HOP_BY_HOP | {"content-length"}
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")
_TEXT_SUFFIXES = ("+json", "+xml")
_TEXT_SUBTYPES = ("application/x-www-form-urlencoded", "application/graphql")
# API Gateway's answer to a statusCode without a Content-Type.
_DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"


class MalformedAnswer(ValueError):
    """The function's result cannot be read as an HTTP response."""


@dataclass(frozen=True)
class ApiGatewayFront:
    """The ``HttpFront`` of ``serve --http``: format 2.0 events, as API Gateway sends them."""

    account_id: str = DEFAULT_ACCOUNT

    def event(self, request: HttpRequest) -> bytes:
        return json.dumps(request_event(request, account_id=self.account_id)).encode()

    def answer(self, outcome: Outcome) -> HttpAnswer:
        if outcome.kind != "response" or outcome.error_type:
            return self.failure(502)
        try:
            return result_answer(outcome.body, outcome.headers.get("Content-Type"))
        except MalformedAnswer:
            return self.failure(502)

    def streamed(self, content_type: str, start: bytes) -> HttpAnswer | None:
        return streamed_answer(content_type, start)

    def failure(self, status: int) -> HttpAnswer:
        body = json.dumps({"message": FAILURE_MESSAGES.get(status, "Internal Server Error")})
        return HttpAnswer(status, [("Content-Type", "application/json")], body.encode())


# ----------------------------------------------------------------------------- requests


def request_event(
    request: HttpRequest, *, account_id: str = DEFAULT_ACCOUNT, now: float | None = None
) -> dict[str, Any]:
    """The payload format 2.0 event for ``request``."""
    now = time.time() if now is None else now
    raw_path, _, raw_query = request.target.partition("?")
    if "://" in raw_path:  # absolute form: http://host/path
        raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
    headers = _joined_headers(request.headers)
    headers.pop("cookie", None)  # each of its cookies goes to ``cookies``, from every Cookie header
    cookies = [
        cookie.strip()
        for name, value in request.headers
        if name.lower() == "cookie"
        for cookie in value.split(";")
        if cookie.strip()
    ]
    domain, port = _split_host(headers.get("host", "localhost"))
    headers["x-forwarded-for"] = ", ".join(filter(None, (headers.get("x-forwarded-for"), request.source_ip)))
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-forwarded-port", port)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path or "/",
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if raw_query:
        event["queryStringParameters"] = _joined_pairs(parse_qsl(raw_query, keep_blank_values=True))
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": raw_path or "/",
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if request.body:
        text = _as_text(request.body, headers.get("content-type"))
        event["body"] = text if text is not None else base64.b64encode(request.body).decode("ascii")
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def _split_host(host: str) -> tuple[str, str]:
    """``name:port`` or ``[v6]:port`` as the name and the port (80 when not given)."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else "80"
    name, colon, port = host.partition(":")
    return name, port if colon else "80"


def _joined_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names, repeated values joined by commas; hop-by-hop headers left out."""
    return _joined_pairs((name.lower(), value) for name, value in pairs if name.lower() not in _HOP_BY_HOP)


def _joined_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _as_text(body: bytes, content_type: str | None) -> str | None:
    """The body as text, or None when it must travel as base64 (binary, or not UTF-8)."""
    if content_type is not None and not _is_text_type(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_text_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(_TEXT_SUFFIXES) or media in _TEXT_SUBTYPES


# ----------------------------------------------------------------------------- answers


def result_answer(body: bytes, content_type: str | None = None) -> HttpAnswer:
    """The HTTP response for the function's result ``body``; ``MalformedAnswer`` when it
    has none."""
    if content_type is not None and _is_http_integration(content_type):
        answer = streamed_answer(content_type, body)
        if answer is None:
            raise MalformedAnswer("a streamed answer without the NUL bytes that end its prelude")
        return answer
    try:
        result = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedAnswer(f"the result is not JSON: {exc}") from None
    if not isinstance(result, dict) or "statusCode" not in result:
        text = result.encode() if isinstance(result, str) else body
        return HttpAnswer(200, [("Content-Type", "application/json")], text)
    status, headers = _head(result)
    return HttpAnswer(status, headers, _body(result))


def streamed_answer(content_type: str, start: bytes) -> HttpAnswer | None:
    """The head of a streamed answer, and what of ``start`` (the body so far) follows it;
    None while an HTTP integration response's prelude has not ended. Any other stream
    (``text/event-stream``, ``application/octet-stream``) is a 200 of its own type."""
    if not _is_http_integration(content_type):
        return HttpAnswer(200, [("Content-Type", content_type)], start)
    prelude, sep, rest = start.partition(PRELUDE_END)
    if not sep:
        return None
    status, headers = streamed_head(prelude)
    return HttpAnswer(status, headers, rest)


def _is_http_integration(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == STREAMED_CONTENT_TYPE


def streamed_head(prelude: bytes) -> tuple[int, list[tuple[str, str]]]:
    """The status and header lines a streamed answer's JSON prelude asks for."""
    try:
        fields = json.loads(prelude) if prelude.strip() else {}
    except ValueError as exc:
        raise MalformedAnswer(f"the prelude is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise MalformedAnswer("the prelude is not a JSON object")
    return _head({"statusCode": 200, **fields})


def _head(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]]]:
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedAnswer(f"statusCode {status!r} is not an HTTP status")
    lines: list[tuple[str, str]] = []
    multi = _mapping(result, "multiValueHeaders")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedAnswer(f"multiValueHeaders[{name!r}] is not a list")
        lines += [(str(name), _header_value(value)) for value in values]
    multi_names = {str(name).lower() for name in multi}
    for name, value in _mapping(result, "headers").items():
        if str(name).lower() not in multi_names:
            lines.append((str(name), _header_value(value)))
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedAnswer("cookies is not a list")
    lines += [("Set-Cookie", _header_value(cookie)) for cookie in cookies]
    lines = [(name, value) for name, value in lines if name.lower() not in _NOT_FROM_THE_FUNCTION]
    if not any(name.lower() == "content-type" for name, _ in lines):
        lines.append(("Content-Type", _DEFAULT_CONTENT_TYPE))
    return status, lines


def _mapping(result: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = result.get(key) or {}
    if not isinstance(value, dict):
        raise MalformedAnswer(f"{key} is not a JSON object")
    return value


def _header_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise MalformedAnswer(f"header value {value!r} is not a string")


def _body(result: Mapping[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedAnswer("body is not a string")
    if not result.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise MalformedAnswer(f"isBase64Encoded, but the body is not base64: {exc}") from None
