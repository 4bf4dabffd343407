"""The one exception the deploy commands raise for problems a user can fix.

Commands catch it at the top and print its message without a traceback: a missing
handler file or an unknown region is not a bug in this tool, so a stack trace would only
hide the sentence that says what to do.
"""

from __future__ import annotations


class DeployError(Exception):
    """A failure explained in plain words, with the exit status the command should return."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
