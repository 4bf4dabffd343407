"""The stand-in's own ceiling: what it serves a client that does nothing else.

If the stand-in were near its limit, the bench would measure itself, not the runtimes. Its
ceiling is taken against a minimal keep-alive client that only GETs ``/next`` and POSTs the
result: ``minimal_client.c``, built with the machine's C compiler, because a client in Python
costs about as much per event as the stand-in does; without a compiler the bench falls back
to such a client (below) and the report says so. With the C client the ceiling is also taken
with the stand-in and the client on one CPU, for the "1 CPU" rows.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
from pathlib import Path
from typing import Any

from cpus import pinned_to, stand_in_pinned
from paths import BENCH, WORK
from raw_http import read_response
from session import Session
from trial import SIZES, Run
from warm import warm_figures


def run(session: Session) -> None:
    """The stand-in's own limit, served to a minimal keep-alive client (in C if a compiler
    is at hand: one in Python costs as much per event as the stand-in does)."""
    stand_in = session.stand_in
    client = build_minimal_client()
    out: dict[str, Any] = {"client": "c" if client else "python"}
    counts = {"noop": (20000, 5000), "echo-100KB": (4000, 1000), "echo-5MB": (200, 50)}
    runs: list[tuple[str, set[int] | None]] = [(scenario, None) for scenario in counts]
    if client:  # the 1 CPU rows' ceiling: the stand-in and the client pinned together
        runs += [("noop", session.cpus.one), ("echo-100KB", session.cpus.one)]
    for scenario, cpus in runs:
        key = scenario if cpus is None else f"1cpu:{scenario}"
        events = session.n(*counts[scenario])
        rates, p50s = [], []
        with stand_in_pinned(stand_in, cpus, session.cpus):
            for _ in range(session.n(3, 2)):
                stand_in.arm(events, SIZES[scenario], tag="min")
                echo = scenario != "noop"
                if client:
                    subprocess.run(
                        [str(client), str(stand_in.port), str(events), str(int(echo))],
                        check=True,
                        timeout=300,
                        preexec_fn=pinned_to(cpus),
                    )
                else:
                    minimal_client(stand_in.port, events, echo=echo)
                report = stand_in.wait_done(60)
                stand_in.reset()
                figures = warm_figures(Run("minimal", 0.0, report, 0, 0), SIZES[scenario])
                rates.append(figures["ips"])
                p50s.append(figures["p50_ms"])
        out[key] = {"ips": rates, "p50_ms": p50s}
        session.say(f"stand-in ceiling {key}: {statistics.median(rates):,.0f} inv/s")
    session.results["ceiling"] = out


def build_minimal_client() -> Path | None:
    """Compile ``minimal_client.c`` into ``bench/work`` (once per change), or None without a
    C compiler."""
    source = BENCH / "minimal_client.c"
    binary = WORK / "minimal_client"
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    WORK.mkdir(exist_ok=True)
    built = subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], capture_output=True)
    return binary if built.returncode == 0 else None


def minimal_client(port: int, events: int, *, echo: bool) -> None:
    """The least a runtime client can do: keep-alive GET /next, POST the result, repeat.

    Raw sockets, no parsing beyond what framing needs: what the stand-in serves this
    client is the most it can serve anything.
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    get = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n"
    buf = bytearray()
    try:
        for _ in range(events):
            sock.sendall(get)
            headers, body = read_response(sock, buf)
            request_id = headers[b"lambda-runtime-aws-request-id"].decode()
            payload = body if echo else b"null"
            sock.sendall(
                (
                    f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: api\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                ).encode()
                + payload
            )
            read_response(sock, buf)
    finally:
        sock.close()
