"""Functions for the local runner's ``invoke`` and ``serve``: echo the context, print and log,
fail, sleep, crash the runtime, print a lot of multi-byte text."""

import logging
import os
import time

logging.getLogger().setLevel(logging.INFO)


def echo(event, context):
    client = context.client_context
    return {
        "event": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "functionVersion": context.function_version,
        "memory": context.memory_limit_in_mb,
        "logGroup": context.log_group_name,
        "logStream": context.log_stream_name,
        "arn": context.invoked_function_arn,
        "remainingMs": context.get_remaining_time_in_millis(),
        "clientCustom": client.custom if client else None,
        "traceId": os.environ.get("_X_AMZN_TRACE_ID"),
        "greeting": os.environ.get("GREETING"),
    }


def chatty(event, context):
    print("printed line for", context.aws_request_id)
    logging.getLogger("app").info("logged line %s", event.get("n"))
    return event.get("n")


def fail(event, context):
    raise ValueError("bad value: " + str(event.get("n")))


def slow(event, context):
    time.sleep(float(event.get("seconds", 0.5)))
    return {"slept": event.get("seconds"), "n": event.get("n")}


def crash(event, context):
    os._exit(3)


def noisy(event, context):
    for index in range(20):
        print(index, "ü€" * 300)
    return "done"
