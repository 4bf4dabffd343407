"""Answers ``{"ok": true}``."""


def handler(event, context):
    return {"ok": True}
