"""Answers the name it was imported under and the first entry of ``sys.path``."""

import sys


def handler(event, context):
    return {"where": __name__, "path0": sys.path[0]}
