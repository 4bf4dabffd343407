"""Function settings given on the command line: environment variables and tags.

Lambda rejects some environment variable names it sets itself, and rejects them only at
the end of an upload; checking here fails in a second with the offending name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .errors import DeployError

# Names Lambda reserves for itself (documented "reserved environment variables").
RESERVED_ENV_NAMES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
_ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """``KEY=VALUE`` from a command-line option."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise DeployError(f"{what} must be KEY=VALUE, not {text!r}")
    return key, value


def _unquote(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        if value[0] == '"':
            inner = inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return inner
    # An unquoted value ends at a comment that follows whitespace.
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def read_env_file(path: Path) -> dict[str, str]:
    """The common ``.env`` dialect: ``KEY=value``, ``export KEY=value``, quotes, comments."""
    if not path.is_file():
        raise DeployError(f"Environment file {path} does not exist")
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(stripped)
        if not match:
            raise DeployError(f"{path}:{number}: expected KEY=VALUE, got {stripped!r}")
        values[match.group(1)] = _unquote(match.group(2))
    return values


def build_environment(env_file: Path | None, assignments: Iterable[str]) -> dict[str, str]:
    """The file first, then ``--env`` options, which win."""
    variables = read_env_file(env_file) if env_file else {}
    for text in assignments:
        key, value = parse_assignment(text, "--env")
        variables[key] = value
    for key in variables:
        if not _ENV_NAME.fullmatch(key):
            raise DeployError(f"Lambda environment variable names must match [a-zA-Z][a-zA-Z0-9_]*: {key!r}")
        if key in RESERVED_ENV_NAMES:
            raise DeployError(f"{key} is reserved by Lambda and cannot be set")
    return variables


def build_tags(assignments: Iterable[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for text in assignments:
        key, value = parse_assignment(text, "--tag")
        tags[key] = value
    return tags
