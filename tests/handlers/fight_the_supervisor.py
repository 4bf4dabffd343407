"""Handlers that fight their supervisor (``{"do": NAME, ...}``, handler ``app.route``): leave its
process group, fork and fall through into the worker's loop, forge their own reply, start
processes in sessions of their own, block the signal meant to take them down.

A handler given ``"pids": PATH`` notes there each process it started, by pid and start time.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time


def ok(event, context):
    return {"n": event.get("n"), "pid": os.getpid()}


def _note(path, **pids):
    """Each process by pid and start time: a test may look only after they are gone."""
    noted = {}
    for name, pid in pids.items():
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        noted[name] = [pid, int(stat[stat.rindex(")") + 2 :].split()[19])]
    with open(path + ".tmp", "w") as f:
        json.dump(noted, f)
    os.rename(path + ".tmp", path)


def _sleeper(new_group=False):
    pid = os.fork()
    if pid == 0:
        try:
            if new_group:
                os.setpgid(0, 0)
            time.sleep(3600)
        finally:
            os._exit(0)
    return pid


def _daemon():
    """The classic double fork: a grandchild in a session of its own whose parent is gone."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                time.sleep(3600)
                os._exit(0)
            os.write(write_end, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    grandchild = int(os.read(read_end, 32))
    os.close(read_end)
    os.waitpid(middle, 0)
    return grandchild


def _then(event):
    then = event.get("then")
    if then == "hang":
        time.sleep(3600)
    if then == "exit":
        os._exit(1)
    return {"n": event.get("n"), "pid": os.getpid()}


def join_supervisor_group(event, context):
    child = _sleeper()  # stays behind in the worker's own process group
    os.setpgid(0, os.getpgid(os.getppid()))
    _note(event["pids"], worker=os.getpid(), child=child)
    return _then(event)


def fork_and_fall_through(event, context):
    os.fork()
    return {"n": event["n"], "pid": os.getpid()}


def _runtime_locals():
    """What the worker's own loop holds: the reply token of the event in hand, the pipe."""
    frame = sys._getframe()
    while "reply_token" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals


def forge_own_reply(event, context):
    loop = _runtime_locals()
    meta = json.dumps({"content_type": "application/json", "reply_token": loop["reply_token"]}).encode()
    body = json.dumps({"n": event["n"], "forged": True}).encode()
    os.write(loop["to_supervisor"], struct.pack("!cII", b"O", len(meta), len(body)) + meta + body)
    time.sleep(event.get("sleep", 0))
    return {"n": event["n"], "forged": False}


def write_when_idle(event, context):
    """Leave a child that writes on the reply pipe once the worker has answered."""
    pipe = _runtime_locals()["to_supervisor"]
    if os.fork() == 0:
        time.sleep(0.2)
        os.write(pipe, bytes.fromhex(event["hex"]))
        open(event["written"], "w").close()
        os._exit(0)
    return {"n": event["n"]}


def escape(event, context):
    popen = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    _note(
        event["pids"],
        worker=os.getpid(),
        new_session=popen.pid,
        daemon=_daemon(),
        new_group=_sleeper(new_group=True),
        same_group=_sleeper(),
    )
    return _then(event)


def block_death_signal(event, context):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGRTMIN})
    if event.get("ignore"):
        signal.signal(signal.SIGRTMIN, signal.SIG_IGN)
    _note(event["pids"], worker=os.getpid(), child=_sleeper())
    time.sleep(3600)


def hold_stdout_in_a_new_session(event, context):
    subprocess.Popen(["sleep", str(event["seconds"])], start_new_session=True)
    time.sleep(3600)


def route(event, context):
    return globals()[event["do"]](event, context)
