"""Registers SnapStart runtime hooks, two of each phase, and writes each step of the worker's
life to the file ``HOOK_RECORD`` names, one ``step pid monotonic-time`` line each: ``init``, every hook that
runs (``before-1`` is the before-snapshot hook registered first, ``after-1`` the
after-restore one), every ``event``. ``HOOK_MISBEHAVE`` makes the hook that phase runs first
(``before-2``, ``after-1``) misbehave: ``before-raise``/``after-raise`` raise
``ConnectionError("pool closed")``, ``...-hang`` sleep for a minute, ``...-exit`` end the
process with status 9; with ``HOOK_ONLY_IN_REPLACEMENT`` set, only a worker started after
another (the record exists already) does. The event ``{"exit": true}`` ends the worker
(status 7)."""

import os
import time

from snapshot_restore_py import register_after_restore, register_before_snapshot

RECORD = os.environ["HOOK_RECORD"]
MISBEHAVE = os.environ.get("HOOK_MISBEHAVE", "")
if os.environ.get("HOOK_ONLY_IN_REPLACEMENT") and not os.path.exists(RECORD):
    MISBEHAVE = ""


def record(step):
    with open(RECORD, "a") as file:
        file.write(f"{step} {os.getpid()} {time.monotonic()}\n")


def misbehave(phase):
    if MISBEHAVE == f"{phase}-raise":
        raise ConnectionError("pool closed")
    if MISBEHAVE == f"{phase}-hang":
        time.sleep(60)
    if MISBEHAVE == f"{phase}-exit":
        os._exit(9)


record("init")


@register_before_snapshot
def before_1():
    record("before-1")


@register_before_snapshot
def before_2():
    record("before-2")
    misbehave("before")


@register_after_restore
def after_1():
    record("after-1")
    misbehave("after")


@register_after_restore
def after_2():
    record("after-2")


def handler(event, context):
    record("event")
    if event.get("exit"):
        os._exit(7)
    return {"pid": os.getpid()}
