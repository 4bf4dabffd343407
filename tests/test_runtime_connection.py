"""The Runtime API connection's abort, against the project's emulator over real HTTP.

SIGTERM's handler may run at any point of the long poll for /next: before the request
has a socket, while it blocks, or after its answer is read. Whichever it is, the poll
must end instead of blocking for good, and the post that answers an event already
handed out must still go through.
"""

from __future__ import annotations

import threading
import time

import pytest

from supervisor.runtime_api import API_VERSION, RuntimeAPIClient
from supervisor.runtime_connection import TRANSPORT_ERRORS, TransportError

NEXT = API_VERSION + "/runtime/invocation/next"


@pytest.mark.timeout(30)
def test_an_abort_before_the_poll_has_a_socket_ends_the_poll_at_once(emulator):
    """Tried: abort() with no exchange under way (the signal landing between two requests),
    then the long poll, with no event queued: it must give up, not wait for an event."""
    client = RuntimeAPIClient(emulator.address)
    client.connection.abort()
    started = time.monotonic()
    with pytest.raises(TransportError):
        client.connection.request("GET", NEXT, abortable=True)
    assert time.monotonic() - started < 5
    client.close()


@pytest.mark.timeout(30)
def test_an_abort_during_the_poll_ends_it(emulator):
    """Tried: abort() while the long poll blocks with no event queued."""
    client = RuntimeAPIClient(emulator.address)
    outcome: list[object] = []

    def poll() -> None:
        try:
            outcome.append(client.connection.request("GET", NEXT, abortable=True))
        except TRANSPORT_ERRORS as exc:  # what request() promises, and the loop handles
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    assert emulator.wait_for_poll(10)
    client.connection.abort()
    poller.join(10)
    assert not poller.is_alive(), "the long poll outlived the abort"
    # A shut connection (TransportError) or the abort's read timeout (BlockingIOError).
    assert isinstance(outcome[0], TRANSPORT_ERRORS)
    client.close()


@pytest.mark.timeout(30)
def test_an_abort_never_cuts_short_the_post_of_an_answer(emulator):
    """Tried: abort() after the poll has returned an event (the signal landing just after
    the answer was read): the event's response is still posted, and the flag left behind
    ends the next poll instead."""
    invocation = emulator.submit({"n": 1}, timeout=30)
    client = RuntimeAPIClient(emulator.address)
    event = client.next_invocation()
    client.connection.abort()
    client.post_response(event, b'{"ok": true}', "application/json")
    assert invocation.result(10).json() == {"ok": True}
    with pytest.raises(TransportError):
        client.connection.request("GET", NEXT, abortable=True)
    client.close()


@pytest.mark.timeout(30)
def test_the_long_poll_after_the_first_answer_hands_its_socket_to_urllib3s_pool(emulator):
    """Tried: /next, its response, then the next /next with an event queued. The first two
    exchanges go over the plain connection; before the long poll after the post, urllib3's
    pool is handed that socket, and the poll and later exchanges take that very socket from
    the pool."""
    client = RuntimeAPIClient(emulator.address)
    connection = client.connection
    first = emulator.submit({"n": 1}, timeout=30)
    event = client.next_invocation()
    assert connection.pool is None
    client.post_response(event, b'{"n": 1}', "application/json")
    assert connection.pool is None
    plain = connection._plain
    assert plain is not None and plain.sock is not None
    local = plain.sock.getsockname()
    second = emulator.submit({"n": 2}, timeout=30)
    event = client.next_invocation()
    assert event.payload == b'{"n": 2}'
    assert connection.pool is not None and connection._plain is None
    time.sleep(0.05)  # past the back-to-back window: the post takes its connection from the pool
    client.post_response(event, b'{"n": 2}', "application/json")
    assert first.result(10).json() == {"n": 1} and second.result(10).json() == {"n": 2}
    connection._give_back()  # what the next exchange does first, past the back-to-back window
    pooled = connection.pool._get_conn()
    assert pooled.sock is not None and pooled.sock.getsockname() == local
    client.close()


@pytest.mark.timeout(30)
def test_an_abort_ends_the_long_poll_that_handed_its_socket_to_the_pool(emulator):
    """Tried: abort() while the long poll after the first answer blocks, with no event queued:
    that poll took the socket from urllib3's pool, just handed it, and the abort finds it
    there and ends it."""
    invocation = emulator.submit({"n": 1}, timeout=30)
    client = RuntimeAPIClient(emulator.address)
    client.post_response(client.next_invocation(), b"{}", "application/json")
    assert invocation.result(10).json() == {}
    outcome: list[object] = []

    def poll() -> None:
        try:
            outcome.append(client.connection.request("GET", NEXT, abortable=True))
        except TRANSPORT_ERRORS as exc:
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    assert emulator.wait_for_poll(10)
    assert client.connection.pool is not None
    client.connection.abort()
    poller.join(10)
    assert not poller.is_alive(), "the long poll outlived the abort"
    assert isinstance(outcome[0], TRANSPORT_ERRORS)
    client.close()
