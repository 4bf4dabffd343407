"""Answers the versions of the urllib3 and structlog it imports, and its worker's pid; exits on
``{"die": true}`` so that a replacement worker is started."""

import os

import structlog
import urllib3


def handler(event, context):
    if event.get("die"):
        os._exit(1)
    return [urllib3.__version__, structlog.__version__, os.getpid()]
