"""``lambda-supervisor remote-invoke``: one synchronous invocation, result then log tail.

The result goes to stdout untouched (so it can be piped to ``jq``), the decoded log tail
to stderr, and a function error makes the exit status non-zero so scripts and CI notice.
Invocations are never retried: an invocation is not idempotent, and a client-side retry
after a read timeout would run the function twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DeployError

# Lambda's longest timeout is 900 s; wait a little longer than that for the answer.
READ_TIMEOUT_SECONDS = 905
FUNCTION_ERROR_EXIT = 1


@dataclass(frozen=True)
class InvokeOutcome:
    status: int
    payload: bytes
    function_error: str | None
    log_tail: str | None
    executed_version: str | None


def read_payload(inline: str | None, payload_file: str | None, stdin: BinaryIO) -> bytes:
    """``--payload`` text, ``--payload-file PATH``, or ``--payload-file -`` for stdin.

    JSON is checked here because Lambda would reject it anyway, after a round trip.
    """
    if inline is not None and payload_file is not None:
        raise DeployError("Give either --payload or --payload-file, not both")
    if payload_file == "-":
        data = stdin.read()
    elif payload_file is not None:
        path = Path(payload_file)
        if not path.is_file():
            raise DeployError(f"Payload file {path} does not exist")
        data = path.read_bytes()
    else:
        data = (inline if inline is not None else "{}").encode("utf-8")
    try:
        json.loads(data or b"null")
    except ValueError as exc:
        raise DeployError(f"The payload is not valid JSON: {exc}") from exc
    return data


def decode_log_tail(encoded: str | None) -> str | None:
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return encoded


def invoke(client: Any, function_name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
    request: dict[str, Any] = {
        "FunctionName": function_name,
        "InvocationType": "RequestResponse",
        "LogType": "Tail",
        "Payload": payload,
    }
    if qualifier:
        request["Qualifier"] = qualifier
    answer = client.invoke(**request)
    return InvokeOutcome(
        status=int(answer.get("StatusCode", 0)),
        payload=answer["Payload"].read() if answer.get("Payload") is not None else b"",
        function_error=answer.get("FunctionError"),
        log_tail=decode_log_tail(answer.get("LogResult")),
        executed_version=answer.get("ExecutedVersion"),
    )


def print_outcome(outcome: InvokeOutcome, stdout: BinaryIO, stderr: Any = None) -> int:
    """Write the result, then the log tail; return the command's exit status."""
    err = stderr or sys.stderr
    stdout.write(outcome.payload)
    if not outcome.payload.endswith(b"\n"):
        stdout.write(b"\n")
    stdout.flush()
    if outcome.log_tail is not None:
        err.write("--- log tail (last 4 KB) ---\n")
        err.write(outcome.log_tail if outcome.log_tail.endswith("\n") else outcome.log_tail + "\n")
    else:
        err.write("--- no log tail was returned ---\n")
    if outcome.function_error:
        err.write(f"Function error: {outcome.function_error}\n")
        err.flush()
        return FUNCTION_ERROR_EXIT
    err.flush()
    return 0
