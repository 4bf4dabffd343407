"""Everything the supervisor reads from its environment, read once at start."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from worker.errors import MAX_SYNC_PAYLOAD
from worker.snapshot_hooks import snap_start


class ConfigError(Exception):
    """The runtime cannot start with this environment.

    ``runtime_api`` is the Runtime API's address when the environment has one, for the
    error to be reported there as the failed init it is.
    """

    def __init__(self, message: str, runtime_api: str | None = None) -> None:
        super().__init__(message)
        self.runtime_api = runtime_api


class Settings(NamedTuple):
    """Read before the first fork, so a plain NamedTuple: dataclasses cost a cold start."""

    runtime_api: str
    handler: str
    # Kill a handler this long before Lambda's deadline, so the timeout is reported by us
    # while the invocation can still be answered.
    deadline_margin: float = 0.05
    max_response_bytes: int = MAX_SYNC_PAYLOAD
    # How long a replacement worker may take to initialise (None: no limit of our own).
    init_timeout: float | None = None
    # How long a Runtime API that refuses or drops connections is retried before giving up.
    api_retry_window: float = 30.0
    # Replace the worker (between invocations) after this many invocations...
    max_invocations: int | None = None
    # ...or once its resident memory is above this many MiB. Both off by default.
    max_worker_rss_mb: float | None = None
    # A ceiling on the worker's data segment; a handler going past it is reported as out of
    # memory instead of pushing the whole execution environment into the OOM killer.
    worker_memory_mb: float | None = None
    # Register a no-op internal extension so that Lambda sends SIGTERM before shutdown.
    register_extension: bool = False
    # AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: SnapStart's restore flow before the first /next.
    snap_start: bool = False
    # Lambda Managed Instances: how many invocations run at once, each in its own worker.
    max_concurrency: int = 1
    # Import the function once, in the fork server, and fork every worker from that state.
    preload: bool = False

    @property
    def forks_from_server(self) -> bool:
        """Are workers forked by the fork server (``supervisor/fork_server.py``) rather than
        by the supervisor itself? With several slots, or with preload."""
        return self.max_concurrency > 1 or self.preload


def resolve_handler(environ: Mapping[str, str], argv: Sequence[str]) -> str:
    """``HANDLER``, then Lambda's ``_HANDLER``, then the first argument (container CMD)."""
    for candidate in (environ.get("HANDLER"), environ.get("_HANDLER"), argv[0] if argv else None):
        if candidate:
            return candidate.strip()
    return ""


# The largest value each number may take. NaN and infinity are refused everywhere, and so
# is anything past these: where the arithmetic stops being exact (a poll timeout of 1e308
# seconds, a memory limit that is no integer), or past any sense for a Lambda environment.
# Lambda's longest timeout: a larger margin would kill every handler before it started.
_MAX_MARGIN_MS = 900_000.0
# A day: longer than any phase of an environment's life, so as good as no limit.
_MAX_SECONDS = 86_400.0
_MAX_INVOCATIONS = 1_000_000_000.0
# A TiB, far past the largest Lambda memory size.
_MAX_MB = 1_048_576.0
# Far past any machine's share of processes: each slot is a worker and a thread.
_MAX_CONCURRENCY = 4096.0


def _number(environ: Mapping[str, str], name: str, default: float | None, highest: float) -> float | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= highest:  # false for NaN too
        raise ConfigError(f"{name}={raw!r} is not a number from 0 to {highest:.0f}")
    return value


def _count(environ: Mapping[str, str], name: str, highest: float) -> int | None:
    value = _number(environ, name, None, highest)
    if value is not None and not value.is_integer():
        raise ConfigError(f"{name}={environ[name]!r} is not a whole number")
    return int(value) if value else None


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").lower() in ("1", "true", "yes")


def load_settings(environ: Mapping[str, str] = os.environ, argv: Sequence[str] = ()) -> Settings:
    runtime_api = environ.get("AWS_LAMBDA_RUNTIME_API", "").strip()
    if not runtime_api:
        raise ConfigError("AWS_LAMBDA_RUNTIME_API is not set: there is no Runtime API to serve")
    try:
        margin_ms = _number(environ, "LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS", 50.0, _MAX_MARGIN_MS)
        retry_window = _number(environ, "LAMBDA_SUPERVISOR_API_RETRY_SECONDS", 30.0, _MAX_SECONDS)
        assert margin_ms is not None and retry_window is not None
        return Settings(
            runtime_api=runtime_api,
            handler=resolve_handler(environ, argv),
            deadline_margin=margin_ms / 1000,
            init_timeout=_number(environ, "LAMBDA_SUPERVISOR_INIT_TIMEOUT", None, _MAX_SECONDS),
            api_retry_window=retry_window,
            max_invocations=_count(environ, "LAMBDA_SUPERVISOR_MAX_INVOCATIONS", _MAX_INVOCATIONS),
            max_worker_rss_mb=_number(environ, "LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB", None, _MAX_MB) or None,
            worker_memory_mb=_number(environ, "LAMBDA_SUPERVISOR_WORKER_MEMORY_MB", None, _MAX_MB) or None,
            register_extension=_flag(environ, "LAMBDA_SUPERVISOR_REGISTER_EXTENSION"),
            snap_start=snap_start(environ),
            max_concurrency=_count(environ, "AWS_LAMBDA_MAX_CONCURRENCY", _MAX_CONCURRENCY) or 1,
            preload=_flag(environ, "LAMBDA_SUPERVISOR_PRELOAD"),
        )
    except ConfigError as exc:
        exc.runtime_api = runtime_api
        raise
