"""Echoes the event and context, or reports which of the named environment variables and
which AWS credentials the handler can see."""

import os


def echo(event, context):
    return {
        "event": event,
        "arn": context.invoked_function_arn,
        "remainingMs": context.get_remaining_time_in_millis(),
        "traceId": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def environment(event, context):
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    names = event.get("names", [])
    return {
        "seen": {name: os.environ.get(name) for name in names},
        "accessKey": credentials.access_key if credentials else None,
        "hasPath": bool(os.environ.get("PATH")),
    }
