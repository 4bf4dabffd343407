"""Run the real runtime (``bin/bootstrap``) as a child process, capturing its output.

End-to-end tests and the local runner both need the runtime exactly as Lambda starts it:
a separate process, the platform's environment variables, logs on stdout. The modules:
``runtime`` (``RuntimeProcess``: start and stop), ``environment`` (what the child sees),
``output`` and ``lines`` (its output as lines) and ``proc`` (its processes in /proc).
"""

from .environment import AWS_CREDENTIALS, PASSED_THROUGH, platform_environment
from .lines import MAX_LINE_BYTES, LineTail, parse_json_object
from .runtime import BOOTSTRAP, REPO_ROOT, RuntimeProcess, runtime_command

__all__ = [
    "AWS_CREDENTIALS",
    "BOOTSTRAP",
    "MAX_LINE_BYTES",
    "PASSED_THROUGH",
    "REPO_ROOT",
    "LineTail",
    "RuntimeProcess",
    "parse_json_object",
    "platform_environment",
    "runtime_command",
]
