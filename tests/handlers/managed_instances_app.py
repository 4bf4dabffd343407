"""A function for the Lambda Managed Instances tests (handler ``app.route``, ``{"do": KIND}``).

It records its init where a test can see it: ``IMPORTED_IN`` is the pid of the process
that imported it and ``IMPORTS`` counts the imports in this process's memory; with
``NOTES_FILE`` set, every import and every SnapStart runtime hook appends a line
``<what> <pid>`` there. With ``HOOKS`` set it registers one SnapStart runtime hook of each
kind with ``snapshot_restore_py``; ``FAIL_HOOK`` names one to fail.
"""

import logging
import os
import sys
import time

IMPORTED_IN = os.getpid()
IMPORTS = 0
IMPORTS += 1
NOTES_FILE = os.environ.get("NOTES_FILE")
FAIL_HOOK = os.environ.get("FAIL_HOOK")
logger = logging.getLogger("app")
logger.setLevel(logging.INFO)


def note(what):
    if NOTES_FILE:
        with open(NOTES_FILE, "a") as notes:
            notes.write(f"{what} {os.getpid()}\n")


note("import")
if os.environ.get("SAY_AT_IMPORT"):
    print("imported in", os.getpid(), os.environ["SAY_AT_IMPORT"])

if os.environ.get("FAIL_IMPORT"):
    raise RuntimeError("the function cannot start")

if os.environ.get("HOOKS"):
    import snapshot_restore_py

    @snapshot_restore_py.register_before_snapshot
    def before_snapshot():
        note("before_snapshot")
        if FAIL_HOOK == "before_snapshot":
            raise ValueError("cannot prepare the snapshot")

    @snapshot_restore_py.register_after_restore
    def after_restore():
        note("after_restore")
        if FAIL_HOOK == "after_restore":
            raise ValueError("cannot reconnect")


def who(event, context):
    return {"pid": os.getpid(), "imported_in": IMPORTED_IN, "imports": IMPORTS}


def sleep(event, context):
    if event.get("started_file"):
        open(event["started_file"] + f".{event.get('n', 0)}", "w").close()
    time.sleep(event["seconds"])
    return who(event, context)


sleep_ok = sleep  # the chaos app's name for it


def exit_(event, context):
    os._exit(3)


def chatter(event, context):
    """Log records and print lines, short and far longer than a pipe keeps whole, each
    naming the invocation that wrote it."""
    request_id = context.aws_request_id
    for i in range(event["lines"]):
        logger.info("record %d of %s", i, request_id)
        print(f"{request_id} {i} " + "x" * event["width"])
        sys.stderr.write(f"{request_id} {i} stderr\n")
    return who(event, context)


def route(event, context):
    name = event["do"]
    return globals()[name + "_" if name == "exit" else name](event, context)
