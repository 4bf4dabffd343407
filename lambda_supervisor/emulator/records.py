"""What the emulator remembers of each event and of each post the runtime made.

Tests read these records to check exactly what crossed the wire (every header, every
body, the order and the count of answers), and the invoke side waits on them for the
caller's answer. They hold data only: the rules that fill them in (who may answer, when
an answer is too late) live with the queue in ``invocations``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of ``Lambda-Runtime-Deadline-Ms``."""
    return int(time.time() * 1000)


class CaseInsensitiveDict(Mapping[str, str]):
    """A read-only ``str -> str`` mapping whose lookups ignore case, because HTTP header names do.

    Iteration gives the names as they were sent, so ``dict(headers)`` shows the wire form.
    """

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {
            key.lower(): (key, value) for key, value in (items or {}).items()
        }

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"CaseInsensitiveDict({dict(self)!r})"


class Outcome:
    """One post the runtime made about an invocation (or at init), as the emulator saw it."""

    def __init__(
        self,
        kind: str,
        body: bytes,
        headers: Mapping[str, str],
        status: int,
        request_id: str | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.body = body
        self.headers = CaseInsensitiveDict(headers)
        self.status = status
        self.request_id = request_id
        self.trailers = CaseInsensitiveDict(trailers)
        self.received_at = time.monotonic()

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        """The ``Lambda-Runtime-Function-Error-Type`` header, or a streamed error trailer."""
        return self.headers.get("Lambda-Runtime-Function-Error-Type") or self.trailers.get(
            "Lambda-Runtime-Function-Error-Type"
        )

    def __repr__(self) -> str:
        preview = self.body[:80]
        return (
            f"Outcome({self.kind!r}, status={self.status}, error_type={self.error_type!r}, body={preview!r})"
        )


class Invocation:
    """An event submitted to the emulator, and everything the runtime later did with it."""

    def __init__(
        self,
        request_id: str,
        body: bytes,
        content_type: str,
        timeout: float,
        extra_headers: dict[str, str],
        function_arn: str,
        asynchronous: bool = False,
    ) -> None:
        self.request_id = request_id
        self.body = body
        # Submitted as ``InvocationType=Event``: no caller waits, it counts against the async queue.
        self.asynchronous = asynchronous
        self.content_type = content_type
        self.timeout = timeout
        self.extra_headers = extra_headers
        # Sent verbatim after the other headers of the /next answer (malformed-header tests).
        self.raw_header_lines: tuple[bytes, ...] = ()
        self.invoked_function_arn = function_arn
        self.invocation_id: str | None = None
        self.deadline_ms: int | None = None
        self.submitted_at = time.monotonic()
        self.handed_out_at: float | None = None
        self.handed_out = threading.Event()
        self.hand_outs = 0
        self.accepted: list[Outcome] = []
        self.rejected: list[Outcome] = []
        self._done = threading.Event()

    def result(self, timeout: float) -> Outcome:
        """Wait for the first accepted post (response, error or synthetic failure)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no result for invocation {self.request_id!r} within {timeout}s")
        return self.accepted[0]

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finish(self, outcome: Outcome) -> None:
        """Record ``outcome`` as accepted and wake whoever waits for the answer.

        The queue calls this under its lock, once it has decided the outcome is the answer.
        """
        self.accepted.append(outcome)
        self._done.set()

    def wait_done(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an answer; True once there is one."""
        return self._done.wait(timeout)

    @property
    def size(self) -> int:
        """Bytes this record holds on to: the event and every body posted about it."""
        return len(self.body) + sum(len(outcome.body) for outcome in self.accepted + self.rejected)

    def deadline_passed(self) -> bool:
        return self.deadline_ms is not None and now_ms() > self.deadline_ms

    def next_headers(self) -> dict[str, str]:
        """The headers of the ``/next`` answer that hands this event out (raw lines aside)."""
        return {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.invoked_function_arn,
            "Lambda-Runtime-Invocation-Id": self.invocation_id or "",
            **self.extra_headers,
        }

    def __repr__(self) -> str:
        handed_out = self.handed_out.is_set()
        return f"Invocation({self.request_id!r}, handed_out={handed_out}, done={self.done})"


class InvokeListener(Protocol):
    """Hooks the local runner plugs into the invoke side for START/END/REPORT and log tails."""

    def invocation_started(self, invocation: Invocation) -> None: ...

    def invocation_finished(self, invocation: Invocation, outcome: Outcome) -> None: ...

    def log_tail(self, invocation: Invocation) -> str: ...
