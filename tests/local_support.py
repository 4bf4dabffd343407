"""The local runner as users run it: the ``lambda-supervisor`` CLI in a subprocess, and
``serve`` in the background with the address it announces."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "lambda_supervisor.cli"]
_ANNOUNCED = re.compile(r"http://([\d.]+):(\d+)(/\S+)")


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``lambda-supervisor`` as users do, in a subprocess, capturing both streams (bytes).

    It runs in the checkout, in this process's environment unless ``env`` is given, and with
    unbuffered output so that its lines come in the order it wrote them.
    """
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
    )


def start_serve(*args: str, stderr: int | IO[str] = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """``lambda-supervisor serve ARGS --port 0`` in the background, its stdout on a pipe."""
    return subprocess.Popen(
        [*CLI, "serve", *args, "--port", "0"], stdout=subprocess.PIPE, stderr=stderr, cwd=REPO_ROOT
    )


def announced_address(line: str) -> tuple[str, int, str] | None:
    """The host, port and path in the line ``serve`` announces itself with (its first line of
    stdout), or None when ``line`` is not that announcement."""
    match = _ANNOUNCED.search(line)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


class ServeProcess:
    """``lambda-supervisor serve`` in the background, with its announced URL; a context
    manager that stops it on the way out.

    stderr (the logs) is read by a thread all along, so a chatty server never blocks on
    a full pipe while a test is busy elsewhere.
    """

    def __init__(self, *args: str) -> None:
        self.popen = start_serve(*args)
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._stderr: list[bytes] = []
        self._stderr_reader = threading.Thread(
            target=lambda: self._stderr.extend(iter(self.popen.stderr.readline, b"")), daemon=True
        )
        self._stderr_reader.start()
        first_line = self.popen.stdout.readline().decode()
        address = announced_address(first_line)
        if address is None:
            self.popen.kill()
            self._stderr_reader.join(10)
            pytest.fail(f"serve printed {first_line!r}; stderr: {self.stderr()}")
        self.host, self.port, self.path = address

    def stderr(self) -> str:
        return b"".join(self._stderr).decode()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as a terminal's Ctrl-C or a process manager would; the exit status and logs."""
        self.popen.terminate()
        self.popen.wait(timeout=20)
        self._stderr_reader.join(10)
        return self.popen.returncode, self.stderr()

    def close(self) -> None:
        """Stop it unless a test has already."""
        if self.popen.poll() is None:
            self.stop()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
