"""The /proc readers, over this test's own processes and sockets."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from worker import procfs

pytestmark = [
    pytest.mark.timeout(10),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only"),
]


def test_a_forked_grandchild_is_in_the_family_with_its_parent_links():
    """Tried: a child that forks a grandchild and both wait; the family of the child holds
    both, each placed by its parent, and the test's own pid is not among them."""
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only forks and waits to be killed
        if os.fork() == 0:
            os.write(ready_write, b"g")
        signal.pause()
        os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"g"
        family = procfs.family(procfs.processes(), [child])
        assert len(family) == 2
        assert family[0].pid == child and family[0].ppid == os.getpid()
        assert family[1].ppid == child
        assert family[0].start == procfs.read_stat(child).start
    finally:
        for process in procfs.family(procfs.processes(), [child])[::-1]:
            os.kill(process.pid, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready_read)
        os.close(ready_write)


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
