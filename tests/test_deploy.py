"""``lambda-supervisor iam`` and ``deploy`` against a moto server, over real HTTP.

The CLI runs as a subprocess with fake credentials and ``--endpoint-url`` pointing at the
session's moto server; assertions read the result back through boto3, as a user would
check it in the AWS console.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from deploy_support import (
    CLI,
    CURRENT_PYTHON,
    MotoServer,
    fake_credentials_env,
    isolated_env,
    offline_package_args,
    package,
    run_cli,
    write_function,
)

from lambda_supervisor.deploy.progress import progress

pytest_plugins = ["deploy_support"]

BASIC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
WRAPPER = {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/bin/bootstrap"}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def unique(prefix: str) -> str:
    """Names that never collide across tests sharing the session's moto server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def client(moto_server: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def zip_sha256(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def aws_args(moto_server: MotoServer, state_file: Path) -> list[str]:
    return ["--endpoint-url", moto_server.endpoint_url, "--state-file", str(state_file)]


# ------------------------------------------------------------------------------ iam


@pytest.mark.timeout(60)
def test_iam_creates_a_least_privilege_role_once_then_reuses_it(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    env = fake_credentials_env(tmp_path)
    role_name = unique("exec")
    state = tmp_path / "state.json"
    first = run_cli(["iam", "--role-name", role_name, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    arn = first.stdout.strip()
    assert arn == f"arn:aws:iam::123456789012:role/{role_name}"
    assert "Creating IAM role" in first.stderr
    assert f"Waiting for role {role_name} to be usable: done" in first.stderr

    iam = client(moto_server, "iam")
    role = iam.get_role(RoleName=role_name)["Role"]
    statements = role["AssumeRolePolicyDocument"]["Statement"]
    assert statements == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [BASIC_POLICY]
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []
    assert json.loads(state.read_text())["execution_roles"]["123456789012"] == arn

    second = run_cli(["iam", "--role-name", role_name, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == arn
    assert "Reusing remembered IAM role" in second.stderr
    assert "Creating" not in second.stderr
    assert iam.get_role(RoleName=role_name)["Role"]["RoleId"] == role["RoleId"]
    names = [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(role_name)]
    assert names == [role_name]


@pytest.mark.timeout(60)
def test_iam_recreates_a_remembered_role_that_was_deleted(moto_server: MotoServer, tmp_path: Path) -> None:
    env = fake_credentials_env(tmp_path)
    role_name = unique("gone")
    state = tmp_path / "state.json"
    assert (
        run_cli(
            ["iam", "--role-name", role_name, *aws_args(moto_server, state)], env=env, cwd=tmp_path
        ).returncode
        == 0
    )
    iam = client(moto_server, "iam")
    iam.detach_role_policy(RoleName=role_name, PolicyArn=BASIC_POLICY)
    iam.delete_role(RoleName=role_name)
    again = run_cli(["iam", "--role-name", role_name, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no longer exists; creating it again" in again.stderr
    assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == again.stdout.strip()


@pytest.mark.timeout(60)
def test_iam_with_a_given_role_makes_no_iam_changes(moto_server: MotoServer, tmp_path: Path) -> None:
    env = fake_credentials_env(tmp_path)
    role_name = unique("given")
    arn = f"arn:aws:iam::123456789012:role/{role_name}"
    state = tmp_path / "state.json"
    result = run_cli(["iam", "--role", arn, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == arn
    assert json.loads(state.read_text())["execution_roles"]["123456789012"] == arn
    iam = client(moto_server, "iam")
    assert role_name not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    bad = run_cli(["iam", "--role", "my-role", *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert "--role must be an IAM role ARN" in bad.stderr


@pytest.mark.timeout(60)
def test_iam_refuses_an_existing_role_lambda_cannot_assume(moto_server: MotoServer, tmp_path: Path) -> None:
    role_name = unique("ec2only")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    client(moto_server, "iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
    result = run_cli(
        ["iam", "--role-name", role_name, *aws_args(moto_server, tmp_path / "s.json")],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert f"Role {role_name} exists but does not let lambda.amazonaws.com assume it" in result.stderr


ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
ANYONE_MAY_ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        *LAMBDA_TRUST["Statement"],
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
    ],
}
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


def broader_role(moto_server: MotoServer, prefix: str, excess: str) -> str:
    """A role that Lambda may assume, with the logging policy, and one ``excess``."""
    iam = client(moto_server, "iam")
    name = unique(prefix)
    trust = ANYONE_MAY_ASSUME if excess == "trust" else LAMBDA_TRUST
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName=name, PolicyArn=BASIC_POLICY)
    if excess == "inline":
        iam.put_role_policy(
            RoleName=name, PolicyName="everything", PolicyDocument=json.dumps(ALLOW_EVERYTHING)
        )
    if excess == "attached":
        iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN_POLICY)
    return name


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("excess", "reason"),
    [
        ("trust", "it trusts AWS: *"),
        ("inline", "it has inline policy everything"),
        ("attached", f"it has policy {ADMIN_POLICY}"),
    ],
)
def test_iam_refuses_an_existing_role_broader_than_least_privilege(
    moto_server: MotoServer, tmp_path: Path, excess: str, reason: str
) -> None:
    """A role of the expected name that anyone may assume, or with an inline ``*:*``
    policy, was reused silently (an extra attached policy only drew a warning) and handed
    out as the least-privilege role. Now ``iam`` refuses it, names the excess, changes
    nothing and remembers nothing."""
    name = broader_role(moto_server, f"broad-{excess}", excess)
    state = tmp_path / "state.json"
    result = run_cli(
        ["iam", "--role-name", name, *aws_args(moto_server, state)],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: Role {name} is broader than a least-privilege execution role: {reason}. Choose another "
        "--role-name, narrow the role in IAM, or pass --accept-broader-role to use it as it is"
    ]
    assert result.stdout == ""
    assert not state.exists()


@pytest.mark.timeout(60)
def test_a_broader_role_is_used_only_when_accepted_and_then_named(
    moto_server: MotoServer, tmp_path: Path, built: Any
) -> None:
    """With --accept-broader-role, ``iam`` and ``deploy --role-name`` use such a role, warn
    with every excess, and leave it as it was (plus the logging policy if missing)."""
    iam = client(moto_server, "iam")
    name = unique("broad-all")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(ANYONE_MAY_ASSUME))
    iam.put_role_policy(RoleName=name, PolicyName="everything", PolicyDocument=json.dumps(ALLOW_EVERYTHING))
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN_POLICY)
    env = fake_credentials_env(tmp_path)
    state = tmp_path / "state.json"
    excess = f"trusts AWS: *; has inline policy everything; has policy {ADMIN_POLICY}"

    refused = run_cli(["iam", "--role-name", name, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert (
        f"it trusts AWS: *; it has inline policy everything; it has policy {ADMIN_POLICY}." in refused.stderr
    )
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [
        ADMIN_POLICY
    ]

    accepted = run_cli(
        ["iam", "--role-name", name, "--accept-broader-role", *aws_args(moto_server, state)],
        env=env,
        cwd=tmp_path,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == f"arn:aws:iam::123456789012:role/{name}"
    assert f"Warning: role {name} {excess}; used as it is (--accept-broader-role)\n" in accepted.stderr
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
    assert attached == {ADMIN_POLICY, BASIC_POLICY}
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["everything"]
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == ANYONE_MAY_ASSUME

    function = unique("fn")
    deploy = ["deploy", "-n", function, "--zip", str(built.zip_path), "--role-name", name]
    refused_by_deploy = run_cli([*deploy, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert refused_by_deploy.returncode == 2
    assert f"error: Role {name} is broader than a least-privilege execution role" in refused_by_deploy.stderr
    accepted_by_deploy = run_cli(
        [*deploy, "--accept-broader-role", *aws_args(moto_server, state)], env=env, cwd=tmp_path
    )
    assert accepted_by_deploy.returncode == 0, accepted_by_deploy.stderr
    assert f"Warning: role {name} {excess}; used as it is" in accepted_by_deploy.stderr
    role = client(moto_server, "lambda").get_function_configuration(FunctionName=function)["Role"]
    assert role == f"arn:aws:iam::123456789012:role/{name}"


@pytest.mark.timeout(60)
def test_iam_reads_a_trust_policy_whose_statement_is_one_object(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """IAM accepts ``"Statement": {...}`` (one object, not a list); ``iam`` crashed on it
    with AttributeError. Now such a role is read like any other: reused when it trusts only
    Lambda, refused when the one statement also trusts ``AWS: *``."""
    iam = client(moto_server, "iam")
    env = fake_credentials_env(tmp_path)
    single = {"Version": "2012-10-17", "Statement": LAMBDA_TRUST["Statement"][0]}
    lambda_only = unique("single")
    iam.create_role(RoleName=lambda_only, AssumeRolePolicyDocument=json.dumps(single))
    reused = run_cli(
        ["iam", "--role-name", lambda_only, *aws_args(moto_server, tmp_path / "a.json")],
        env=env,
        cwd=tmp_path,
    )
    assert reused.returncode == 0, reused.stderr
    assert reused.stdout.strip() == f"arn:aws:iam::123456789012:role/{lambda_only}"
    assert f"Attaching AWSLambdaBasicExecutionRole to existing role {lambda_only}" in reused.stderr

    wide = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com", "AWS": "*"},
            "Action": "sts:AssumeRole",
        },
    }
    anyone = unique("single-wide")
    iam.create_role(RoleName=anyone, AssumeRolePolicyDocument=json.dumps(wide))
    refused = run_cli(
        ["iam", "--role-name", anyone, *aws_args(moto_server, tmp_path / "b.json")], env=env, cwd=tmp_path
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"error: Role {anyone} is broader than a least-privilege execution role: "
    )
    assert "it trusts AWS: *." in refused.stderr


# ------------------------------------------------------------------------------ deploy


def publish_layer(moto_server: MotoServer) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/layer_helper.py", "X = 1\n")
    answer = client(moto_server, "lambda").publish_layer_version(
        LayerName=unique("layer"), Content={"ZipFile": buffer.getvalue()}
    )
    return str(answer["LayerVersionArn"])


@pytest.mark.timeout(120)
def test_deploy_creates_then_updates_code_and_configuration(
    moto_server: MotoServer, tmp_path: Path, wheelhouse: Path
) -> None:
    env = fake_credentials_env(tmp_path)
    name = unique("fn")
    role_name = unique("deploy-role")
    state = tmp_path / "state.json"
    source = write_function(tmp_path / "function")
    zip_path = tmp_path / "function.zip"
    built = package(source, zip_path, wheelhouse, "--arch", "arm64", "--python", CURRENT_PYTHON)
    assert built.returncode == 0, built.stderr
    env_file = tmp_path / "prod.env"
    env_file.write_text('# settings\nGREETING="hi there"\nexport MODE=prod  # inline comment\nEMPTY=\n')
    layer_arn = publish_layer(moto_server)

    first = run_cli(
        ["deploy", "--function-name", name, "--zip", str(zip_path), "--role-name", role_name]
        + ["--memory", "512", "--timeout", "20", "--env-file", str(env_file), "--env", "EXTRA=1"]
        + ["--layer", layer_arn, "--tag", "team=platform", "--description", "first cut"]
        + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    lam = client(moto_server, "lambda")
    config = lam.get_function_configuration(FunctionName=name)
    assert first.stdout.strip() == config["FunctionArn"]
    assert "Creating IAM role" in first.stderr and f"Creating function {name}" in first.stderr
    assert "Waiting for" in first.stderr
    assert config["Role"] == f"arn:aws:iam::123456789012:role/{role_name}"
    assert config["Runtime"] == f"python{CURRENT_PYTHON}"
    assert config["Handler"] == "app.handler"
    assert config["Architectures"] == ["arm64"]
    assert config["MemorySize"] == 512 and config["Timeout"] == 20
    assert config["Description"] == "first cut"
    assert config["Layers"][0]["Arn"] == layer_arn
    assert config["Environment"]["Variables"] == {
        "GREETING": "hi there",
        "MODE": "prod",
        "EMPTY": "",
        "EXTRA": "1",
        **WRAPPER,
    }
    assert config["CodeSha256"] == zip_sha256(zip_path)
    assert lam.list_tags(Resource=config["FunctionArn"])["Tags"] == {"team": "platform"}

    # Same code, one setting changed: nothing re-uploaded, other settings kept.
    second = run_cli(
        ["deploy", "-n", name, "--zip", str(zip_path), "--memory", "1024"] + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert "Using remembered IAM role" in second.stderr
    assert "Code unchanged" in second.stderr
    config = lam.get_function_configuration(FunctionName=name)
    assert config["MemorySize"] == 1024 and config["Timeout"] == 20
    assert config["Environment"]["Variables"]["GREETING"] == "hi there"
    assert config["LastUpdateStatus"] == "Successful"

    # New code, built by deploy itself from the source directory.
    (source / "helpers" / "greeting.py").write_text("def greet(name):\n    return f'hi {name}'\n")
    third = run_cli(
        ["deploy", "-n", name, str(source), "--arch", "arm64", "--python", CURRENT_PYTHON]
        + offline_package_args(wheelhouse)
        + ["--env", "ONLY=this", "--tag", "stage=beta"]
        + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert third.returncode == 0, third.stderr
    assert f"Updating code of {name}" in third.stderr
    rebuilt = tmp_path / "dist" / "function.zip"
    config = lam.get_function_configuration(FunctionName=name)
    assert config["CodeSha256"] == zip_sha256(rebuilt) != zip_sha256(zip_path)
    assert config["Environment"]["Variables"] == {"ONLY": "this", **WRAPPER}
    assert lam.list_tags(Resource=config["FunctionArn"])["Tags"] == {"team": "platform", "stage": "beta"}
    assert len(lam.list_versions_by_function(FunctionName=name)["Versions"]) == 1


@pytest.mark.timeout(60)
def test_deploy_with_an_explicit_role_uses_it(moto_server: MotoServer, tmp_path: Path, built: Any) -> None:
    role_name = unique("explicit")
    iam = client(moto_server, "iam")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"][
        "Arn"
    ]
    name = unique("fn")
    env = fake_credentials_env(tmp_path)
    result = run_cli(
        ["deploy", "-n", name, "--zip", str(built.zip_path), "--role", arn]
        + aws_args(moto_server, tmp_path / "state.json"),
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config = client(moto_server, "lambda").get_function_configuration(FunctionName=name)
    assert config["Role"] == arn
    assert config["Architectures"] == ["x86_64"]
    assert not (tmp_path / "state.json").exists()

    # `iam --role` remembers a role of any name; deploy then uses it without --role.
    state = tmp_path / "state.json"
    remembered = run_cli(["iam", "--role", arn, *aws_args(moto_server, state)], env=env, cwd=tmp_path)
    assert remembered.returncode == 0, remembered.stderr
    other = unique("fn")
    second = run_cli(
        ["deploy", "-n", other, "--zip", str(built.zip_path), *aws_args(moto_server, state)],
        env=env,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert f"Using remembered IAM role {arn}" in second.stderr
    assert client(moto_server, "lambda").get_function_configuration(FunctionName=other)["Role"] == arn


@pytest.mark.timeout(60)
def test_deploy_refuses_options_that_contradict_the_package(tmp_path: Path, built: Any) -> None:
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(built.zip_path), "--arch", "arm64", "--region", "us-east-1"],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--arch arm64 differs from the package, which was built with x86_64" in result.stderr


@pytest.mark.timeout(60)
def test_deploy_refuses_reserved_environment_variables(tmp_path: Path, built: Any) -> None:
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(built.zip_path), "--env", "AWS_REGION=eu-west-1"],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "AWS_REGION is reserved by Lambda" in result.stderr


PEM_BODY = ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "kX0c9rQ2b8sLm+4vT7yZ1/pW3nH6jF5dA==")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            ["MODE=staging", "TLS_KEY=-----BEGIN PRIVATE KEY-----", *PEM_BODY, "-----END PRIVATE KEY-----"],
            "{path}:3: not a KEY=VALUE line (its text is not shown: it may be a secret); if it continues "
            "TLS_KEY from line 2, multi-line values are not read: put it on one line, with \\n for each "
            "newline inside double quotes",
        ),
        (
            ["# keys", 'TLS_KEY="-----BEGIN PRIVATE KEY-----', *PEM_BODY, '-----END PRIVATE KEY-----"'],
            "{path}:2: the value of TLS_KEY opens a quote that does not close on that line; multi-line "
            "values are not read: put it on one line, with \\n for each newline inside double quotes",
        ),
        (
            [PEM_BODY[1]],
            "{path}:1: not a KEY=VALUE line (its text is not shown: it may be a secret)",
        ),
    ],
    ids=["unquoted-pem", "quoted-pem", "bare-base64"],
)
def test_env_file_errors_name_the_line_never_the_value(
    tmp_path: Path, built: Any, lines: list[str], error: str
) -> None:
    """A multi-line PEM value in --env-file was echoed in the error (``got 'MIIEv…'``), so
    the secret landed in the terminal and in CI logs. Now the error names the file, the
    line and at most the key; nothing of the value appears."""
    env_file = tmp_path / "function.env"
    env_file.write_text("\n".join(lines) + "\n")
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(built.zip_path), "--env-file", str(env_file)],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {error.format(path=env_file)}"]
    assert [part for part in (*PEM_BODY, "BEGIN", "staging") if part in result.stderr] == []


@pytest.mark.timeout(60)
def test_env_option_without_a_name_is_not_echoed(tmp_path: Path, built: Any) -> None:
    """``--env "$TOKEN"`` (the name forgotten) was echoed back whole in the error."""
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(built.zip_path), "--env", "ghp_0123456789abcdef"],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --env must be KEY=VALUE, not an argument without a name and '='"
        " (not shown: it may be a secret)"
    ]


@pytest.mark.timeout(60)
def test_env_file_quoted_values_reach_lambda_as_written(
    moto_server: MotoServer, tmp_path: Path, built: Any
) -> None:
    """Quotes are read to their closing quote: a comment after a quoted value is dropped
    (it used to keep the quotes and all), escapes in double quotes are decoded once."""
    role_name = unique("env-role")
    arn = client(moto_server, "iam").create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )["Role"]["Arn"]
    env_file = tmp_path / "function.env"
    env_file.write_text(
        'A="two\\nlines" # note\n'
        "B='single # not a comment'\n"
        'C="say \\"hi\\" \\\\n"\n'
        "D=bare value # comment\n"
        "E=has#hash\n"
    )
    name = unique("fn")
    result = run_cli(
        ["deploy", "-n", name, "--zip", str(built.zip_path), "--role", arn, "--env-file", str(env_file)]
        + aws_args(moto_server, tmp_path / "state.json"),
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    variables = client(moto_server, "lambda").get_function_configuration(FunctionName=name)["Environment"][
        "Variables"
    ]
    assert variables == {
        "A": "two\nlines",
        "B": "single # not a comment",
        "C": 'say "hi" \\n',
        "D": "bare value",
        "E": "has#hash",
        **WRAPPER,
    }


@pytest.mark.timeout(60)
def test_deploy_of_a_directory_as_zip_is_one_line(tmp_path: Path) -> None:
    """``--zip`` naming a directory raised IsADirectoryError with a traceback; a file that
    cannot be read or written is now reported like any other user error."""
    folder = tmp_path / "dist"
    folder.mkdir()
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(folder)], env=fake_credentials_env(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: Is a directory: {folder}"]


@pytest.mark.timeout(60)
def test_deploy_of_a_file_that_is_not_a_package_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "other.zip"
    with zipfile.ZipFile(bogus, "w") as archive:
        archive.writestr("app.py", "")
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(bogus)], env=fake_credentials_env(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "is not a package built by `lambda-supervisor package`" in result.stderr


# ------------------------------------------------------------------------------ clear errors


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "command",
    [["iam"], ["deploy", "-n", "fn"], ["remote-invoke", "fn"]],
    ids=["iam", "deploy", "remote-invoke"],
)
def test_missing_credentials_are_reported(
    moto_server: MotoServer, tmp_path: Path, built: Any, command: list[str]
) -> None:
    if command[0] == "deploy":
        command = [*command, "--zip", str(built.zip_path)]
    env = isolated_env(tmp_path, AWS_DEFAULT_REGION="us-east-1")
    result = run_cli([*command, "--endpoint-url", moto_server.endpoint_url], env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "error: No AWS credentials found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_unknown_region_is_reported(moto_server: MotoServer, tmp_path: Path) -> None:
    result = run_cli(
        ["iam", "--region", "mars-east-1", "--endpoint-url", moto_server.endpoint_url],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Unknown AWS region 'mars-east-1'" in result.stderr


@pytest.mark.timeout(60)
def test_missing_region_and_unknown_profile_are_reported(tmp_path: Path) -> None:
    no_region = run_cli(
        ["iam"], env=isolated_env(tmp_path, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"), cwd=tmp_path
    )
    assert no_region.returncode == 2
    assert "No AWS region: pass --region" in no_region.stderr
    no_profile = run_cli(["iam", "--profile", "nobody"], env=isolated_env(tmp_path), cwd=tmp_path)
    assert no_profile.returncode == 2
    assert "AWS profile 'nobody' is not configured" in no_profile.stderr


@pytest.mark.timeout(60)
def test_profile_from_config_files_is_honoured(moto_server: MotoServer, tmp_path: Path) -> None:
    (tmp_path / "no-aws-config").write_text("[profile dev]\nregion = eu-west-1\n")
    (tmp_path / "no-aws-credentials").write_text("[dev]\naws_access_key_id = k\naws_secret_access_key = s\n")
    role_name = unique("profiled")
    result = run_cli(
        ["iam", "--profile", "dev", "--role-name", role_name, *aws_args(moto_server, tmp_path / "s.json")],
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f":role/{role_name}")


@pytest.mark.timeout(60)
def test_unreachable_endpoint_is_reported(tmp_path: Path) -> None:
    result = run_cli(
        ["iam", "--endpoint-url", "http://127.0.0.1:9"],
        env=fake_credentials_env(tmp_path, AWS_MAX_ATTEMPTS="1"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Cannot reach AWS" in result.stderr


@pytest.mark.timeout(60)
def test_without_boto3_the_aws_commands_say_how_to_install_it(tmp_path: Path, wheelhouse: Path) -> None:
    blocked = (
        "import sys; sys.modules['boto3'] = None\n"
        "from lambda_supervisor.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    source = write_function(tmp_path / "function")
    env = fake_credentials_env(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", blocked, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    iam = run("iam")
    assert iam.returncode == 2
    # What works from a checkout, since no package index has lambda-supervisor.
    assert "pip install boto3" in iam.stderr and "lambda-supervisor[deploy]" not in iam.stderr
    # Packaging needs no boto3 at all.
    packaged = run(
        "package",
        str(source),
        "-o",
        str(tmp_path / "f.zip"),
        "--no-bytecode",
        *offline_package_args(wheelhouse),
    )
    assert packaged.returncode == 0, packaged.stderr


@pytest.mark.timeout(90)
def test_deploy_container_image_then_update_it(moto_server: MotoServer, tmp_path: Path, built: Any) -> None:
    env = fake_credentials_env(tmp_path)
    name = unique("image-fn")
    state = tmp_path / "state.json"
    repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/greeter"
    first = run_cli(
        ["deploy", "-n", name, "--image-uri", f"{repository}:v1", "--arch", "arm64", "--env", "A=1"]
        + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    lam = client(moto_server, "lambda")
    function = lam.get_function(FunctionName=name)
    config = function["Configuration"]
    assert config["PackageType"] == "Image"
    assert config["Architectures"] == ["arm64"]
    assert not config.get("Runtime") and not config.get("Handler")
    # The image's ENTRYPOINT is bin/bootstrap: no exec wrapper.
    assert config["Environment"]["Variables"] == {"A": "1"}
    assert function["Code"]["ImageUri"] == f"{repository}:v1"

    second = run_cli(
        ["deploy", "-n", name, "--image-uri", f"{repository}:v2", "--arch", "arm64"]
        + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert lam.get_function(FunctionName=name)["Code"]["ImageUri"] == f"{repository}:v2"
    assert lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == {"A": "1"}

    as_zip = run_cli(
        ["deploy", "-n", name, "--zip", str(built.zip_path)] + aws_args(moto_server, state),
        env=env,
        cwd=tmp_path,
    )
    assert as_zip.returncode == 2
    assert "has package type Image, which Lambda cannot change to Zip" in as_zip.stderr


@pytest.mark.timeout(30)
def test_image_uri_excludes_zip_options(tmp_path: Path, built: Any) -> None:
    env = fake_credentials_env(tmp_path)
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
    both = run_cli(
        ["deploy", "-n", "f", "--image-uri", uri, "--zip", str(built.zip_path)], env=env, cwd=tmp_path
    )
    assert both.returncode == 2 and "either --zip or --image-uri" in both.stderr
    handler = run_cli(["deploy", "-n", "f", "--image-uri", uri, "--handler", "a.b"], env=env, cwd=tmp_path)
    assert handler.returncode == 2 and "--handler describes a zip" in handler.stderr


@pytest.mark.timeout(60)
def test_deploy_retries_while_a_new_role_is_not_assumable_yet(
    moto_server: MotoServer, tmp_path: Path, built: Any
) -> None:
    """IAM is eventually consistent: Lambda may reject a role created seconds ago. Here
    the role appears only while deploy is already retrying."""
    role_name = unique("late")
    arn = f"arn:aws:iam::123456789012:role/{role_name}"
    name = unique("fn")
    deploy = subprocess.Popen(
        CLI
        + ["deploy", "-n", name, "--zip", str(built.zip_path), "--role", arn]
        + aws_args(moto_server, tmp_path / "state.json"),
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert deploy.stderr is not None
    first_line = ""
    while "cannot assume" not in first_line:
        first_line = deploy.stderr.readline()
        assert first_line, "deploy ended without retrying"
    client(moto_server, "iam").create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )
    stdout, _ = deploy.communicate(timeout=30)
    assert deploy.returncode == 0
    assert stdout.strip().endswith(f":function:{name}")
    assert client(moto_server, "lambda").get_function_configuration(FunctionName=name)["Role"] == arn


@pytest.mark.timeout(60)
def test_deploy_refuses_a_zip_over_the_upload_limit(tmp_path: Path, built: Any) -> None:
    oversized = tmp_path / "big.zip"
    with zipfile.ZipFile(built.zip_path) as source, zipfile.ZipFile(oversized, "w") as target:
        target.writestr(".lambda-supervisor-package.json", source.read(".lambda-supervisor-package.json"))
        target.writestr("noise.bin", random.Random(3).randbytes(51 * 1024 * 1024))
    result = run_cli(
        ["deploy", "-n", "fn", "--zip", str(oversized), "--role", "arn:aws:iam::123456789012:role/r"],
        env=fake_credentials_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "over Lambda's 52428800-byte limit for a direct upload" in result.stderr


def read_all(controller: int) -> bytes:
    """Drain a pseudo-terminal whose other end is closed (Linux then answers EIO)."""
    data = b""
    try:
        while chunk := os.read(controller, 65536):
            data += chunk
    except OSError:
        pass
    finally:
        os.close(controller)
    return data


@pytest.mark.timeout(20)
def test_progress_redraws_on_a_terminal_and_stays_short_in_logs() -> None:
    controller, terminal_fd = os.openpty()
    with open(terminal_fd, "w", closefd=True) as terminal:
        assert terminal.isatty()
        with progress("Updating code of fn", terminal):
            time.sleep(1.3)
    shown = read_all(controller).decode()
    assert shown.startswith("Updating code of fn ...")
    assert re.search(r"\rUpdating code of fn \.\.\. \d+\.\ds", shown), shown
    assert "\rUpdating code of fn ... done (1." in shown

    log = io.StringIO()
    with pytest.raises(RuntimeError), progress("Waiting for fn", log):
        raise RuntimeError("waiter gave up")
    assert log.getvalue().splitlines()[0] == "Waiting for fn ..."
    assert log.getvalue().splitlines()[1].startswith("Waiting for fn: failed (")
