"""Run the real runtime (``bin/bootstrap``) as a child process, capturing its output.

End-to-end tests and the local runner both need the runtime exactly as Lambda starts it:
a separate process, the platform's environment variables, logs on stdout. The child gets
its own session so that stopping it also stops every worker it forked, and a reader
thread keeps its output so tests can wait for a log line instead of sleeping.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lambda_supervisor.runtime_modules import load

if TYPE_CHECKING:
    from worker import procfs
else:
    procfs = load("worker/procfs.py")

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = REPO_ROOT / "bin" / "bootstrap"
# What the runtime takes from our environment: the variables Lambda itself provides to
# every function that make sense on this machine. Anything else (AWS keys, tokens, the
# rest of a developer's shell) reaches the handler only when named: ``inherit`` or ``env``.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "PYTHONPATH", "TMPDIR")
# The variables through which an AWS SDK finds credentials; ``--pass-aws-credentials``.
AWS_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
)
# Unless one of those is asked for, the SDK must not find the developer's credentials by
# itself either: in ~/.aws (found through the password database even without HOME) or
# from the metadata service of the machine it runs on.
_NO_AMBIENT_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# What is kept of one output line; the rest is counted, not stored. CloudWatch Logs takes
# events up to 256 KiB, so a longer line could not reach Lambda's logs whole either.
MAX_LINE_BYTES = 256 * 1024
_READ_CHUNK = 65536


def runtime_command() -> list[str]:
    """``bin/bootstrap`` from a source checkout, else the copy installed with this package,
    which runs the installed ``supervisor`` (``python -m supervisor`` would run whatever
    ``supervisor`` the current directory holds, PyPI's supervisord say)."""
    if BOOTSTRAP.is_file():
        return [str(BOOTSTRAP)]
    return [str(Path(__file__).with_name("deploy") / "bootstrap")]


class LineTail:
    """The newest lines of a stream: as many as cover ``limit`` characters, or all (None).

    A long-running server keeps only what it can still show (a 4 KB log tail), while a
    test that inspects a short run keeps every line. ``count`` numbers lines ever added,
    so a reader can ask for what came after the lines it has already seen.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.count = 0
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0

    def append(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        self.count += 1
        if self.limit is None:
            return
        # Drop the oldest line only while the rest still cover the limit.
        while len(self._lines) > 1 and self._size - len(self._lines[0]) - 1 >= self.limit:
            self._size -= len(self._lines.popleft()) + 1

    def since(self, count: int) -> list[str]:
        """The kept lines added after the first ``count`` ever added."""
        new = min(self.count - count, len(self._lines))
        return list(itertools.islice(reversed(self._lines), new))[::-1]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def platform_environment(
    *,
    runtime_api: str,
    handler: str | None,
    task_root: str | os.PathLike[str] | None,
    function_name: str = "function",
    memory_mb: int = 3008,
    region: str = "us-east-1",
) -> dict[str, str]:
    """The variables Lambda sets for a function, so handlers see what they would on AWS."""
    env = {
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_SUPERVISOR_PYTHON": sys.executable,
    }
    if handler is not None:
        env["HANDLER"] = handler
    if task_root is not None:
        env["LAMBDA_TASK_ROOT"] = str(Path(task_root).resolve())
    return env


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
        self.started_at: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._lines = LineTail(retain_chars)
        self._lines_changed = threading.Condition()
        self._reader: threading.Thread | None = None
        self._reader_busy = False

    # ----------------------------------------------------------------- lifecycle

    def environment(self) -> dict[str, str]:
        """The child's full environment: the part of ours it may see, the platform's, the overrides."""
        inherited = (*PASSED_THROUGH, *self.inherit)
        env = {name: os.environ[name] for name in inherited if name in os.environ}
        if not set(self.inherit) & set(AWS_CREDENTIALS):
            env.update(_NO_AMBIENT_CREDENTIALS)
        env.update(
            platform_environment(
                runtime_api=self.runtime_api,
                handler=self.handler,
                task_root=self.task_root,
                function_name=self.function_name,
                memory_mb=self.memory_mb,
            )
        )
        if self.handler is None:
            env.pop("HANDLER", None)
        for name, value in self.env_overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self) -> RuntimeProcess:
        """Spawn the runtime in a new session and start collecting its output."""
        command = runtime_command() + self.args
        self.started_at = time.monotonic()
        self._popen = subprocess.Popen(
            command,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._read_output, name=f"runtime-output:{self._popen.pid}", daemon=True
        )
        self._reader.start()
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
        for process in procfs.processes():
            if process.sid != self._popen.pid or process.state == "Z":
                continue
            try:
                os.kill(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._reader is not None:
            self._reader.join(timeout)
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

    def _read_output(self) -> None:
        """Split the child's output into lines; raw reads so ``wait_output_idle`` can work.

        ``_reader_busy`` is set before bytes leave the pipe and cleared only once they are
        lines, so "not busy and the pipe is empty" really means "everything is a line".
        Nothing a line contains, and no failure to pass it on, may end this loop: the
        runtime would block on a full pipe with nobody reading it.
        """
        assert self._popen is not None and self._popen.stdout is not None
        fd = self._popen.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        line = _LineAssembler()
        while True:
            poller.poll()
            with self._lines_changed:
                self._reader_busy = True
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                chunk = b""
            for raw in line.feed(chunk):
                self._emit(raw)
            with self._lines_changed:
                self._reader_busy = False
                self._lines_changed.notify_all()
            if not chunk:
                break
        rest = line.flush()
        if rest is not None:
            self._emit(rest)
        self._popen.stdout.close()
        with self._lines_changed:
            self._lines_changed.notify_all()

    def _emit(self, raw: bytes) -> None:
        """Keep one line and pass it on; a line that cannot be passed on is dropped."""
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        with self._lines_changed:
            self._lines.append(line)
            self._lines_changed.notify_all()
        try:
            if self.echo is not None:
                print(line, file=self.echo, flush=True)
            if self.on_line is not None:
                self.on_line(line)
        except Exception:
            pass  # a closed stream or a line a callback chokes on must not stop the reader

    def wait_output_idle(self, timeout: float) -> bool:
        """True once every byte the runtime wrote so far has been turned into lines.

        Whatever the runtime printed before it posted a result is in the pipe by the time
        the post arrives, so waiting for an empty pipe and an idle reader attributes an
        invocation's logs without guessing with sleeps.
        """
        if self._popen is None or self._popen.stdout is None:
            return True
        deadline = time.monotonic() + timeout
        with self._lines_changed:
            while True:
                if not self._reader_busy and _unread_bytes(self._popen.stdout) == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lines_changed.wait(min(remaining, 0.01))

    def lines(self) -> list[str]:
        """Every output line so far (stdout and stderr merged), without line endings; with
        ``retain_chars`` only the newest of them.

        Includes everything the runtime wrote before this call: the pipe is drained first
        (up to a second), so a log line written just before a post is never missed.
        """
        if threading.current_thread() is not self._reader:
            self.wait_output_idle(1.0)
        with self._lines_changed:
            return list(self._lines)

    def json_lines(self) -> list[dict[str, Any]]:
        """The output lines that are JSON objects, parsed (the runtime's structured logs)."""
        return [record for record in map(parse_json_object, self.lines()) if record is not None]

    def output(self) -> str:
        return "\n".join(self.lines())

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        """The first line (past or future) matching ``predicate``, or None on timeout/exit."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._lines_changed:
            while True:
                for line in self._lines.since(seen):
                    if predicate(line):
                        return line
                seen = self._lines.count
                remaining = deadline - time.monotonic()
                reader_done = self._reader is not None and not self._reader.is_alive()
                if remaining <= 0 or reader_done:
                    return None
                self._lines_changed.wait(min(remaining, 0.5))

    def wait_for_json(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """Like ``wait_for_line`` for structured log records."""

        def matches(line: str) -> bool:
            record = parse_json_object(line)
            return record is not None and predicate(record)

        line = self.wait_for_line(matches, timeout)
        return parse_json_object(line) if line is not None else None

    # ----------------------------------------------------------------- memory

    def peak_rss_kb(self) -> int | None:
        """Peak resident memory of the runtime's process tree (VmHWM, summed), Linux only.

        Best effort: workers that already exited are not counted, and shared pages of
        forked workers are counted once per process, as Lambda's own figure roughly is.
        """
        if self.pid is None or not Path("/proc").is_dir():
            return None
        total = 0
        for process in procfs.family(procfs.processes(), [self.pid]):
            total += procfs.status_kb(process.pid, "VmHWM") or 0
        return total or None


class _LineAssembler:
    """Bytes in, complete lines out, in time linear in the input however long a line is.

    A line's pieces are collected and joined once at its newline (never concatenated chunk
    by chunk), and only its first ``MAX_LINE_BYTES`` are kept; the rest is counted.
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._kept = 0
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        *complete, last = chunk.split(b"\n")
        lines = []
        for piece in complete:
            self._add(piece)
            lines.append(self._take())
        self._add(last)
        return lines

    def flush(self) -> bytes | None:
        """The unterminated last line, if there is one."""
        return self._take() if self._kept or self._dropped else None

    def _add(self, piece: bytes) -> None:
        room = MAX_LINE_BYTES - self._kept
        if len(piece) > room:
            self._dropped += len(piece) - room
            piece = piece[:room]
        if piece:
            self._parts.append(piece)
            self._kept += len(piece)

    def _take(self) -> bytes:
        line = b"".join(self._parts)
        if self._dropped:
            line += f" [... {self._dropped} more bytes of this line dropped]".encode()
        self._parts, self._kept, self._dropped = [], 0, 0
        return line


def parse_json_object(line: str) -> dict[str, Any] | None:
    """``line`` as a JSON object, or None when it is plain text or another JSON value."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _unread_bytes(stream: Any) -> int:
    """Bytes waiting in a pipe (FIONREAD); 0 once it is closed."""
    try:
        if stream.closed:
            return 0
        return struct.unpack("i", fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\0" * 4))[0]
    except (OSError, ValueError):
        return 0


__all__ = ["BOOTSTRAP", "LineTail", "RuntimeProcess", "parse_json_object", "platform_environment"]
