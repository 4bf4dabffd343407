"""What /proc tells of a runtime's processes: its session's members, its tree, their memory.

Stopping a runtime must also stop the workers it forked, including those that moved to
process groups of their own, and REPORT's "Max Memory Used" is the whole tree's peak,
not the supervisor's alone. Neither is visible through ``subprocess``; Linux shows both
in /proc, read with the runtime's own readers (``worker/procfs.py``), and elsewhere these
find nothing.
"""

from __future__ import annotations

from lambda_supervisor.runtime_modules import procfs


def peak_rss_kb(root: int) -> int | None:
    """Peak resident memory of ``root``'s process tree (VmHWM, summed), Linux only.

    Best effort: workers that already exited are not counted, and shared pages of
    forked workers are counted once per process, as Lambda's own figure roughly is.
    """
    total = sum(
        procfs.status_kb(process.pid, "VmHWM") or 0 for process in procfs.family(procfs.processes(), [root])
    )
    return total or None


def session_members(session: int) -> list[int]:
    """Live processes in the session ``session`` leads (Linux /proc; empty elsewhere)."""
    return [process.pid for process in procfs.processes() if process.sid == session and process.state != "Z"]
