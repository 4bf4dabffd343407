"""Response streaming (ours only: awslambdaric cannot stream): first byte, throughput, memory.

A handler yielding 10 chunks 50 ms apart is timed to its first byte at the caller, streamed
and as the same handler buffered (the chunks joined and returned at the end): streaming
should bring the first byte in at once instead of after the whole 450 ms. Then a 50 MiB
stream (1 MiB blocks, yielded as fast as they are taken) gives the throughput from the
handler through the supervisor to the caller, and the supervisor's peak resident size,
which must not grow with the stream.

The stand-in here is the project's own emulator (``lambda_supervisor.emulator``), in this
process: it records each chunk of a streamed ``/response`` as it arrives, which is the
caller's view, and the bench's own stand-in answers buffered posts only. Times are
``time.monotonic()`` from the event's hand-out on ``/next``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from paths import HANDLERS, REPO, WORK
from process_tree import kill_tree
from runtimes import base_env
from session import Session

CHUNKS, INTERVAL = 10, 0.05
BULK_BLOCK, BULK_BLOCKS = 1 << 20, 50


def run(session: Session) -> None:
    """First byte streamed vs buffered, alternating; then the 50 MiB streams."""
    sys.path.insert(0, str(REPO))
    from lambda_supervisor.emulator import ResponseStream, RuntimeAPIEmulator

    figures: dict[str, Any] = {
        "ttfb_stream_ms": [],
        "ttfb_buffered_ms": [],
        "mib_per_s": [],
        "peak_rss_mib": [],
    }
    with RuntimeAPIEmulator() as emulator:
        proc, pid = _start(session, emulator)
        try:
            paced = {"count": CHUNKS, "interval": INTERVAL}
            for _ in range(session.n(10, 3)):
                for mode in ("stream", "buffered"):
                    invocation = emulator.submit({"mode": mode, **paced}, timeout=30)
                    response = emulator.await_response(invocation, queue_timeout=30)
                    if isinstance(response, ResponseStream):
                        first_at = next(response.follow(timeout=30)).received_at
                        response.wait_ended(30)
                    else:
                        first_at = invocation.result(30).received_at
                    assert invocation.handed_out_at is not None
                    figures[f"ttfb_{mode}_ms"].append((first_at - invocation.handed_out_at) * 1000)
            before_mib = _status_kb(pid, "VmRSS") / 1024
            for _ in range(session.n(5, 2)):
                invocation = emulator.submit(
                    {"mode": "bulk", "block": BULK_BLOCK, "count": BULK_BLOCKS}, timeout=60
                )
                response = emulator.await_response(invocation, queue_timeout=30)
                if not isinstance(response, ResponseStream) or not response.wait_ended(60):
                    raise RuntimeError(f"the 50 MiB stream did not complete: {response!r}")
                if response.size != BULK_BLOCK * BULK_BLOCKS or response.error_type:
                    raise RuntimeError(f"the 50 MiB stream ended wrong: {response!r}")
                assert invocation.handed_out_at is not None and response.ended_at is not None
                seconds = response.ended_at - invocation.handed_out_at
                figures["mib_per_s"].append(BULK_BLOCKS * BULK_BLOCK / (1 << 20) / seconds)
                figures["peak_rss_mib"].append(_status_kb(pid, "VmHWM") / 1024)
            figures["rss_before_mib"] = before_mib
        finally:
            kill_tree(proc)
    session.results["runs"]["streaming"] = figures
    session.say(
        "streaming: first byte {:.1f} ms streamed vs {:.1f} ms buffered; {:.0f} MiB/s for 50 MiB; "
        "supervisor peak RSS {:.1f} MiB (from {:.1f})".format(
            statistics.median(figures["ttfb_stream_ms"]),
            statistics.median(figures["ttfb_buffered_ms"]),
            statistics.median(figures["mib_per_s"]),
            max(figures["peak_rss_mib"]),
            before_mib,
        )
    )


def _start(session: Session, emulator: Any) -> tuple[subprocess.Popen[bytes], int]:
    """Our runtime on the ``stream`` handler against ``emulator``, once it polls /next."""
    env = base_env(emulator.address, "stream")
    env.update(session.ours.extra_env)
    log = open(WORK / "last-run.log", "wb")
    proc = subprocess.Popen(session.ours.argv, env=env, cwd=str(HANDLERS), stdout=log, stderr=log)
    log.close()
    if not emulator.wait_for_poll(30):
        kill_tree(proc)
        raise RuntimeError(f"the runtime never polled /next: {(WORK / 'last-run.log').read_text()[-2000:]}")
    return proc, proc.pid


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")
