"""A user's small shop module, as the ``lambda_invoke`` helper is meant to test."""

import os
import time


class OutOfStock(Exception):
    pass


def order(event, context):
    if event.get("qty", 0) > 3:
        raise OutOfStock(f"only 3 left, asked for {event['qty']}")
    return {"qty": event["qty"], "pid": os.getpid(), "stage": os.environ.get("STAGE")}


def who(event, context):
    return context.client_context.custom


def echo(event, context):
    return event


def raw(event, context):
    return b"not json at all"


def slow(event, context):
    time.sleep(30)
