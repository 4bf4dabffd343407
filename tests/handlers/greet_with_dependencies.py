"""A packaged function's handler: greets through its own helper package and a dependency."""

import tinydep
from helpers.greeting import greet


def handler(event, context):
    print("handling", event)
    return {"greeting": greet(event.get("name", "world")), "value": tinydep.VALUE}


def fail(event, context):
    raise ValueError("no good")
