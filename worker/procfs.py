"""What Linux's /proc says about processes, for the runtime and its dev tooling.

The supervisor finds what a worker started by their parent links, groups and start times
and kills it, reads a worker's resident memory, and has a forked child close what it
inherited; the local emulator asks which process holds the other end of a connection,
and the local runner sums the memory of a runtime's process tree. Every reader tolerates
a process that vanishes while it is read, and where there is no /proc (not Linux) says
so with an empty list or None, and its caller does without.

Only the standard library is imported here: the dev tooling loads this file on its own
(``lambda_supervisor/runtime_modules.py``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import NamedTuple

TCP_TABLE = "/proc/net/tcp"


class Process(NamedTuple):
    """A process as /proc/PID/stat places it."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int  # clock ticks after boot: with ``pid``, which process this is


def read_stat(pid: int) -> Process | None:
    """The process ``pid``, or None when it is gone (or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            line = stat.read()
        # The command name, in parentheses, may hold anything: the fields follow the last ")".
        state, ppid, pgid, sid, *rest = line[line.rindex(b")") + 2 :].split()
        return Process(pid, int(ppid), int(pgid), int(sid), state.decode(), int(rest[15]))
    except (OSError, ValueError, IndexError):
        return None


def processes() -> list[Process]:
    """Every process in /proc (none where there is no /proc)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for name in names:
        if name.isdigit():
            process = read_stat(int(name))
            if process is not None:
                found.append(process)
    return found


def family(processes: list[Process], roots: Iterable[int]) -> list[Process]:
    """The processes ``roots`` and all their descendants, by parent links."""
    by_pid = {p.pid: p for p in processes}
    children: dict[int, list[Process]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    found = [by_pid[pid] for pid in roots if pid in by_pid]
    frontier = list(found)
    while frontier:
        for child in children.get(frontier.pop().pid, ()):
            found.append(child)
            frontier.append(child)
    return found


def descendants(pid: int) -> list[Process] | None:
    """The processes below ``pid``, by the children lists of each of their threads; None
    where the kernel keeps no such lists (then only a scan of /proc finds them, with
    ``family``). Reading a few lists is far quicker than a scan of every process, which
    on a busy machine can make the report of a timeout late."""
    found: list[Process] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone meanwhile
        for thread in threads:
            try:
                with open(f"/proc/{parent}/task/{thread}/children", "rb") as listing:
                    children = [int(child) for child in listing.read().split()]
            except FileNotFoundError:
                if os.path.isdir(f"/proc/{parent}/task/{thread}"):
                    return None  # the thread is there, its list is not: the kernel keeps none
                continue
            except (OSError, ValueError):
                continue
            for child in children:
                process = read_stat(child)
                if process is not None and process.ppid == parent:
                    found.append(process)
                    frontier.append(child)
    return found


def status_kb(pid: int, field: str) -> int | None:
    """A kB figure of /proc/PID/status (``VmRSS``, ``VmHWM``), or None when unknown."""
    prefix = field.encode() + b":"
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(prefix):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_fds(pid: int | str = "self") -> list[int] | None:
    """The descriptors ``pid`` has open, or None when they cannot be listed."""
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return None


def holds(pid: int, target: str) -> bool:
    """Does ``pid`` have a descriptor open on ``target`` (a path, or ``socket:[INODE]``)?"""
    for fd in open_fds(pid) or ():
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def tcp_sockets() -> dict[tuple[str, str], str] | None:
    """The IPv4 TCP sockets of /proc/net/tcp: ``(local, remote)`` addresses as
    ``tcp_address`` writes them, to the socket's inode ("0" for one no process holds).
    None when the table cannot be read."""
    try:
        with open(TCP_TABLE, encoding="ascii") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except OSError:
        return None
    sockets: dict[tuple[str, str], str] = {}
    for row in rows:
        if len(row) > 9:
            sockets.setdefault((row[1], row[2]), row[9])
    return sockets


def tcp_address(address: tuple[str, int]) -> str:
    """An IPv4 address as /proc/net/tcp prints it: the address word in host order, then the port."""
    import socket  # the emulator's only: the runtime does not load it before its first fork

    word = struct.unpack("=I", socket.inet_aton(address[0]))[0]
    return f"{word:08X}:{address[1]:04X}"
