"""Shared pieces of the chaos suite: the handler that misbehaves on request
(tests/handlers/chaos_app.py), a seeded mix of misbehaviours with the answer each must get,
the supervisor's state at rest (descriptors, memory, zombies, from /proc via proc_support)
and the report printed at the end of the test run.

Everything here works on real processes: the runtime under test is ``bin/bootstrap``
talking HTTP to the project's emulator, and the bookkeeping reads ``/proc``.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from proc_support import Proc, children_of, open_fds, rss_kb, session_procs
from runtime_harness import invoke

from lambda_supervisor.emulator import Invocation, Outcome, RuntimeAPIEmulator
from lambda_supervisor.process import RuntimeProcess
from lambda_supervisor.runtime_modules import errors

MAX_PAYLOAD = 6_291_556

# The chaos app's entry point, once it is copied into a task root as app.py:
# ``running_runtime(emulator, task_root, handler_files("chaos_app"), HANDLER)``.
HANDLER = "app.route"
# Kinds whose answer is given by the supervisor after it replaced the worker.
REPLACING = frozenset(("exit", "sys_exit", "segfault", "sigkill", "sigterm", "hang", "busy", "garbage"))
# Kinds that finish quickly with the same worker: a recovery is timed up to one of these.
QUICK = frozenset(("ok", "raise", "bad_json", "unserialisable", "thread", "zombie", "child"))

# The soak's mixture: kind -> weight.
MIX: dict[str, float] = {
    "ok": 34,
    "big": 3,
    "raise": 10,
    "exit": 5,
    "sys_exit": 3,
    "segfault": 4,
    "sigkill": 4,
    "sigterm": 2,
    "hang": 1,
    "busy": 1,
    "unserialisable": 6,
    "oversized": 2,
    "oversized_bytes": 2,
    "bad_json": 6,
    "child": 6,
    "zombie": 5,
    "thread": 6,
    "garbage": 2,
}

DEADLINE_TIMEOUT = 0.6  # seconds given to the events meant to outlive their deadline
NORMAL_TIMEOUT = 60.0
_TIMEOUT_MESSAGE = re.compile(r"Task timed out after \d+\.\d\d seconds")


@dataclass
class Planned:
    """One event of the mixture and everything needed to judge its one answer."""

    kind: str
    n: int
    body: bytes
    timeout: float
    check: Callable[[Any], str | None]  # the outcome -> a complaint, or None
    invocation: Invocation | None = None


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def _expect_error(
    error_type: str, message: str | re.Pattern[str] | None = None
) -> Callable[[Any], str | None]:
    def check(outcome: Any) -> str | None:
        if outcome.kind != "error":
            return f"expected an error {error_type}, got {outcome!r}"
        try:
            body = outcome.json()
        except ValueError:
            return f"error body is not JSON: {outcome.body[:200]!r}"
        if set(body) != {"errorMessage", "errorType", "requestId", "stackTrace"}:
            return f"error body keys {sorted(body)}"
        if body["errorType"] != error_type or outcome.error_type != error_type:
            return f"expected {error_type}, got {body['errorType']} / header {outcome.error_type}"
        if body["requestId"] != outcome.request_id:
            return f"requestId {body['requestId']!r} is not {outcome.request_id!r}"
        if isinstance(message, str) and body["errorMessage"] != message:
            return f"message {body['errorMessage']!r}, expected {message!r}"
        if isinstance(message, re.Pattern) and not message.fullmatch(body["errorMessage"]):
            return f"message {body['errorMessage']!r} does not match {message.pattern!r}"
        return None

    return check


def _expect_response(predicate: Callable[[Any], bool], what: str) -> Callable[[Any], str | None]:
    def check(outcome: Any) -> str | None:
        if outcome.kind != "response":
            return f"expected a response ({what}), got {outcome!r}"
        try:
            value = outcome.json()
        except ValueError:
            return f"response is not JSON: {outcome.body[:200]!r}"
        return None if predicate(value) else f"response {str(value)[:200]} is not {what}"

    return check


def plan_event(kind: str, n: int, rng: random.Random) -> Planned:
    """The event for ``kind`` and the single answer it must get."""
    timeout = NORMAL_TIMEOUT
    event: dict[str, Any] = {"do": kind, "n": n}
    if kind == "ok":
        check = _expect_response(lambda v: v.get("n") == n and "pid" in v, f"the echo of n={n}")
    elif kind == "sleep_ok":
        event["seconds"] = round(rng.uniform(0.05, 0.3), 3)
        check = _expect_response(lambda v: v.get("n") == n and "pid" in v, f"the echo of n={n}")
    elif kind == "big":
        size = rng.randrange(64 * 1024, 1024 * 1024)
        event["size"] = size
        check = _expect_response(lambda v: v.get("n") == n and len(v.get("pad", "")) == size, f"{size} bytes")
    elif kind == "raise":
        check = _expect_error("ValueError", f"bad value {n}")
    elif kind in ("exit", "sys_exit"):
        code = rng.randrange(1, 256)
        event["code"] = code
        check = _expect_error("Runtime.ExitError", f"Runtime exited with error: exit status {code}")
    elif kind == "segfault":
        check = _expect_error("Runtime.ExitError", "Runtime exited with error: signal: segmentation fault")
    elif kind == "sigkill":
        check = _expect_error("Runtime.ExitError", "Runtime exited with error: signal: killed")
    elif kind == "sigterm":
        check = _expect_error("Runtime.ExitError", "Runtime exited with error: signal: terminated")
    elif kind in ("hang", "busy"):
        timeout = DEADLINE_TIMEOUT
        check = _expect_error("Sandbox.Timedout", _TIMEOUT_MESSAGE)
    elif kind == "unserialisable":
        check = _expect_error(
            "Runtime.MarshalError", "Unable to marshal response: Object of type set is not JSON serializable"
        )
    elif kind in ("oversized", "oversized_bytes"):
        event["size"] = rng.randrange(MAX_PAYLOAD + 1, 8 * 1024 * 1024)
        check = _expect_error("Function.ResponseSizeTooLarge")
    elif kind == "bad_json":
        body = rng.choice([b'{"do": "ok", "n": ', b"{'do': 'ok'}", b"\xff\xfe", b"", b"[1, 2", b"NaNa"])
        return Planned(kind, n, body, timeout, _expect_error("Runtime.UnmarshalError"))
    elif kind == "child":
        check = _expect_response(lambda v: v.get("n") == n and v.get("child", 0) > 0, "a child's pid")
    elif kind == "zombie":
        check = _expect_response(lambda v: v.get("n") == n and v.get("zombie", 0) > 0, "a zombie's pid")
    elif kind == "thread":
        check = _expect_response(lambda v: v.get("n") == n and v.get("threads", 0) >= 2, "a thread count")
    elif kind == "garbage":
        # Random bytes after a kind byte that no frame has ("z"), so that the supervisor
        # must see garbage whatever the random part happens to look like.
        event["hex"] = "7a" + rng.randbytes(rng.randrange(0, 64)).hex()
        check = _expect_error("Runtime.WorkerProtocolError")
    else:
        raise ValueError(kind)
    return Planned(kind, n, _json(event), timeout, check)


def plan_mix(count: int, seed: int, start: int = 0) -> list[Planned]:
    rng = random.Random(seed)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    return [plan_event(rng.choices(kinds, weights)[0], start + i, rng) for i in range(count)]


def submit(emulator: RuntimeAPIEmulator, planned: Iterable[Planned]) -> None:
    for item in planned:
        item.invocation = emulator.submit(item.body, timeout=item.timeout)


def verify_exactly_once(
    emulator: RuntimeAPIEmulator, planned: list[Planned], wait: float, *, duplicates_refused: bool = False
) -> list[str]:
    """Wait for every answer, then judge each: one post by the runtime, the right answer.

    That post is accepted, or, for an event meant to time out, it may be a timeout report
    refused with 410 as too late (``late_timeout``), the platform's timeout answering for
    it; nothing else is refused.
    ``duplicates_refused`` allows a post refused with 403 after the accepted one: what a
    retry looks like when the API took the first attempt but the connection was cut before
    its answer arrived. The API still saw exactly one answer.
    """
    complaints = []
    for item in planned:
        assert item.invocation is not None
        if answer(emulator, item.invocation, wait) is None:
            complaints.append(f"#{item.n} {item.kind}: no answer within {wait}s")
    for item in planned:
        invocation = item.invocation
        assert invocation is not None
        outcomes = emulator.outcomes(invocation.request_id)
        if not outcomes:
            continue  # reported above
        if len(outcomes) != 1:
            complaints.append(f"#{item.n} {item.kind}: {len(outcomes)} accepted answers {outcomes}")
        refused = invocation.rejected
        if duplicates_refused:
            refused = [o for o in refused if o.status != 403]
        outcome = outcomes[0]
        if outcome.status != 202:
            problem = _late_timeout_problem(item, outcome, refused)
            if problem:
                complaints.append(f"#{item.n} {item.kind}: {problem}")
            continue
        if refused:
            complaints.append(f"#{item.n} {item.kind}: refused posts {invocation.rejected}")
        problem = item.check(outcome)
        if problem:
            complaints.append(f"#{item.n} {item.kind}: {problem}")
    return complaints


def answer(emulator: RuntimeAPIEmulator, invocation: Invocation, wait: float) -> Outcome | None:
    """The event's one answer as its caller gets it; None if none came within ``wait``.

    Normally the runtime's accepted post. A timeout report the runtime posts after the
    deadline is refused with 410, as on Lambda, and the platform answers the caller with
    its own timeout instead: the emulator does so once the deadline and its
    ``invoke_grace`` have passed (``await_outcome``). On a loaded machine nothing bounds the
    time from the supervisor's kill (the deadline less its margin) to its post reaching the
    API, so that is an answer an event meant to time out may legitimately get.
    """
    give_up = time.monotonic() + wait
    while not invocation.wait_done(0.05):
        if any(map(late_timeout, invocation.rejected)):
            return emulator.await_outcome(invocation)
        if time.monotonic() >= give_up:
            return None
    return invocation.accepted[0]


def late_timeout(post: Outcome) -> bool:
    """Is this the runtime's report of a timeout, refused (410) as posted after the deadline?"""
    return post.status == 410 and post.error_type == errors.TIMEOUT


def one_late_timeout(refused: list[Outcome]) -> bool:
    """Were the runtime's refused posts for an event its one timeout report, come too late?"""
    return len(refused) == 1 and late_timeout(refused[0])


def _late_timeout_problem(item: Planned, outcome: Outcome, refused: list[Outcome]) -> str | None:
    """What is wrong with an answer the emulator gave on the runtime's behalf; None when it is
    the platform's timeout standing in for the runtime's own timeout report, which came
    once, too late, and was itself the answer the event was to get."""
    if outcome.error_type != errors.TIMEOUT or not one_late_timeout(refused):
        return f"answered by the emulator, not the runtime: {outcome}, refused posts {refused}"
    return item.check(refused[0])


def serving(emulator: RuntimeAPIEmulator, n: int = -1) -> int:
    """Check that the runtime still serves: ``ok`` answered once with its own ``n``; the pid
    of the worker that answered."""
    outcome = invoke(emulator, {"do": "ok", "n": n}, timeout=30)
    assert outcome.kind == "response" and outcome.json()["n"] == n, outcome
    assert emulator.outcomes(outcome.request_id) == [outcome]
    return outcome.json()["pid"]


def answer_posts(emulator: RuntimeAPIEmulator) -> Counter[str]:
    """The /response and /error posts the API has seen, by route."""
    return Counter(route for _, _, _, route in list(emulator.requests) if route in ("response", "error"))


def outcome_label(outcome: Any) -> str:
    """``response`` or the error type: the "kind" the report counts."""
    if outcome.kind == "response":
        return "response"
    return outcome.error_type or "error"


def strip_bodies(planned: Iterable[Planned]) -> None:
    """Drop verified bodies so a long soak does not hold gigabytes in the test process."""
    for item in planned:
        if item.invocation is not None:
            for outcome in item.invocation.accepted:
                outcome.body = b""
            item.invocation.body = b""


def recovery_times(planned: list[Planned]) -> list[float]:
    """Seconds from each crash's answer to the answer of the next event, when that next
    event is a quick one (so its own work does not count as recovery)."""
    times = []
    for crash, following in zip(planned, planned[1:], strict=False):
        if crash.kind not in REPLACING or following.kind not in QUICK:
            continue
        assert crash.invocation is not None and following.invocation is not None
        if not crash.invocation.accepted or not following.invocation.accepted:
            continue
        if crash.invocation.accepted[0].status != 202:
            continue  # the platform's timeout, given after the runtime's late report
        times.append(following.invocation.accepted[0].received_at - crash.invocation.accepted[0].received_at)
    return times


# ------------------------------------------------------------------------------- rest points


@dataclass
class Snapshot:
    """The supervisor at rest (blocked on /next with nothing queued)."""

    fds: list[str]
    rss_kb: int
    zombie_children: list[Proc]
    session: list[Proc]

    @property
    def fd_count(self) -> int:
        return len(self.fds)


def snapshot_at_rest(emulator: RuntimeAPIEmulator, runtime: RuntimeProcess) -> Snapshot:
    assert runtime.pid is not None
    assert emulator.wait_for_poll(30), "the runtime never came back to /next"
    return Snapshot(
        fds=open_fds(runtime.pid),
        rss_kb=rss_kb(runtime.pid),
        zombie_children=[p for p in children_of(runtime.pid) if p.state == "Z"],
        session=session_procs(runtime.pid),
    )


def worker_replacements(runtime: RuntimeProcess) -> list[dict[str, Any]]:
    """The supervisor's records of replacement workers (the first worker's start is DEBUG)."""
    return [r for r in runtime.json_lines() if r.get("message") == "worker started" and r.get("reason")]


# ------------------------------------------------------------------------------- report


@dataclass
class RunFigures:
    """What one chaos run measured, for the end-of-session report."""

    name: str
    seed: int | None = None
    invocations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    planned_kinds: Counter[str] = field(default_factory=Counter)
    worker_restarts: int | None = None
    recoveries: list[float] = field(default_factory=list)
    fds_start: int | None = None
    fds_end: int | None = None
    rss_start_kb: int | None = None
    rss_end_kb: int | None = None
    rss_max_kb: int | None = None
    duration_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        recoveries = sorted(self.recoveries)
        return {
            "name": self.name,
            "seed": self.seed,
            "invocations": self.invocations,
            "outcomes": dict(self.outcomes.most_common()),
            "planned_kinds": dict(self.planned_kinds.most_common()),
            "worker_restarts": self.worker_restarts,
            "recovery_ms": None
            if not recoveries
            else {
                "count": len(recoveries),
                "median": round(statistics.median(recoveries) * 1000, 1),
                "p95": round(recoveries[int(0.95 * (len(recoveries) - 1))] * 1000, 1),
                "max": round(recoveries[-1] * 1000, 1),
            },
            "fds": [self.fds_start, self.fds_end],
            "rss_kb": [self.rss_start_kb, self.rss_end_kb],
            "rss_max_kb": self.rss_max_kb,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 1),
            "notes": self.notes,
        }


class ChaosReport:
    """Collects ``RunFigures`` during the session; printed in pytest's terminal summary and,
    when ``LAMBDA_SUPERVISOR_CHAOS_REPORT`` names a file, written there as JSON."""

    def __init__(self) -> None:
        self.runs: list[RunFigures] = []

    def run(self, name: str, **kwargs: Any) -> RunFigures:
        figures = RunFigures(name, **kwargs)
        self.runs.append(figures)
        return figures

    def lines(self) -> list[str]:
        out = []
        for run in self.runs:
            d = run.as_dict()
            out.append(f"{d['name']}" + (f"  (seed {d['seed']})" if d["seed"] is not None else ""))
            out.append(f"  invocations: {d['invocations']}  duration: {d['duration_s']} s")
            if d["outcomes"]:
                out.append("  outcomes: " + ", ".join(f"{k}={v}" for k, v in d["outcomes"].items()))
            if d["worker_restarts"] is not None:
                out.append(f"  worker restarts: {d['worker_restarts']}")
            if d["recovery_ms"]:
                r = d["recovery_ms"]
                out.append(
                    f"  recovery crash -> next served event (ms): max {r['max']}, p95 {r['p95']},"
                    f" median {r['median']} over {r['count']}"
                )
            if d["fds"][0] is not None:
                out.append(f"  supervisor fds: start {d['fds'][0]}, end {d['fds'][1]}")
            if d["rss_kb"][0] is not None:
                start, end = d["rss_kb"]
                out.append(
                    f"  supervisor RSS (KiB): start {start}, end {end}, max {d['rss_max_kb']}"
                    f" (change {end - start:+d})"
                )
            for note in d["notes"]:
                out.append(f"  {note}")
        return out

    # A pytest plugin object: registered once per session by ``chaos_report``.
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs:
            return
        terminalreporter.section("chaos report")
        for line in self.lines():
            terminalreporter.write_line(line)
        target = os.environ.get("LAMBDA_SUPERVISOR_CHAOS_REPORT")
        if target:
            Path(target).write_text(json.dumps([r.as_dict() for r in self.runs], indent=2) + "\n")


_REPORT_PLUGIN = "lambda-supervisor-chaos-report"


def chaos_report(config: pytest.Config) -> ChaosReport:
    """The session's report, registering it as a plugin the first time it is asked for."""
    report = config.pluginmanager.get_plugin(_REPORT_PLUGIN)
    if report is None:
        report = ChaosReport()
        config.pluginmanager.register(report, _REPORT_PLUGIN)
    return report
