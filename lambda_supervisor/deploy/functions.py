"""``lambda-supervisor deploy``: create the function, or update its code then its settings.

Lambda applies updates asynchronously and refuses a second update while one is running,
so every change is followed by AWS's own waiter before the next one starts. Settings the
user leaves out keep their current value on an existing function, so a redeploy never
silently resets memory or timeout.

Two package types are supported: a zip on the managed Python runtime, where Lambda starts
lambda-supervisor through ``AWS_LAMBDA_EXEC_WRAPPER``, and a container image already
pushed to ECR, whose ENTRYPOINT is ``bin/bootstrap`` (no wrapper, handler and runtime).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .archive import human_size
from .aws import error_code
from .errors import DeployError
from .progress import progress
from .runtime_files import BOOTSTRAP_PATH
from .targets import MAX_ZIPPED_BYTES, TASK_ROOT

EXEC_WRAPPER_VARIABLE = "AWS_LAMBDA_EXEC_WRAPPER"
EXEC_WRAPPER_PATH = f"{TASK_ROOT}/{BOOTSTRAP_PATH}"
# A role created seconds ago may not be assumable by Lambda yet (IAM propagation).
ROLE_PROPAGATION_SECONDS = 90
_ROLE_NOT_READY = "cannot be assumed"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class FunctionSpec:
    """The desired function; ``None`` means "Lambda's default, or keep the current value".

    Exactly one of ``zip_bytes`` (with ``handler`` and ``runtime``) and ``image_uri`` is set.
    """

    name: str
    role_arn: str
    architecture: str
    zip_bytes: bytes | None = None
    handler: str | None = None
    runtime: str | None = None
    image_uri: str | None = None
    memory: int | None = None
    timeout: int | None = None
    environment: dict[str, str] | None = None
    layers: list[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None

    @property
    def package_type(self) -> str:
        return "Image" if self.image_uri else "Zip"

    @property
    def code_sha256(self) -> str | None:
        """As Lambda reports it for a zip: base64 of the SHA-256 of its bytes."""
        if self.zip_bytes is None:
            return None
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()

    def code(self) -> dict[str, Any]:
        """The code arguments shared by CreateFunction (``Code``) and UpdateFunctionCode."""
        return {"ImageUri": self.image_uri} if self.image_uri else {"ZipFile": self.zip_bytes}

    def environment_variables(self, current: dict[str, str] | None) -> dict[str, str]:
        """The given variables, else the current ones; zips also get the exec wrapper,
        which images do not need (their ENTRYPOINT already is ``bin/bootstrap``)."""
        variables = dict(self.environment if self.environment is not None else current or {})
        variables.pop(EXEC_WRAPPER_VARIABLE, None)
        if self.package_type == "Zip":
            variables[EXEC_WRAPPER_VARIABLE] = EXEC_WRAPPER_PATH
        return variables

    def runtime_settings(self) -> dict[str, Any]:
        return {"Handler": self.handler, "Runtime": self.runtime} if self.package_type == "Zip" else {}

    def optional_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if self.memory is not None:
            settings["MemorySize"] = self.memory
        if self.timeout is not None:
            settings["Timeout"] = self.timeout
        if self.layers is not None:
            settings["Layers"] = self.layers
        if self.description is not None:
            settings["Description"] = self.description
        return settings


def _existing_configuration(client: Any, name: str) -> dict[str, Any] | None:
    import botocore.exceptions

    try:
        return client.get_function(FunctionName=name)["Configuration"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _wait(client: Any, waiter_name: str, name: str, message: str) -> None:
    with progress(message):
        client.get_waiter(waiter_name).wait(FunctionName=name)


def _create(client: Any, spec: FunctionSpec, echo: Echo) -> dict[str, Any]:
    """Create, retrying while IAM has not yet propagated a new role to Lambda."""
    import botocore.exceptions

    request = dict(
        FunctionName=spec.name,
        Role=spec.role_arn,
        PackageType=spec.package_type,
        Code=spec.code(),
        Architectures=[spec.architecture],
        Environment={"Variables": spec.environment_variables(None)},
        Publish=False,
        **spec.runtime_settings(),
        **spec.optional_settings(),
    )
    if spec.tags:
        request["Tags"] = spec.tags
    deadline = time.monotonic() + ROLE_PROPAGATION_SECONDS
    delay = 2.0
    while True:
        try:
            return client.create_function(**request)
        except botocore.exceptions.ClientError as exc:
            not_ready = error_code(exc) == "InvalidParameterValueException" and _ROLE_NOT_READY in str(exc)
            if not not_ready or time.monotonic() + delay > deadline:
                raise
            echo(f"Lambda cannot assume {spec.role_arn} yet (IAM is propagating); retrying in {delay:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 16)


def _code_is_current(spec: FunctionSpec, current: dict[str, Any]) -> bool:
    same_arch = current.get("Architectures", ["x86_64"]) == [spec.architecture]
    return same_arch and spec.code_sha256 is not None and current.get("CodeSha256") == spec.code_sha256


def _update(client: Any, spec: FunctionSpec, current: dict[str, Any], echo: Echo) -> dict[str, Any]:
    name = spec.name
    if current.get("PackageType", "Zip") != spec.package_type:
        raise DeployError(
            f"{name} has package type {current.get('PackageType', 'Zip')}, which Lambda cannot change "
            f"to {spec.package_type}; deploy under another --function-name"
        )
    _wait(client, "function_updated_v2", name, f"Waiting for earlier changes to {name}")
    if _code_is_current(spec, current):
        echo(f"Code unchanged (CodeSha256 {spec.code_sha256}); not uploading it again")
    else:
        client.update_function_code(FunctionName=name, Architectures=[spec.architecture], **spec.code())
        _wait(client, "function_updated_v2", name, f"Updating code of {name}")
    current_variables = current.get("Environment", {}).get("Variables", {})
    configuration = client.update_function_configuration(
        FunctionName=name,
        Role=spec.role_arn,
        Environment={"Variables": spec.environment_variables(current_variables)},
        **spec.runtime_settings(),
        **spec.optional_settings(),
    )
    _wait(client, "function_updated_v2", name, f"Updating configuration of {name}")
    if spec.tags:
        client.tag_resource(Resource=configuration["FunctionArn"], Tags=spec.tags)
    return configuration


def deploy_function(client: Any, spec: FunctionSpec, echo: Echo) -> str:
    """Bring the function in line with ``spec`` and return its ARN."""
    if spec.zip_bytes is not None and len(spec.zip_bytes) > MAX_ZIPPED_BYTES:
        raise DeployError(
            f"The package is {human_size(len(spec.zip_bytes))} ({len(spec.zip_bytes)} bytes), over "
            f"Lambda's {MAX_ZIPPED_BYTES}-byte limit for a direct upload; use the container image "
            "format instead"
        )
    kind = spec.runtime if spec.package_type == "Zip" else f"image {spec.image_uri}"
    if spec.zip_bytes is not None:
        echo(f"Package: {human_size(len(spec.zip_bytes))}, CodeSha256 {spec.code_sha256}")
    current = _existing_configuration(client, spec.name)
    if current is None:
        echo(f"Creating function {spec.name} ({kind}, {spec.architecture})")
        configuration = _create(client, spec, echo)
        _wait(client, "function_active_v2", spec.name, f"Waiting for {spec.name} to become active")
    else:
        echo(f"Updating function {spec.name} ({kind}, {spec.architecture})")
        configuration = _update(client, spec, current, echo)
    return str(configuration["FunctionArn"])
