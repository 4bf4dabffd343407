"""The test helper users get: ``lambda_invoke`` and the ``lambda_invoke`` pytest fixture.

Both run the handler through the real supervisor and worker over the emulator, so these
tests check real results and real error bodies, and that the fixture is available in a
user's project through the plugin entry point alone (no import, no conftest).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from runtime_harness import copy_handler

from lambda_supervisor.testing import FunctionError, lambda_invoke

REPO_ROOT = Path(__file__).resolve().parents[1]
HELLO = str(REPO_ROOT / "examples" / "hello.py") + ":handler"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_handler(tmp_path, "shop", "shop.py")


@pytest.mark.timeout(60)
def test_lambda_invoke_returns_the_decoded_result() -> None:
    result = lambda_invoke(HELLO, {"name": "Ada"})
    assert result["message"] == "Hello, Ada!"
    assert result["requestId"]


@pytest.mark.timeout(60)
def test_lambda_invoke_raises_function_error_with_details(app: Path) -> None:
    with pytest.raises(FunctionError) as failure:
        lambda_invoke(f"{app}:order", {"qty": 5})
    error = failure.value
    assert error.error_type == "OutOfStock"
    assert error.error_message == "only 3 left, asked for 5"
    assert any("raise OutOfStock" in frame for frame in error.stack_trace)
    assert error.request_id
    assert "OutOfStock" in str(error)


@pytest.mark.timeout(60)
def test_lambda_invoke_passes_env_and_returns_bytes_for_non_json(app: Path) -> None:
    assert lambda_invoke(f"{app}:order", {"qty": 1}, env={"STAGE": "test"})["stage"] == "test"
    assert lambda_invoke(f"{app}:raw", {}) == b"not json at all"
    assert lambda_invoke(f"{app}:echo", "a plain string") == "a plain string"
    assert lambda_invoke(f"{app}:echo", b'{"raw": true}') == {"raw": True}


@pytest.mark.timeout(60)
def test_lambda_invoke_passes_client_context(app: Path) -> None:
    assert lambda_invoke(f"{app}:who", {}, client_context={"custom": {"user": "ada"}}) == {"user": "ada"}


@pytest.mark.timeout(60)
def test_lambda_invoke_timeout_raises_sandbox_timeout(app: Path) -> None:
    with pytest.raises(FunctionError) as failure:
        lambda_invoke(f"{app}:slow", {}, timeout=1)
    assert failure.value.error_type in ("Sandbox.Timedout", "Sandbox.Timeout")
    assert failure.value.error_message == "Task timed out after 1.00 seconds"


def test_lambda_invoke_rejects_a_bad_handler_string() -> None:
    """Tried: a handler string with no function part; refused before any process starts."""
    with pytest.raises(ValueError, match="^Bad handler 'shop': expected"):
        lambda_invoke("shop", {})


@pytest.mark.timeout(60)
def test_fixture_keeps_one_runtime_per_handler(lambda_invoke, app: Path) -> None:  # noqa: F811
    first = lambda_invoke(f"{app}:order", {"qty": 1})
    second = lambda_invoke(f"{app}:order", {"qty": 2})
    assert (first["qty"], second["qty"]) == (1, 2)
    # The same warm worker served both calls: one runtime for the test, not one per call.
    assert first["pid"] == second["pid"]
    with pytest.raises(FunctionError):
        lambda_invoke(f"{app}:order", {"qty": 9})


@pytest.mark.timeout(90)
def test_plugin_fixture_is_available_in_a_users_project(tmp_path: Path) -> None:
    """A user's test file, with no conftest, gets the fixture from the entry point."""
    copy_handler(tmp_path, "double_or_raise")
    # The user's test file stays a string: tests/handlers/ holds no test of its own.
    (tmp_path / "test_user_app.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from lambda_supervisor.testing import FunctionError

            def test_doubles(lambda_invoke):
                assert lambda_invoke("app:handler", {"n": 21}) == {"doubled": 42}

            def test_error_type(lambda_invoke):
                with pytest.raises(FunctionError) as failure:
                    lambda_invoke("app:handler", {"boom": True})
                assert failure.value.error_type == "KeyError"
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_app.py"],
        cwd=tmp_path,
        capture_output=True,
        timeout=80,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    assert "2 passed" in output


@pytest.mark.timeout(90)
def test_a_failing_lambda_invoke_test_reports_the_handlers_own_traceback(tmp_path: Path) -> None:
    """Tried: a user's test whose handler raises, run by pytest in a subprocess; the failure
    report shows the handler's frame and source line, not only lambda-supervisor's."""
    app = copy_handler(tmp_path, "double_or_raise")
    (tmp_path / "test_user_app.py").write_text(
        "from lambda_supervisor.testing import lambda_invoke\n\n"
        "def test_boom():\n"
        "    lambda_invoke('app.handler', {'boom': True})\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_app.py"],
        cwd=tmp_path,
        capture_output=True,
        timeout=80,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 1, output
    assert "FunctionError: KeyError: 'boom'" in output
    assert "The function's traceback (most recent call last):" in output
    assert f'File "{app.resolve()}", line 6, in handler' in output
    assert 'raise KeyError("boom")' in output
