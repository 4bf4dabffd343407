"""Shared fixtures: a fresh Runtime API emulator per test, a raw HTTP connection to it, and
``serve`` of the test module's own ``app_path``.

Each test gets its own emulator on an ephemeral port so tests can run in any order, in
parallel, and on a machine where other people are using the usual ports.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lambda_supervisor.emulator import RuntimeAPIEmulator

if TYPE_CHECKING:
    from local_support import ServeProcess

# The helpers tests share check what they are given as a test's own asserts do: rewritten,
# so a failure shows what was compared. (Registered before any test module imports them.)
pytest.register_assert_rewrite(
    "chaos_support", "fake_runtime_api", "http_support", "local_support", "proc_support", "runtime_harness"
)

# Handler modules, copied into a task root by the tests that run them: not tests themselves.
collect_ignore = ["handlers"]


@pytest.fixture
def emulator() -> Iterator[RuntimeAPIEmulator]:
    """A started emulator, stopped after the test whatever happened."""
    emu = RuntimeAPIEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def http_conn(emulator: RuntimeAPIEmulator) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to the emulator, as the runtime would hold."""
    conn = http.client.HTTPConnection(emulator.address, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def serve_echo(app_path: Path) -> Iterator[ServeProcess]:
    """``serve`` of the function ``echo`` in the module the test module's ``app_path``
    fixture provides."""
    from local_support import ServeProcess

    with ServeProcess(f"{app_path}:echo", "--timeout", "30") as server:
        yield server
