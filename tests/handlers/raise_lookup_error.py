"""Always raises ``LookupError('gone')``."""


def handler(event, context):
    raise LookupError("gone")
