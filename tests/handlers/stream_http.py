"""Streaming handlers behind ``serve --http``, routed by path: each chunk says when it was
yielded, so a test can tell whether the client got it then or only at the end."""

import json
import time


def page(event, context):
    """A function URL's HTTP metadata first, then 3 lines 300 ms apart."""
    yield {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Streamed": "yes"},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
    }
    for index in range(3):
        time.sleep(0.3)
        yield json.dumps({"index": index, "yielded_at": time.time()}) + "\n"


def events(event, context):
    """Server-sent events, with no HTTP metadata: the type set through the context."""
    context.response_content_type = "text/event-stream"
    for index in range(3):
        if index:
            time.sleep(0.3)
        yield f"data: {json.dumps({'index': index, 'yielded_at': time.time()})}\n\n"


def fail_midway(event, context):
    yield {"statusCode": 200, "headers": {"Content-Type": "text/plain"}}
    yield "first\n"
    time.sleep(0.2)
    raise ValueError("broke after the first chunk")


def fail_before_streaming(event, context):
    raise KeyError("no stream today")
    yield


def bad_prelude(event, context):
    yield {"statusCode": "teapot"}
    yield "never shown\n"


def handler(event, context):
    return globals()[event["rawPath"].strip("/")](event, context)
