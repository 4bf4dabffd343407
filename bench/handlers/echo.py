"""Returns the event it was given: the payload crosses every layer of the runtime twice."""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> Any:
    return event
