"""The /proc readers, over this test's own processes and sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from worker import procfs

pytestmark = [
    pytest.mark.timeout(10),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only"),
]


def test_a_grandchild_is_in_the_family_with_its_parent_links():
    """Tried: a child that starts a grandchild and both wait; the family of the child holds
    both, each placed by its parent, and the test's own pid is not among them; its
    descendants by the kernel's children lists are the grandchild alone. (Started as
    new programs: this test process runs threads, and forking it could deadlock the copy.)"""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_WITH_GRANDCHILD], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip()
        family = procfs.family(procfs.processes(), [child.pid])
        assert len(family) == 2
        assert family[0].pid == child.pid and family[0].ppid == os.getpid()
        assert family[1].ppid == child.pid
        assert family[0].start == procfs.read_stat(child.pid).start
        # The children lists give the same processes below the child, without a scan.
        below = procfs.descendants(child.pid)
        if below is not None:  # None: a kernel that keeps no children lists
            assert [(p.pid, p.ppid) for p in below] == [(p.pid, p.ppid) for p in family[1:]]
    finally:
        for process in procfs.family(procfs.processes(), [child.pid])[::-1]:
            os.kill(process.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


_CHILD_WITH_GRANDCHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
print(grandchild.pid, flush=True)
time.sleep(30)
"""


def test_status_and_descriptors_of_this_process():
    read_fd, write_fd = os.pipe()
    try:
        assert {read_fd, write_fd} <= set(procfs.open_fds())
        assert procfs.status_kb(os.getpid(), "VmRSS") > 0
        assert procfs.status_kb(os.getpid(), "NoSuchField") is None
        assert procfs.read_stat(2**22 + 1) is None
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_the_holder_of_a_loopback_connection_is_found():
    """Tried: a loopback connection made in this process: /proc/net/tcp names its socket by
    the two addresses, and this process, not its parent, holds that socket."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                sockets = procfs.tcp_sockets()
                key = (procfs.tcp_address(client.getsockname()), procfs.tcp_address(client.getpeername()))
                inode = sockets[key]
                assert inode != "0"
                assert procfs.holds(os.getpid(), f"socket:[{inode}]")
                assert not procfs.holds(os.getppid(), f"socket:[{inode}]")
