"""The two runtimes under test, and how each is started, as Lambda would start it.

This runtime starts through its real entry point, ``bin/bootstrap`` (a ``/bin/sh`` script
that execs Python); awslambdaric as AWS's container images start it. Both get the same
environment, what Lambda sets and nothing from the calling shell, and both import compiled
bytecode with bytecode writing off, as on Lambda's read-only code directory. A pair of
runtimes always shares one interpreter, so that a row compares the runtimes and not two
Pythons.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from paths import HANDLERS

OURS = "ours"
AWS = "awslambdaric"


@dataclass
class Runtime:
    """How to start one runtime: a command line and what it adds to the environment."""

    name: str
    argv: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    needs_module_arg: bool = False  # awslambdaric takes ``module.function`` as its argument


def our_runtime(
    root: Path, name: str = OURS, extra_env: dict[str, str] | None = None, python: str = sys.executable
) -> Runtime:
    """This project through its real entry point, ``bin/bootstrap`` (a /bin/sh exec)."""
    env = {"LAMBDA_SUPERVISOR_PYTHON": python}
    env.update(extra_env or {})
    return Runtime(name, [str(root / "bin" / "bootstrap")], env)


def aws_runtime(python: str = sys.executable) -> Runtime:
    """``python -m awslambdaric module.function``, as AWS's container images start it."""
    return Runtime(AWS, [python, "-m", "awslambdaric"], needs_module_arg=True)


def base_env(api: str, module: str) -> dict[str, str]:
    """What Lambda sets, and nothing from the caller's shell (no stray PYTHONPATH)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api,
        "_HANDLER": f"{module}.handler",
        "LAMBDA_TASK_ROOT": str(HANDLERS),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_REGION": "us-east-1",
        # Lambda's code directory is read-only: nothing is written at run time there either.
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def compile_runtime(python: str, root: Path) -> None:
    """Compile the runtime under test and the handlers once, up front, for ``python``.

    Both runtimes then import bytecode (pip compiled awslambdaric when it installed it),
    and none is written during the trials.
    """
    subprocess.run(
        [python, "-m", "compileall", "-q", str(root / "supervisor"), str(root / "worker"), str(HANDLERS)],
        check=True,
    )
