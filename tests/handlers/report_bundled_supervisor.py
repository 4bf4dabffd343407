"""Answers the marker of the ``supervisor`` package bundled beside it."""

import supervisor


def handler(event, context):
    return {"supervisor": supervisor.MARKER}
