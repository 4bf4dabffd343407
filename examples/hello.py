"""The smallest useful handler: greets by name, and fails on purpose when asked to.

Try it locally:

    lambda-supervisor invoke examples/hello.py:handler --event '{"name": "world"}'
    lambda-supervisor invoke examples/hello.py:handler --event '{"fail": true}'   # exit status 1
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


class GreetingError(Exception):
    """Raised when the caller asks for a failure, to show how errors reach the caller."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("fail"):
        raise GreetingError("asked to fail")
    name = event.get("name", "world")
    logger.info("greeting %s", name)
    return {"message": f"Hello, {name}!", "requestId": context.aws_request_id}
