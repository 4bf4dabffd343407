"""Everything the supervisor reads from its environment, read once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

# The synchronous invocation payload limit, as the Runtime API enforces it.
MAX_SYNC_PAYLOAD = 6_291_556


class ConfigError(Exception):
    """The runtime cannot start at all (there is no Runtime API to report to)."""


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


def resolve_handler(environ: Mapping[str, str], argv: Sequence[str]) -> str:
    """``HANDLER``, then Lambda's ``_HANDLER``, then the first argument (container CMD)."""
    for candidate in (environ.get("HANDLER"), environ.get("_HANDLER"), argv[0] if argv else None):
        if candidate:
            return candidate.strip()
    return ""


def _float(environ: Mapping[str, str], name: str, default: float | None) -> float | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


def load_settings(environ: Mapping[str, str] = os.environ, argv: Sequence[str] = ()) -> Settings:
    runtime_api = environ.get("AWS_LAMBDA_RUNTIME_API", "").strip()
    if not runtime_api:
        raise ConfigError("AWS_LAMBDA_RUNTIME_API is not set: there is no Runtime API to serve")
    margin_ms = _float(environ, "LAMBDA_SUPERVISOR_DEADLINE_MARGIN_MS", 50.0)
    assert margin_ms is not None
    retry_window = _float(environ, "LAMBDA_SUPERVISOR_API_RETRY_SECONDS", 30.0)
    assert retry_window is not None
    max_invocations = _float(environ, "LAMBDA_SUPERVISOR_MAX_INVOCATIONS", None)
    return Settings(
        runtime_api=runtime_api,
        handler=resolve_handler(environ, argv),
        deadline_margin=margin_ms / 1000,
        init_timeout=_float(environ, "LAMBDA_SUPERVISOR_INIT_TIMEOUT", None),
        api_retry_window=retry_window,
        max_invocations=int(max_invocations) if max_invocations else None,
        max_worker_rss_mb=_float(environ, "LAMBDA_SUPERVISOR_MAX_WORKER_RSS_MB", None) or None,
        worker_memory_mb=_float(environ, "LAMBDA_SUPERVISOR_WORKER_MEMORY_MB", None) or None,
        register_extension=environ.get("LAMBDA_SUPERVISOR_REGISTER_EXTENSION", "").lower()
        in ("1", "true", "yes"),
    )
