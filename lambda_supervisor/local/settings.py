"""A function's configuration as Lambda bounds it, and the error for what cannot be run.

``invoke``, ``serve`` and ``lambda_invoke`` all accept a timeout, a memory size and an
init timeout; each is refused here when Lambda would refuse it, so a local run never
succeeds with a setting the deployed function could not have. What a user asked for
that cannot be run is a ``UsageError``: one line for the console, not a traceback.
"""

from __future__ import annotations

DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY_MB = 3008
# Lambda gives an on-demand function's init 10 s before it gives up on it.
DEFAULT_INIT_TIMEOUT = 10.0
# What Lambda accepts as a function's configuration: (lowest, highest).
TIMEOUT_RANGE = (1.0, 900.0)
MEMORY_RANGE = (128, 10_240)
INIT_TIMEOUT_RANGE = (0.1, 900.0)
# Invocations at once on Lambda Managed Instances (``--concurrency``).
CONCURRENCY_RANGE = (1, 1024)
# Finished invocations kept for late look-ups while serving: at most this many, holding at
# most this many bytes of events and results; and the newest request records.
RETAINED_INVOCATIONS = 256
RETAINED_INVOCATION_BYTES = 16 * 1024 * 1024
RETAINED_REQUESTS = 1024


class UsageError(Exception):
    """A problem with what the user asked for, reported as one line instead of a traceback."""


def check_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    """Refuse a setting outside what Lambda accepts (NaN and infinities included)."""
    low, high = bounds
    if not low <= value <= high:
        raise UsageError(f"{name} must be from {low:g} to {high:g} {unit}, not {value!r}")


def managed_instances_env(concurrency: int) -> dict[str, str]:
    """What Lambda Managed Instances set for a function that runs ``concurrency`` at once."""
    return {
        "AWS_LAMBDA_MAX_CONCURRENCY": str(concurrency),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
    }
