"""Doubles ``n``, or raises ``KeyError`` when asked to go ``boom``."""


def handler(event, context):
    if event.get("boom"):
        raise KeyError("boom")
    return {"doubled": event["n"] * 2}
