"""Recovery: how soon this runtime serves again after its worker dies mid-event.

The design's promise is that a handler which kills its process costs one error answer and a
fresh worker, never a stuck runtime or a new environment. awslambdaric exits with its handler and
Lambda restarts it as a new cold start, so this phase measures ours only. The handler
``os._exit(1)``s on every other event; the spans are taken on the stand-in's clock, and the
replacement worker's own init time is read from the supervisor's log, since the target is
30 ms plus that init.
"""

from __future__ import annotations

import json
import statistics

from session import Session
from trial import run_trial


def run(session: Session) -> None:
    """Ours only (awslambdaric exits when its handler does): crash, then the next event.

    Every other event makes the handler ``os._exit(1)``. Two spans are taken from the
    stand-in's clock: the crash's error report to the next ``GET /next`` (a new worker
    is ready), and to the next event's response (an event served again). The worker's
    own report of its init time comes from the supervisor's log.
    """
    crashes = session.n(20, 10)
    events = 2 * crashes + 1
    crash_at = list(range(1, events, 2))
    samples: dict[str, list[float]] = {
        "out_to_served_ms": [],
        "to_next_ms": [],
        "to_served_ms": [],
        "init_ms": [],
    }
    for _ in range(session.n(6, 3)):
        run = run_trial(
            session.stand_in,
            session.ours,
            "noop",
            events,
            module="crash",
            crash_at=crash_at,
            capture_log=True,
        )
        report = run.report
        for index in crash_at:
            if report["kind"][index] != "error" or report["kind"][index + 1] != "response":
                raise RuntimeError(f"crash event {index} was answered with {report['kind'][index]!r}")
            error_at = report["in_at"][index]
            next_at = min(t for t in report["next_at"] if t > error_at)
            samples["to_next_ms"].append((next_at - error_at) * 1000)
            samples["to_served_ms"].append((report["in_at"][index + 1] - error_at) * 1000)
            crash_out = report["out_at"][index]
            samples["out_to_served_ms"].append((report["in_at"][index + 1] - crash_out) * 1000)
        samples["init_ms"].extend(worker_init_ms(run.log))
    session.results["runs"]["recovery"] = samples
    session.say(
        "recovery: crash report to next /next {:.1f} ms, to next response {:.1f} ms; "
        "worker init {:.2f} ms".format(
            *(statistics.median(samples[k]) for k in ("to_next_ms", "to_served_ms", "init_ms"))
        )
    )


def worker_init_ms(log: str) -> list[float]:
    """``init_duration_ms`` of every replacement worker the supervisor logged."""
    found = []
    for line in log.splitlines():
        if "init_duration_ms" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("reason"):
            found.append(float(record["init_duration_ms"]))
    return found
