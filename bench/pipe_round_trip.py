"""How long one byte takes to go to another process over a pipe and back, on two CPUs
and on one: the floor under what handing an event to a worker can cost.

    python3 bench/pipe_round_trip.py

Not part of ``run.py``'s figures; it explains them. A runtime of one process has no such
round trip; this one has one per event, and on a machine where waking a process on
another CPU is slow (virtual machines often are) it is most of the difference.
"""

from __future__ import annotations

import os
import statistics
import time

ROUND_TRIPS = 20_000


def round_trip_us(cpus: set[int] | None) -> float:
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        for _ in range(ROUND_TRIPS):
            os.read(to_child_r, 1)
            os.write(to_parent_w, b"y")
        os._exit(0)
    before = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    try:
        started = time.perf_counter()
        for _ in range(ROUND_TRIPS):
            os.write(to_child_w, b"x")
            os.read(to_parent_r, 1)
        elapsed = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, before)
        os.waitpid(pid, 0)
        for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
            os.close(fd)
    return elapsed / ROUND_TRIPS * 1e6


def main() -> None:
    cpus = os.sched_getaffinity(0)
    settings = [("any CPU", None), ("one CPU", {min(cpus)})]
    for label, pinned in settings:
        runs = [round_trip_us(pinned) for _ in range(5)]
        print(
            f"pipe round trip, {label}: median {statistics.median(runs):.1f} µs "
            f"(min {min(runs):.1f}, max {max(runs):.1f}; {len(cpus)} CPUs here)"
        )


if __name__ == "__main__":
    main()
