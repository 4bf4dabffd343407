"""Reading one HTTP answer off a keep-alive socket with no more parsing than framing needs:
for the bench's own bare clients (``ceiling.py``'s minimal client, ``floor.py``), which must
cost less per event than anything they are compared with."""

from __future__ import annotations

import socket


def read_response(sock: socket.socket, buf: bytearray) -> tuple[dict[bytes, bytes], bytes]:
    """The next answer's headers (names lower-cased) and body; ``buf`` keeps what came after
    it for the next call."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("stand-in closed the connection")
        buf += chunk
    headers = {}
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    del buf[: end + 4]
    length = int(headers.get(b"content-length", b"0"))
    while len(buf) < length:
        chunk = sock.recv(max(1 << 16, length - len(buf)))
        if not chunk:
            raise ConnectionError("stand-in closed the connection")
        buf += chunk
    body = bytes(buf[:length])
    del buf[:length]
    return headers, body
