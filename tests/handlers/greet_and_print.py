"""Prints a line, then greets by name, or raises when asked to fail."""


def handler(event, context):
    print("handling", event.get("name"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"hello": event.get("name"), "function": context.function_name}
