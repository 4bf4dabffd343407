"""Every way a handler can fail: raise, exit, die by a signal, overrun its deadline, return what
cannot be sent (``{"do": NAME}``, handler ``app:route``). ``ok`` tells which worker and init served."""

import ctypes
import os
import signal
import sys
import time

INIT_ID = os.urandom(4).hex()  # changes whenever init runs again


def ok(event, context):
    return {"init_id": INIT_ID, "pid": os.getpid()}


def raises(event, context):
    helper(event)


def helper(event):
    raise ValueError(f"bad value {event['n']}")


class CustomError(Exception):
    pass


def raises_custom(event, context):
    raise CustomError("custom")


def exit_3(event, context):
    os._exit(3)


def sys_exit_4(event, context):
    sys.exit(4)


def keyboard_interrupt(event, context):
    raise KeyboardInterrupt


def segfault(event, context):
    ctypes.string_at(0)


def sigkill_self(event, context):
    os.kill(os.getpid(), signal.SIGKILL)


def close_stdout_and_exit(event, context):
    sys.stdout.close()
    os.close(1)
    sys.exit(0)


def sleep_forever(event, context):
    time.sleep(3600)


def busy_loop(event, context):
    while True:
        pass


def ignore_sigterm(event, context):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        while True:
            time.sleep(1)
    with open(event["child_pid_file"], "w") as f:
        f.write(str(child))
    while True:
        pass


def returns_set(event, context):
    return {1, 2}


def returns_big_json(event, context):
    return "x" * (7 * 1024 * 1024)


def returns_huge_bytes(event, context):
    return b"x" * (300 * 1024 * 1024)


def route(event, context):
    return globals()[event["do"]](event, context)
