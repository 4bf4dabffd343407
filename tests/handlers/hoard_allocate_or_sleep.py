"""Keeps memory for good (``grow``), allocates for one call (``allocate``), sleeps after
writing a marker file (``sleep``), or answers and exits a moment later (``exit_soon``);
answers which worker and init served. Its SIGTERM hook notes the worker's pid in
``HOOK_FILE``."""

import os
import signal
import sys
import threading
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
    elif action == "exit_soon":
        # The worker dies once its answer is out, between this invocation and the next.
        threading.Timer(event["after"], os._exit, (7,)).start()
    return {"pid": os.getpid(), "init_id": INIT_ID}
