"""Exits (status 5) on ``{"do": "die"}``, sleeps for a minute on ``{"do": "hang"}``, else answers 1."""

import os
import time


def handler(event, context):
    if event == {"do": "die"}:
        os._exit(5)
    if event == {"do": "hang"}:
        time.sleep(60)
    return 1
