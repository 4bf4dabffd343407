"""A Runtime API that misbehaves while a mixed stream of events is being served.

Faults come from the project's emulator over real HTTP: dropped connections, 5xx answers,
slow answers, 410 for late posts, and the emulator itself restarting mid-run (keeping its
state, or replaced by a fresh one on the same port). Whatever happens, no event that the
runtime took may be lost or answered twice, and a non-recoverable answer (500 on /next)
must end the runtime promptly, leaving no worker behind.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

import pytest
from chaos_support import (
    HANDLER,
    Planned,
    answer_posts,
    chaos_report,
    outcome_label,
    plan_event,
    submit,
    verify_exactly_once,
    worker_replacements,
)
from proc_support import session_procs, wait_until
from runtime_harness import STARTUP_TIMEOUT, handler_files, invoke, running_runtime

from lambda_supervisor.emulator import RuntimeAPIEmulator

pytestmark = pytest.mark.chaos

ENV = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100", "LAMBDA_SUPERVISOR_API_RETRY_SECONDS": "30"}
# Kinds whose answers take no deadline (an API delay must not turn them into 410s).
API_MIX = ["ok", "ok", "ok", "big", "raise", "exit", "segfault", "bad_json", "unserialisable", "oversized"]
SEED = 4242


@pytest.fixture
def report(request):
    return chaos_report(request.config)


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        yield runtime


def _record(figures, planned: list[Planned]) -> None:
    for item in planned:
        assert item.invocation is not None
        if item.invocation.accepted:
            figures.outcomes[outcome_label(item.invocation.accepted[0])] += 1
        figures.planned_kinds[item.kind] += 1
    figures.invocations += len(planned)


@pytest.mark.timeout(240)
def test_random_api_faults_lose_nothing_and_answer_nothing_twice(emulator, runtime, report):
    """Tried: 400 events in groups of four; before each group, at most one fault per route,
    drawn from: /next dropped, answered 429/502/503/504 or delayed; /response and /error
    dropped, answered 429/500/502/503/504 or delayed."""
    rng = random.Random(SEED)
    figures = report.run("runtime API faults during a mixed run", seed=SEED)
    started = time.monotonic()
    faults: Counter[str] = Counter()
    planned: list[Planned] = []
    complaints: list[str] = []
    # A fault waits for the next request on its route; never queue a second one behind it,
    # or a single post could meet more failures than any retry policy is meant to absorb.
    armed_at: dict[str, int] = {}
    for group in range(100):
        seen = Counter(route for _, _, _, route in list(emulator.requests))
        for route in ("next", "response", "error"):
            if rng.random() > 0.5 or seen[route] <= armed_at.get(route, -1):
                continue
            armed_at[route] = seen[route]
            action = rng.choice(["drop", "status", "delay"])
            if route == "next":
                status = rng.choice([429, 502, 503, 504])
            else:
                status = rng.choice([429, 500, 502, 503, 504])
            emulator.inject_fault(route, action, status=status, delay=rng.uniform(0.01, 0.2))
            faults[f"{route}:{action}" + (f":{status}" if action == "status" else "")] += 1
        batch = [plan_event(rng.choice(API_MIX), group * 4 + i, rng) for i in range(4)]
        submit(emulator, batch)
        complaints.extend(verify_exactly_once(emulator, batch, 60))
        planned.extend(batch)
    _record(figures, planned)
    assert not complaints, "\n".join(complaints[:30])
    assert invoke(emulator, {"do": "ok", "n": -1}).kind == "response"
    assert runtime.running
    # One post per event plus one retry per post fault that was applied (a delayed post is
    # not retried); drops and errors on /next cost a retried /next, never an event.
    post_faults = sum(v for k, v in faults.items() if k.split(":")[0] != "next" and ":delay" not in k)
    posts = sum(answer_posts(emulator).values())
    assert len(planned) + 1 <= posts <= len(planned) + 1 + post_faults
    figures.duration_s = time.monotonic() - started
    figures.notes.append(
        "faults injected: "
        + ", ".join(f"{k}={v}" for k, v in sorted(faults.items()))
        + f"; posts made: {posts} for {len(planned) + 1} events"
    )


@pytest.mark.timeout(240)
def test_emulator_restarting_mid_run_keeping_its_state(emulator, runtime, report):
    """Tried: the Runtime API cut every connection and went away for 0.1-1.0 s, eight times,
    while a stream of events (some of them slow, so posts fall into the outage) was served."""
    rng = random.Random(SEED + 1)
    figures = report.run("emulator restarts mid-run (state kept)", seed=SEED + 1)
    started = time.monotonic()
    planned = [
        plan_event(rng.choice(["ok", "ok", "raise", "exit", "big", "bad_json"]), n, rng) for n in range(240)
    ]
    # Make some events slow so that their posts land while the API is down.
    for item in planned[::6]:
        if item.kind == "ok":
            item.body = item.body.replace(b'"do": "ok"', b'"do": "sleep_ok"')
    restarts = []

    def restart_repeatedly() -> None:
        for _ in range(8):
            time.sleep(rng.uniform(0.2, 0.8))
            downtime = rng.uniform(0.1, 1.0)
            emulator.restart(downtime)
            restarts.append(downtime)

    submit(emulator, planned)
    chaos = threading.Thread(target=restart_repeatedly, daemon=True)
    chaos.start()
    chaos.join(60)
    complaints = verify_exactly_once(emulator, planned, 90, duplicates_refused=True)
    _record(figures, planned)
    figures.duration_s = time.monotonic() - started
    duplicates = [item for item in planned if item.invocation and item.invocation.rejected]
    figures.notes.append(
        f"{len(restarts)} restarts, {sum(restarts):.1f} s down in total; "
        f"{len(duplicates)} posts repeated after a cut connection (refused 403 by the API)"
    )
    assert not complaints, "\n".join(complaints[:30])
    assert len(restarts) == 8
    assert runtime.running
    assert invoke(emulator, {"do": "ok", "n": -1}).kind == "response"


@pytest.mark.timeout(120)
def test_a_fresh_api_on_the_same_port_is_served_after_the_old_one_vanished(tmp_path, report):
    """Tried: the Runtime API process replaced by a new one (no memory of earlier events) on
    the same port while an event was in the handler; then 100 events on the new API."""
    figures = report.run("emulator replaced by a fresh one on the same port")
    started = time.monotonic()
    first = RuntimeAPIEmulator().start()
    host, port = first.host, first.port
    with running_runtime(first, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        in_flight = first.submit(b'{"do": "sleep_ok", "n": 0, "seconds": 1.0}', timeout=60)
        assert in_flight.handed_out.wait(30)
        first.stop()
        second = RuntimeAPIEmulator(host=host, port=port)
        time.sleep(0.2)  # the runtime meets a closed port for a moment
        second.start()
        try:
            assert second.wait_for_poll(STARTUP_TIMEOUT), runtime.output()
            rng = random.Random(SEED + 2)
            planned = [
                plan_event(rng.choice(["ok", "raise", "exit", "bad_json"]), n, rng) for n in range(100)
            ]
            submit(second, planned)
            complaints = verify_exactly_once(second, planned, 60)
            _record(figures, planned)
            figures.duration_s = time.monotonic() - started
            assert not complaints, "\n".join(complaints[:30])
            # The old event was never answered to the new API under some other id.
            assert second.invocation(in_flight.request_id) is None
            assert runtime.running
        finally:
            second.stop()
    assert in_flight.accepted == []


@pytest.mark.timeout(120)
def test_500_on_next_mid_run_ends_the_runtime_promptly_with_no_worker_left(emulator, runtime, report):
    """Tried: a 500 answer to GET /next (the contract's "container error, non-recoverable")
    in the middle of a mixed run."""
    figures = report.run("500 on /next mid-run")
    began = time.monotonic()
    rng = random.Random(SEED + 3)
    before = [plan_event(rng.choice(["ok", "raise", "exit", "child", "thread"]), n, rng) for n in range(60)]
    submit(emulator, before)
    complaints = verify_exactly_once(emulator, before, 60)
    assert not complaints, "\n".join(complaints)
    assert emulator.wait_for_poll(30)
    emulator.inject_fault("next", "status", status=500)
    emulator.restart()  # the pending long-poll is cut; the retried /next meets the 500
    sid = runtime.pid
    started = time.monotonic()
    exit_code = runtime.wait(30)
    figures.invocations = len(before)
    figures.duration_s = time.monotonic() - began
    figures.notes.append(f"exit status {exit_code} {time.monotonic() - started:.2f} s after the 500")
    _record(figures, [])
    assert exit_code not in (0, None)
    assert any(r.get("message") == "runtime API failure, exiting" for r in runtime.json_lines())
    after = emulator.submit({"do": "ok", "n": 1000}, timeout=30)
    assert not after.handed_out.wait(0.5)
    # No worker (nor anything a handler forked) outlives the supervisor.
    assert wait_until(lambda: not session_procs(sid), 10), session_procs(sid)


@pytest.mark.timeout(120)
def test_late_posts_get_410_once_and_the_runtime_serves_on(emulator, runtime, report):
    """Tried: result posts held by the API past the invocation's deadline (1 s timeout,
    1.5 s delay) interleaved with normal events."""
    figures = report.run("410 for late posts")
    began = time.monotonic()
    rng = random.Random(SEED + 4)
    expired: list[Planned] = []
    normal: list[Planned] = []
    for n in range(20):
        late = n % 4 == 0
        item = plan_event("ok", n, rng)
        if late:
            item.timeout = 1.0
            emulator.inject_fault("response", "delay", delay=1.5)
            expired.append(item)
        else:
            normal.append(item)
        submit(emulator, [item])
        assert wait_until(lambda: bool(item.invocation.accepted or item.invocation.rejected), 30)  # noqa: B023
    complaints = verify_exactly_once(emulator, normal, 30)
    _record(figures, normal)
    figures.duration_s = time.monotonic() - began
    figures.notes.append(f"{len(expired)} posts held past their deadline, each refused 410 once")
    assert not complaints, "\n".join(complaints)
    for item in expired:
        assert item.invocation is not None
        assert item.invocation.accepted == []
        assert [o.status for o in item.invocation.rejected] == [410]
    assert sum(answer_posts(emulator).values()) == 20, "a 410 must not be retried"
    assert worker_replacements(runtime) == []
    assert invoke(emulator, {"do": "ok", "n": -1}).kind == "response"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("failures", [3, 8])
def test_posts_answered_500_repeatedly(emulator, runtime, failures):
    """Tried: the /response post answered 500 three times (where the runtime used to give
    up after 20 ms) and eight times (2.3 s of backoff, within the 30 s retry window): retried
    each time, answered once, the recovery logged once, and the runtime serves on."""
    emulator.inject_fault("response", "status", status=500, count=failures)
    item = emulator.submit({"do": "ok", "n": 1}, timeout=30)
    outcome = item.result(30)
    assert outcome.kind == "response" and len(emulator.outcomes(item.request_id)) == 1
    assert sum(answer_posts(emulator).values()) == failures + 1
    record = runtime.wait_for_json(lambda r: r.get("message") == "runtime API answered again", 10)
    assert record is not None and record["failed_attempts"] == failures
    assert invoke(emulator, {"do": "ok", "n": 2}).json()["n"] == 2


@pytest.mark.timeout(120)
def test_internal_extension_then_a_mixed_run_then_sigterm(emulator, tmp_path, report):
    """Tried: LAMBDA_SUPERVISOR_REGISTER_EXTENSION=1, then 80 mixed events (results,
    exceptions, deaths, bad JSON), then SIGTERM: the registration is made once, before the
    first /next, as an internal extension (no events), and shutdown is clean."""
    figures = report.run("internal extension, mixed run, SIGTERM")
    began = time.monotonic()
    rng = random.Random(SEED + 5)
    env = {**ENV, "LAMBDA_SUPERVISOR_REGISTER_EXTENSION": "1"}
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        sid = runtime.pid
        [registration] = emulator.extension_registrations
        assert registration.headers.get("Lambda-Extension-Name")
        assert registration.json() == {"events": []}
        routes = [route for _, _, _, route in list(emulator.requests)]
        assert routes.index("extension_register") < routes.index("next")
        planned = [plan_event(rng.choice(["ok", "raise", "exit", "bad_json"]), n, rng) for n in range(80)]
        submit(emulator, planned)
        complaints = verify_exactly_once(emulator, planned, 60)
        _record(figures, planned)
        assert not complaints, "\n".join(complaints[:30])
        assert emulator.wait_for_poll(30)
        runtime_pid = runtime.pid
        assert runtime_pid is not None
        os.kill(runtime_pid, signal.SIGTERM)
        assert runtime.wait(30) == 0
        figures.duration_s = time.monotonic() - began
        assert wait_until(lambda: not session_procs(sid), 10), session_procs(sid)
    assert len(emulator.extension_registrations) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("action", "status"), [("status", 500), ("status", 403), ("drop", 0)])
def test_a_refused_extension_registration_does_not_stop_the_runtime(emulator, tmp_path, action, status):
    """Tried: the extension registration answered 500 or 403, or its connection dropped."""
    emulator.inject_fault("extension_register", action, status=status or 500)
    env = {**ENV, "LAMBDA_SUPERVISOR_REGISTER_EXTENSION": "1"}
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        assert invoke(emulator, {"do": "ok", "n": 1}).json()["n"] == 1
        assert runtime.running
    assert emulator.extension_registrations == []
