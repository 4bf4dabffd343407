"""``lambda-supervisor iam``: get or create the function's execution role, least privilege.

The role trusts only ``lambda.amazonaws.com`` and carries only AWS's
``AWSLambdaBasicExecutionRole`` (write logs to CloudWatch). Anything more (S3, DynamoDB) is
the user's explicit decision, made in IAM, never a side effect of deploying.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from .aws import AwsConnection, error_code
from .errors import DeployError
from .progress import progress
from .state import DeployState

DEFAULT_ROLE_NAME = "lambda-supervisor-execution"
LAMBDA_SERVICE = "lambda.amazonaws.com"
BASIC_EXECUTION_POLICY = "AWSLambdaBasicExecutionRole"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": LAMBDA_SERVICE}, "Action": "sts:AssumeRole"}],
}
ROLE_DESCRIPTION = "Execution role for Lambda functions on lambda-supervisor (logs only)"
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_ATTACH_WAIT_SECONDS = 60

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Identity:
    account: str
    partition: str


@dataclass(frozen=True)
class RoleOutcome:
    arn: str
    name: str
    created: bool


def caller_identity(connection: AwsConnection) -> Identity:
    """The account (to key remembered roles) and partition (to name AWS's policy ARN)."""
    answer = connection.client("sts").get_caller_identity()
    return Identity(account=answer["Account"], partition=answer["Arn"].split(":")[1])


def basic_policy_arn(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/service-role/{BASIC_EXECUTION_POLICY}"


def validate_role_arn(arn: str) -> str:
    if not _ROLE_ARN.fullmatch(arn):
        raise DeployError(f"--role must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), not {arn!r}")
    return arn


def _trusts_lambda(document: Any) -> bool:
    if isinstance(document, str):
        document = json.loads(document)
    for statement in document.get("Statement", []):
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and LAMBDA_SERVICE in services and "sts:AssumeRole" in actions:
            return True
    return False


def _attached_policies(iam: Any, role_name: str) -> list[str]:
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]


def _get_role(iam: Any, role_name: str) -> dict[str, Any] | None:
    import botocore.exceptions

    try:
        return iam.get_role(RoleName=role_name)["Role"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def _create_role(iam: Any, role_name: str, policy_arn: str, echo: Echo) -> dict[str, Any]:
    import botocore.exceptions

    echo(f"Creating IAM role {role_name} (trusts {LAMBDA_SERVICE}, policy {BASIC_EXECUTION_POLICY})")
    role = iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
        Description=ROLE_DESCRIPTION,
        Tags=[{"Key": "managed-by", "Value": "lambda-supervisor"}],
    )["Role"]
    try:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise DeployError(f"AWS managed policy {policy_arn} does not exist in this account") from exc
        raise
    return role


def _wait_until_usable(iam: Any, role_name: str, policy_arn: str) -> None:
    """IAM is eventually consistent: wait until the role and its policy are visible, so
    the next step (creating the function) does not race the propagation."""
    with progress(f"Waiting for role {role_name} to be usable"):
        iam.get_waiter("role_exists").wait(RoleName=role_name, WaiterConfig={"Delay": 2, "MaxAttempts": 30})
        deadline = time.monotonic() + _ATTACH_WAIT_SECONDS
        while policy_arn not in _attached_policies(iam, role_name):
            if time.monotonic() > deadline:
                raise DeployError(f"Policy {policy_arn} never appeared on role {role_name}")
            time.sleep(1)


def _check_existing(iam: Any, role: dict[str, Any], policy_arn: str, echo: Echo) -> bool:
    """Use an existing role only if Lambda can assume it; add the logging policy if it is
    missing (returning True), and point out (without touching) any broader permissions it
    already has."""
    name = role["RoleName"]
    if not _trusts_lambda(role.get("AssumeRolePolicyDocument", {})):
        raise DeployError(
            f"Role {name} exists but does not let {LAMBDA_SERVICE} assume it; "
            "choose another --role-name or pass --role"
        )
    attached = _attached_policies(iam, name)
    extra = sorted(set(attached) - {policy_arn})
    if extra:
        echo(f"Warning: role {name} also has {', '.join(extra)}; lambda-supervisor leaves them alone")
    if policy_arn in attached:
        return False
    echo(f"Attaching {BASIC_EXECUTION_POLICY} to existing role {name}")
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return True


def role_name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def ensure_execution_role(
    connection: AwsConnection, state: DeployState, role_name: str, echo: Echo
) -> RoleOutcome:
    """Reuse the remembered or existing role, else create it; wait; remember it."""
    identity = caller_identity(connection)
    iam = connection.client("iam")
    policy_arn = basic_policy_arn(identity.partition)
    remembered = state.remembered_role(identity.account)
    role = _get_role(iam, role_name)
    created = changed = False
    if role is None:
        if remembered and role_name_of(remembered) == role_name:
            echo(f"Remembered role {remembered} no longer exists; creating it again")
            state.forget_role(identity.account)
        role = _create_role(iam, role_name, policy_arn, echo)
        created = changed = True
    else:
        changed = _check_existing(iam, role, policy_arn, echo)
        how = "remembered" if remembered == role["Arn"] else "existing"
        echo(f"Reusing {how} IAM role {role['Arn']}")
    if changed:
        _wait_until_usable(iam, role_name, policy_arn)
    state.remember_role(identity.account, role["Arn"])
    return RoleOutcome(role["Arn"], role_name, created)


def remember_given_role(connection: AwsConnection, state: DeployState, arn: str) -> RoleOutcome:
    """``--role ARN``: no IAM calls (the caller may lack IAM permissions), just remember."""
    validate_role_arn(arn)
    identity = caller_identity(connection)
    state.remember_role(identity.account, arn)
    return RoleOutcome(arn, role_name_of(arn), created=False)


def role_for_deploy(connection: AwsConnection, state: DeployState, role_name: str | None, echo: Echo) -> str:
    """For ``deploy`` without ``--role``: an explicit ``--role-name`` is got or created;
    otherwise the role ``iam`` remembered for this account is used if it still exists
    (and trusted as is when IAM may not be read), else the default role is got or created.
    """
    if role_name:
        return ensure_execution_role(connection, state, role_name, echo).arn
    import botocore.exceptions

    identity = caller_identity(connection)
    remembered = state.remembered_role(identity.account)
    if not remembered:
        return ensure_execution_role(connection, state, DEFAULT_ROLE_NAME, echo).arn
    try:
        exists = _get_role(connection.client("iam"), role_name_of(remembered)) is not None
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in {"AccessDenied", "AccessDeniedException"}:
            raise
        echo(f"Using remembered IAM role {remembered} (not allowed to check it)")
        return remembered
    if not exists:
        return ensure_execution_role(connection, state, role_name_of(remembered), echo).arn
    echo(f"Using remembered IAM role {remembered}")
    return remembered
