"""Lambda Managed Instances: N concurrent workers in one environment, side by side.

On LMI one environment serves ``AWS_LAMBDA_MAX_CONCURRENCY`` invocations at once. awslambdaric
forks that many processes, each importing the function and running its own ``/next`` loop,
and never replaces one: a worker that crashes is gone, and so is one that hangs, since LMI
answers the caller at the deadline but does not stop the code. This runtime supervises N
workers, replaces any that die or overrun, and with ``LAMBDA_SUPERVISOR_PRELOAD=1`` imports
the function once and forks every worker from it. Four things show the difference, each in
the same run as awslambdaric, against the same stand-in, in alternating order:

* throughput: invocations/s of a handler that waits 20 ms (I/O bound) at N = 1, 4, 16, with
  a backlog of events that keeps every worker busy (the stand-in hands one to every
  ``/next``);
* capacity: with N workers ready, 3 crashes (``os._exit``) and 3 hangs past a 1 s function
  timeout, then N events that each take a second: the most of them in flight at once is how
  many slots still serve;
* init: from spawning the runtime to N ``GET /next`` calls outstanding at once (all N workers
  ready), at N = 16 with a boto3 init, this runtime by default and with preload;
* memory: the tree's PSS at N = 16 with the boto3 init, once every worker has served a few
  events (so that what copy-on-write shares is what stays shared after work), again by
  default and with preload.

Both runtimes get the environment LMI sets (the concurrency, the initialization type, JSON
logs). ``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET`` is left unset: with it awslambdaric
connects each worker's output to a socket, which the handlers here, silent, would not use.
"""

from __future__ import annotations

import json
import time
from typing import Any

from process_tree import tree_pss_kb
from runtimes import AWS, OURS, Runtime, our_runtime
from session import Session
from stand_in import StandIn
from trial import Run, alternate, median_of, run_trial, started, trial_tag

PRELOAD = "ours-preload"
THROUGHPUT_N = (1, 4, 16)
HANDLER_S = 0.02  # what the sleeper handler waits by default
CAPACITY_N = (4, 16)
FAULTS = [{"crash": True}, {"hang": True}] * 3
FUNCTION_TIMEOUT_MS = 1000
SETTLE_S = 1.5  # after the faults' deadlines: time for a runtime to replace its workers
PROBE_S = 1.0  # what each capacity probe event waits
INIT_N = 16
EVENTS_PER_WORKER = 4  # served before the memory is read
# Waiting for N workers: give up when no new /next has been held for this long.
STALL_S = 15.0


def phase(part: str, n: int) -> str:
    """What a part of this section at concurrency ``n`` is called in the results."""
    return f"lmi:{part}:{n}"


def lmi_env(n: int) -> dict[str, str]:
    """What Lambda Managed Instances set for a function of concurrency ``n``."""
    return {
        "AWS_LAMBDA_MAX_CONCURRENCY": str(n),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
    }


def run(session: Session) -> None:
    throughput(session)
    capacity(session)
    init(session)


def throughput(session: Session) -> None:
    """Invocations/s of the 20 ms handler at each N, ABBA pairs, a backlog of events."""
    for n in THROUGHPUT_N:
        events = n * session.n(100, 25)
        # Serial (a runtime that ignores the concurrency) is the slowest it may go.
        timeout = events * HANDLER_S * 2 + 60
        runs: dict[str, list[dict[str, float]]] = {OURS: [], AWS: []}
        for _, ours_first in alternate(session.n(5, 2)):
            for runtime in (session.ours, session.aws) if ours_first else (session.aws, session.ours):
                run = run_trial(
                    session.stand_in,
                    runtime,
                    "noop",
                    events,
                    module="sleeper",
                    env=lmi_env(n),
                    timeout=timeout,
                )
                runs[runtime.name].append(throughput_figures(run, n))
        session.results["runs"][phase("throughput", n)] = runs
        session.say(
            f"lmi throughput N={n}: ours {median_of(runs[OURS], 'ips'):,.0f} inv/s, "
            f"awslambdaric {median_of(runs[AWS], 'ips'):,.0f} inv/s (all N busy: {n / HANDLER_S:,.0f})"
        )


def throughput_figures(run: Run, n: int) -> dict[str, float]:
    """Answers per second from the answer at 5% to the last, so that the workers' start
    is not counted; every event must have been answered with a response."""
    report = run.report
    bad = [kind for kind in report["kind"] if kind != "response"]
    if bad:
        raise RuntimeError(f"{run.runtime}: {len(bad)} events were not answered with a response")
    answered = sorted(report["in_at"])
    skip = max(1, len(answered) // 20)
    ips = (len(answered) - 1 - skip) / (answered[-1] - answered[skip])
    return {"ips": ips, "busy": ips * HANDLER_S / n, "events": len(answered), "processes": run.processes}


def capacity(session: Session) -> None:
    """Slots serving after 3 crashes and 3 hangs, at each N of ``CAPACITY_N``."""
    for n in CAPACITY_N:
        runs: dict[str, list[dict[str, Any]]] = {OURS: [], AWS: []}
        for _, ours_first in alternate(session.n(2, 1)):
            for runtime in (session.ours, session.aws) if ours_first else (session.aws, session.ours):
                runs[runtime.name].append(slots_after_faults(session.stand_in, runtime, n))
        session.results["runs"][phase("capacity", n)] = runs
        session.say(
            f"lmi capacity N={n} after 3 crashes and 3 hangs: "
            + "; ".join(
                f"{name} {min(r['slots_after'] for r in found)} of {n} serving "
                f"({min(r['ready_before'] for r in found)} ready before)"
                for name, found in runs.items()
            )
        )


def slots_after_faults(stand_in: StandIn, runtime: Runtime, n: int) -> dict[str, Any]:
    """Start with N workers; crash 3 and hang 3; then how many serve at once."""
    stand_in.arm(0, 0, tag=trial_tag(runtime), report_held=n)
    with started(stand_in, runtime, "sleeper", env=lmi_env(n)) as process:
        ready_before, _ = wait_ready(stand_in, n, 30.0)
        stand_in.arm(
            0,
            0,
            tag=trial_tag(runtime),
            bodies=[json.dumps(fault) for fault in FAULTS],
            timeout_ms=FUNCTION_TIMEOUT_MS,
        )
        faults = wait_out_faults(stand_in, len(FAULTS))
        time.sleep(SETTLE_S)
        stand_in.arm(0, 0, tag=trial_tag(runtime), bodies=[json.dumps({"sleep": PROBE_S})] * n)
        try:
            # n of n slots answer in one PROBE_S; k of n in n/k of them.
            probe = stand_in.wait_done(PROBE_S * 3 + 5)
        except TimeoutError:
            probe = stand_in.status()
        alive = process.proc.poll() is None
    return {
        "ready_before": ready_before,
        "slots_after": max_in_flight(probe),
        "faults_handed_out": faults["handed_out"],
        "faults_answered": sum(1 for kind in faults["kind"] if kind),
        "probe_answered": sum(1 for kind in probe["kind"] if kind == "response"),
        "running": alive,
    }


def wait_ready(stand_in: StandIn, n: int, timeout: float) -> tuple[int, float | None]:
    """The most ``GET /next`` calls outstanding at once, and when ``n`` were (the trial was
    armed with ``report_held=n``): waits up to ``timeout``, or until no call has been added
    for ``STALL_S`` (a runtime that serves one event at a time never holds a second)."""
    give_up = time.monotonic() + timeout
    last_held, last_change = 0, time.monotonic()
    while time.monotonic() < give_up:
        try:
            return n, stand_in.wait_held(min(1.0, max(0.0, give_up - time.monotonic())))
        except TimeoutError:
            held = stand_in.status()["held_max"]
        if held != last_held:
            last_held, last_change = held, time.monotonic()
        elif held and time.monotonic() - last_change > STALL_S:
            break
    return last_held, None


def wait_out_faults(stand_in: StandIn, count: int) -> dict[str, Any]:
    """The fault trial's figures once every fault handed out was answered or is past its
    deadline (the platform answers the caller then), or after two rounds of deadlines: a
    runtime that lost its slots never takes the rest."""
    timeout = FUNCTION_TIMEOUT_MS / 1000
    give_up = time.monotonic() + 2 * timeout + 5
    while True:
        status = stand_in.status()
        now = time.monotonic()
        out = status["handed_out"]
        over = all(status["kind"][i] or now > status["out_at"][i] + timeout for i in range(out))
        if (over and out == count) or now > give_up:
            return status
        time.sleep(0.1)


def max_in_flight(report: dict[str, Any]) -> int:
    """The most events handed out and not yet answered at any one instant."""
    edges = []
    for index in range(report.get("handed_out", 0)):
        edges.append((report["out_at"][index], 1))
        if report["kind"][index]:
            edges.append((report["in_at"][index], -1))
    most = in_flight = 0
    for _, step in sorted(edges):  # at a tie an answer (-1) sorts before a hand-out
        in_flight += step
        most = max(most, in_flight)
    return most


def init(session: Session) -> None:
    """Start to all N ready, and PSS once they have served, at N = 16 with a boto3 init:
    ours by default, ours with preload, awslambdaric, each first in turn."""
    preload = our_runtime(session.root, PRELOAD, {"LAMBDA_SUPERVISOR_PRELOAD": "1"})
    runtimes = [session.ours, preload, session.aws]
    runs: dict[str, list[dict[str, Any]]] = {runtime.name: [] for runtime in runtimes}
    for index in range(session.n(6, 3)):
        turn = index % len(runtimes)
        for runtime in runtimes[turn:] + runtimes[:turn]:
            runs[runtime.name].append(ready_and_pss(session.stand_in, runtime, INIT_N))
    session.results["runs"][phase("init", INIT_N)] = runs

    def said(name: str) -> str:
        found = runs[name]
        if any(r["ready"] < INIT_N for r in found):
            return f"{name} {min(r['ready'] for r in found)} of {INIT_N} ready"
        return f"{name} {median_of(found, 'ready_ms'):.0f} ms, {median_of(found, 'pss_mb'):.0f} MB"

    session.say(f"lmi init N={INIT_N}, boto3: all ready, PSS: " + "; ".join(map(said, runs)))


def ready_and_pss(stand_in: StandIn, runtime: Runtime, n: int) -> dict[str, Any]:
    """Spawn to ``n`` workers ready; then ``EVENTS_PER_WORKER`` events each; then PSS."""
    stand_in.arm(0, 0, tag=trial_tag(runtime), report_held=n)
    with started(stand_in, runtime, "sdk", env=lmi_env(n)) as process:
        ready, at = wait_ready(stand_in, n, 120.0)
        stand_in.arm(n * EVENTS_PER_WORKER, 0, tag=trial_tag(runtime))
        try:
            stand_in.wait_done(60.0)
        except TimeoutError:
            raise process.failure(f"did not answer {n * EVENTS_PER_WORKER} events in 60 s") from None
        time.sleep(0.05)  # let the last answers' workers go back to their idle GET /next
        pss, count = tree_pss_kb(process.proc.pid)
    ready_ms = None if at is None else (at - process.spawned_at) * 1000
    return {"ready_ms": ready_ms, "ready": ready, "pss_mb": pss / 1024, "processes": count}
