"""Leaves an orphan behind on every call: a grandchild that outlives its parent for a moment."""

import os
import time


def handler(event, context):
    # Double fork: the grandchild outlives its parent and is re-parented to PID 1.
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(0.2)
        os._exit(0)
    os.waitpid(child, 0)
    return os.getpid()
