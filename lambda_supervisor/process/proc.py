"""What /proc tells of a runtime's processes: its session's members, its tree, their memory.

Stopping a runtime must also stop the workers it forked, including those that moved to
process groups of their own, and REPORT's "Max Memory Used" is the whole tree's peak,
not the supervisor's alone. Neither is visible through ``subprocess``; Linux shows both
in /proc, and elsewhere these readers find nothing.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_kb(root: int) -> int | None:
    """Peak resident memory of ``root``'s process tree (VmHWM, summed), Linux only.

    Best effort: workers that already exited are not counted, and shared pages of
    forked workers are counted once per process, as Lambda's own figure roughly is.
    """
    if not Path("/proc").is_dir():
        return None
    total = 0
    for pid in _process_tree(root):
        total += _status_kb(pid, "VmHWM") or 0
    return total or None


def session_members(session: int) -> list[int]:
    """Live processes in the session ``session`` leads (Linux /proc; empty elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields and fields[3] == str(session) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat_fields(pid_dir: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...)."""
    try:
        return (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _process_tree(root: int) -> list[int]:
    """``root`` and its live descendants, from /proc/*/stat parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry)
        if not fields or not fields[1].isdigit():
            continue
        parent = int(fields[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier.extend(children.get(pid, []))
    return tree
