"""Handlers that local callers (serve, invoke, lambda_invoke) read as they stream."""

import json
import os
import time


def timed_chunks(event, context):
    """``count`` lines ``interval`` seconds apart, each saying when it was yielded; a log
    line first, for the log tail."""
    print("streaming", event.get("count", 5), "chunks")
    for index in range(event.get("count", 5)):
        if index:
            time.sleep(event.get("interval", 0.2))
        yield json.dumps({"index": index, "yielded_at": time.time()}) + "\n"


def fail_midway(event, context):
    yield "first\n"
    yield "second\n"
    raise ValueError("broke after 2 chunks")


def exit_midway(event, context):
    yield "first\n"
    os._exit(3)


def fail_before_streaming(event, context):
    raise KeyError("no stream today")
    yield


def buffered(event, context):
    return {"buffered": True, "event": event}


def route(event, context):
    return globals()[event["do"]](event, context)
