"""Answers the path of its own module file."""


def handler(event, context):
    return {"worker": __file__}
