"""Plain HTTP requests to the Invoke API's port, run as the function's events (``serve --http``).

What API Gateway or a function URL does in front of Lambda: each request becomes one
event, queued like an Invoke API call, and the function's answer becomes the HTTP
response. The translation both ways is the ``HttpFront`` plugged into the emulator
(``lambda_supervisor.local.http_front`` has API Gateway's); this module only reads the
request, waits for the answer and writes it out, through the same checked header lines
as every other answer. Requests get here only once their listener has let them in
(a local ``Host``, no cross-site browser request), like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .bodies import PayloadTooLarge
from .records import Outcome
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

    def failure(self, status: int) -> HttpAnswer:
        """The front's own error response (413: request too large; 502: bad function answer)."""
        ...


class FrontRoutes:
    """One plain HTTP request on ``handler``'s connection, run through ``front``."""

    def __init__(self, handler: Handler, front: HttpFront) -> None:
        self.handler = handler
        self.emulator = handler.emulator
        self.front = front

    def handle(self) -> None:
        """Run the request as an event and answer with what the front makes of the result.

        A streamed result is answered once it is complete (its prelude gives the status
        and headers, see ``HttpFront.answer``). To pass its chunks on as they arrive, this
        is the place: write the head as soon as the prelude is in, then each chunk.
        """
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
        outcome = self.emulator.await_outcome(invocation)
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
