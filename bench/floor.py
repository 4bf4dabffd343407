"""The runtime's design at its barest: a process that relays events to a forked worker over a
pipe, and nothing else. It is the fastest this design can serve, for ``lmi_slots.py``.

It is not a runtime to use. It has no deadline, no error report, no retry, no context, no
check of any answer, no logs; an event it cannot serve stops it. Per event it does only what
the design must do: ``GET /next`` and read the answer, write the request id and the event to
the worker's pipe, wait for the reply on the other pipe, ``POST`` it and read the 202. The
worker reads the event, decodes it, calls the handler, encodes the result and writes it back.
With ``AWS_LAMBDA_MAX_CONCURRENCY=N`` it forks N such pairs, each with its own connection.

The bench starts it as it starts a runtime, with Lambda's environment (``_HANDLER`` is
``module.handler``). Whatever the real runtime measures below this is what its guarantees
cost; whatever this measures below awslambdaric is what the design costs.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import socket
import sys
from collections.abc import Callable
from typing import Any

from raw_http import read_response

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
READ_SIZE = 1 << 20  # the bench's events and results are far smaller


class Connection:
    """One keep-alive connection to the Runtime API: a request, then its whole answer."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.host = host.encode()
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def exchange(self, request: bytes) -> tuple[dict[bytes, bytes], bytes]:
        self.sock.sendall(request)
        return read_response(self.sock, self.buffer)


def serve_worker(handler: Callable[[Any, Any], Any], events: int, replies: int) -> None:
    """The worker: an event in, the handler's result out, for ever."""
    while True:
        request_id, _, payload = os.read(events, READ_SIZE).partition(b"\n")
        result = handler(json.loads(payload), None)
        os.write(replies, request_id + b"\n" + json.dumps(result).encode())


def relay(api: Connection, events: int, replies: int) -> None:
    """The supervisor: each event to the worker, each reply to the Runtime API."""
    next_request = b"GET " + NEXT_PATH.encode() + b" HTTP/1.1\r\nHost: " + api.host + b"\r\n\r\n"
    reply_ready = select.poll()
    reply_ready.register(replies, select.POLLIN)
    while True:
        headers, payload = api.exchange(next_request)
        os.write(events, headers[b"lambda-runtime-aws-request-id"] + b"\n" + payload)
        reply_ready.poll()
        request_id, _, result = os.read(replies, READ_SIZE).partition(b"\n")
        api.exchange(
            b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (request_id, api.host, len(result), result)
        )


def main() -> None:
    for _ in range(int(os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1")) - 1):
        if os.fork() == 0:
            break  # each pair is a process of its own, as a process per slot would be
    events_in, events_out = os.pipe()
    replies_in, replies_out = os.pipe()
    if os.fork() == 0:
        sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
        module, function = os.environ["_HANDLER"].rsplit(".", 1)
        serve_worker(getattr(importlib.import_module(module), function), events_in, replies_out)
    relay(Connection(os.environ["AWS_LAMBDA_RUNTIME_API"]), events_out, replies_in)


if __name__ == "__main__":
    main()
