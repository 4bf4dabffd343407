"""The event of a local ``invoke``: given inline, read from a file or stdin, or a shipped sample.

The Invoke API refuses a payload that is not JSON before anything runs, so an event is
checked here first and refused with the place it came from, rather than reaching the
handler as something Lambda would never deliver. The samples in
``lambda_supervisor/samples`` (API Gateway, EventBridge, S3, SQS) spare writing a
realistic event by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import TextIO

from .settings import UsageError


def sample_names() -> list[str]:
    """The sample events shipped in ``lambda_supervisor/samples``."""
    folder = resources.files("lambda_supervisor") / "samples"
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".json"))


def load_sample(name: str) -> bytes:
    if name not in sample_names():
        raise UsageError(f"unknown sample event {name!r}; choose one of: {', '.join(sample_names())}")
    return (resources.files("lambda_supervisor") / "samples" / f"{name}.json").read_bytes()


def validated_event(raw: bytes | str, source: str) -> bytes:
    """The event bytes, refused with a clear message unless they are valid JSON."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not data.strip():
        return b"{}"
    try:
        json.loads(data)
    except ValueError as exc:
        raise UsageError(f"invalid event JSON from {source}: {exc}") from None
    return data


def read_event(args: argparse.Namespace, stdin: TextIO | None = None) -> bytes:
    """The event the user chose: ``--event``, ``--event-file`` (``-`` = stdin), a sample, or ``-``."""
    if args.event is not None:
        return validated_event(args.event, "--event")
    if args.event_sample is not None:
        return load_sample(args.event_sample)
    path = args.event_file or args.event_source
    if path == "-":
        stream = stdin or sys.stdin
        return validated_event(stream.buffer.read() if hasattr(stream, "buffer") else stream.read(), "stdin")
    if path:
        try:
            return validated_event(Path(path).read_bytes(), path)
        except OSError as exc:
            raise UsageError(f"cannot read event file {path}: {exc.strerror}") from None
    return b"{}"
