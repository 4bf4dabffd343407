"""A handler that misbehaves however the event asks (``{"do": KIND, ...}``, handler ``app.route``).

Every way of misbehaving the chaos suite uses is here, so one long-running runtime can be fed a
random mixture of them. Set ``CHAOS_HOOK_FILE`` to install a SIGTERM hook that notes its pid
there, and ``CHAOS_INIT_HANGS_IF`` to a path whose existence makes init hang.
"""

import ctypes
import fcntl
import json
import os
import signal
import struct
import sys
import threading
import time

INIT_ID = os.urandom(4).hex()
HOOK_FILE = os.environ.get("CHAOS_HOOK_FILE")
INIT_HANGS_IF = os.environ.get("CHAOS_INIT_HANGS_IF")
hoard = []

if INIT_HANGS_IF and os.path.exists(INIT_HANGS_IF):
    open(INIT_HANGS_IF + ".hanging", "a").close()
    time.sleep(3600)  # an init that never finishes (a stuck import, a dead dependency)

if HOOK_FILE:

    def on_sigterm(signum, frame):
        # A function's shutdown hook: note that it ran, then leave.
        with open(HOOK_FILE, "a") as f:
            f.write(f"{os.getpid()}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)


def ok(event, context):
    return {"n": event["n"], "pid": os.getpid(), "init": INIT_ID}


def sleep_ok(event, context):
    time.sleep(event.get("seconds", 0.3))
    return ok(event, context)


def hog(event, context):
    # Keeps what it allocates: the worker's resident memory only grows.
    hoard.append(bytearray(event["mb"] * 1024 * 1024))
    return {"n": event["n"], "held_mb": len(hoard) * event["mb"]}


def runaway(event, context):
    # Allocates without bound; only a memory limit stops it.
    grab = []
    while True:
        grab.append(bytearray(16 * 1024 * 1024))


def hang_next_init(event, context):
    # Makes the next worker's init hang, then dies so that a replacement is started.
    open(INIT_HANGS_IF, "w").close()
    os._exit(1)


def big(event, context):
    return {"n": event["n"], "pad": "y" * event["size"]}


def raise_(event, context):
    raise ValueError(f"bad value {event['n']}")


def exit_(event, context):
    os._exit(event["code"])


def sys_exit(event, context):
    sys.exit(event["code"])


def segfault(event, context):
    ctypes.string_at(0)


def sigkill(event, context):
    os.kill(os.getpid(), signal.SIGKILL)


def sigterm(event, context):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


def hang(event, context):
    time.sleep(3600)


def busy(event, context):
    while True:
        pass


def unserialisable(event, context):
    return {"n": event["n"], "s": {1, 2}}


def oversized(event, context):
    return "x" * event["size"]


def oversized_bytes(event, context):
    return b"x" * event["size"]


def exact_limit(event, context):
    # A JSON string result of exactly event["size"] bytes once encoded.
    return "z" * (event["size"] - 2)


def child(event, context):
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(3600)
        finally:
            os._exit(0)
    return {"n": event["n"], "child": pid}


def zombie(event, context):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return {"n": event["n"], "zombie": pid}


def thread(event, context):
    threading.Thread(target=time.sleep, args=(3600,), name=f"left-{event['n']}").start()
    return {"n": event["n"], "threads": threading.active_count()}


def reply_pipe():
    """The worker's reply pipe: the one pipe it holds open write-only, beyond 0, 1 and 2."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 2:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if target.startswith("pipe:") and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no reply pipe found")


def garbage(event, context):
    os.write(reply_pipe(), bytes.fromhex(event["hex"]))
    if event.get("then") == "hang":
        time.sleep(3600)
    if event.get("then") == "exit":
        os._exit(0)
    return {"n": event["n"], "after": "garbage"}


def close_pipe(event, context):
    os.close(reply_pipe())
    if event.get("then") == "hang":
        time.sleep(3600)
    return {"n": event["n"]}


def context_info(event, context):
    cc = context.client_context
    return {
        "request_id": context.aws_request_id,
        "custom": cc.custom if cc else None,
        "identity": context.identity.cognito_identity_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "size": len(event) if isinstance(event, (str, bytes)) else None,
    }


def freeze_soon(event, context):
    # A child that stops this worker (SIGSTOP) a moment after the answer is sent, and lets
    # it go on a while later: the next event then meets a worker that reads nothing.
    if os.fork() == 0:
        worker = os.getppid()
        time.sleep(0.2)
        os.kill(worker, signal.SIGSTOP)
        time.sleep(event.get("seconds", 5))
        os.kill(worker, signal.SIGCONT)
        os._exit(0)
    return ok(event, context)


def forge_error(event, context):
    # Handler code can find the reply token on the worker's stack and forge a complete,
    # valid error frame for its own event, with whatever X-Ray cause it likes.
    frame = sys._getframe()
    while "reply_token" not in frame.f_locals:
        frame = frame.f_back
    meta = {
        "reply_token": frame.f_locals["reply_token"],
        "error_type": "ValueError",
        "xray_cause": event["cause"],
    }
    body = json.dumps(
        {
            "errorMessage": "forged",
            "errorType": "ValueError",
            "requestId": context.aws_request_id,
            "stackTrace": [],
        }
    ).encode()
    raw_meta = json.dumps(meta).encode()
    os.write(reply_pipe(), struct.pack("!cII", b"X", len(raw_meta), len(body)) + raw_meta + body)
    os._exit(0)


def echo_size(event, context):
    return {"len": len(event) if isinstance(event, (str, bytes, list)) else None}


def route(event, context):
    if not isinstance(event, dict):
        return echo_size(event, context)
    name = event["do"]
    return globals()[name + "_" if name in ("raise", "exit") else name](event, context)
