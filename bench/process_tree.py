"""What a runtime's processes hold and spend, read from ``/proc``: memory, CPU, and killing.

A runtime is a tree of processes (this one's supervisor and its forked worker, which has a
process group of its own; awslambdaric is one process), so each figure is summed over the
tree found through the parent pids. Memory is PSS (``smaps_rollup``), which charges each
shared page to its sharers in proportion: a forked worker that still shares the supervisor's
pages is not counted twice, as RSS would count it. CPU is user + system time from
``/proc/PID/stat``: unlike invocations/s it barely moves with other load on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, found through the parent pids in ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_pss_kb(root: int) -> tuple[int, int]:
    """Summed ``Pss`` of the process tree, in kB, and how many processes it counted.

    PSS charges each shared page to its sharers in proportion, so a forked worker that
    still shares the supervisor's pages is not counted twice, which RSS would do.
    """
    total = count = 0
    for pid in process_tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                count += 1
                break
    return total, count


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of the live process tree, from ``/proc/PID/stat``.

    Throughput on a shared machine moves with everyone else's load; the CPU time the
    runtime spent per invocation moves much less, so it is reported beside it.
    """
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the runtime and everything under it (our worker has a process group of its own)."""
    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
