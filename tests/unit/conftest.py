"""The unit tier: pure modules over bytes and values, no runtime started, milliseconds each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A real pipe, (read end, write end), both closed after the test if still open."""
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass
