"""``breakpoint()`` in a handler under ``invoke`` opens pdb on the terminal.

The CLI runs on a pseudo-terminal, as in a shell: what the person types reaches pdb in
the worker, pdb's answers and the result come back on the terminal.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from local_support import CLI
from runtime_harness import write_task

STOPS = """\
    def handler(event, context):
        answer = event["n"] * 2
        breakpoint()
        return {"answer": answer}
    """


class Terminal:
    """The master side of a pty whose slave is a child's stdin, stdout and stderr."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
        os.close(slave)
        self.seen = b""

    def read_until(self, text: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"never saw {text!r}; the terminal shows:\n{self.seen.decode(errors='replace')}"
                )
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed its end (EIO on Linux)
                    chunk = b""
                if not chunk:
                    raise AssertionError(
                        f"terminal closed before {text!r}:\n{self.seen.decode(errors='replace')}"
                    )
                self.seen += chunk
        return self.seen

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        os.close(self.master)


@pytest.mark.timeout(60)
def test_breakpoint_in_the_handler_opens_pdb_on_the_terminal(tmp_path: Path) -> None:
    """Tried: ``invoke`` on a terminal of a handler that calls ``breakpoint()``; typed
    ``p answer + 1`` and ``p 1+1`` at the prompt, then ``c``: pdb answers 43 and 2, the
    handler goes on and its result is printed, exit status 0."""
    write_task(tmp_path, {"app.py": STOPS})
    terminal = Terminal([*CLI, "invoke", "app.handler", "--event", '{"n": 21}'], tmp_path)
    try:
        terminal.read_until(b"(Pdb) ", timeout=30)
        terminal.type("p answer + 1")
        terminal.read_until(b"\n43\r\n", timeout=10)
        terminal.type("p 1+1")
        terminal.read_until(b"\n2\r\n", timeout=10)
        terminal.type("c")
        terminal.read_until(b'{"answer": 42}', timeout=20)
        assert terminal.popen.wait(20) == 0
        assert b"BdbQuit" not in terminal.seen
    finally:
        terminal.close()
