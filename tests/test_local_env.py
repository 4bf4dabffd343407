"""``--env-file`` for ``invoke`` and ``serve``: the ``.env`` dialect ``deploy`` reads, and
errors that name the file, the line and at most the key, never a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from http_support import INVOKE_PATH, post
from local_support import ServeProcess, run_cli
from runtime_harness import write_task

SHOW_ENV = """\
    import os

    def handler(event, context):
        return {name: os.environ.get(name) for name in event["names"]}
    """
DOTENV = """\
# local settings
export STAGE=dev
DB_URL="postgres://ada:pw@localhost/db"  # a comment
GREETING='hi # not a comment'
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write_task(tmp_path, {"app.py": SHOW_ENV, ".env": DOTENV})
    return tmp_path


def _event(*names: str) -> str:
    return json.dumps({"names": list(names)})


@pytest.mark.timeout(60)
def test_invoke_env_file_sets_the_functions_variables_and_env_wins(app: Path) -> None:
    """Tried: a .env with ``export``, quotes and comments, and ``--env`` for one of its names."""
    event = _event("STAGE", "DB_URL", "GREETING")
    done = run_cli(
        "invoke", "app.handler", "--env-file", ".env", "--env", "STAGE=test", "--event", event, cwd=app
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == {
        "STAGE": "test",
        "DB_URL": "postgres://ada:pw@localhost/db",
        "GREETING": "hi # not a comment",
    }


@pytest.mark.timeout(60)
def test_serve_env_file_sets_the_functions_variables(app: Path) -> None:
    """Tried: ``serve --env-file``, then a call over HTTP."""
    with ServeProcess(f"{app}/app.py:handler", "--env-file", str(app / ".env")) as server:
        status, _, body = post(server.host, server.port, INVOKE_PATH, _event("STAGE", "DB_URL").encode())
    assert status == 200
    assert json.loads(body) == {"STAGE": "dev", "DB_URL": "postgres://ada:pw@localhost/db"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "OK=1\nhunter2-secret-token\n",
            ":2: not a KEY=VALUE line (its text is not shown: it may be a secret)",
        ),
        ('PASSWORD="hunter2-secret-token\n', ":1: the value of PASSWORD opens a quote that does not close"),
    ],
)
def test_env_file_errors_never_show_a_value(tmp_path: Path, app: Path, content: str, message: str) -> None:
    """Tried: a line that is no assignment and a quote left open, both holding a secret."""
    env_file = tmp_path / "bad.env"
    env_file.write_text(content)
    done = run_cli("invoke", "app.handler", "--env-file", str(env_file), cwd=app)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert f"lambda-supervisor: error: --env-file: {env_file}{message}" in stderr
    assert "hunter2" not in stderr and done.stdout == b""


@pytest.mark.timeout(30)
def test_missing_env_file_is_a_clear_error(app: Path) -> None:
    """Tried: ``--env-file`` naming a file that does not exist."""
    done = run_cli("serve", "app.handler", "--env-file", "missing.env", cwd=app)
    assert done.returncode == 2
    assert (
        "lambda-supervisor: error: --env-file: Environment file missing.env does not exist"
        in done.stderr.decode()
    )
