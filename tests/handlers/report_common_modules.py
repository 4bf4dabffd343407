"""Answers whether http.client (one of the standard modules Lambda Managed Instances' fork
server loads for its workers) was loaded before this module was imported, what this
module's ``import uuid`` gave, and its worker's pid."""

import os
import sys

LOADED_BEFORE_IMPORT = "http.client" in sys.modules

import uuid  # noqa: E402


def route(event, context):
    return {
        "loaded_before_import": LOADED_BEFORE_IMPORT,
        "uuid_is_the_functions": getattr(uuid, "THE_FUNCTIONS", False),
        "pid": os.getpid(),
    }
