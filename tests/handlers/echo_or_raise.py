"""Echoes the event, or raises ``ValueError`` when it holds ``"fail"``."""


def handler(event, context):
    if event.get("fail"):
        raise ValueError("no")
    return {"echo": event}
