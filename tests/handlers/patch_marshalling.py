"""Patches the worker's marshalling so that its reply carries the content type the event names."""

import sys


def handler(event, context):
    if event.get("content_type"):
        # Handler code can reach the worker's own modules (through its caller's globals,
        # as they are not importable); the supervisor must not trust what they produce.
        marshal = sys._getframe(1).f_globals["marshal"]
        marshal.encode_result = lambda result: (b'"x"', event["content_type"])
    return event.get("n")
