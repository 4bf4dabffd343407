"""Logs through the standard library at every level, an exception and a print; or from a thread
after the invocation has ended (``{"do": NAME}``, handler ``app:route``)."""

import logging
import threading
import time

log = logging.getLogger("orders")


def log_things(event, context):
    log.warning("warned %s", "here", extra={"order_id": 42})
    log.info("info line")
    log.debug("debug line")
    try:
        1 / 0  # noqa: B018 - raises, for log.exception to report
    except ZeroDivisionError:
        log.exception("failed")
    print("plain print")
    return "ok"


def log_later(event, context):
    # A thread that logs after the invocation has ended must not claim its request id.
    def later():
        time.sleep(0.3)
        log.warning("after the invocation")

    threading.Thread(target=later).start()
    return "ok"


def route(event, context):
    return globals()[event["do"]](event, context)
