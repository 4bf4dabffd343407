"""Plain HTTP requests to the Invoke API's port, run as the function's events (``serve --http``).

What API Gateway or a function URL does in front of Lambda: each request becomes one
event, queued like an Invoke API call, and the function's answer becomes the HTTP
response. The translation both ways is the ``HttpFront`` plugged into the emulator
(``lambda_supervisor.local.http_front`` has API Gateway's); this module only reads the
request, waits for the answer and writes it out, through the same checked header lines
as every other answer. Requests get here only once their listener has let them in
(a local ``Host``, no cross-site browser request), like any other.

A streamed answer is passed on as a function URL in ``RESPONSE_STREAM`` mode does: its
head (status, headers) as soon as the front can tell it (``HttpFront.streamed``), then
each chunk of the body as it arrives, chunked. A stream that fails after its head went
out can no longer become a 502: its body is cut short (no last chunk, the connection
closed), which the client sees as a truncated response.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .bodies import PayloadTooLarge
from .invoke_routes import follow_stream
from .records import Invocation, Outcome, ResponseStream
from .wire import UnsendableHeader, header_line

if TYPE_CHECKING:
    from .routing import Handler


@dataclass(frozen=True)
class HttpRequest:
    """A request as it arrived: ``target`` is the path and query of the request line."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class HttpAnswer:
    """A response to write: repeated header names (``Set-Cookie``) each have a line."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


class HttpFront(Protocol):
    """Turns HTTP requests into events and the function's answers into HTTP responses."""

    def event(self, request: HttpRequest) -> bytes: ...

    def answer(self, outcome: Outcome) -> HttpAnswer: ...

    def streamed(self, content_type: str, start: bytes) -> HttpAnswer | None:
        """The head of a streamed answer, from its content type and the start of its body:
        its ``body`` is the part of ``start`` past the head, to send first. None while the
        head needs more of the body; ``ValueError`` when it cannot be read (a 502)."""
        ...

    def failure(self, status: int) -> HttpAnswer:
        """The front's own error response (413: request too large; 502: bad function answer)."""
        ...


class FrontRoutes:
    """One plain HTTP request on ``handler``'s connection, run through ``front``."""

    def __init__(self, handler: Handler, front: HttpFront) -> None:
        self.handler = handler
        self.emulator = handler.emulator
        self.front = front
        # Whether a streamed answer's body goes chunked (set with its head).
        self.chunked = True

    def handle(self) -> None:
        """Run the request as an event and answer with what the front makes of the result:
        a streamed one as it arrives (``relay``), a buffered one once it is complete."""
        handler = self.handler
        try:
            body, _ = handler.read_body(self.emulator.max_payload)
        except PayloadTooLarge:
            self.write(self.front.failure(413))
            return
        request = HttpRequest(
            method=handler.command,
            target=handler.path,
            headers=list(handler.headers.items()),
            body=body,
            source_ip=handler.client_address[0],
            protocol=handler.request_version,
        )
        event = self.front.event(request)
        if len(event) > self.emulator.max_payload:
            self.write(self.front.failure(413))
            return
        invocation = self.emulator.submit(event, request_id=request.request_id)
        response = self.emulator.await_response(invocation)
        if isinstance(response, ResponseStream):
            if self.relay(invocation, response):
                return
            response = self.emulator.await_outcome(invocation)
        outcome = response
        if outcome is None:
            handler.drop()
            return
        answer = self.front.answer(outcome)
        try:
            for name, value in answer.headers:
                header_line(name, value)
        except UnsendableHeader:
            answer = self.front.failure(502)  # the function set a header no server can send
        self.write(answer, request.request_id)

    def relay(self, invocation: Invocation, stream: ResponseStream) -> bool:
        """Pass ``stream`` on: its head once the front can tell it, then each chunk as it
        arrives. False, with nothing sent, when the stream ended before its head did (an
        error, a prelude cut short) or its head cannot be sent: its answer is then the
        buffered one, a 502."""
        start = b""
        head: HttpAnswer | None = None
        for chunk in follow_stream(self.emulator, invocation, stream):
            if head is not None:
                self.write_body(chunk.data)
                continue
            start += chunk.data
            try:
                head = self.streamed_head(stream, start)
            except (ValueError, UnsendableHeader):
                return False
            if head is not None:
                self.write_head(head, invocation.request_id)
                self.write_body(head.body)
        if head is None:
            try:  # an empty stream of a plain type: an empty 200 of that type
                head = None if stream.error_type else self.streamed_head(stream, start)
            except (ValueError, UnsendableHeader):
                return False
            if head is None:
                return False
            self.write_head(head, invocation.request_id)
        if stream.error_type:
            print(
                f"{invocation.request_id}: the stream ended in {stream.error_type} after its head"
                " was sent: the HTTP response is cut short",
                file=sys.stderr,
                flush=True,
            )
            self.handler.close_connection = True  # no last chunk: the client sees the body cut short
        elif self.chunked and self.handler.command != "HEAD":
            self.handler.end_chunked({})
        return True

    def streamed_head(self, stream: ResponseStream, start: bytes) -> HttpAnswer | None:
        """The front's head for ``stream`` given its ``start``, every header line checked;
        None while it needs more of the body."""
        head = self.front.streamed(stream.content_type, start)
        if head is not None:
            for name, value in head.headers:
                header_line(name, value)
        return head

    def write_head(self, head: HttpAnswer, request_id: str) -> None:
        """A streamed answer's status and headers; its body follows chunked, or up to the
        close for an HTTP/1.0 client, which cannot read chunks."""
        handler = self.handler
        handler.send_response(head.status)
        for name, value in head.headers:
            handler.send_header(name, value)
        handler.send_header("Apigw-Requestid", request_id)
        self.chunked = handler.request_version != "HTTP/1.0"
        if self.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.close_connection = True
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()

    def write_body(self, data: bytes) -> None:
        handler = self.handler
        if handler.command == "HEAD" or not data:
            return
        if self.chunked:
            handler.write_chunk(data)
        else:  # HTTP/1.0: the body as it is, ended by the close
            handler.wfile.write(data)
            handler.wfile.flush()

    def write(self, answer: HttpAnswer, request_id: str | None = None) -> None:
        handler = self.handler
        handler.send_response(answer.status)
        for name, value in answer.headers:
            handler.send_header(name, value)
        if request_id is not None:
            handler.send_header("Apigw-Requestid", request_id)
        handler.send_header("Content-Length", str(len(answer.body)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.body)
        handler.wfile.flush()
