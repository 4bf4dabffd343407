"""What supervisor/runtime_connection.py relies on in urllib3's pool, over a real socket.

urllib3 lends out a pooled connection only through private calls (``_get_conn`` and
``_put_conn``); pyproject pins urllib3 below 3 for them, and these tests pin what they do,
so an urllib3 release that changes it fails here rather than in the runtime.
"""

from __future__ import annotations

import socket
import time

import pytest
import urllib3

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def _pool(server: socket.socket) -> urllib3.HTTPConnectionPool:
    host, port = server.getsockname()
    return urllib3.HTTPConnectionPool(
        host, port, maxsize=1, block=False, retries=False, timeout=urllib3.Timeout(connect=2.0, read=None)
    )


def test_a_connection_put_back_is_lent_again_with_its_socket(listener):
    """Tried: take a connection, connect it, put it back, take one again: the same
    connection comes back still connected, with urllib3's TCP_NODELAY on its socket."""
    pool = _pool(listener)
    connection = pool._get_conn()
    assert isinstance(connection, urllib3.connection.HTTPConnection)
    assert connection.sock is None
    connection.connect()
    accepted, _ = listener.accept()
    with accepted:
        sock = connection.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        pool._put_conn(connection)
        again = pool._get_conn()
        assert again is connection and again.sock is sock
        pool._put_conn(again)
    pool.close()


def test_a_connection_the_peer_dropped_comes_back_closed(listener):
    """Tried: the server closes its end while the connection sits in the pool: the next
    ``_get_conn`` hands it out closed (``sock`` None), to be connected afresh."""
    pool = _pool(listener)
    connection = pool._get_conn()
    connection.connect()
    accepted, _ = listener.accept()
    pool._put_conn(connection)
    accepted.close()
    time.sleep(0.05)  # the FIN reaches the client's socket
    again = pool._get_conn()
    assert again is connection and again.sock is None
    pool._put_conn(again)
    pool.close()


def test_an_empty_pool_lends_a_new_connection_at_once(listener):
    """Tried: two ``_get_conn`` calls on a pool of one without a ``_put_conn`` between:
    with ``block=False`` the second gets a fresh, unconnected connection instead of waiting."""
    pool = _pool(listener)
    first = pool._get_conn()
    started = time.monotonic()
    second = pool._get_conn()
    assert time.monotonic() - started < 1.0
    assert second is not first and second.sock is None
    pool.close()
