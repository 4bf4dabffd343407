"""Lambda's words for a dead runtime and its error bodies, from real wait statuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from worker import errors

pytestmark = pytest.mark.timeout(10)


def _status_of(action: str) -> int:
    """The wait status of a process that dies as asked: a program of its own, since forking
    this threaded test process could deadlock the copy."""
    if action.startswith("exit"):
        code = f"import os; os._exit({int(action[4:])})"
    else:
        # The default action (not Python's handler) for the signal, then the signal itself.
        code = (
            "import os, signal\n"
            f"if signal.{action} != signal.SIGKILL: signal.signal(signal.{action}, signal.SIG_DFL)\n"
            f"os.kill(os.getpid(), signal.{action})\n"
        )
    returncode = subprocess.run([sys.executable, "-c", code], timeout=10).returncode
    # Popen's return code back into a wait status, as os.waitpid gives it.
    return -returncode if returncode < 0 else returncode << 8


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("exit3", "exit status 3"),
        ("SIGKILL", "signal: killed"),
        ("SIGSEGV", "signal: segmentation fault"),
        ("SIGTERM", "signal: terminated"),
        ("SIGABRT", "signal: aborted"),
    ],
)
def test_describe_status_uses_the_platforms_words(action, words):
    assert errors.describe_status(_status_of(action)) == words


def test_an_exit_with_status_zero_has_no_reason():
    assert (
        errors.describe_exit(_status_of("exit0"))
        == "Runtime exited without providing a reason: exit status 0"
    )


def test_exit_error_body_has_the_four_keys():
    body = errors.exit_error(_status_of("exit3"), "req-1")
    assert body == {
        "errorMessage": "Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
        "requestId": "req-1",
        "stackTrace": [],
    }


@pytest.mark.parametrize(("seconds", "text"), [(3.0, "3.00"), (0.5, "0.50"), (900.0, "900.00")])
def test_timeout_message_is_lambdas(seconds, text):
    body = errors.timeout_error(seconds, "r")
    assert (body["errorType"], body["errorMessage"]) == (
        "Sandbox.Timedout",
        f"Task timed out after {text} seconds",
    )


def test_response_too_large_names_both_sizes():
    body = errors.response_too_large(7_000_000, 6_291_556, "r")
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "7000000" in body["errorMessage"] and "6291556" in body["errorMessage"]
