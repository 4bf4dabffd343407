"""The runtime's own error types and exit wording, for the calls a local runner answers.

When the runtime dies or its init runs out of time, the local runner answers the calls
it left on the runtime's behalf, and those answers must read exactly as the runtime's
own (and Lambda's) would: the same ``errorType`` and the same sentence for an exit.
So they come from the runtime's ``worker/errors.py`` rather than a copy of it, loaded
from its file (``lambda_supervisor/runtime_modules.py`` says why).
"""

from __future__ import annotations

from lambda_supervisor.runtime_modules import errors


def exit_message(returncode: int) -> str:
    """The platform's sentence for a runtime that exited, in the supervisor's own words.

    ``returncode`` is ``Popen``'s (negative for a signal); the supervisor describes wait
    statuses, so it is turned back into one.
    """
    wait_status = -returncode if returncode < 0 else returncode << 8
    return errors.describe_exit(wait_status)


__all__ = ["errors", "exit_message"]
