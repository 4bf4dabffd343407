"""Keeps memory for good (``grow``), allocates for one call (``allocate``), or sleeps after
writing a marker file (``sleep``); answers which worker and init served. Its SIGTERM hook
notes the worker's pid in ``HOOK_FILE``."""

import os
import signal
import sys
import time

INIT_ID = os.urandom(4).hex()
HOOK_FILE = os.environ.get("HOOK_FILE")
hoard = []


def on_sigterm(signum, frame):
    # The shutdown hook a function installs to flush what it holds.
    if HOOK_FILE:
        with open(HOOK_FILE, "a") as f:
            f.write(f"hook {os.getpid()}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, on_sigterm)


def handler(event, context):
    action = event.get("do")
    if action == "grow":
        hoard.append(bytearray(event["mb"] * 1024 * 1024))
    elif action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        return len(block)
    elif action == "sleep":
        open(event["started_file"], "w").close()
        time.sleep(event["seconds"])
    return {"pid": os.getpid(), "init_id": INIT_ID}
