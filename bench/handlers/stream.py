"""Streaming handlers for the bench: ``event["mode"]`` says which.

- ``stream``: ``count`` small chunks ``interval`` seconds apart, each yielded when made;
- ``buffered``: the same chunks made at the same pace, returned together at the end;
- ``bulk``: ``count`` blocks of ``block`` bytes, as fast as the runtime takes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    if event["mode"] == "bulk":
        return _bulk(event["block"], event["count"])
    chunks = _paced(event["count"], event["interval"])
    return chunks if event["mode"] == "stream" else "".join(chunks)


def _paced(count: int, interval: float) -> Iterator[str]:
    for index in range(count):
        if index:
            time.sleep(interval)
        yield f"chunk {index}\n"


def _bulk(block_size: int, count: int) -> Iterator[bytes]:
    block = b"x" * block_size
    for _ in range(count):
        yield block
