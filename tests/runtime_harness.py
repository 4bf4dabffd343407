"""Start the real runtime (bin/bootstrap, supervisor, forked worker) against a real emulator.

Tests write a handler module into a fresh task root, start the runtime as Lambda would,
and talk to it only through the Runtime API emulator over HTTP. Handler modules live in
tests/handlers/, one file each, and are copied into a task root under the name the test
needs (``handler_files``, ``copy_handler``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from lambda_supervisor.emulator import Invocation, Outcome, RuntimeAPIEmulator
from lambda_supervisor.process import RuntimeProcess

STARTUP_TIMEOUT = 30.0
RESULT_TIMEOUT = 30.0
HANDLERS = Path(__file__).parent / "handlers"


def handler_source(name: str) -> str:
    """The source of the handler module tests/handlers/NAME.py."""
    return (HANDLERS / f"{name}.py").read_text()


def handler_files(name: str, as_name: str = "app.py") -> dict[str, str]:
    """tests/handlers/NAME.py as the file ``as_name`` of a task root, for ``running_runtime``
    and ``write_task`` (merge more files into the dict as needed)."""
    return {as_name: handler_source(name)}


def copy_handler(directory: Path, name: str, as_name: str = "app.py") -> Path:
    """Copy tests/handlers/NAME.py into ``directory`` as ``as_name``; the copy's path."""
    write_task(directory, handler_files(name, as_name))
    return directory / as_name


def write_task(task_root: Path, files: Mapping[str, str]) -> Path:
    for name, source in files.items():
        path = task_root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return task_root


@contextmanager
def running_runtime(
    emulator: RuntimeAPIEmulator,
    task_root: Path,
    files: Mapping[str, str],
    handler: str | None = "app:handler",
    *,
    env: Mapping[str, str | None] | None = None,
    args: tuple[str, ...] = (),
    wait_ready: bool = True,
) -> Iterator[RuntimeProcess]:
    write_task(task_root, files)
    runtime = RuntimeProcess(
        handler, runtime_api=emulator.address, task_root=task_root, env=dict(env or {}), args=args
    )
    runtime.start()
    try:
        if wait_ready:
            assert emulator.wait_for_poll(STARTUP_TIMEOUT), f"runtime never polled /next:\n{runtime.output()}"
        yield runtime
    finally:
        runtime.stop()


def invoke(
    emulator: RuntimeAPIEmulator, event: object = None, *, timeout: float | None = None, **kw
) -> Outcome:
    """Submit one event and wait for its single outcome."""
    invocation = emulator.submit({} if event is None else event, timeout=timeout, **kw)
    outcome = invocation.result(RESULT_TIMEOUT)
    return outcome


def only_answer(
    emulator: RuntimeAPIEmulator, invocation: Invocation, timeout: float = RESULT_TIMEOUT
) -> Outcome:
    """The invocation's outcome, once it is known to be its one answer: accepted (202) from
    the runtime, with no other post accepted or refused."""
    outcome = invocation.result(timeout)
    assert emulator.outcomes(invocation.request_id) == [outcome]
    assert invocation.rejected == []
    assert outcome.status == 202
    return outcome


def log_records(runtime: RuntimeProcess, message: str, wait: float = 10.0) -> list[dict]:
    """The supervisor's records with this message, once at least one has been written.

    The supervisor posts an answer before it logs about it, so a record can come a moment
    after the caller has its answer.
    """
    runtime.wait_for_line(lambda line: f'"message":"{message}"' in line, wait)
    return [record for record in runtime.json_lines() if record.get("message") == message]
