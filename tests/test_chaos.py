"""Soak and lifecycle chaos: thousands of events, a seeded random mix of every way a handler
can fail, against one real runtime (bin/bootstrap) and the project's emulator.

The soak checks the bookkeeping that single-fault tests cannot: every request id gets
exactly one answer of the right kind, nothing is posted twice, the supervisor's open
descriptors and memory do not grow, no zombie or leftover process survives its worker,
and the runtime is still serving at the end. Size and seed come from the environment:

    LAMBDA_SUPERVISOR_SOAK=10000 LAMBDA_SUPERVISOR_SOAK_SEED=7 pytest -m chaos tests/test_chaos.py

The figures go to the "chaos report" section of the terminal summary.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest
from chaos_support import (
    DEADLINE_TIMEOUT,
    HANDLER,
    MIX,
    NORMAL_TIMEOUT,
    REPLACING,
    Planned,
    Snapshot,
    answer_posts,
    chaos_report,
    late_timeout,
    one_late_timeout,
    outcome_label,
    plan_event,
    plan_mix,
    recovery_times,
    snapshot_at_rest,
    strip_bodies,
    submit,
    verify_exactly_once,
    worker_replacements,
)
from proc_support import catches_signal, session_procs, wait_until
from runtime_harness import handler_files, invoke, running_runtime

from lambda_supervisor.runtime_modules import errors
from supervisor.keeper import KEEPER_NAME

pytestmark = pytest.mark.chaos

SOAK = int(os.environ.get("LAMBDA_SUPERVISOR_SOAK") or 2500)
SEED = int(os.environ.get("LAMBDA_SUPERVISOR_SOAK_SEED") or 20261125)
BATCH = 250
# Resident memory the supervisor may gain between the first and the last rest point.
# A leak of a kilobyte per event over the default soak would exceed it.
RSS_SLACK_KB = 2048 + 256 * (SOAK // 1000)
ENV = {"LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS": "100"}


@pytest.fixture
def report(request):
    return chaos_report(request.config)


def _run_batch(
    emulator, planned: list[Planned], figures, complaints: list[str], left_behind: list[int] | None = None
) -> None:
    submit(emulator, planned)
    wait = 60 + 2 * len(planned) * 0.05
    complaints.extend(verify_exactly_once(emulator, planned, wait))
    for item in planned:
        assert item.invocation is not None
        for outcome in item.invocation.accepted[:1]:
            figures.outcomes[outcome_label(outcome)] += 1
            if left_behind is not None and item.kind in ("child", "zombie") and outcome.kind == "response":
                left_behind.append(outcome.json()[item.kind])
        figures.planned_kinds[item.kind] += 1
    figures.invocations += len(planned)


def _strays(sid: int) -> set[int]:
    """The runtime's processes other than the supervisor and its workers (so a pid reused by
    a worker is not mistaken for a handler's child)."""
    return {proc.pid for proc in session_procs(sid) if proc.ppid != sid and proc.pid != sid}


def _planned(kind: str, n: int, check, **fields) -> Planned:
    """An event of ``kind`` that ``plan_event`` does not plan, judged by ``check``."""
    return Planned(kind, n, json.dumps({"do": kind, "n": n, **fields}).encode(), NORMAL_TIMEOUT, check)


def _no_leftovers(runtime) -> list:
    """Nothing of any earlier worker is left: the runtime's processes are the supervisor, its
    keeper, one worker, and whatever the current worker's handlers started (its process group).
    Returns the offending process list, or [] when that holds."""
    procs = [p for p in session_procs(runtime.pid) if p.name != KEEPER_NAME]
    workers = [p for p in procs if p.ppid == runtime.pid]
    if len(workers) != 1:
        return procs or ["no worker"]
    current = workers[0].pid
    strays = [p for p in procs if p.pid != runtime.pid and p.pgid != current]
    dead_workers = [p for p in workers if p.state == "Z"]
    return procs if strays or dead_workers else []


@pytest.mark.timeout(int(240 + SOAK * 0.12))
def test_soak_random_mix_every_event_answered_exactly_once(emulator, tmp_path, report):
    """Tried: SOAK events drawn (seeded) from success, exceptions, os._exit and sys.exit with
    random codes, segfault, SIGKILL and SIGTERM to self, sleeping and busy-looping past the
    deadline, unserialisable and oversized (str and bytes) results, events that are not
    JSON, handlers that leave child processes, zombies and threads behind, and handlers
    that write garbage on the worker's reply pipe."""
    figures = report.run(f"soak: random mix of {SOAK} events", seed=SEED)
    started = time.monotonic()
    complaints: list[str] = []
    left_behind: list[int] = []
    rng = random.Random(SEED ^ 0x5EED)
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        # Warm-up: every kind once, so first-use imports and allocations are behind us.
        warm = [plan_event(kind, -1 - i, rng) for i, kind in enumerate(MIX)]
        _run_batch(emulator, warm, figures, complaints)
        assert not complaints, "\n".join(complaints)
        start = snapshot_at_rest(emulator, runtime)
        rest_points: list[Snapshot] = [start]

        planned = plan_mix(SOAK, SEED)
        for offset in range(0, len(planned), BATCH):
            batch = planned[offset : offset + BATCH]
            _run_batch(emulator, batch, figures, complaints, left_behind)
            figures.recoveries.extend(recovery_times(batch))
            rest_points.append(snapshot_at_rest(emulator, runtime))
            strip_bodies(batch)
            assert not complaints, "\n".join(complaints[:30])

        end = rest_points[-1]
        figures.fds_start, figures.fds_end = start.fd_count, end.fd_count
        figures.rss_start_kb, figures.rss_end_kb = start.rss_kb, end.rss_kb
        figures.rss_max_kb = max(p.rss_kb for p in rest_points)
        step = max(1, len(rest_points) // 10)
        figures.notes.append(
            "supervisor RSS at rest (KiB), every "
            f"{step * BATCH} events: {[p.rss_kb for p in rest_points[::step]] + [end.rss_kb]}"
        )
        figures.worker_restarts = len(worker_replacements(runtime))
        late = sum(any(map(late_timeout, p.invocation.rejected)) for p in planned if p.invocation)
        figures.notes.append(f"timeout reports refused as past the deadline (410): {late}")

        # Force one last replacement, then nothing of any earlier worker may remain.
        final = [plan_event("exit", SOAK, rng), plan_event("ok", SOAK + 1, rng)]
        _run_batch(emulator, final, figures, complaints)
        leftovers = wait_until(lambda: not _no_leftovers(runtime), 15)
        still_serving = invoke(emulator, {"do": "ok", "n": -100})
        figures.duration_s = time.monotonic() - started

        assert not complaints, "\n".join(complaints[:30])
        assert still_serving.kind == "response" and still_serving.json()["n"] == -100
        assert runtime.running
        everything = warm + planned + final
        # Exactly one post per event reached the emulator: no retried or duplicate posts.
        assert sum(answer_posts(emulator).values()) == len(everything) + 1
        assert emulator.init_errors == []
        # Every death, deadline and protocol break replaced the worker; nothing else did.
        expected_restarts = sum(item.kind in REPLACING for item in everything)
        assert len(worker_replacements(runtime)) == expected_restarts
        assert all(not p.zombie_children for p in rest_points), [p.zombie_children for p in rest_points]
        assert leftovers, f"processes left in the runtime's session: {_no_leftovers(runtime)}"
        # Every process a handler left behind went with its worker.
        survivors = sorted(_strays(runtime.pid).intersection(left_behind))
        assert survivors == [], f"{len(survivors)} of {len(left_behind)} handler children survived"
        assert end.fd_count == start.fd_count, f"descriptors at start {start.fds}\nat end {end.fds}"
        assert end.rss_kb - start.rss_kb <= RSS_SLACK_KB, (
            f"supervisor RSS grew from {start.rss_kb} KiB to {end.rss_kb} KiB "
            f"(rest points: {[p.rss_kb for p in rest_points]})"
        )
        # Past the first fifth of the run, when caches and arenas have filled, the supervisor
        # must be flat to within a megabyte: what a slow per-event leak would not manage.
        settled = rest_points[max(1, len(rest_points) // 5)]
        assert end.rss_kb - settled.rss_kb <= 1024 + 32 * (SOAK // 1000), (
            f"supervisor RSS kept growing after the warm-up: {[p.rss_kb for p in rest_points]}"
        )
        assert figures.recoveries and max(figures.recoveries) < 10


@pytest.mark.timeout(60)
def test_a_timeout_report_posted_past_the_deadline_is_still_the_events_one_answer(emulator, tmp_path):
    """Tried: hang and busy events whose timeout report the API holds (a delay on /error)
    until past their deadline, as a loaded machine can delay it, between quick events. The
    runtime posts the report once and it is refused with 410; the caller gets the
    platform's Sandbox.Timedout. The soak's judge takes that as the event's one answer
    instead of waiting for an accepted post that can never come."""
    rng = random.Random(SEED)
    planned = [plan_event(kind, n, rng) for n, kind in enumerate(["ok", "hang", "raise", "busy", "ok"])]
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        for item in planned:
            if item.timeout == DEADLINE_TIMEOUT:
                emulator.inject_fault("error", "delay", delay=1.0)
            submit(emulator, [item])
            assert wait_until(lambda: bool(item.invocation.accepted or item.invocation.rejected), 30)  # noqa: B023
        complaints = verify_exactly_once(emulator, planned, 15)
        replacements = worker_replacements(runtime)
    assert complaints == []
    for item in planned:
        assert item.invocation is not None
        if item.timeout == DEADLINE_TIMEOUT:
            assert [(o.status, o.error_type) for o in item.invocation.rejected] == [(410, "Sandbox.Timedout")]
            assert [(o.status, o.error_type) for o in item.invocation.accepted] == [(0, "Sandbox.Timedout")]
        else:
            assert item.invocation.rejected == []
            assert [o.status for o in item.invocation.accepted] == [202]
    assert sum(answer_posts(emulator).values()) == len(planned)
    assert [r["reason"] for r in replacements] == ["worker killed at deadline"] * 2


@pytest.mark.timeout(30)
def test_the_judge_of_late_answers_takes_only_one_late_timeout_report(emulator, http_conn):
    """Tried: a runtime spoken by hand over HTTP that answers four events past their deadline:
    a timeout report once (the one the judge takes), a response, nothing at all, and a
    timeout report twice. Each of the last three is a complaint, as it was before late
    timeout reports were taken."""
    emulator.invoke_grace = 0.1
    rng = random.Random(SEED)
    planned = [plan_event(kind, n, rng) for n, kind in enumerate(["hang", "ok", "hang", "hang"])]
    for item in planned:
        item.timeout = 0.3
    submit(emulator, planned)
    for item, posts in zip(planned, [1, 1, 0, 2], strict=True):
        assert item.invocation is not None
        http_conn.request("GET", "/2018-06-01/runtime/invocation/next")
        http_conn.getresponse().read()
        assert wait_until(item.invocation.deadline_passed, 5)
        request_id = item.invocation.request_id
        if item.kind == "ok":
            path, body, headers = "response", json.dumps({"n": item.n, "pid": 1}).encode(), {}
        else:
            report = errors.timeout_error(item.timeout, request_id)
            path, body = "error", errors.encode(report)
            headers = {"Lambda-Runtime-Function-Error-Type": report["errorType"]}
        for _ in range(posts):
            http_conn.request(
                "POST", f"/2018-06-01/runtime/invocation/{request_id}/{path}", body=body, headers=headers
            )
            response = http_conn.getresponse()
            response.read()
            assert response.status == 410
    complaints = verify_exactly_once(emulator, planned, 1.0)
    assert [c.split(":")[0] for c in complaints] == ["#1 ok", "#2 hang", "#3 hang"]
    assert complaints[:2] == ["#1 ok: no answer within 1.0s", "#2 hang: no answer within 1.0s"]
    assert complaints[2].startswith("#3 hang: answered by the emulator, not the runtime")
    assert [o.status for o in planned[0].invocation.rejected] == [410]  # type: ignore[union-attr]


def _signal_supervisor(runtime, signum: int = signal.SIGTERM) -> None:
    """Signal the supervisor once it handles the signal (not during its first imports)."""
    assert runtime.pid is not None
    assert wait_until(lambda: catches_signal(runtime.pid, signum), 30), "no handler for the signal"
    os.kill(runtime.pid, signum)


def _sigterm_and_expect_a_prompt_clean_exit(runtime, sid: int) -> None:
    """SIGTERM to the supervisor: it exits 0 within PROMPT_EXIT, and its session empties."""
    _signal_supervisor(runtime)
    started = time.monotonic()
    exited = wait_until(lambda: runtime.returncode is not None, PROMPT_EXIT, 0.05)
    waited = time.monotonic() - started
    assert exited, f"supervisor still running {waited:.1f} s after SIGTERM:\n{runtime.output()[-2000:]}"
    assert runtime.returncode == 0
    assert wait_until(lambda: not session_procs(sid), 10), session_procs(sid)


def _expected_restarts(kinds: list[str], every: int) -> int:
    """Replacements when a worker is recycled after ``every`` invocations it survived and
    replaced whenever it dies, hangs or breaks the protocol (its count starting afresh)."""
    restarts = served = 0
    for kind in kinds:
        if kind in REPLACING:
            restarts += 1
            served = 0
            continue
        served += 1
        if served >= every:
            restarts += 1
            served = 0
    return restarts


RECYCLE_MIX = ["ok", "ok", "ok", "raise", "exit", "segfault", "bad_json", "child", "zombie", "thread", "big"]


@pytest.mark.timeout(300)
def test_recycling_after_n_invocations_in_a_random_mix_loses_nothing(emulator, tmp_path, report):
    """Tried: 1200 events of a random mix (results, exceptions, deaths, bad JSON, children,
    zombies and threads left behind) with LAMBDA_SUPERVISOR_MAX_INVOCATIONS=7, so that
    recycling and crash replacements interleave in every order."""
    every = 7
    rng = random.Random(SEED + 7)
    figures = report.run(f"recycling every {every} invocations, random mix", seed=SEED + 7)
    started = time.monotonic()
    env = {**ENV, "LAMBDA_SUPERVISOR_MAX_INVOCATIONS": str(every)}
    planned = [plan_event(rng.choice(RECYCLE_MIX), n, rng) for n in range(1200)]
    complaints: list[str] = []
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        start = snapshot_at_rest(emulator, runtime)
        for offset in range(0, len(planned), BATCH):
            _run_batch(emulator, planned[offset : offset + BATCH], figures, complaints)
            figures.recoveries.extend(recovery_times(planned[offset : offset + BATCH]))
        end = snapshot_at_rest(emulator, runtime)
        starts = worker_replacements(runtime)
        leftovers = wait_until(lambda: not _no_leftovers(runtime), 15)
        left = _no_leftovers(runtime)
    figures.worker_restarts = len(starts)
    figures.fds_start, figures.fds_end = start.fd_count, end.fd_count
    figures.rss_start_kb, figures.rss_end_kb, figures.rss_max_kb = start.rss_kb, end.rss_kb, end.rss_kb
    figures.duration_s = time.monotonic() - started
    assert not complaints, "\n".join(complaints[:30])
    assert sum(answer_posts(emulator).values()) == len(planned)
    recycled = [r for r in starts if str(r.get("reason", "")).startswith("recycled")]
    figures.notes.append(f"{len(recycled)} recycles, {len(starts) - len(recycled)} crash replacements")
    assert {r["reason"] for r in recycled} == {f"recycled after {every} invocations"}
    assert len(starts) == _expected_restarts([p.kind for p in planned], every)
    assert leftovers, f"processes left in the runtime's session: {left}"
    assert end.fd_count == start.fd_count, (start.fds, end.fds)


@pytest.mark.timeout(300)
def test_recycling_above_an_rss_threshold_in_a_random_mix_loses_nothing(emulator, tmp_path, report):
    """Tried: 400 events where about one in three keeps 10 MiB for good, mixed with results,
    exceptions and deaths, with LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB=60."""
    rng = random.Random(SEED + 8)
    figures = report.run("recycling above 60 MiB worker RSS, random mix", seed=SEED + 8)
    started = time.monotonic()
    env = {**ENV, "LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB": "60"}
    planned: list[Planned] = []
    for n in range(400):
        if rng.random() < 0.35:
            planned.append(_planned("hog", n, _a_response, mb=10))
        else:
            planned.append(
                plan_event(rng.choice(["ok", "ok", "ok", "ok", "raise", "bad_json", "exit"]), n, rng)
            )
    complaints: list[str] = []
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        _run_batch(emulator, planned, figures, complaints)
        starts = worker_replacements(runtime)
        served = invoke(emulator, {"do": "ok", "n": -1})
    figures.worker_restarts = len(starts)
    figures.duration_s = time.monotonic() - started
    assert not complaints, "\n".join(complaints[:30])
    assert served.kind == "response"
    held = [p.invocation.accepted[0].json()["held_mb"] for p in planned if p.kind == "hog" and p.invocation]
    recycled = [r for r in starts if str(r.get("reason", "")).startswith("recycled at")]
    figures.notes.append(f"{len(recycled)} RSS recycles; most held by one worker: {max(held)} MiB")
    assert recycled, "no worker was ever recycled for its size"
    # A worker never keeps growing past the threshold by more than one event's worth.
    assert max(held) <= 70, held


@pytest.mark.timeout(300)
def test_runaway_allocations_in_a_mix_are_out_of_memory_errors(emulator, tmp_path, report):
    """Tried: 120 events where one in six allocates without bound, mixed with results,
    exceptions and deaths, with LAMBDA_SUPERVISOR_WORKER_MEMORY_MB=256."""
    rng = random.Random(SEED + 9)
    figures = report.run("runaway allocations under a 256 MB worker limit", seed=SEED + 9)
    started = time.monotonic()
    env = {**ENV, "LAMBDA_SUPERVISOR_WORKER_MEMORY_MB": "256"}
    planned: list[Planned] = []
    for n in range(120):
        if n % 6 == 3:
            planned.append(_planned("runaway", n, _out_of_memory))
        else:
            planned.append(plan_event(rng.choice(["ok", "ok", "raise", "exit", "big"]), n, rng))
    complaints: list[str] = []
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=env) as runtime:
        # Warm-up: a death makes the supervisor log, so its logging library is loaded, and
        # the long poll after that answer loads urllib3 (done once a second event is
        # served): neither is taken for growth.
        _run_batch(emulator, [plan_event("exit", -1, rng), plan_event("ok", -2, rng)], figures, complaints)
        start = snapshot_at_rest(emulator, runtime)
        _run_batch(emulator, planned, figures, complaints)
        end = snapshot_at_rest(emulator, runtime)
        assert runtime.running
    figures.rss_start_kb, figures.rss_end_kb, figures.rss_max_kb = start.rss_kb, end.rss_kb, end.rss_kb
    figures.duration_s = time.monotonic() - started
    assert not complaints, "\n".join(complaints[:30])
    assert end.rss_kb - start.rss_kb <= RSS_SLACK_KB


def _a_response(outcome) -> str | None:
    return None if outcome.kind == "response" else f"expected a response, got {outcome!r}"


def _out_of_memory(outcome) -> str | None:
    if outcome.kind != "error" or outcome.error_type != "Runtime.OutOfMemory":
        return f"expected Runtime.OutOfMemory, got {outcome!r}"
    return None


SHUTDOWN_MIX = ["ok", "ok", "raise", "exit", "segfault", "bad_json", "child", "thread", "sleep_ok", "hang"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigterm_in_the_middle_of_a_stream(emulator, tmp_path, report, seed):
    """Tried: SIGTERM to the supervisor after a random number of answers, while a queue of
    mixed events (results, exceptions, deaths, slow handlers, handlers past their deadline)
    is being served. Every event handed out must be finished or reported, none twice, the
    worker's SIGTERM hook must run, and the supervisor must exit 0 leaving nothing behind."""
    rng = random.Random(seed)
    figures = report.run("SIGTERM mid-stream", seed=seed)
    began = time.monotonic()
    hook_file = tmp_path / "hook.txt"
    env = {**ENV, "CHAOS_HOOK_FILE": str(hook_file)}
    planned = [plan_event(rng.choice(SHUTDOWN_MIX), n, rng) for n in range(150)]
    for item in planned:
        if item.kind == "hang":
            item.timeout = 3.0
    with running_runtime(
        emulator, tmp_path / "task", handler_files("chaos_app"), HANDLER, env=env
    ) as runtime:
        sid = runtime.pid
        submit(emulator, planned)
        stop_after = rng.randrange(5, 60)
        assert wait_until(lambda: sum(bool(p.invocation.accepted) for p in planned) >= stop_after, 60)
        _signal_supervisor(runtime)
        started = time.monotonic()
        exit_code = runtime.wait(30)
        figures.notes.append(
            f"SIGTERM after {stop_after}+ answers; exit {exit_code} in {time.monotonic() - started:.2f} s"
        )
        leftovers = wait_until(lambda: not session_procs(sid), 10)
    handed = [p for p in planned if p.invocation is not None and p.invocation.handed_out.is_set()]
    complaints = []
    for item in handed:
        assert item.invocation is not None
        outcomes = emulator.outcomes(item.invocation.request_id)
        refused = item.invocation.rejected
        if not outcomes and one_late_timeout(refused) and not item.check(refused[0]):
            # Its one timeout report came after the deadline and was refused, as on Lambda,
            # where the platform's own timeout answers the caller (``chaos_support.answer``).
            continue
        if len(outcomes) != 1 or refused:
            complaints.append(
                f"#{item.n} {item.kind}: accepted {outcomes}, refused {item.invocation.rejected}"
            )
        elif item.check(outcomes[0]) and outcomes[0].error_type != "Runtime.ExitError":
            # Cut short by the shutdown, an event may be reported as a death instead.
            complaints.append(f"#{item.n} {item.kind}: {item.check(outcomes[0])}")
    figures.invocations = len(handed)
    figures.duration_s = time.monotonic() - began
    for item in handed:
        assert item.invocation is not None
        for outcome in item.invocation.accepted[:1]:
            figures.outcomes[outcome_label(outcome)] += 1
    assert not complaints, "\n".join(complaints)
    assert exit_code == 0
    assert leftovers, session_procs(sid)
    assert hook_file.exists() and hook_file.read_text().strip(), "the worker's SIGTERM hook never ran"
    not_handed = [p for p in planned if p.invocation is not None and not p.invocation.handed_out.is_set()]
    assert all(not p.invocation.accepted for p in not_handed)  # type: ignore[union-attr]


# Lambda sends SIGKILL 500 ms to 2 s after SIGTERM; anything much slower than the
# supervisor's own grace period means it is killed instead of exiting cleanly.
PROMPT_EXIT = 10.0


@pytest.mark.timeout(60)
def test_sigterm_while_a_replacement_worker_hangs_in_init(emulator, tmp_path):
    """Tried: a handler that dies after arranging for the next worker's init to hang (a stuck
    import), then SIGTERM while the supervisor waits for that replacement to be ready."""
    marker = tmp_path / "init-hangs"
    env = {**ENV, "CHAOS_INIT_HANGS_IF": str(marker)}
    with running_runtime(
        emulator, tmp_path / "task", handler_files("chaos_app"), HANDLER, env=env
    ) as runtime:
        sid = runtime.pid
        outcome = emulator.submit({"do": "hang_next_init", "n": 1}, timeout=30).result(30)
        assert outcome.error_type == "Runtime.ExitError"
        assert wait_until(lambda: (tmp_path / "init-hangs.hanging").exists(), 30)
        _sigterm_and_expect_a_prompt_clean_exit(runtime, sid)


@pytest.mark.timeout(60)
def test_sigterm_while_the_first_worker_hangs_in_init(emulator, tmp_path):
    """Tried: a function whose init never finishes (the first worker's import hangs), and
    SIGTERM to the supervisor while it waits for that worker."""
    marker = tmp_path / "init-hangs"
    marker.touch()
    env = {**ENV, "CHAOS_INIT_HANGS_IF": str(marker)}
    with running_runtime(
        emulator, tmp_path / "task", handler_files("chaos_app"), HANDLER, env=env, wait_ready=False
    ) as runtime:
        sid = runtime.pid
        assert wait_until(lambda: (tmp_path / "init-hangs.hanging").exists(), 30)
        _sigterm_and_expect_a_prompt_clean_exit(runtime, sid)


@pytest.mark.timeout(90)
def test_sigterm_while_a_post_is_retried_against_a_vanished_api(emulator, tmp_path):
    """Tried: the Runtime API goes away while a handler runs, so the result post is being
    retried (connection refused) when SIGTERM arrives. The answer cannot be delivered;
    retrying it for the rest of the 30 s window only gets the supervisor SIGKILLed."""
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        sid = runtime.pid
        invocation = emulator.submit({"do": "sleep_ok", "n": 1, "seconds": 0.3}, timeout=60)
        assert invocation.handed_out.wait(30)
        emulator.stop()
        assert runtime.wait_for_json(lambda r: r.get("message") == "runtime API post failed, retrying", 30)
        _sigterm_and_expect_a_prompt_clean_exit(runtime, sid)


@pytest.mark.timeout(60)
def test_sigkill_to_the_supervisor_leaves_nothing_of_the_runtime_running(emulator, tmp_path):
    """Tried: SIGKILL to the supervisor (no chance to clean up) after handlers left a child
    process, a zombie and a thread behind in the current worker. The worker dies with the
    supervisor; what the handler forked must not outlive them either."""
    with running_runtime(emulator, tmp_path, handler_files("chaos_app"), HANDLER, env=ENV) as runtime:
        sid = runtime.pid
        for kind in ("child", "zombie", "thread", "child"):
            assert invoke(emulator, {"do": kind, "n": 1}).kind == "response"
        assert sid is not None
        os.kill(sid, signal.SIGKILL)
        assert runtime.wait(10) == -signal.SIGKILL
        survivors = wait_until(lambda: not session_procs(sid), 10)
        left = session_procs(sid)
        for proc in left:  # do not leave them running after the test either
            os.kill(proc.pid, signal.SIGKILL)
        assert survivors, f"still running after the supervisor was killed: {left}"
