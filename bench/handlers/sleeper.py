"""Waits as an I/O-bound function waits on a call: 20 ms by default, or the event's
``{"sleep": seconds}``. ``{"crash": true}`` dies without a word (``os._exit(1)``);
``{"hang": true}`` never returns in any function timeout the bench sets. Used for the
concurrent (Lambda Managed Instances) rows."""

from __future__ import annotations

import os
import time
from typing import Any

HANG_S = 3600.0


def handler(event: Any, context: Any) -> None:
    event = event if isinstance(event, dict) else {}
    if event.get("crash"):
        os._exit(1)
    time.sleep(HANG_S if event.get("hang") else float(event.get("sleep", 0.02)))
    return None
