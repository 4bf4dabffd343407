"""Streaming handlers, picked by ``event["do"]``: well-behaved ones and every way to fail."""

import ctypes
import json
import os
import signal
import struct
import sys
import time


def route(event, context):
    return globals()[event["do"]](event, context)


def ok(event, context):
    return {"ok": True, "pid": os.getpid()}


def timed_chunks(event, context):
    """``count`` chunks ``interval`` seconds apart, each saying when it was yielded."""
    for index in range(event.get("count", 5)):
        if index:
            time.sleep(event.get("interval", 0.2))
        yield json.dumps({"index": index, "yielded_at": time.time()}) + "\n"


def http_response(event, context):
    yield {"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Kind": "ünï"}, "cookies": ["a=1"]}
    yield "hello "
    yield b"world"


def server_sent_events(event, context):
    context.response_content_type = "text/event-stream"
    yield "data: one\n\n"
    yield bytearray(b"data: two\n\n")
    yield memoryview(b"data: three\n\n")


def returns_an_iterator(event, context):
    return iter([b"from ", "a list iterator"])


def nothing_yielded(event, context):
    return
    yield


def raise_before_first(event, context):
    raise KeyError("no stream today")
    yield


def raise_after_first(event, context):
    yield b"first"
    yield b"second"
    raise ValueError(f"broke after {event.get('n', 2)} chunks")


def exit_after_first(event, context):
    yield b"first"
    os._exit(3)


def sigkill_after_first(event, context):
    yield b"first"
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)
    yield b"never"


def segfault_after_first(event, context):
    yield b"first"
    time.sleep(0.05)
    ctypes.string_at(0)


def hang_after_first(event, context):
    yield b"first"
    time.sleep(600)


def big(event, context):
    """``count`` blocks of ``block`` bytes, as fast as the pipe takes them."""
    block = b"x" * event["block"]
    for _ in range(event["count"]):
        yield block


def bad_item(event, context):
    yield b"fine"
    yield 42


def mapping_later(event, context):
    yield b"body first"
    yield {"statusCode": 200}


def bad_first_item(event, context):
    yield 3.5


def bad_content_type(event, context):
    context.response_content_type = "text/plain\r\nX-Injected: 1"
    yield b"never"


def counted_blocks(event, context):
    """Like ``big``, writing to the file ``counter`` how many blocks the runtime has taken."""
    block = b"x" * event["block"]
    for index in range(event["count"]):
        yield block
        with open(event["counter"], "w") as counter:
            counter.write(str(index + 1))


def _runtime_locals():
    """What the worker's stream sender holds: the reply pipe, among others."""
    frame = sys._getframe()
    while "to_supervisor" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals


def garbage_mid_stream(event, context):
    """Write a frame of no known kind on the reply pipe after the first chunk."""
    yield b"first"
    os.write(_runtime_locals()["to_supervisor"], struct.pack("!cII", b"Z", 0, 0))
    yield b"more"
    time.sleep(600)


def forge_a_huge_stream_error(event, context):
    """End the stream with a forged error frame whose report would not fit a trailer line."""
    yield b"first"
    report = {
        "errorMessage": "m" * 200_000,
        "errorType": "Forged",
        "requestId": "",
        "stackTrace": ["s" * 50_000],
    }
    meta, body = json.dumps({"error_type": "Forged"}).encode(), json.dumps(report).encode()
    os.write(
        _runtime_locals()["to_supervisor"], struct.pack("!cII", b"F", len(meta), len(body)) + meta + body
    )
    time.sleep(event.get("sleep", 0))
    yield b"after the forged end"
