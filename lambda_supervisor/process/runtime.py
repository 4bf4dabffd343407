"""``RuntimeProcess``: the real runtime (``bin/bootstrap``) as a child process.

End-to-end tests and the local runner both need the runtime exactly as Lambda starts it:
a separate process, the platform's environment variables, logs on stdout. The child gets
its own session so that stopping it also stops every worker it forked, and its output is
read into lines (``output``) so tests can wait for a log line instead of sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .environment import runtime_environment
from .lines import parse_json_object
from .output import OutputReader
from .proc import peak_rss_kb, session_members

_PACKAGE = Path(__file__).resolve().parents[1]
REPO_ROOT = _PACKAGE.parent
BOOTSTRAP = REPO_ROOT / "bin" / "bootstrap"


def runtime_command() -> list[str]:
    """``bin/bootstrap`` from a source checkout, else the copy installed with this package,
    which runs the installed ``supervisor`` (``python -m supervisor`` would run whatever
    ``supervisor`` the current directory holds, PyPI's supervisord say)."""
    if BOOTSTRAP.is_file():
        return [str(BOOTSTRAP)]
    return [str(_PACKAGE / "deploy" / "bootstrap")]


class RuntimeProcess:
    """The runtime as a subprocess with merged, line-captured stdout and stderr."""

    def __init__(
        self,
        handler: str | None,
        *,
        runtime_api: str,
        task_root: str | os.PathLike[str] | None = None,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] = (),
        function_name: str = "function",
        memory_mb: int = 3008,
        echo: TextIO | None = None,
        on_line: Callable[[str], None] | None = None,
        inherit: Collection[str] = (),
        retain_chars: int | None = None,
        terminal: bool = False,
    ) -> None:
        self.handler = handler
        # Variables taken from our environment besides PASSED_THROUGH.
        self.inherit = tuple(inherit)
        self.runtime_api = runtime_api
        self.task_root = task_root
        self.env_overrides = dict(env or {})
        self.args = list(args)
        self.function_name = function_name
        self.memory_mb = memory_mb
        # ``echo`` copies each line to a stream as it arrives (handy when debugging a test);
        # ``on_line`` lets the local runner attribute lines to invocations. ``retain_chars``
        # bounds what ``lines()`` keeps (None: every line, as tests of a short run want).
        self.echo = echo
        self.on_line = on_line
        # ``terminal``: the runtime gets our stdin and writes to our stderr itself, so that
        # a ``breakpoint()`` in the handler can talk to the person at the terminal; its
        # output is then neither captured nor passed on.
        self.terminal = terminal
        self.started_at: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._output = OutputReader(retain_chars, self._pass_on)

    # ----------------------------------------------------------------- lifecycle

    def environment(self) -> dict[str, str]:
        """The child's full environment: the part of ours it may see, the platform's, the overrides."""
        return runtime_environment(
            runtime_api=self.runtime_api,
            handler=self.handler,
            task_root=self.task_root,
            function_name=self.function_name,
            memory_mb=self.memory_mb,
            inherit=self.inherit,
            overrides=self.env_overrides,
        )

    def start(self) -> RuntimeProcess:
        """Spawn the runtime in a new session and start collecting its output."""
        command = runtime_command() + self.args
        self.started_at = time.monotonic()
        self._popen = subprocess.Popen(
            command,
            env=self.environment(),
            stdin=None if self.terminal else subprocess.DEVNULL,
            stdout=sys.stderr.fileno() if self.terminal else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self._popen.stdout is not None:
            self._output.start(self._popen.stdout, name=f"runtime-output:{self._popen.pid}")
        return self

    def stop(self, timeout: float = 5) -> int | None:
        """SIGTERM the whole process group, then SIGKILL it if it is still there."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._popen.wait(timeout)
        # Whatever is left goes too: the group, and workers that moved to process groups
        # of their own but stayed in the session (they would outlive a killed supervisor).
        self._signal_group(signal.SIGKILL)
        for pid in session_members(self._popen.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._output.join(timeout)
        return self._popen.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit status; raises ``subprocess.TimeoutExpired`` if still running."""
        if self._popen is None:
            raise RuntimeError("the runtime was never started")
        returncode = self._popen.wait(timeout)
        # Not a join: a worker that outlived the runtime may hold the pipe open for ever.
        self.wait_output_idle(1.0)
        return returncode

    def __enter__(self) -> RuntimeProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _signal_group(self, signum: int) -> None:
        assert self._popen is not None
        try:
            os.killpg(self._popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    # ----------------------------------------------------------------- output

    def _pass_on(self, line: str) -> None:
        if self.echo is not None:
            print(line, file=self.echo, flush=True)
        if self.on_line is not None:
            self.on_line(line)

    def wait_output_idle(self, timeout: float) -> bool:
        """True once every byte the runtime wrote so far has been turned into lines.

        Whatever the runtime printed before it posted a result is in the pipe by the time
        the post arrives, so waiting for an empty pipe and an idle reader attributes an
        invocation's logs without guessing with sleeps.
        """
        return self._output.wait_idle(timeout)

    def lines(self) -> list[str]:
        """Every output line so far (stdout and stderr merged), without line endings; with
        ``retain_chars`` only the newest of them.

        Includes everything the runtime wrote before this call: the pipe is drained first
        (up to a second), so a log line written just before a post is never missed.
        """
        return self._output.lines()

    def json_lines(self) -> list[dict[str, Any]]:
        """The output lines that are JSON objects, parsed (the runtime's structured logs)."""
        return [record for record in map(parse_json_object, self.lines()) if record is not None]

    def output(self) -> str:
        return "\n".join(self.lines())

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first line (past or future) matching ``predicate``, or None on timeout/exit."""
        return self._output.wait_for_line(predicate, timeout)

    def wait_for_json(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """Like ``wait_for_line`` for structured log records."""

        def matches(line: str) -> bool:
            record = parse_json_object(line)
            return record is not None and predicate(record)

        line = self.wait_for_line(matches, timeout)
        return parse_json_object(line) if line is not None else None

    def peak_rss_kb(self) -> int | None:
        """Peak resident memory of the runtime's process tree (see ``proc.peak_rss_kb``)."""
        return None if self.pid is None else peak_rss_kb(self.pid)
