"""The local runner (``invoke`` and ``serve``) never wedges and stays bounded.

Everything here runs the CLI as a subprocess and talks real HTTP to ``serve``: an init
that never finishes, a server that answers thousands of calls or a flood of large async
events, an output line of 32 MB, log lines a handler forges, a console that went away,
and a runtime killed by a signal. Memory is read from ``/proc`` of the serving process.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import INVOKE_PATH, post
from local_support import REPO_ROOT, ServeProcess, announced_address, run_cli, start_serve
from proc_support import is_running, rss_kb, running_in_session, wait_until
from runtime_harness import copy_handler

from lambda_supervisor.testing import lambda_invoke

# What the runner keeps of a single output line: CloudWatch Logs' event size.
KEPT_LINE_BYTES = 256 * 1024


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_handler(tmp_path, "stress_local_runner")


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    """Serve processes started by a test, stopped (with their runtimes) whatever happened."""
    started: list[ServeProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


def call(server: ServeProcess, event: object, timeout: float = 20, **headers: str):
    """The event, as JSON, to ``server``'s Invoke API."""
    return post(server.host, server.port, INVOKE_PATH, json.dumps(event).encode(), headers, timeout)


# ----------------------------------------------------------------------------- init bound


@pytest.mark.timeout(60)
def test_serve_answers_an_init_that_never_finishes_then_starts_afresh(
    app: Path, servers: list[ServeProcess]
) -> None:
    """Tried: ``serve --init-timeout 2`` for a module whose first import sleeps for an hour.

    The caller gets ``Sandbox.Timedout`` once the init bound passes (not never), the hung
    runtime is stopped, and the next call runs on a fresh runtime whose import works.
    """
    server = ServeProcess(f"{app}:ok", "--init-timeout", "2", "--timeout", "30", "--env", "HANG_INIT=first")
    servers.append(server)
    started = time.monotonic()
    status, headers, body = call(server, {"n": 1})
    elapsed = time.monotonic() - started
    assert (status, headers.get("x-amz-function-error")) == (200, "Unhandled")
    assert json.loads(body) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Init timed out after 2.00 seconds",
    }
    assert elapsed < 10, elapsed
    hung_runtime = int((app.parent / "starts.txt").read_text().split()[0])
    assert wait_until(lambda: not is_running(hung_runtime), 10), "the runtime whose init timed out lives on"

    status, headers, body = call(server, {"n": 2})
    assert status == 200 and "x-amz-function-error" not in headers, body
    assert json.loads(body) == {"n": 2, "starts": 2}
    server.stop()
    assert re.search(
        r"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: timeout", server.stderr()
    )


@pytest.mark.timeout(60)
def test_invoke_bounds_init_at_lambdas_10_seconds_by_default(app: Path) -> None:
    """Tried: ``invoke`` without ``--init-timeout`` for a module whose import never returns.

    Lambda's 10 s: the command ends with the timeout error and exit status 1.
    """
    started = time.monotonic()
    done = run_cli("invoke", f"{app}:ok", "--env", "HANG_INIT=always")
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr.decode()
    assert json.loads(done.stdout) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Init timed out after 10.00 seconds",
    }
    assert 10 <= elapsed < 25, elapsed
    assert "function error: Sandbox.Timedout" in done.stderr.decode()


# ----------------------------------------------------------------------------- bounded state


@pytest.mark.timeout(120)
def test_serve_memory_stays_flat_over_thousands_of_calls(app: Path, servers: list[ServeProcess]) -> None:
    """Tried: 2,300 calls, each printing 8 KB of logs, over one keep-alive connection.

    After 300 warm-up calls the serving process's resident memory may move by a few MB
    (allocator noise), not by what keeping every line and request record costs (~19 MB).
    """
    server = ServeProcess(f"{app}:chatty", "--timeout", "30")
    servers.append(server)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)

    def run(start: int, count: int) -> None:
        for n in range(start, start + count):
            conn.request("POST", INVOKE_PATH, body=json.dumps({"n": n}).encode())
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, str(n).encode())

    run(0, 300)
    warm_kb = rss_kb(server.popen.pid)
    run(300, 2000)
    grown_mb = (rss_kb(server.popen.pid) - warm_kb) / 1024
    conn.close()
    assert grown_mb < 8, f"serve grew by {grown_mb:.1f} MB over 2,000 calls"


@pytest.mark.timeout(90)
def test_async_flood_is_refused_past_a_bounded_queue(app: Path, servers: list[ServeProcess]) -> None:
    """Tried: 40 ``InvocationType=Event`` calls of 5 MB each at a handler taking 0.3 s each.

    Past the queue's bound the Invoke API answers 429 TooManyRequestsException, as Lambda
    does when it cannot take more; what it accepted runs, each exactly once; and memory
    does not grow by the 200 MB an unbounded queue would hold.
    """
    server = ServeProcess(f"{app}:slow_record", "--timeout", "30")
    servers.append(server)
    assert call(server, {"blob": ""})[0] == 200  # warm: runtime started, first call done
    base_kb = rss_kb(server.popen.pid)
    blob = "b" * (5 * 1024 * 1024)
    accepted, refused = [], []
    for _ in range(40):
        status, headers, body = call(server, {"blob": blob}, **{"X-Amz-Invocation-Type": "Event"})
        if status == 202:
            accepted.append(headers["x-amzn-requestid"])
        else:
            refused.append((status, headers.get("x-amzn-errortype"), json.loads(body)["message"]))
    peak_mb = (rss_kb(server.popen.pid) - base_kb) / 1024
    assert refused, "every one of 40 x 5 MB async events was queued"
    assert {(status, kind) for status, kind, _ in refused} == {(429, "TooManyRequestsException")}
    assert all(message.startswith("Rate Exceeded.") for _, _, message in refused)
    assert 1 <= len(accepted) < 40
    assert peak_mb < 100, f"serve grew by {peak_mb:.0f} MB"

    ran = app.parent / "ran.txt"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(ran.read_text().split()) < len(accepted) + 1:
        time.sleep(0.1)
    time.sleep(0.5)  # nothing more may run
    assert sorted(ran.read_text().split()[1:]) == sorted(accepted)
    assert call(server, {"blob": "after"})[0] == 200  # the queue drained: calls are taken again


# ----------------------------------------------------------------------------- output


def timed_invoke(app: Path, function: str, size: int) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    done = run_cli("invoke", f"{app}:{function}", "--event", json.dumps({"size": size}))
    return time.monotonic() - started, done


@pytest.mark.timeout(120)
def test_one_long_output_line_costs_what_many_short_ones_do(app: Path) -> None:
    """Tried: 32 MB printed as 32,768 lines of 1 KB, then as one line.

    Reading must be linear: the single line may not take much longer than the many lines
    (a reader that concatenates chunk by chunk takes ten times as long). Only the first
    256 KiB of the line are kept, and the rest is said to be dropped.
    """
    size = 32 * 1024 * 1024
    lines_time, lines_done = timed_invoke(app, "many_lines", size)
    line_time, line_done = timed_invoke(app, "one_long_line", size)
    for done in (lines_done, line_done):
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout) == "done"
    assert line_time < 2 * lines_time + 2, (line_time, lines_time)
    [echoed] = [line for line in line_done.stderr.decode().splitlines() if line.startswith("LLL")]
    assert (
        echoed == "L" * KEPT_LINE_BYTES + f" [... {size - KEPT_LINE_BYTES} more bytes of this line dropped]"
    )


@pytest.mark.timeout(90)
def test_log_lines_with_forged_request_ids_do_not_stop_serve(app: Path, servers: list[ServeProcess]) -> None:
    """Tried: a handler printing JSON lines whose ``requestId`` is a number, a list, null,
    an object, a float and a boolean; then the same with 300 KB more output per call.

    The output reader must survive every line: each call is answered, promptly, and
    output larger than a pipe holds still flows (a dead reader would leave the runtime
    blocked writing it).
    """
    server = ServeProcess(f"{app}:forged_ids", "--timeout", "5")
    servers.append(server)
    for n in range(3):
        started = time.monotonic()
        status, _, body = call(server, {"n": n})
        assert (status, json.loads(body)) == (200, n)
        assert time.monotonic() - started < 0.9, "the call waited for a reader that is gone"
    for n in range(3, 6):
        status, headers, body = call(server, {"n": n, "loud": True})
        assert (status, json.loads(body)) == (200, n), headers


def serve_to_a_console_that_goes_away(app: Path, function: str) -> tuple[subprocess.Popen, str, int]:
    """``serve ... 2>&1 | grep -m1 Serving``: grep leaves after the first line."""
    command = (
        f"exec {sys.executable} -m lambda_supervisor.cli serve {app}:{function} --port 0 --timeout 10 "
        "2>&1 | grep -m1 Serving"
    )
    shell = subprocess.Popen(
        ["sh", "-c", command], stdout=subprocess.PIPE, cwd=REPO_ROOT, start_new_session=True
    )
    assert shell.stdout is not None
    line = shell.stdout.readline().decode()
    match = re.search(r"http://([\d.]+):(\d+)/", line)
    assert match, line
    return shell, match.group(1), int(match.group(2))


@pytest.mark.timeout(90)
def test_serve_keeps_answering_when_its_console_is_gone(app: Path) -> None:
    """Tried: ``serve ... 2>&1 | grep -m1 Serving``, then calls that log 300 KB each.

    Every log line now meets a broken pipe; serve drops them and answers every call.
    """
    shell, host, port = serve_to_a_console_that_goes_away(app, "loud")
    try:
        for n in range(3):
            status, headers, body = post(host, port, INVOKE_PATH, json.dumps({"n": n}).encode())
            assert (status, json.loads(body)) == (200, n), headers
    finally:
        # SIGTERM, so serve stops its runtime (in a session of its own) before it leaves.
        os.killpg(shell.pid, signal.SIGTERM)
        assert wait_until(lambda: running_in_session(shell.pid) == [], 20)
        shell.wait(10)


def assert_each_call_answered(server: subprocess.Popen[bytes], calls: int) -> None:
    """``calls`` calls to the address the ``serve`` process announces, each answered with its
    own ``n``."""
    assert server.stdout is not None
    address = announced_address(server.stdout.readline().decode())
    assert address
    host, port, _ = address
    for n in range(calls):
        status, headers, body = post(host, port, INVOKE_PATH, json.dumps({"n": n}).encode())
        assert (status, json.loads(body)) == (200, n), headers


@pytest.mark.timeout(90)
def test_serve_keeps_answering_when_stderr_cannot_be_written(app: Path) -> None:
    """Tried: serve with its stderr on /dev/full, so every log write fails with ENOSPC."""
    with open("/dev/full", "w") as full:
        server = start_serve(f"{app}:loud", stderr=full)
    try:
        assert_each_call_answered(server, 3)
    finally:
        server.terminate()
        server.wait(20)


@pytest.mark.timeout(90)
def test_serve_keeps_answering_when_its_console_stalls(app: Path) -> None:
    """Tried: serve with stderr on a pipe nobody reads (a paused pager), calls logging 300 KB.

    The pipe fills after the first call; lines past a bounded backlog are dropped instead
    of holding up the runtime's output and the threads answering the Runtime API.
    """
    server = start_serve(f"{app}:loud", stderr=subprocess.PIPE)  # and never read
    try:
        assert_each_call_answered(server, 8)
    finally:
        server.terminate()
        server.communicate(timeout=30)


# ----------------------------------------------------------------------------- wording


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("signum", "words"),
    [(signal.SIGUSR1, "signal: user defined signal 1"), (signal.SIGKILL, "signal: killed")],
)
def test_runtime_killed_by_a_signal_is_described_in_the_supervisors_words(
    app: Path, signum: int, words: str
) -> None:
    """Tried: a handler that sends SIGUSR1 (then SIGKILL) to the runtime process.

    The wording is the one the supervisor uses for its workers (worker/errors.py).
    """
    done = run_cli("invoke", f"{app}:kill_runtime", "--event", json.dumps({"signal": int(signum)}))
    assert done.returncode == 1, done.stderr.decode()
    assert json.loads(done.stdout) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"Runtime exited with error: {words}",
    }


# ----------------------------------------------------------------------------- limits


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": float("inf")}, "timeout must be from 1 to 900 seconds, not inf"),
        ({"timeout": float("nan")}, "timeout must be from 1 to 900 seconds, not nan"),
        ({"init_timeout": 0}, "init timeout must be from 0.1 to 900 seconds, not 0"),
    ],
)
def test_lambda_invoke_refuses_limits_lambda_would_not_accept(options: dict, message: str) -> None:
    """Tried: the test helper with an infinite or NaN timeout and a zero init timeout."""
    with pytest.raises(ValueError, match=re.escape(message)):
        lambda_invoke(str(REPO_ROOT / "examples" / "hello.py") + ":handler", {}, **options)
