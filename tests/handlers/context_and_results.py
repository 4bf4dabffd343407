"""Describes the context it is given, and returns results of each kind the runtime marshals
(``{"do": NAME}``, handler ``app:route``; anything else is echoed with its type)."""

import decimal
import os
import time


def describe(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    second = context.get_remaining_time_in_millis()
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "tenant_id": context.tenant_id,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None
        if cc is None
        else {
            "custom": cc.custom,
            "env": cc.env,
            "client": None if cc.client is None else [cc.client.installation_id, cc.client.app_title],
        },
        "remaining": [first, second],
        "remaining_type": type(first).__name__,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "event": event,
    }


def decimals(event, context):
    return {"price": decimal.Decimal("19.990000000000000001"), "count": decimal.Decimal(3)}


def raw_bytes(event, context):
    return b"\x00\x01binary"


def text(event, context):
    return "plain"


def nothing(event, context):
    return None


def echo_type(event, context):
    return {"type": type(event).__name__, "value": event.decode() if isinstance(event, bytes) else event}


def route(event, context):
    return globals()[event["do"] if isinstance(event, dict) and "do" in event else "echo_type"](
        event, context
    )
