"""Pinning to one CPU, as everything inside a small Lambda function is.

A Lambda function of up to 1,769 MB gets one vCPU or less: there the runtime's processes
and the Runtime API's end never run at once on two CPUs, and handing an event from one
process to another wakes no other CPU. The "1 CPU" rows reproduce that by pinning the
stand-in and the runtime to the first CPU the bench may use. Every other row leaves them
free, sharing the machine's cores as they would share a Lambda sandbox's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from stand_in import StandIn


@dataclass(frozen=True)
class CPUs:
    """The CPUs the bench may use, and the one the "1 CPU" rows run on."""

    all: set[int]
    one: set[int]

    @classmethod
    def of_this_process(cls) -> CPUs:
        available = os.sched_getaffinity(0)
        return cls(available, {min(available)})


def pinned_to(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus``; None leaves it free."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def stand_in_pinned(stand_in: StandIn, cpus: set[int] | None, every: CPUs) -> Iterator[None]:
    """The stand-in on ``cpus`` (None: all of them) for a while, then free again."""
    os.sched_setaffinity(stand_in.proc.pid, cpus or every.all)
    yield  # on an error the stand-in is being closed: nothing to free
    os.sched_setaffinity(stand_in.proc.pid, every.all)
