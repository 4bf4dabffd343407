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


def parse_assignment(text: str, what: str, secret: bool = False) -> tuple[str, str]:
    """``KEY=VALUE`` from a command-line option; a ``secret`` one is never echoed back."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        shown = "an argument without a name and '=' (not shown: it may be a secret)" if secret else repr(text)
        raise DeployError(f"{what} must be KEY=VALUE, not {shown}")
    return key, value


_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}
_ONE_LINE = (
    "multi-line values are not read: put it on one line, with \\n for each newline inside double quotes"
)


def _closing_quote(value: str) -> int | None:
    """Where the quote opening ``value`` closes; inside double quotes ``\\`` escapes."""
    quote, index = value[0], 1
    while index < len(value):
        if quote == '"' and value[index] == "\\":
            index += 2
            continue
        if value[index] == quote:
            return index
        index += 1
    return None


def _value(raw: str, where: str, key: str) -> str:
    """The value of ``KEY=raw``: quoted (double quotes read ``\\n``, ``\\"``, ``\\\\``) or
    bare up to a comment. Errors name ``where`` and ``key`` only, never the value."""
    value = raw.strip()
    if value[:1] not in ("'", '"'):
        # An unquoted value ends at a comment that follows whitespace.
        return re.split(r"\s+#", value, maxsplit=1)[0].strip()
    end = _closing_quote(value)
    if end is None:
        raise DeployError(
            f"{where}: the value of {key} opens a quote that does not close on that line; {_ONE_LINE}"
        )
    rest = value[end + 1 :].strip()
    if rest and not rest.startswith("#"):
        raise DeployError(f"{where}: the quoted value of {key} is followed by more than a comment")
    inner = value[1:end]
    if value[0] == "'":
        return inner
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), inner)


def read_env_file(path: Path) -> dict[str, str]:
    """The common ``.env`` dialect: ``KEY=value``, ``export KEY=value``, quotes, comments.

    The file holds secrets, so an error names the file, the line and at most the key."""
    if not path.is_file():
        raise DeployError(f"Environment file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DeployError(f"Environment file {path} is not UTF-8 text") from exc
    values: dict[str, str] = {}
    previous: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(stripped)
        if not match:
            hint = f"; if it continues {previous[1]} from line {previous[0]}, {_ONE_LINE}" if previous else ""
            raise DeployError(
                f"{path}:{number}: not a KEY=VALUE line (its text is not shown: it may be a secret){hint}"
            )
        key = match.group(1)
        values[key] = _value(match.group(2), f"{path}:{number}", key)
        previous = (number, key)
    return values


def build_environment(env_file: Path | None, assignments: Iterable[str]) -> dict[str, str]:
    """The file first, then ``--env`` options, which win."""
    variables = read_env_file(env_file) if env_file else {}
    for text in assignments:
        key, value = parse_assignment(text, "--env", secret=True)
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
