"""A handler module meant to be named ``worker.py`` beside a bundled ``supervisor`` package (the
runtime's own names): answers where it and that package came from, and how many calls this
worker served; exits (status 3) on ``{"exit": true}``."""

import os

import supervisor

COUNT = 0


def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("exit"):
        os._exit(3)
    return {"worker": __file__, "supervisor": supervisor.MARKER, "count": COUNT}
