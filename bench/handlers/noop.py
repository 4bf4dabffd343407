"""A handler that does nothing, so what is measured is the runtime alone."""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> None:
    return None
