"""Shared pieces of the chaos suite: a handler that misbehaves on request, a seeded mix of
misbehaviours with the answer each must get, /proc bookkeeping (descriptors, memory,
zombies, leftover processes) and the report printed at the end of the test run.

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

from lambda_supervisor.emulator import Invocation, RuntimeAPIEmulator
from lambda_supervisor.process import RuntimeProcess

MAX_PAYLOAD = 6_291_556

# One handler module that does whatever the event asks. Every way of misbehaving that the
# suite uses is here, so one long-running runtime can be fed a random mixture of them.
CHAOS_APP = r'''
import ctypes, fcntl, os, signal, sys, threading, time

INIT_ID = os.urandom(4).hex()
HOOK_FILE = os.environ.get("CHAOS_HOOK_FILE")
INIT_HANGS_IF = os.environ.get("CHAOS_INIT_HANGS_IF")
hoard = []

if INIT_HANGS_IF and os.path.exists(INIT_HANGS_IF):
    open(INIT_HANGS_IF + ".hanging", "a").close()
    time.sleep(3600)  # an init that never finishes (a stuck import, a dead dependency)

if HOOK_FILE:
    def on_sigterm(signum, frame):
        # A function's shutdown hook: note that it ran, then leave.
        with open(HOOK_FILE, "a") as f:
            f.write(f"{os.getpid()}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)

def ok(event, context):
    return {"n": event["n"], "pid": os.getpid(), "init": INIT_ID}

def sleep_ok(event, context):
    time.sleep(event.get("seconds", 0.3))
    return ok(event, context)

def hog(event, context):
    # Keeps what it allocates: the worker's resident memory only grows.
    hoard.append(bytearray(event["mb"] * 1024 * 1024))
    return {"n": event["n"], "held_mb": len(hoard) * event["mb"]}

def runaway(event, context):
    # Allocates without bound; only a memory limit stops it.
    grab = []
    while True:
        grab.append(bytearray(16 * 1024 * 1024))

def hang_next_init(event, context):
    # Makes the next worker's init hang, then dies so that a replacement is started.
    open(INIT_HANGS_IF, "w").close()
    os._exit(1)

def big(event, context):
    return {"n": event["n"], "pad": "y" * event["size"]}

def raise_(event, context):
    raise ValueError(f"bad value {event['n']}")

def exit_(event, context):
    os._exit(event["code"])

def sys_exit(event, context):
    sys.exit(event["code"])

def segfault(event, context):
    ctypes.string_at(0)

def sigkill(event, context):
    os.kill(os.getpid(), signal.SIGKILL)

def sigterm(event, context):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

def hang(event, context):
    time.sleep(3600)

def busy(event, context):
    while True:
        pass

def unserialisable(event, context):
    return {"n": event["n"], "s": {1, 2}}

def oversized(event, context):
    return "x" * event["size"]

def oversized_bytes(event, context):
    return b"x" * event["size"]

def exact_limit(event, context):
    # A JSON string result of exactly event["size"] bytes once encoded.
    return "z" * (event["size"] - 2)

def child(event, context):
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(3600)
        finally:
            os._exit(0)
    return {"n": event["n"], "child": pid}

def zombie(event, context):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return {"n": event["n"], "zombie": pid}

def thread(event, context):
    threading.Thread(target=time.sleep, args=(3600,), name=f"left-{event['n']}").start()
    return {"n": event["n"], "threads": threading.active_count()}

def reply_pipe():
    """The worker's reply pipe: the one pipe it holds open write-only, beyond 0, 1 and 2."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if target.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no reply pipe found")

def garbage(event, context):
    os.write(reply_pipe(), bytes.fromhex(event["hex"]))
    if event.get("then") == "hang":
        time.sleep(3600)
    if event.get("then") == "exit":
        os._exit(0)
    return {"n": event["n"], "after": "garbage"}

def close_pipe(event, context):
    os.close(reply_pipe())
    if event.get("then") == "hang":
        time.sleep(3600)
    return {"n": event["n"]}

def context_info(event, context):
    cc = context.client_context
    return {
        "request_id": context.aws_request_id,
        "custom": cc.custom if cc else None,
        "identity": context.identity.cognito_identity_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "size": len(event) if isinstance(event, (str, bytes)) else None,
    }

def echo_size(event, context):
    return {"len": len(event) if isinstance(event, (str, bytes, list)) else None}

def route(event, context):
    if not isinstance(event, dict):
        return echo_size(event, context)
    name = event["do"]
    return globals()[name + "_" if name in ("raise", "exit") else name](event, context)
'''

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
    """Wait for every answer, then judge each: one accepted post, none refused, right kind.

    ``duplicates_refused`` allows a post refused with 403 after the accepted one: what a
    retry looks like when the API took the first attempt but the connection was cut before
    its answer arrived. The API still saw exactly one answer.
    """
    complaints = []
    for item in planned:
        assert item.invocation is not None
        invocation = item.invocation
        try:
            invocation.result(wait)
        except TimeoutError:
            complaints.append(f"#{item.n} {item.kind}: no answer within {wait}s")
            continue
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
        if refused:
            complaints.append(f"#{item.n} {item.kind}: refused posts {invocation.rejected}")
        outcome = outcomes[0]
        if outcome.status != 202:
            complaints.append(f"#{item.n} {item.kind}: answered by the emulator, not the runtime: {outcome}")
            continue
        problem = item.check(outcome)
        if problem:
            complaints.append(f"#{item.n} {item.kind}: {problem}")
    return complaints


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
        times.append(following.invocation.accepted[0].received_at - crash.invocation.accepted[0].received_at)
    return times


# ------------------------------------------------------------------------------- /proc


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    name: str


def read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], name)


def all_procs() -> list[Proc]:
    procs = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = read_proc(int(entry))
            if proc is not None:
                procs.append(proc)
    return procs


def session_procs(sid: int) -> list[Proc]:
    """The runtime's processes (it is started in a session of its own): every live one, and
    every zombie that the supervisor or a worker has to reap.

    A killed handler child re-parented to the machine's init is dead already; reaping it is
    that init's job (on Lambda, the platform's), and some inits only do it now and then.
    """
    procs = [proc for proc in all_procs() if proc.sid == sid]
    ours = {proc.pid for proc in procs}
    return [proc for proc in procs if proc.state != "Z" or proc.ppid in ours]


def children_of(pid: int) -> list[Proc]:
    return [proc for proc in all_procs() if proc.ppid == pid]


def open_fds(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (``pipe:[..]``, ``socket:[..]``, ...)."""
    targets = []
    for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            targets.append(f"{name}->{os.readlink(f'/proc/{pid}/fd/{name}')}")
        except OSError:
            pass
    return targets


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def catches_signal(pid: int, signum: int) -> bool:
    """Has ``pid`` installed a handler for ``signum`` (its SigCgt mask in /proc)?"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    except OSError:
        return False
    return False


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something true; that value, or the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


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
