"""Shared fixtures: a fresh Runtime API emulator per test, and a raw HTTP connection to it.

Each test gets its own emulator on an ephemeral port so tests can run in any order, in
parallel, and on a machine where other people are using the usual ports.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from lambda_supervisor.emulator import RuntimeAPIEmulator


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
