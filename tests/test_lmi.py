"""Lambda Managed Instances: ``AWS_LAMBDA_MAX_CONCURRENCY=N`` runs N slots, each with every
guarantee of the one-slot runtime on its own clock, and ``LAMBDA_SUPERVISOR_PRELOAD=1``
initialises the function once for all of them.

Everything runs the real runtime (bin/bootstrap) against the project's emulator, whose
Runtime API serves N long polls at once; ``serve --concurrency`` runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from chaos_support import worker_replacements
from http_support import INVOKE_PATH, post
from local_support import ServeProcess, run_cli
from proc_support import catches_signal, children_of, session_procs, wait_until
from runtime_harness import STARTUP_TIMEOUT, copy_handler, handler_files, only_answer, running_runtime

from lambda_supervisor.emulator import RuntimeAPIEmulator
from lambda_supervisor.process import RuntimeProcess
from lambda_supervisor.testing import lambda_invoke
from supervisor.fork_server import SERVER_NAME
from supervisor.keeper import KEEPER_NAME

CHAOS = "app.route"  # tests/handlers/chaos_app.py
APP = "app.route"  # tests/handlers/managed_instances_app.py
ONE_SECOND = {"do": "sleep_ok", "seconds": 1.0}


def lmi_env(slots: int | None, **extra: str) -> dict[str, str]:
    """The environment Lambda Managed Instances give a function that runs ``slots`` at once."""
    env = dict(extra)
    if slots is not None:
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(slots)
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "lambda-managed-instances"
    return env


@contextmanager
def slots_runtime(
    emulator: RuntimeAPIEmulator,
    tmp_path: Path,
    slots: int | None,
    files: dict[str, str] | None = None,
    **env: str,
) -> Iterator[RuntimeProcess]:
    """The runtime with ``slots`` slots, once every one of them polls /next."""
    files = files or handler_files("chaos_app")
    with running_runtime(emulator, tmp_path, files, CHAOS, env=lmi_env(slots, **env)) as runtime:
        assert emulator.wait_for_poll(STARTUP_TIMEOUT, count=slots or 1), runtime.output()
        yield runtime


def app_files() -> dict[str, str]:
    return handler_files("managed_instances_app")


def at_once(emulator: RuntimeAPIEmulator, events: list[dict], timeout: float = 30) -> tuple[float, list]:
    """Submit ``events`` together; the seconds until the last answer came, and the answers
    (each checked to be its invocation's one answer, from the runtime)."""
    started = time.monotonic()
    invocations = [emulator.submit({**event, "n": n}, timeout=timeout) for n, event in enumerate(events)]
    outcomes = [only_answer(emulator, invocation) for invocation in invocations]
    return max(o.received_at for o in outcomes) - started, outcomes


def capacity_is(emulator: RuntimeAPIEmulator, slots: int) -> set[int]:
    """Check that ``slots`` one-second invocations run at once; the pids that served them."""
    assert emulator.wait_for_poll(10, count=slots), "a slot never came back to /next"
    elapsed, outcomes = at_once(emulator, [ONE_SECOND] * slots)
    assert [o.kind for o in outcomes] == ["response"] * slots, outcomes
    assert elapsed < 1.7, f"{slots} one-second invocations took {elapsed:.2f} s"
    pids = {o.json()["pid"] for o in outcomes}
    assert len(pids) == slots
    return pids


# ----------------------------------------------------------------------------- concurrency


@pytest.mark.timeout(60)
def test_four_slots_serve_four_slow_invocations_in_the_time_of_one(emulator, tmp_path):
    """Tried: four 1 s invocations at once with AWS_LAMBDA_MAX_CONCURRENCY=4: four workers
    answer them side by side, over four connections, in about one second."""
    with slots_runtime(emulator, tmp_path, 4) as runtime:
        capacity_is(emulator, 4)
        supervisor = runtime.pid
        assert supervisor is not None
        # One fork server below the supervisor, the four workers below it.
        children = children_of(supervisor)
        assert [p.name for p in children] == [SERVER_NAME]
        assert len([p for p in children_of(children[0].pid) if p.state != "Z"]) == 4
        established = [
            link for link in os.listdir(f"/proc/{supervisor}/fd") if "socket" in _link(supervisor, link)
        ]
        assert len(established) >= 4


def _link(pid: int, fd: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.timeout(60)
def test_without_the_setting_the_runtime_is_the_one_slot_one(emulator, tmp_path):
    """Tried: two 1 s invocations at once without AWS_LAMBDA_MAX_CONCURRENCY: one worker,
    forked by the supervisor itself (no fork server, no threads), serves them in turn."""
    with slots_runtime(emulator, tmp_path, None) as runtime:
        elapsed, outcomes = at_once(emulator, [ONE_SECOND, ONE_SECOND])
        assert elapsed >= 1.9
        assert len({o.json()["pid"] for o in outcomes}) == 1
        assert runtime.pid is not None
        names = sorted(p.name for p in session_procs(runtime.pid) if p.pid != runtime.pid)
        assert SERVER_NAME not in names and KEEPER_NAME in names
        assert os.listdir(f"/proc/{runtime.pid}/task") == [str(runtime.pid)]


FAULTS = {
    "crash": ({"do": "exit", "code": 3}, 30.0, "Runtime.ExitError"),
    "hang": ({"do": "hang"}, 2.0, "Sandbox.Timedout"),
    "oversized": ({"do": "oversized", "size": 7_000_000}, 30.0, "Function.ResponseSizeTooLarge"),
    "marshal": ({"do": "unserialisable", "n": 0}, 30.0, "Runtime.MarshalError"),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_in_one_slot_is_reported_for_its_event_alone(emulator, tmp_path, fault):
    """Tried: one slot's event crashes its worker, hangs past its 2 s deadline, returns 7 MB
    or an unserialisable result, while nine 0.2 s events go to the three other slots: the
    fault is that event's answer alone, the nine are answered on time (before the hang's
    deadline), and afterwards four 1 s invocations run at once again."""
    event, timeout, error_type = FAULTS[fault]
    with slots_runtime(emulator, tmp_path, 4, LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS="100"):
        started = time.monotonic()
        faulty = emulator.submit(event, timeout=timeout)
        others = [emulator.submit({"do": "sleep_ok", "n": n, "seconds": 0.2}, timeout=5) for n in range(9)]
        answers = [only_answer(emulator, invocation) for invocation in others]
        assert [a.json()["n"] for a in answers] == list(range(9))
        assert max(a.received_at for a in answers) - started < 1.8
        outcome = only_answer(emulator, faulty)
        assert outcome.kind == "error" and outcome.json()["errorType"] == error_type == outcome.error_type
        assert outcome.json()["requestId"] == faulty.request_id
        capacity_is(emulator, 4)


@pytest.mark.timeout(90)
def test_every_slot_gets_its_worker_back_after_faults_in_all_of_them(emulator, tmp_path):
    """Tried: four faults at once (a crash, a hang, an oversized result, a marshal error) on
    four slots: four answers of the right kinds, the two workers that died or hung replaced
    (the others reported their own error and live on), then four 1 s invocations run at
    once again."""
    with slots_runtime(emulator, tmp_path, 4, LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS="100") as runtime:
        invocations = {
            name: emulator.submit(event, timeout=timeout) for name, (event, timeout, _) in FAULTS.items()
        }
        for name, invocation in invocations.items():
            outcome = only_answer(emulator, invocation)
            assert outcome.error_type == FAULTS[name][2]
        capacity_is(emulator, 4)
        assert len(worker_replacements(runtime)) == 2


# ---------------------------------------------------------------------------- init, shutdown


@pytest.mark.timeout(60)
def test_an_init_error_is_reported_once_and_the_runtime_exits_non_zero(emulator, tmp_path):
    """Tried: a function whose import raises, with four slots: four inits fail, one
    /init/error is posted, no /next is ever asked, and the runtime exits 1 leaving nothing."""
    env = lmi_env(4, FAIL_IMPORT="1")
    with running_runtime(emulator, tmp_path, app_files(), APP, env=env, wait_ready=False) as runtime:
        assert runtime.wait(20) == 1
        assert runtime.pid is not None
        assert wait_until(lambda: not session_procs(runtime.pid), 5), session_procs(runtime.pid)
    assert len(emulator.init_errors) == 1
    body = emulator.init_errors[0].json()
    assert "the function cannot start" in body["errorMessage"]
    assert emulator.first_poll_at is None


@pytest.mark.timeout(60)
def test_sigterm_lets_every_slot_finish_its_invocation_then_exits_0(emulator, tmp_path):
    """Tried: SIGTERM while four slots each run an invocation, three of 0.8 s and one of
    60 s: the three are answered with their results, the long one with an exit error within
    the shutdown grace, and the runtime exits 0 with no process left."""
    started_file = tmp_path / "started"
    with slots_runtime(emulator, tmp_path, 4, app_files()) as runtime:
        invocations = [
            emulator.submit({"do": "sleep", "n": n, "seconds": seconds, "started_file": str(started_file)})
            for n, seconds in enumerate((0.8, 0.8, 0.8, 60))
        ]
        assert wait_until(lambda: len(list(tmp_path.glob("started.*"))) == 4, 10)
        signalled = time.monotonic()
        assert runtime.pid is not None
        os.kill(runtime.pid, signal.SIGTERM)
        outcomes = [only_answer(emulator, invocation, 10) for invocation in invocations]
        assert runtime.wait(10) == 0
        assert time.monotonic() - signalled < 4
        assert wait_until(lambda: not session_procs(runtime.pid), 5), session_procs(runtime.pid)
    assert [o.kind for o in outcomes] == ["response"] * 3 + ["error"]
    assert outcomes[3].error_type == "Runtime.ExitError"


@pytest.mark.timeout(60)
def test_sigterm_during_the_inits_stops_every_worker_and_exits_0(emulator, tmp_path):
    """Tried: SIGTERM while the four slots' first workers are all stuck in init: each gets
    the grace period and is killed, no /next is asked, and the runtime exits 0 promptly
    with nothing left running."""
    hang_if = tmp_path / "hang"
    hang_if.touch()
    env = lmi_env(4, CHAOS_INIT_HANGS_IF=str(hang_if))
    files = handler_files("chaos_app")
    with running_runtime(emulator, tmp_path, files, CHAOS, env=env, wait_ready=False) as runtime:
        assert runtime.pid is not None
        assert wait_until(lambda: catches_signal(runtime.pid, signal.SIGTERM), 20)
        hanging = tmp_path / "hang.hanging"
        assert wait_until(lambda: hanging.exists(), 20)
        signalled = time.monotonic()
        os.kill(runtime.pid, signal.SIGTERM)
        assert runtime.wait(10) == 0
        assert time.monotonic() - signalled < 5
        assert wait_until(lambda: not session_procs(runtime.pid), 5), session_procs(runtime.pid)
    assert emulator.first_poll_at is None and emulator.init_errors == []


@pytest.mark.timeout(60)
def test_a_killed_supervisor_takes_every_worker_down_with_it(emulator, tmp_path):
    """Tried: SIGKILL to the supervisor of four slots busy with 60 s invocations: the fork
    server sees it go and kills the workers and itself, so nothing is left running."""
    started_file = tmp_path / "started"
    with slots_runtime(emulator, tmp_path, 4, app_files()) as runtime:
        for n in range(4):
            emulator.submit({"do": "sleep", "n": n, "seconds": 60, "started_file": str(started_file)})
        assert wait_until(lambda: len(list(tmp_path.glob("started.*"))) == 4, 10)
        assert runtime.pid is not None
        os.kill(runtime.pid, signal.SIGKILL)
        assert wait_until(lambda: not session_procs(runtime.pid), 10), session_procs(runtime.pid)


# ----------------------------------------------------------------------------------- preload


@pytest.mark.timeout(60)
@pytest.mark.parametrize("preload", [True, False])
def test_preload_imports_the_function_once_for_every_worker(emulator, tmp_path, preload):
    """Tried: four slots, with and without LAMBDA_SUPERVISOR_PRELOAD, before and after one
    worker is replaced. Preloaded, every worker (the replacement too) reports the same
    importing process, not itself, and the module was imported once; without preload each
    worker imported it itself."""
    notes = tmp_path / "notes"
    env = {"NOTES_FILE": str(notes), "LAMBDA_SUPERVISOR_PRELOAD": "1" if preload else ""}
    with slots_runtime(emulator, tmp_path, 4, app_files(), **env):
        first = _four_workers(emulator)
        crash = only_answer(emulator, emulator.submit({"do": "exit"}))
        assert crash.error_type == "Runtime.ExitError"
        assert emulator.wait_for_poll(10, count=4)
        second = _four_workers(emulator)
    workers = first | second
    assert len(workers) == 5
    assert {report["imports"] for report in workers.values()} == {1}
    importers = {report["imported_in"] for report in workers.values()}
    imports = notes.read_text().splitlines()
    if preload:
        assert len(importers) == 1 and not importers & workers.keys()
        assert imports == [f"import {importers.pop()}"]
    else:
        assert all(pid == report["imported_in"] for pid, report in workers.items())
        assert sorted(imports) == sorted(f"import {pid}" for pid in workers)


def _four_workers(emulator: RuntimeAPIEmulator) -> dict[int, dict]:
    """What each of the four workers says of itself, by pid (four 0.5 s events at once)."""
    _, outcomes = at_once(emulator, [{"do": "sleep", "seconds": 0.5}] * 4)
    reports = {o.json()["pid"]: o.json() for o in outcomes}
    assert len(reports) == 4
    return reports


@pytest.mark.timeout(60)
def test_preload_runs_before_snapshot_once_and_after_restore_in_every_worker(emulator, tmp_path):
    """Tried: a preloaded function with snapshot_restore_py hooks, two slots, one worker
    replaced: the import and the before-snapshot hook run once, in the fork server, before
    any worker; the after-restore hook runs in each worker, the replacement included."""
    notes = tmp_path / "notes"
    env = {"NOTES_FILE": str(notes), "LAMBDA_SUPERVISOR_PRELOAD": "1", "HOOKS": "1"}
    with slots_runtime(emulator, tmp_path, 2, app_files(), **env):
        assert only_answer(emulator, emulator.submit({"do": "exit"})).error_type == "Runtime.ExitError"
        assert emulator.wait_for_poll(10, count=2)
        replacement = wait_until(lambda: len(notes.read_text().splitlines()) == 5, 5)
        assert replacement, notes.read_text()
    lines = [line.split() for line in notes.read_text().splitlines()]
    server = lines[0][1]
    assert lines[:2] == [["import", server], ["before_snapshot", server]]
    restored = [pid for what, pid in lines[2:] if what == "after_restore"]
    assert len(restored) == 3 and len(set(restored)) == 3 and server not in restored


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("env", "error_type", "message"),
    [
        ({"FAIL_IMPORT": "1"}, None, "the function cannot start"),
        ({"FAIL_HOOK": "before_snapshot"}, "Runtime.BeforeSnapshotError", "cannot prepare the snapshot"),
        ({"FAIL_HOOK": "after_restore"}, "Runtime.AfterRestoreError", "cannot reconnect"),
    ],
    ids=["import", "before_snapshot", "after_restore"],
)
def test_a_preload_init_error_is_reported_once_and_the_runtime_exits(
    emulator, tmp_path, env, error_type, message
):
    """Tried: a preloaded function (two slots) whose import, before-snapshot hook or
    after-restore hook raises: one /init/error (under the phase's error type for a hook,
    the exception's own type in the body), no /next, exit status 1, nothing left."""
    env = lmi_env(2, LAMBDA_SUPERVISOR_PRELOAD="1", HOOKS="1", **env)
    with running_runtime(emulator, tmp_path, app_files(), APP, env=env, wait_ready=False) as runtime:
        assert runtime.wait(20) == 1
        assert runtime.pid is not None
        assert wait_until(lambda: not session_procs(runtime.pid), 5), session_procs(runtime.pid)
    assert len(emulator.init_errors) == 1
    posted = emulator.init_errors[0]
    assert message in posted.json()["errorMessage"]
    if error_type is not None:
        assert posted.error_type == error_type
        assert posted.json()["errorType"] == "ValueError"
    assert emulator.first_poll_at is None


@pytest.mark.timeout(60)
def test_preload_with_one_slot_replaces_a_worker_from_the_preloaded_state(emulator, tmp_path):
    """Tried: LAMBDA_SUPERVISOR_PRELOAD=1 without AWS_LAMBDA_MAX_CONCURRENCY: one slot,
    whose worker and its replacement after a crash were both forked from the one import."""
    notes = tmp_path / "notes"
    with slots_runtime(
        emulator, tmp_path, None, app_files(), NOTES_FILE=str(notes), LAMBDA_SUPERVISOR_PRELOAD="1"
    ):
        first = only_answer(emulator, emulator.submit({"do": "who"})).json()
        assert only_answer(emulator, emulator.submit({"do": "exit"})).error_type == "Runtime.ExitError"
        second = only_answer(emulator, emulator.submit({"do": "who"})).json()
    assert first["pid"] != second["pid"]
    assert first["imported_in"] == second["imported_in"] not in (first["pid"], second["pid"])
    assert notes.read_text() == f"import {first['imported_in']}\n"


@pytest.mark.timeout(60)
def test_what_a_preloaded_function_prints_at_import_goes_out_whole(emulator, tmp_path):
    """Tried: a preloaded function of two slots that prints a line of 10,000 bytes at
    import, in the fork server: the line reaches the output whole and the slots serve."""
    said = "y" * 10_000
    with slots_runtime(
        emulator, tmp_path, 2, app_files(), LAMBDA_SUPERVISOR_PRELOAD="1", SAY_AT_IMPORT=said
    ) as runtime:
        capacity_is(emulator, 2)
        importer = only_answer(emulator, emulator.submit({"do": "who"})).json()["imported_in"]
        assert f"imported in {importer} {said}" in runtime.output().splitlines()


# --------------------------------------------------------------------------------------- logs

_PRINTED = re.compile(r"([0-9a-f-]{36}) (\d+) (x+|stderr)")


@pytest.mark.timeout(60)
def test_lines_of_concurrent_workers_never_mix_and_records_name_their_invocation(emulator, tmp_path):
    """Tried: four workers at once each print 40 lines of 20,000 bytes (far past what a pipe
    write keeps whole), 40 lines on stderr and 40 log records: every line of the shared
    output is whole, and every record carries the requestId of the invocation that wrote it."""
    lines, width = 40, 20_000
    with slots_runtime(emulator, tmp_path, 4, app_files()) as runtime:
        _, outcomes = at_once(emulator, [{"do": "chatter", "lines": lines, "width": width}] * 4)
        request_ids = {o.request_id for o in outcomes}
        assert len({o.json()["pid"] for o in outcomes}) == 4
        output = runtime.output().splitlines()
    printed: dict[tuple[str, str], int] = {}
    records: dict[str, int] = {}
    for line in output:
        if line.startswith("{"):
            record = json.loads(line)  # a mixed line would not parse
            if record.get("logger") == "app":
                assert record["message"].endswith(f" of {record['requestId']}"), record
                records[record["requestId"]] = records.get(record["requestId"], 0) + 1
            continue
        match = _PRINTED.fullmatch(line)
        assert match, f"a mixed line: {line[:120]!r}... ({len(line)} chars)"
        stream = "stderr" if match.group(3) == "stderr" else "stdout"
        if stream == "stdout":
            assert len(match.group(3)) == width
        printed[match.group(1), stream] = printed.get((match.group(1), stream), 0) + 1
    assert records == dict.fromkeys(request_ids, lines)
    assert printed == {(rid, stream): lines for rid in request_ids for stream in ("stdout", "stderr")}


@pytest.mark.timeout(60)
def test_each_worker_writes_to_connections_of_its_own_from_the_fd_provider_socket(emulator, tmp_path):
    """Tried: _LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET names a Unix socket; two workers print
    and log: each connects twice (stdout, stderr), its lines arrive there, whole, and none
    on the runtime's own output."""
    path = str(tmp_path / "fd-provider.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    received: list[tuple[int, list[bytes]]] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            chunks: list[bytes] = []
            received.append((pid, chunks))
            threading.Thread(
                target=lambda c=conn, k=chunks: k.extend(iter(lambda: c.recv(65536), b"")), daemon=True
            ).start()

    threading.Thread(target=accept, daemon=True).start()
    env = {"_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": path}
    try:
        with slots_runtime(emulator, tmp_path, 2, app_files(), **env) as runtime:
            _, outcomes = at_once(emulator, [{"do": "chatter", "lines": 3, "width": 10}] * 2)
            pids = {o.json()["pid"] for o in outcomes}
            ids = {o.request_id for o in outcomes}
            # The lines are written before the answers go out; the bound is for this test's
            # own reader threads, which a machine running the whole suite can starve.
            arrived = wait_until(lambda: _provider_lines(received, pids) == _expected(ids, 3), 20)
            assert arrived, (pids, [(pid, b"".join(chunks)[:2000]) for pid, chunks in list(received)])
            output = runtime.output()
    finally:
        listener.close()
    for request_id in ids:
        assert request_id not in output
    assert sorted(pid for pid, _ in received if pid in pids) == sorted([*pids, *pids])


def _read_all(conn: socket.socket, chunks: list[bytes]) -> None:
    with conn:
        chunks.extend(iter(lambda: conn.recv(65536), b""))


def _provider_lines(received: list[tuple[int, list[bytes]]], pids: set[int]) -> list[tuple[int, str]]:
    """Each connection of the given workers: (how many, and which kind of, lines it got)."""
    kinds = []
    for pid, chunks in list(received):
        if pid not in pids:
            continue
        lines = b"".join(chunks).decode().splitlines()
        records = [line for line in lines if line.startswith("{") and '"logger":"app"' in line]
        printed = [line for line in lines if _PRINTED.fullmatch(line)]
        kinds.append((len(records) + len(printed), "stdout" if records else "stderr"))
    return sorted(kinds)


def _expected(request_ids: set[str], lines: int) -> list[tuple[int, str]]:
    return sorted([(2 * lines, "stdout"), (lines, "stderr")] * len(request_ids))


@pytest.mark.timeout(60)
def test_workers_share_the_common_standard_modules_the_fork_server_loaded(emulator, tmp_path):
    """Tried: two slots, a function that imports uuid: in each worker http.client (one of
    ``worker.child.COMMON_MODULES``) is loaded before the function's import, so the workers
    share the server's copy, and uuid is the standard library's."""
    with slots_runtime(emulator, tmp_path, 2, handler_files("report_common_modules")):
        _, outcomes = at_once(emulator, [{}, {}])
    answers = [o.json() for o in outcomes]
    assert len({a["pid"] for a in answers}) == 2
    assert [(a["loaded_before_import"], a["uuid_is_the_functions"]) for a in answers] == [(True, False)] * 2


@pytest.mark.timeout(60)
def test_a_function_module_named_like_a_common_one_is_the_one_it_imports(emulator, tmp_path):
    """Tried: two slots, a function with a uuid.py of its own in its code root, which its
    ``import uuid`` finds before the standard library's, as on AWS's runtime. Every worker
    forgets the modules the fork server loaded for it (http.client is not loaded before the
    function's import) and the function gets its own uuid."""
    files = {**handler_files("report_common_modules"), "uuid.py": "THE_FUNCTIONS = True\n"}
    with slots_runtime(emulator, tmp_path, 2, files):
        _, outcomes = at_once(emulator, [{}, {}])
    answers = [o.json() for o in outcomes]
    assert len({a["pid"] for a in answers}) == 2
    assert [(a["loaded_before_import"], a["uuid_is_the_functions"]) for a in answers] == [(False, True)] * 2


# -------------------------------------------------------------------------------------- serve


def _post_all(server: ServeProcess, events: list[dict]) -> tuple[float, list[tuple[int, dict, bytes]]]:
    answers: list = [None] * len(events)

    def call(index: int) -> None:
        answers[index] = post(
            server.host, server.port, INVOKE_PATH, json.dumps(events[index]).encode(), timeout=20
        )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(events))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return time.monotonic() - started, answers


def _statuses(answers: list[tuple[int, dict, bytes]]) -> list[int]:
    return sorted(status for status, _, _ in answers)


@pytest.mark.timeout(90)
def test_serve_with_concurrency_runs_n_at_once_and_queues_the_rest(tmp_path):
    """Tried: ``serve --concurrency 2`` and four 1 s calls at once: all four succeed, two at
    a time on two workers (about 2 s), the callers beyond two waiting their turn."""
    app = copy_handler(tmp_path, "managed_instances_app")
    with ServeProcess(f"{app}:route", "--concurrency", "2", "--timeout", "30") as server:
        _post_all(server, [{"do": "who"}])
        elapsed, answers = _post_all(server, [{"do": "sleep", "seconds": 1.0}] * 4)
    assert [status for status, _, _ in answers] == [200] * 4
    assert len({json.loads(body)["pid"] for _, _, body in answers}) == 2
    assert 1.9 <= elapsed < 3.5


@pytest.mark.timeout(90)
def test_serve_refuse_when_busy_turns_away_a_call_no_slot_is_free_for(tmp_path):
    """Tried: ``serve --concurrency 2 --refuse-when-busy`` and three 1 s calls at once: two
    succeed, the third is refused at once with 400 Runtime.Unavailable, as the platform does."""
    app = copy_handler(tmp_path, "managed_instances_app")
    with ServeProcess(
        f"{app}:route", "--concurrency", "2", "--refuse-when-busy", "--timeout", "30"
    ) as server:
        # Both slots have served and are back in /next.
        assert wait_until(lambda: _statuses(_post_all(server, [{"do": "who"}] * 2)[1]) == [200, 200], 20)
        time.sleep(0.5)
        _, answers = _post_all(server, [{"do": "sleep", "seconds": 1.0}] * 3)
    assert _statuses(answers) == [200, 200, 400]
    refused = next(answer for answer in answers if answer[0] == 400)
    assert refused[1]["x-amzn-errortype"] == "Runtime.Unavailable"


@pytest.mark.timeout(60)
def test_invoke_and_lambda_invoke_run_a_function_given_managed_instances_concurrency(tmp_path):
    """Tried: ``invoke --env AWS_LAMBDA_MAX_CONCURRENCY=3`` and ``lambda_invoke`` with the
    same variable: both answer the event as they do for one slot, with preload too."""
    app = copy_handler(tmp_path, "managed_instances_app")
    done = run_cli(
        "invoke", f"{app}:route", "--event", '{"do": "who"}', "--env", "AWS_LAMBDA_MAX_CONCURRENCY=3"
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["imports"] == 1 and answer["imported_in"] == answer["pid"]
    env = {"AWS_LAMBDA_MAX_CONCURRENCY": "3", "LAMBDA_SUPERVISOR_PRELOAD": "1"}
    preloaded = lambda_invoke(f"{app}:route", {"do": "who"}, env=env)
    assert preloaded["imports"] == 1 and preloaded["imported_in"] != preloaded["pid"]


# ----------------------------------------------------------------------------- streaming


@pytest.mark.timeout(60)
def test_streams_of_different_slots_proceed_independently(emulator, tmp_path):
    """Tried, with two slots: one slot streams 8 chunks 200 ms apart while the other yields
    once and then hangs past its 1 s deadline. Each chunk of the first reaches the API within
    100 ms of its yield, untouched by the other slot's kill; the hung stream ends with a
    Sandbox.Timedout trailer; afterwards both slots serve again."""
    env = lmi_env(2, LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS="100")
    files = handler_files("stream_every_way")
    with running_runtime(emulator, tmp_path, files, "app:route", env=env) as runtime:
        assert emulator.wait_for_poll(STARTUP_TIMEOUT, count=2), runtime.output()
        hung = emulator.submit({"do": "hang_after_first"}, timeout=1.0)
        timed = emulator.submit({"do": "timed_chunks", "count": 8, "interval": 0.2}, timeout=30)
        for invocation in (hung, timed):
            assert only_answer(emulator, invocation).kind == "response", runtime.output()
        assert hung.stream is not None and timed.stream is not None
        assert hung.stream.error_type == "Sandbox.Timedout", hung.stream.trailers
        assert [chunk.data for chunk in hung.stream.chunks] == [b"first"]
        yielded = [json.loads(chunk.data) for chunk in timed.stream.chunks]
        assert [chunk["index"] for chunk in yielded] == list(range(8))
        for chunk, sent in zip(timed.stream.chunks, yielded, strict=True):
            assert 0 <= chunk.received_at_epoch - sent["yielded_at"] < 0.1, (chunk, sent)
        assert timed.stream.error_type is None
        # The hung slot's stream ended at its deadline, while the other was still streaming.
        assert hung.stream.ended_at is not None
        assert hung.stream.ended_at < timed.stream.chunks[-1].received_at, "the kill waited on the other slot"
        assert emulator.wait_for_poll(10, count=2), "a slot never came back to /next"
        _, outcomes = at_once(emulator, [{"do": "ok"}, {"do": "ok"}])
        assert [o.kind for o in outcomes] == ["response", "response"], outcomes
