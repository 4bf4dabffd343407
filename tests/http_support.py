"""HTTP as a caller speaks it to ``serve``, the local runner or the emulator's Invoke API:
``post`` through the standard library's client, ``exchange`` as raw bytes on a socket (for
requests no client would send)."""

from __future__ import annotations

import http.client
import socket

INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def post(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    """One POST on a connection of its own: the status, the headers (names lower-cased), the body."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def exchange(
    address: str, request: bytes, *, half_close: bool = False
) -> tuple[int | None, dict[str, str], bytes]:
    """Send raw bytes to ``address`` (host:port) and read one answer: until the server closes
    or the answer's Content-Length is in. The status (None when the server closed without
    answering), the headers (names lower-cased) and the body."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, sep, rest = received.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                if len(rest) >= length:
                    break
    if not received:
        return None, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body
