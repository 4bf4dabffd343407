"""boto3 sessions and clients, with AWS's failures turned into sentences.

boto3 is an optional dependency (the runtime never needs it), so it is imported here,
lazily, and its absence is reported with the command that installs it. Region and
credentials are left entirely to boto3's own resolution (``--profile``, environment,
shared config and credentials files, SSO, instance roles): this module only checks that
the resolution produced something usable and says which knob to turn when it did not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import DeployError

# lambda-supervisor is installed from a checkout, not from an index: boto3 is the whole extra.
INSTALL_HINT = "pip install boto3 (in a checkout of lambda-supervisor: pip install '.[deploy]')"
USER_AGENT = "lambda-supervisor"


def import_boto3() -> Any:
    try:
        import boto3
    except ImportError as exc:
        raise DeployError(f"These commands need boto3, which is not installed: {INSTALL_HINT}") from exc
    return boto3


@dataclass(frozen=True)
class AwsOptions:
    """The connection options every AWS command accepts."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    sign_requests: bool = True


class AwsConnection:
    """A validated boto3 session plus the options to build clients from it."""

    def __init__(self, options: AwsOptions) -> None:
        boto3 = import_boto3()
        import botocore.exceptions

        try:
            self.session = boto3.Session(profile_name=options.profile, region_name=options.region)
        except botocore.exceptions.ProfileNotFound as exc:
            raise DeployError(f"AWS profile {options.profile!r} is not configured ({exc})") from exc
        self.options = options
        self.region = self._checked_region()
        try:
            credentials = self.session.get_credentials() if options.sign_requests else None
        except botocore.exceptions.BotoCoreError as exc:
            # An expired SSO session or a broken credential_process, for instance.
            raise DeployError(f"Cannot load AWS credentials: {exc}") from exc
        if options.sign_requests and credentials is None:
            raise DeployError(
                "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "run `aws configure` or `aws sso login`, or pass --profile"
            )

    def _checked_region(self) -> str:
        region = self.session.region_name
        if not region:
            raise DeployError(
                "No AWS region: pass --region, set AWS_DEFAULT_REGION, "
                "or set region in your AWS config profile"
            )
        known: set[str] = set()
        for partition in self.session.get_available_partitions():
            known.update(self.session.get_available_regions("lambda", partition))
        if known and region not in known:
            raise DeployError(
                f"Unknown AWS region {region!r} for Lambda (botocore knows "
                f"{len(known)} regions, e.g. us-east-1, eu-west-1); check --region, "
                "AWS_DEFAULT_REGION and your profile, or upgrade boto3 if the region is new"
            )
        return region

    def client(self, service: str, **config: Any) -> Any:
        """A client for ``service``; ``--endpoint-url`` (or boto3's own ``AWS_ENDPOINT_URL``)
        redirects it, e.g. to a local emulator."""
        from botocore import UNSIGNED
        from botocore.config import Config

        settings: dict[str, Any] = {"user_agent_extra": USER_AGENT, **config}
        if not self.options.sign_requests:
            settings["signature_version"] = UNSIGNED
        kwargs: dict[str, Any] = {"config": Config(**settings)}
        if self.options.endpoint_url:
            kwargs["endpoint_url"] = self.options.endpoint_url
        return self.session.client(service, region_name=self.region, **kwargs)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def explained_aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into ``DeployError`` messages a user can act on."""
    import botocore.exceptions as bce

    try:
        yield
    except bce.NoCredentialsError as exc:
        raise DeployError(f"No AWS credentials found ({exc})") from exc
    except bce.ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise DeployError(f"AWS refused {exc.operation_name}: {error_code(exc)}: {message}") from exc
    except bce.EndpointConnectionError as exc:
        raise DeployError(f"Cannot reach AWS: {exc}") from exc
    except bce.WaiterError as exc:
        raise DeployError(f"Gave up waiting: {exc}") from exc
    except bce.BotoCoreError as exc:
        raise DeployError(f"AWS client error: {exc}") from exc
