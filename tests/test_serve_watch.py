"""``serve --watch``: the code changes on disk, the next call runs the new code.

Each test runs a real ``lambda-supervisor serve --watch`` subprocess on a handler in a
temporary folder, rewrites files there as an editor would, and calls the Invoke API over
real HTTP. Serve announces each reload on stderr once no event can reach the old runtime
any more, so the tests wait for that line instead of sleeping.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from http_support import INVOKE_PATH, post
from local_support import ServeProcess
from proc_support import wait_until

VERSION = """\
import time

from helpers import label


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {{"version": {version}, "label": label()}}
"""


def write_app(root: Path, version: int | str) -> None:
    (root / "app.py").write_text(VERSION.format(version=version))


def call(server: ServeProcess, event: dict[str, object] | None = None) -> dict[str, object]:
    status, _, body = post(
        server.host, server.port, INVOKE_PATH, json.dumps(event or {}).encode(), timeout=20
    )
    assert status == 200, body
    return json.loads(body)


def wait_for_reloads(server: ServeProcess, count: int) -> None:
    announced = wait_until(lambda: server.stderr().count(": restarting the runtime") >= count, 10)
    assert announced, f"serve announced no reload #{count}; stderr: {server.stderr()}"


@pytest.fixture
def code_root(tmp_path: Path) -> Path:
    write_app(tmp_path, 1)
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("def label():\n    return 'first'\n")
    return tmp_path


@pytest.mark.timeout(60)
def test_a_saved_change_is_run_by_the_next_call_on_the_same_server(code_root: Path) -> None:
    """Tried: serve --watch, a call, then app.py rewritten, then a module of a package it
    imports, then requirements.txt created. Each save is announced once, the next call
    runs the new code, and it is the same server all along (same port, no new emulator)."""
    with ServeProcess(f"{code_root}/app.py:handler", "--watch") as server:
        assert call(server) == {"version": 1, "label": "first"}
        write_app(code_root, 22)
        wait_for_reloads(server, 1)
        assert "app.py changed: restarting the runtime" in server.stderr()
        assert call(server) == {"version": 22, "label": "first"}
        (code_root / "helpers" / "__init__.py").write_text("def label():\n    return 'second one'\n")
        wait_for_reloads(server, 2)
        assert f"{Path('helpers', '__init__.py')} changed" in server.stderr()
        assert call(server) == {"version": 22, "label": "second one"}
        (code_root / "requirements.txt").write_text("# nothing yet\n")
        wait_for_reloads(server, 3)
        assert "requirements.txt changed" in server.stderr()
        assert call(server) == {"version": 22, "label": "second one"}
        returncode, stderr = server.stop()
    assert returncode == 0
    assert stderr.count(": restarting the runtime") == 3, stderr
    assert stderr.count("START RequestId:") == 4, stderr


@pytest.mark.timeout(60)
def test_files_outside_the_code_are_not_watched(code_root: Path) -> None:
    """Tried: under serve --watch, a .py file written in a hidden folder, in __pycache__
    and in a virtualenv under the code root, and a .txt file next to app.py. None of them
    restarts the runtime; then app.py is saved, and that one does."""
    (code_root / ".git").mkdir()
    (code_root / "venv").mkdir()
    (code_root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with ServeProcess(f"{code_root}/app.py:handler", "--watch") as server:
        assert call(server)["version"] == 1
        (code_root / ".git" / "hook.py").write_text("x = 1\n")
        (code_root / "venv" / "module.py").write_text("x = 1\n")
        (code_root / "helpers" / "__pycache__").mkdir(exist_ok=True)
        (code_root / "helpers" / "__pycache__" / "stale.py").write_text("x = 1\n")
        (code_root / "notes.txt").write_text("not code\n")
        write_app(code_root, 3)
        wait_for_reloads(server, 1)
        assert call(server)["version"] == 3
        returncode, stderr = server.stop()
    assert returncode == 0
    assert stderr.count(": restarting the runtime") == 1, stderr
    assert "app.py changed: restarting the runtime" in stderr


@pytest.mark.timeout(60)
def test_a_call_in_flight_during_a_save_finishes_on_the_old_code_and_is_answered_once(
    code_root: Path,
) -> None:
    """Tried: a call that takes 1.5 s, app.py saved while it runs, and a second call made
    right after the reload is announced. The first finishes on the old code, the second
    waits for it and then runs the new code; each is answered once (two START, two END)."""
    with ServeProcess(f"{code_root}/app.py:handler", "--watch") as server:
        slow: list[dict[str, object]] = []
        caller = threading.Thread(target=lambda: slow.append(call(server, {"sleep": 1.5})))
        caller.start()
        assert wait_until(lambda: "START RequestId:" in server.stderr(), 10), server.stderr()
        write_app(code_root, 4444)
        wait_for_reloads(server, 1)
        assert caller.is_alive(), "the slow call ended before the save: the test proves nothing"
        assert call(server) == {"version": 4444, "label": "first"}
        caller.join(10)
        assert slow == [{"version": 1, "label": "first"}]
        returncode, stderr = server.stop()
    assert returncode == 0
    assert stderr.count("START RequestId:") == 2, stderr
    assert stderr.count("END RequestId:") == 2, stderr
    assert "Runtime.ExitError" not in stderr, stderr


@pytest.mark.timeout(60)
def test_a_syntax_error_on_save_is_the_callers_init_error_and_the_next_save_recovers(
    code_root: Path,
) -> None:
    """Tried: app.py saved with a syntax error under serve --watch, two calls, then saved
    fixed. Both calls get Runtime.UserCodeSyntaxError with the message ``invoke`` gives;
    after the fix the next call runs the new code on the same server."""
    with ServeProcess(f"{code_root}/app.py:handler", "--watch") as server:
        assert call(server)["version"] == 1
        write_app(code_root, "(")
        wait_for_reloads(server, 1)
        for _ in range(2):
            status, headers, body = post(server.host, server.port, INVOKE_PATH, b"{}", timeout=20)
            assert (status, headers.get("x-amz-function-error")) == (200, "Unhandled"), body
            error = json.loads(body)
            assert error["errorType"] == "Runtime.UserCodeSyntaxError", error
            assert error["errorMessage"].startswith("Syntax error in module 'app': "), error
            assert "(app.py, line 8)" in error["errorMessage"], error
        write_app(code_root, 5)
        wait_for_reloads(server, 2)
        assert call(server) == {"version": 5, "label": "first"}
        returncode, _ = server.stop()
    assert returncode == 0


@pytest.mark.timeout(60)
def test_a_save_within_the_same_second_at_the_same_size_runs_the_new_code(code_root: Path) -> None:
    """Tried: app.py run once (Python caches its bytecode, stamped with the source's
    mtime in whole seconds and its size), then rewritten with a change of the same size
    and an mtime in the same second, as a quick second save gives. The next call runs
    the new code, not the cached bytecode of the old."""
    second = 1_700_000_000 * 10**9
    os.utime(code_root / "app.py", ns=(second + 100_000_000, second + 100_000_000))
    with ServeProcess(f"{code_root}/app.py:handler", "--watch") as server:
        assert call(server)["version"] == 1
        assert list((code_root / "__pycache__").glob("app.*.pyc")), "no bytecode cached: nothing to test"
        write_app(code_root, 2)
        os.utime(code_root / "app.py", ns=(second + 700_000_000, second + 700_000_000))
        wait_for_reloads(server, 1)
        assert call(server)["version"] == 2


@pytest.mark.timeout(60)
def test_a_saved_env_file_is_read_again_before_the_next_call(tmp_path: Path) -> None:
    """Tried: serve --watch --env-file .env, a call, then .env rewritten with a new value,
    then with a line that does not parse. The next call after the first save sees the new
    value; after the broken save serve says why without the value, and the value read
    before is kept."""
    (tmp_path / "app.py").write_text(
        "import os\n\ndef handler(event, context):\n    return os.environ.get('GREETING')\n"
    )
    env_file = tmp_path / ".env"
    env_file.write_text("GREETING=first\n")
    with ServeProcess(f"{tmp_path}/app.py:handler", "--watch", "--env-file", str(env_file)) as server:
        assert call(server) == "first"
        env_file.write_text("GREETING=second\n")
        wait_for_reloads(server, 1)
        assert call(server) == "second"
        env_file.write_text("GREETING=second\nnot a setting secret-value\n")
        wait_for_reloads(server, 2)
        assert call(server) == "second"
        returncode, stderr = server.stop()
    assert returncode == 0
    assert "the variables read before are kept" in stderr, stderr
    assert "secret-value" not in stderr
