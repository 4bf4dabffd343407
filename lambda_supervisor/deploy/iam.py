"""``lambda-supervisor iam``: get or create the function's execution role, least privilege.

The role trusts only ``lambda.amazonaws.com`` and carries only AWS's
``AWSLambdaBasicExecutionRole`` (write logs to CloudWatch). Anything more (S3, DynamoDB) is
the user's explicit decision, made in IAM, never a side effect of deploying; so an existing
role of the same name that trusts or may do more is refused unless the user accepts it
with ``--accept-broader-role``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _as_list(value: Any) -> list[Any]:
    """IAM lets any list field be a single value: ``"Action": "sts:AssumeRole"``."""
    return value if isinstance(value, list) else [value]


def _allow_statements(document: Any) -> list[dict[str, Any]]:
    """The ``Allow`` statements of a policy document, JSON text or already parsed."""
    if isinstance(document, str):
        document = json.loads(document)
    statements = _as_list(document.get("Statement", [])) if isinstance(document, dict) else []
    return [s for s in statements if isinstance(s, dict) and s.get("Effect") == "Allow"]


def _trusts_lambda(document: Any) -> bool:
    for statement in _allow_statements(document):
        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if LAMBDA_SERVICE in services and "sts:AssumeRole" in _as_list(statement.get("Action", [])):
            return True
    return False


def _other_principals(document: Any) -> list[str]:
    """Everyone but Lambda that the trust policy lets assume the role: ``AWS: *``, another
    service, a federated identity, or anyone a ``NotPrincipal`` does not name."""
    others = []
    for statement in _allow_statements(document):
        if "NotPrincipal" in statement:
            others.append(f"NotPrincipal {json.dumps(statement['NotPrincipal'])}")
        principal = statement.get("Principal", {})
        if not isinstance(principal, dict):  # "Principal": "*"
            others.append(f"Principal {json.dumps(principal)}")
            continue
        for kind, values in principal.items():
            others.extend(
                f"{kind}: {value}"
                for value in _as_list(values)
                if (kind, value) != ("Service", LAMBDA_SERVICE)
            )
    return others


def _inline_policies(iam: Any, role_name: str) -> list[str]:
    pages = iam.get_paginator("list_role_policies").paginate(RoleName=role_name)
    return [name for page in pages for name in page["PolicyNames"]]


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


def _check_existing(
    iam: Any, role: dict[str, Any], policy_arn: str, echo: Echo, accept_broader: bool
) -> bool:
    """Use an existing role only if Lambda can assume it and, unless ``accept_broader``,
    nobody else can and it may do no more than write logs: a role that merely has the
    expected name is no least-privilege role. Add the logging policy if it is missing
    (returning True); never remove anything."""
    name = role["RoleName"]
    trust = role.get("AssumeRolePolicyDocument", {})
    if not _trusts_lambda(trust):
        raise DeployError(
            f"Role {name} exists but does not let {LAMBDA_SERVICE} assume it; "
            "choose another --role-name or pass --role"
        )
    attached = _attached_policies(iam, name)
    excess = [f"trusts {principal}" for principal in _other_principals(trust)]
    excess += [f"has inline policy {policy}" for policy in _inline_policies(iam, name)]
    excess += [f"has policy {arn}" for arn in sorted(set(attached) - {policy_arn})]
    if excess and not accept_broader:
        raise DeployError(
            f"Role {name} is broader than a least-privilege execution role: it {'; it '.join(excess)}. "
            "Choose another --role-name, narrow the role in IAM, or pass --accept-broader-role "
            "to use it as it is"
        )
    if excess:
        echo(f"Warning: role {name} {'; '.join(excess)}; used as it is (--accept-broader-role)")
    if policy_arn in attached:
        return False
    echo(f"Attaching {BASIC_EXECUTION_POLICY} to existing role {name}")
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return True


def role_name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def ensure_execution_role(
    connection: AwsConnection, state: DeployState, role_name: str, echo: Echo, accept_broader: bool = False
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
        changed = _check_existing(iam, role, policy_arn, echo, accept_broader)
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


def role_for_deploy(
    connection: AwsConnection,
    state: DeployState,
    role_name: str | None,
    echo: Echo,
    accept_broader: bool = False,
) -> str:
    """For ``deploy`` without ``--role``: an explicit ``--role-name`` is got or created;
    otherwise the role ``iam`` remembered for this account (checked when it was remembered)
    is used if it still exists (and trusted as is when IAM may not be read), else the
    default role is got or created.
    """
    if role_name:
        return ensure_execution_role(connection, state, role_name, echo, accept_broader).arn
    import botocore.exceptions

    identity = caller_identity(connection)
    remembered = state.remembered_role(identity.account)
    if not remembered:
        return ensure_execution_role(connection, state, DEFAULT_ROLE_NAME, echo, accept_broader).arn
    try:
        exists = _get_role(connection.client("iam"), role_name_of(remembered)) is not None
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in {"AccessDenied", "AccessDeniedException"}:
            raise
        echo(f"Using remembered IAM role {remembered} (not allowed to check it)")
        return remembered
    if not exists:
        return ensure_execution_role(connection, state, role_name_of(remembered), echo, accept_broader).arn
    echo(f"Using remembered IAM role {remembered}")
    return remembered
