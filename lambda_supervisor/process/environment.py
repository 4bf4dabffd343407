"""The environment a locally started runtime gets: Lambda's variables, and little of ours.

Handlers must see what they would on AWS (``AWS_LAMBDA_FUNCTION_NAME``, the memory size,
the region, the task root), and they must not see what they would not: a developer's
shell holds AWS keys, tokens and settings that a function on Lambda never has, and a
handler that works only because of them works only on that machine. So of our own
environment the runtime receives only what ``PASSED_THROUGH`` names and what the caller
names on purpose, and the AWS SDK is kept from finding credentials by itself.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

# What the runtime takes from our environment: the variables Lambda itself provides to
# every function that make sense on this machine. Anything else (AWS keys, tokens, the
# rest of a developer's shell) reaches the handler only when named: ``inherit`` or ``env``.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "PYTHONPATH", "TMPDIR")
# The variables through which an AWS SDK finds credentials; ``--pass-aws-credentials``.
AWS_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
)
# Unless one of those is asked for, the SDK must not find the developer's credentials by
# itself either: in ~/.aws (found through the password database even without HOME) or
# from the metadata service of the machine it runs on.
_NO_AMBIENT_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def platform_environment(
    *,
    runtime_api: str,
    handler: str | None,
    task_root: str | os.PathLike[str] | None,
    function_name: str = "function",
    memory_mb: int = 3008,
    region: str = "us-east-1",
) -> dict[str, str]:
    """The variables Lambda sets for a function, so handlers see what they would on AWS."""
    env = {
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_SUPERVISOR_PYTHON": sys.executable,
    }
    if handler is not None:
        env["HANDLER"] = handler
    if task_root is not None:
        env["LAMBDA_TASK_ROOT"] = str(Path(task_root).resolve())
    return env


def runtime_environment(
    *,
    runtime_api: str,
    handler: str | None,
    task_root: str | os.PathLike[str] | None,
    function_name: str,
    memory_mb: int,
    inherit: Collection[str],
    overrides: Mapping[str, str | None],
) -> dict[str, str]:
    """The runtime's full environment: the part of ours it may see, the platform's, the overrides.

    ``inherit`` names variables of ours it sees besides ``PASSED_THROUGH``; an override
    of None removes a variable.
    """
    inherited = (*PASSED_THROUGH, *inherit)
    env = {name: os.environ[name] for name in inherited if name in os.environ}
    if not set(inherit) & set(AWS_CREDENTIALS):
        env.update(_NO_AMBIENT_CREDENTIALS)
    env.update(
        platform_environment(
            runtime_api=runtime_api,
            handler=handler,
            task_root=task_root,
            function_name=function_name,
            memory_mb=memory_mb,
        )
    )
    if handler is None:
        env.pop("HANDLER", None)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
