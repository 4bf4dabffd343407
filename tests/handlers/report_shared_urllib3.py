"""Answers whether urllib3 was already loaded when this module was imported, which file its
import gives, and its worker's pid; exits on ``{"die": true}`` so that a replacement worker
is started."""

import os
import sys

LOADED_BEFORE_IMPORT = "urllib3" in sys.modules

import urllib3  # noqa: E402


def handler(event, context):
    if event.get("die"):
        os._exit(1)
    return [LOADED_BEFORE_IMPORT, urllib3.__file__, os.getpid()]
