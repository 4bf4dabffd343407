"""How much the emulator holds: the async queue's bound, and which finished records go.

Tests keep every record to inspect it, but ``serve`` may run for days with callers it
does not know, and everything they send would otherwise stay in memory. So an
``InvocationType=Event`` call beyond the async queue's bound is refused (429, as Lambda
throttles), and a server that sets retention limits forgets the records of invocations
that finished longest ago.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import Invocation

# What the Invoke API queues for ``InvocationType=Event`` before it answers 429: Lambda's
# own queue is durable storage, this one is memory in the serving process.
ASYNC_QUEUE_LENGTH = 100
ASYNC_QUEUE_BYTES = 32 * 1024 * 1024


class QueueFull(Exception):
    """The async queue is at its bound; the Invoke API answers 429 TooManyRequestsException."""


class RuntimeUnavailable(Exception):
    """No runtime is waiting in ``GET /next`` for a synchronous call, and the emulator
    refuses rather than queues it, as Lambda Managed Instances do (``refuse_when_busy``):
    the Invoke API answers 400 ``Runtime.Unavailable``."""


def check_async_room(queued: Iterable[Invocation], size: int, *, length: int, max_bytes: int) -> None:
    """``QueueFull`` unless an async event of ``size`` bytes fits beside those ``queued``."""
    waiting = [invocation for invocation in queued if invocation.asynchronous]
    queued_bytes = sum(len(invocation.body) for invocation in waiting)
    if len(waiting) >= length or queued_bytes + size > max_bytes:
        raise QueueFull(
            f"Rate Exceeded. {len(waiting)} asynchronous invocations ({queued_bytes} bytes) are "
            f"waiting; the local queue holds at most {length} ({max_bytes} bytes)."
        )


def finished_to_forget(
    invocations: Iterable[Invocation], *, keep: int | None, keep_bytes: int | None
) -> list[Invocation]:
    """The finished invocations that finished first, beyond ``keep`` of them or ``keep_bytes``.

    The newest finished one always stays: the thread that accepted its post looks it up
    again to report it.
    """
    if keep is None and keep_bytes is None:
        return []
    finished = sorted(
        (invocation for invocation in invocations if invocation.done),
        key=lambda invocation: invocation.accepted[0].received_at,
    )
    count, size = len(finished), sum(invocation.size for invocation in finished)
    forget = []
    for invocation in finished[:-1]:
        over_count = keep is not None and count > keep
        over_size = keep_bytes is not None and size > keep_bytes
        if not (over_count or over_size):
            break
        forget.append(invocation)
        count, size = count - 1, size - invocation.size
    return forget
