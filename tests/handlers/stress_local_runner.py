"""Functions that push the local runner's bounds: an init that hangs on request (``HANG_INIT``:
``first`` or ``always``, each start noted in ``starts.txt`` beside the module), output in floods
and in lines of any size, log lines with forged request ids, a signal to the runtime itself."""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STARTS = os.path.join(HERE, "starts.txt")
with open(STARTS, "a") as starts:
    starts.write(f"{os.getppid()}\n")  # the runtime (supervisor) this import runs under
with open(STARTS) as starts:
    START_COUNT = len(starts.read().split())
HANG_INIT = os.environ.get("HANG_INIT")
if HANG_INIT == "always" or (HANG_INIT == "first" and START_COUNT == 1):
    time.sleep(3600)  # an import that never finishes (a dead database, a stuck download)


def ok(event, context):
    return {"n": event.get("n"), "starts": START_COUNT}


def chatty(event, context):
    for index in range(8):
        print(f"call {event['n']} line {index} " + "x" * 1000)
    return event["n"]


def slow_record(event, context):
    time.sleep(0.3)
    with open(os.path.join(HERE, "ran.txt"), "a") as ran:
        ran.write(context.aws_request_id + "\n")
    return len(event["blob"])


def one_long_line(event, context):
    sys.stdout.write("L" * event["size"] + "\n")
    sys.stdout.flush()
    return "done"


def many_lines(event, context):
    line = "L" * 1023 + "\n"
    sys.stdout.write(line * (event["size"] // 1024))
    sys.stdout.flush()
    return "done"


def forged_ids(event, context):
    for request_id in (5, [1, 2], None, {"a": 1}, 1.5, True):
        print(json.dumps({"requestId": request_id, "message": "forged"}))
    if event.get("loud"):
        print("z" * 300_000)  # more than a pipe holds: only a live reader lets this finish
    return event.get("n")


def loud(event, context):
    print("z" * 300_000)  # more than a pipe holds: only a live reader lets this finish
    return event.get("n")


def kill_runtime(event, context):
    os.kill(os.getppid(), int(event["signal"]))
    time.sleep(10)
