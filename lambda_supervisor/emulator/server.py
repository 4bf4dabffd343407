"""One listening socket of the emulator, and who it lets in.

A local server faces processes and web pages it does not know. Every listener answers
only requests addressed to it by a local name, so a web page can reach it neither
through DNS rebinding (its own domain in ``Host``) nor as a cross-origin request. The
separate Runtime API listener of ``serve`` goes further: it lets in only connections
made by the runtime's own process, found through /proc, because whoever could reach it
could take a caller's event and answer in the function's name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambda_supervisor.runtime_modules import procfs

_WILDCARDS = frozenset(("", "0.0.0.0", "::"))


class Server(ThreadingHTTPServer):
    """One listener: the routes it serves, the Host names it answers to, who may connect.

    Daemon request threads and a deep accept backlog, so bursts of callers queue.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        routes: frozenset[str],
        *,
        private_to: Callable[[socket.socket], bool] | None = None,
    ) -> None:
        """``private_to`` makes this a listener for one client (the runtime): it lets in
        only the connections that function accepts, addressed to its one address."""
        super().__init__(address, handler)
        self.routes = routes
        self.private_to = private_to
        private = private_to is not None
        self.names = _local_names(address[0], exact=private)
        self.any_address = not private and address[0] in _WILDCARDS

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Close a connection from a process that may not use this listener, unanswered."""
        return self.private_to is None or self.private_to(request)

    def refusal(self, headers: Any) -> str | None:
        """Why a request must be refused (403), or None: it must name this server, locally.

        A browser can be made to send requests here by any web page: a cross-origin one
        carries an ``Origin`` (or ``Sec-Fetch-Site``) header, and one through DNS
        rebinding names the attacker's domain in ``Host``. Clients that are not browsers
        (curl, boto3, the AWS CLI) send neither, and a local address as ``Host``.
        """
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1 or not self._is_local(hosts[0]):
            shown = ", ".join(hosts) or "none"
            return f"the Host header ({shown[:100]}) is not this server's local address"
        origins = headers.get_all("Origin") or []
        if origins and (
            len(origins) != 1 or not origins[0].startswith("http://") or not self._is_local(origins[0][7:])
        ):
            return f"cross-origin requests are refused (Origin: {', '.join(origins)[:100]})"
        fetch_site = (headers.get("Sec-Fetch-Site") or "none").strip().lower()
        if fetch_site not in ("none", "same-origin"):
            return f"cross-site requests are refused (Sec-Fetch-Site: {fetch_site[:40]})"
        return None

    def _is_local(self, authority: str) -> bool:
        parsed = _split_authority(authority)
        if parsed is None:
            return False
        host, port = parsed
        if port != self.server_address[1]:
            return False
        # An address in numbers cannot be rebound to someone else's server; a name can.
        return host in self.names or (self.any_address and _is_ip_address(host))


def _local_names(bound: str, *, exact: bool) -> frozenset[str]:
    """The host names (lower case, IPv6 without brackets) a listener on ``bound`` answers to."""
    names = {bound.lower().strip("[]")}
    if not exact:
        names |= {"localhost", "127.0.0.1", "::1"}
        if bound in _WILDCARDS:
            names.add(socket.gethostname().lower())
    return frozenset(names - {""})


def _split_authority(authority: str) -> tuple[str, int] | None:
    """``host[:port]`` or ``[v6][:port]`` as (lower-case host, port), port 80 when absent."""
    text = authority.strip().lower()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else "80"
    else:
        host, colon, port = text.partition(":")
        port = port if colon else "80"
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    return host, int(port)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def peer_is_held_by(conn: socket.socket, pids: Iterable[int]) -> bool:
    """Whether the other end of the loopback connection ``conn`` is a socket one of ``pids`` holds.

    Linux says so through /proc: the peer's socket is the /proc/net/tcp entry with our two
    addresses swapped, and a process holds it when one of its fds links to its inode.
    Where there is no /proc nothing can be told, and the connection is let in.
    """
    sockets = procfs.tcp_sockets()
    if sockets is None:
        return True
    try:
        peer = (procfs.tcp_address(conn.getpeername()), procfs.tcp_address(conn.getsockname()))
    except OSError:
        return False
    inode = sockets.get(peer, "0")
    if inode == "0":
        return False
    return any(procfs.holds(pid, f"socket:[{inode}]") for pid in pids)
