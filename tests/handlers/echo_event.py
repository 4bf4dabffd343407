"""Answers with the event it got."""


def handler(event, context):
    return {"got": event}
