"""What /proc says about processes, for tests that check what a runtime leaves running.

Process state has no event to wait on, so ``wait_until`` polls; everything else reads /proc
once and returns what it found (a process gone in between reads as gone).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    name: str


def _stat_fields(pid: int) -> tuple[str, list[str]] | None:
    """The command name and the fields after it in /proc/PID/stat (the name may hold spaces
    and parentheses: it is cut at the first "(" and the last ")")."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()


def read_proc(pid: int) -> Proc | None:
    stat = _stat_fields(pid)
    if stat is None:
        return None
    name, fields = stat
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], name)


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot): with the pid, it names one process even
    after the pid is reused."""
    stat = _stat_fields(pid)
    return None if stat is None else int(stat[1][19])


def is_running(pid: int) -> bool:
    """Is ``pid`` there and not a zombie (a zombie has finished running)?"""
    proc = read_proc(pid)
    return proc is not None and proc.state != "Z"


def all_procs() -> list[Proc]:
    procs = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = read_proc(int(entry))
            if proc is not None:
                procs.append(proc)
    return procs


def session_procs(sid: int) -> list[Proc]:
    """The runtime's processes (it is started in a session of its own): every live one, and
    every zombie that the supervisor or a worker has to reap.

    A killed handler child re-parented to the machine's init is dead already; reaping it is
    that init's job (on Lambda, the platform's), and some inits only do it now and then.
    """
    procs = [proc for proc in all_procs() if proc.sid == sid]
    ours = {proc.pid for proc in procs}
    return [proc for proc in procs if proc.state != "Z" or proc.ppid in ours]


def running_in_session(sid: int) -> list[Proc]:
    """The processes of session ``sid`` that are still running (zombies left out)."""
    return [proc for proc in all_procs() if proc.sid == sid and proc.state != "Z"]


def children_of(pid: int) -> list[Proc]:
    return [proc for proc in all_procs() if proc.ppid == pid]


def environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` was started with, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def open_fds(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (``pipe:[..]``, ``socket:[..]``, ...)."""
    targets = []
    for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            targets.append(f"{name}->{os.readlink(f'/proc/{pid}/fd/{name}')}")
        except OSError:
            pass
    return targets


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def rss_kb(pid: int) -> int:
    """Resident memory now."""
    return _status_kb(pid, "VmRSS")


def peak_rss_kb(pid: int) -> int:
    """The most resident memory ``pid`` has had (its high-water mark)."""
    return _status_kb(pid, "VmHWM")


def catches_signal(pid: int, signum: int) -> bool:
    """Has ``pid`` installed a handler for ``signum`` (its SigCgt mask in /proc)?"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    except OSError:
        return False
    return False


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something true; that value, or the last one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
