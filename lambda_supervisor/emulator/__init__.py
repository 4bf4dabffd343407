"""A real HTTP emulator of the Lambda Runtime API and of the Invoke API, on loopback.

Tests and local tooling need the runtime to talk to something that behaves like the
platform over a real socket: long-polled ``/next``, keep-alive connections, the exact
status codes for late, duplicate and oversized posts, and faults on demand. Mocking the
HTTP layer would hide exactly the bugs (connection reuse, chunked bodies, percent-encoded
ids) that matter most, so this package serves real HTTP/1.1 from a background thread.

The invoke side (``POST /2015-03-31/functions/{name}/invocations``) shares the same
queue: a caller's event waits until a runtime asks for it, and the caller's HTTP request
is answered with whatever the runtime posts back, as AWS's own emulator does. Any number
of ``/next`` polls may wait at once and answers for different ids may arrive together, as
on Lambda Managed Instances; ``refuse_when_busy`` refuses a call no idle poll is waiting
for (400 ``Runtime.Unavailable``) instead of queueing it. A streamed ``/response`` is
recorded chunk by chunk as it arrives (``ResponseStream``, reached with
``await_response``), so that a caller can be given each chunk before the next is sent.

Tests talk to both APIs on one address. A local server (``serve``) faces callers it does
not know, so with ``separate_runtime_api`` the Runtime API moves to a listener of its own
on loopback, which only the runtime's process may use: whoever can reach the Invoke API
must not be able to take a caller's event and answer in the function's name. Every
listener answers only requests addressed to it by a local name (no DNS rebinding, no
cross-origin browser requests), refuses malformed framing with a 400, and never writes a
header line a caller could split.

The modules, from the data up: ``records`` (events and posts), ``bounds`` (what is kept),
``invocations`` (the queue and its one-answer rule), ``faults``, ``state``
(``RuntimeAPIEmulator``), ``bodies`` and ``wire`` (HTTP in and out), ``server`` (a listener
and who it lets in), ``routing``, ``runtime_routes`` and ``invoke_routes`` (with
``eventstream``, the framing of ``InvokeWithResponseStream`` answers).
"""

from .bodies import MAX_DRAIN_BYTES
from .bounds import ASYNC_QUEUE_BYTES, ASYNC_QUEUE_LENGTH, QueueFull, RuntimeUnavailable
from .faults import FAULT_ACTIONS, ROUTES
from .front_routes import HttpAnswer, HttpFront, HttpRequest
from .invocations import MAX_HAND_OUTS, UNDELIVERABLE
from .invoke_routes import LOG_TAIL_BYTES, UNAVAILABLE, error_type_of, follow_stream
from .records import CaseInsensitiveDict, Chunk, Invocation, InvokeListener, Outcome, ResponseStream
from .routing import EXTENSION_PREFIX, RUNTIME_PREFIX, RUNTIME_ROUTES
from .runtime_routes import STREAMED_MAX_PAYLOAD
from .state import DEFAULT_ACCOUNT, DEFAULT_MAX_PAYLOAD, DEFAULT_REGION, LOOPBACK, RuntimeAPIEmulator
from .wire import UnsendableHeader

__all__ = [
    "ASYNC_QUEUE_BYTES",
    "ASYNC_QUEUE_LENGTH",
    "DEFAULT_ACCOUNT",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_REGION",
    "EXTENSION_PREFIX",
    "FAULT_ACTIONS",
    "LOG_TAIL_BYTES",
    "LOOPBACK",
    "MAX_DRAIN_BYTES",
    "MAX_HAND_OUTS",
    "ROUTES",
    "RUNTIME_PREFIX",
    "RUNTIME_ROUTES",
    "STREAMED_MAX_PAYLOAD",
    "UNAVAILABLE",
    "UNDELIVERABLE",
    "CaseInsensitiveDict",
    "HttpAnswer",
    "HttpFront",
    "HttpRequest",
    "Chunk",
    "Invocation",
    "InvokeListener",
    "Outcome",
    "QueueFull",
    "ResponseStream",
    "RuntimeAPIEmulator",
    "RuntimeUnavailable",
    "UnsendableHeader",
    "error_type_of",
    "follow_stream",
]
