"""Raises exceptions that are hard to report (``{"raise": KIND}``): a huge message, unbounded
recursion, an exception whose ``__str__`` raises, one raised after its working directory went.
Otherwise answers its init id, how many calls it served and the trace id it saw."""

import os
import tempfile

INIT_ID = os.urandom(4).hex()  # changes whenever init runs again
CALLS = 0


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for this one")


def recurse(depth):
    return recurse(depth + 1)


def handler(event, context):
    global CALLS
    CALLS += 1
    kind = event.get("raise")
    if kind == "huge":
        raise ValueError("x" * event["size"])
    if kind == "recursion":
        recurse(0)
    if kind == "unprintable":
        raise Unprintable()
    if kind == "cwd_removed":
        gone = tempfile.mkdtemp()
        os.chdir(gone)
        os.rmdir(gone)
        raise KeyError("after the working directory went")
    return {"init_id": INIT_ID, "calls": CALLS, "trace_id": os.environ.get("_X_AMZN_TRACE_ID")}
