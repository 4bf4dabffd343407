"""The ``package``, ``iam``, ``deploy`` and ``remote-invoke`` subcommands.

Only argument parsing and wiring live here; each step's logic is in its own module. No
module here imports boto3 at import time: it is imported only when an AWS command runs, so
``package`` and ``--help`` work without it.
Progress goes to stderr and each command's one useful value (zip path, role ARN, function
ARN, invocation result) to stdout, so the commands compose in shell scripts.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .aws import AwsConnection, AwsOptions, explained_aws_errors
from .dependencies import PipSource
from .errors import DeployError
from .functions import FunctionSpec, deploy_function
from .iam import (
    DEFAULT_ROLE_NAME,
    ensure_execution_role,
    remember_given_role,
    role_for_deploy,
    validate_role_arn,
)
from .manifest import PackageManifest
from .package import (
    DEFAULT_IMAGE_OUTPUT,
    DEFAULT_ZIP_OUTPUT,
    FORMATS,
    PackageRequest,
    build_package,
)
from .remote_invoke import READ_TIMEOUT_SECONDS, invoke, print_outcome, read_payload
from .settings import build_environment, build_tags
from .sources import HandlerSpec
from .state import DEFAULT_STATE_FILE, DeployState
from .targets import ARCHITECTURES, DEFAULT_ARCHITECTURE, DEFAULT_PYTHON_VERSION, Target

DEFAULT_HANDLER = "app.handler"
Command = Callable[[argparse.Namespace], int]


def echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reports_errors(command: Command) -> Command:
    """Print a ``DeployError`` as one line and return its exit status, no traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except DeployError as exc:
            echo(f"error: {exc}")
            return exc.exit_code
        except OSError as exc:  # a file that cannot be read or written: the user's to fix
            where = f": {exc.filename}" if exc.filename else ""
            echo(f"error: {exc.strerror or exc}{where}")
            return 2
        except KeyboardInterrupt:
            echo("interrupted")
            return 130

    return run


def _bounded_int(low: int, high: int, unit: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of {unit}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high} {unit}")
        return value

    return parse


def _add_aws_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS connection (resolved by boto3 when omitted)")
    group.add_argument(
        "--region", metavar="REGION", help="AWS region (default: AWS_DEFAULT_REGION or the profile's)"
    )
    group.add_argument(
        "--profile", metavar="NAME", help="named profile from your AWS config/credentials files"
    )
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send requests here instead of AWS, e.g. a local emulator (boto3 also honours AWS_ENDPOINT_URL)",
    )


def _add_state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        type=Path,
        default=DEFAULT_STATE_FILE,
        help=f"where the execution role is remembered (default: {DEFAULT_STATE_FILE})",
    )


def _add_accept_broader_role_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-broader-role",
        action="store_true",
        help=(
            "reuse an existing role even if it trusts more than lambda.amazonaws.com or has more "
            "than the logging policy (each excess is reported, none is changed)"
        ),
    )


def _add_package_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        type=Path,
        default=Path("."),
        help="the function's directory (default: .)",
    )
    group = parser.add_argument_group("package")
    group.add_argument(
        "--handler",
        metavar="HANDLER",
        help="what Lambda calls: module.function, module:function, package/module.function or "
        f"path/to/file.py:function under SOURCE (default: {DEFAULT_HANDLER})",
    )
    group.add_argument(
        "--python", metavar="VERSION", help=f"target Python version (default: {DEFAULT_PYTHON_VERSION})"
    )
    group.add_argument("--arch", choices=ARCHITECTURES, help=f"target CPU (default: {DEFAULT_ARCHITECTURE})")
    group.add_argument(
        "--requirements",
        metavar="FILE",
        type=Path,
        help="requirements file (default: SOURCE/requirements.txt if present)",
    )
    group.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also leave out files matching PATTERN (repeatable)",
    )
    group.add_argument(
        "--ignore-file",
        metavar="FILE",
        type=Path,
        help="ignore rules file (default: SOURCE/.lambdaignore if present)",
    )
    group.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR_OR_URL",
        help="extra place for pip to find wheels (repeatable)",
    )
    group.add_argument(
        "--no-index",
        action="store_true",
        help="do not use the package index (offline builds with --find-links)",
    )
    group.add_argument("--no-bytecode", action="store_true", help="ship source only, no .pyc files")
    group.add_argument(
        "--allow-outside-links",
        action="store_true",
        help="follow symbolic links that lead out of SOURCE (never into /proc, /dev or /sys)",
    )
    group.add_argument(
        "--bytecode-python", metavar="EXE", help="interpreter of the target version to compile bytecode with"
    )


def _package_request(args: argparse.Namespace, output: Path, image: bool) -> PackageRequest:

    return PackageRequest(
        source=args.source,
        handler=HandlerSpec.parse(args.handler or DEFAULT_HANDLER),
        target=Target.parse(args.python or DEFAULT_PYTHON_VERSION, args.arch or DEFAULT_ARCHITECTURE),
        output=output,
        image=image,
        requirements=args.requirements,
        ignore_file=args.ignore_file,
        excludes=tuple(args.exclude),
        pip_source=PipSource(tuple(args.find_links), args.no_index),
        bytecode=not args.no_bytecode,
        bytecode_python=args.bytecode_python,
        allow_outside_links=args.allow_outside_links,
    )


@reports_errors
def run_package(args: argparse.Namespace) -> int:

    image = args.format == "image"
    output = args.output or (DEFAULT_IMAGE_OUTPUT if image else DEFAULT_ZIP_OUTPUT)
    result = build_package(_package_request(args, output, image), echo)
    print(result.output)
    return 0


def _connection(args: argparse.Namespace, sign_requests: bool = True) -> AwsConnection:

    return AwsConnection(AwsOptions(args.region, args.profile, args.endpoint_url, sign_requests))


@reports_errors
def run_iam(args: argparse.Namespace) -> int:

    connection = _connection(args)
    state = DeployState(args.state_file)
    with explained_aws_errors():
        if args.role:
            outcome = remember_given_role(connection, state, args.role)
            echo(f"Using the given role {outcome.arn}; no IAM changes made")
        else:
            outcome = ensure_execution_role(connection, state, args.role_name, echo, args.accept_broader_role)
    print(outcome.arn)
    return 0


def _check_matches(name: str, given: str | None, built: str) -> None:
    if given is not None and given != built:
        raise DeployError(f"--{name} {given} differs from the package, which was built with {built}")


def _image_code(args: argparse.Namespace) -> dict[str, Any]:
    """``--image-uri``: the image carries its handler and Python, so only the CPU is asked."""
    if args.zip:
        raise DeployError("Give either --zip or --image-uri, not both")
    for option in ("handler", "python"):
        if getattr(args, option) is not None:
            raise DeployError(f"--{option} describes a zip; an image sets it in its Dockerfile")
    return {"image_uri": args.image_uri, "architecture": args.arch or DEFAULT_ARCHITECTURE}


def _zip_code(zip_path: Path, manifest: PackageManifest) -> dict[str, Any]:

    target = Target.parse(manifest.python_version, manifest.architecture)
    return {
        "zip_bytes": zip_path.read_bytes(),
        "handler": manifest.handler,
        "runtime": target.runtime,
        "architecture": target.architecture,
    }


@reports_errors
def run_deploy(args: argparse.Namespace) -> int:

    environment = None
    if args.env_file or args.env:
        environment = build_environment(args.env_file, args.env)
    tags = build_tags(args.tag)
    code: dict[str, Any] = {}
    if args.image_uri:
        code = _image_code(args)
    elif args.zip:
        manifest = PackageManifest.from_zip(args.zip)
        given_handler = HandlerSpec.parse(args.handler).text if args.handler is not None else None
        _check_matches("handler", given_handler, manifest.handler)
        _check_matches("python", args.python, manifest.python_version)
        _check_matches("arch", args.arch, manifest.architecture)
        code = _zip_code(args.zip, manifest)
    # Credentials and region are checked before a build, which can take a while.
    connection = _connection(args)
    if not args.image_uri and not args.zip:
        result = build_package(_package_request(args, DEFAULT_ZIP_OUTPUT, image=False), echo)
        code = _zip_code(result.output, result.manifest)
    with explained_aws_errors():
        if args.role:
            role_arn = validate_role_arn(args.role)
        else:
            role_arn = role_for_deploy(
                connection, DeployState(args.state_file), args.role_name, echo, args.accept_broader_role
            )
        spec = FunctionSpec(
            name=args.function_name,
            role_arn=role_arn,
            memory=args.memory,
            timeout=args.timeout,
            environment=environment,
            layers=args.layer if args.layer else None,
            tags=tags,
            description=args.description,
            **code,
        )
        arn = deploy_function(connection.client("lambda"), spec, echo)
    print(arn)
    return 0


@reports_errors
def run_remote_invoke(args: argparse.Namespace) -> int:

    payload = read_payload(args.payload, args.payload_file, sys.stdin.buffer)
    connection = _connection(args, sign_requests=not args.no_sign_request)
    client = connection.client(
        "lambda",
        read_timeout=READ_TIMEOUT_SECONDS,
        connect_timeout=10,
        retries={"total_max_attempts": 1},
    )
    with explained_aws_errors():
        outcome = invoke(client, args.function_name, payload, args.qualifier)
    return print_outcome(outcome, sys.stdout.buffer)


def register(subparsers: Any) -> None:
    """Add the four AWS-side subcommands to the ``lambda-supervisor`` parser."""

    package = subparsers.add_parser(
        "package",
        help="build a reproducible deployment zip (or container build context)",
        description="Bundle the function, its dependencies for the Lambda platform and the runtime.",
    )
    _add_package_options(package)
    package.add_argument(
        "--format",
        choices=FORMATS,
        default="zip",
        help="zip (managed runtime) or image (container build context)",
    )
    package.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        type=Path,
        help="zip file or image directory (default: dist/function.zip or dist/image)",
    )
    package.set_defaults(func=run_package)

    iam = subparsers.add_parser(
        "iam",
        help="get or create the function's least-privilege execution role",
        description=(
            "Trusts lambda.amazonaws.com, attaches AWSLambdaBasicExecutionRole only, and remembers the role."
        ),
    )
    iam.add_argument(
        "--role-name",
        metavar="NAME",
        default=DEFAULT_ROLE_NAME,
        help=f"role to get or create (default: {DEFAULT_ROLE_NAME})",
    )
    iam.add_argument("--role", metavar="ARN", help="use this existing role instead; no IAM changes")
    _add_accept_broader_role_option(iam)
    _add_state_option(iam)
    _add_aws_options(iam)
    iam.set_defaults(func=run_iam)

    deploy = subparsers.add_parser(
        "deploy",
        help="create or update the Lambda function and print its ARN",
        description=(
            "Create the function, or update its code and then its configuration, waiting for each step."
        ),
    )
    deploy.add_argument(
        "--function-name", "-n", metavar="NAME", required=True, help="the Lambda function's name"
    )
    _add_package_options(deploy)
    deploy.add_argument(
        "--zip", metavar="FILE", type=Path, help="deploy this package instead of building SOURCE"
    )
    deploy.add_argument(
        "--image-uri",
        metavar="URI",
        help="deploy this container image (built from `package --format image`, pushed to ECR)",
    )
    deploy.add_argument(
        "--role", metavar="ARN", help="execution role (default: the one `iam` remembered or creates)"
    )
    deploy.add_argument(
        "--role-name",
        metavar="NAME",
        help=(
            "role to get or create when --role is absent (default: the role `iam` remembered, "
            f"else {DEFAULT_ROLE_NAME})"
        ),
    )
    _add_accept_broader_role_option(deploy)
    settings = deploy.add_argument_group(
        "function settings (left out: Lambda's default, or unchanged on update)"
    )
    settings.add_argument(
        "--memory", metavar="MB", type=_bounded_int(128, 10240, "MB"), help="memory in MB (128-10240)"
    )
    settings.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_bounded_int(1, 900, "seconds"),
        help="timeout in seconds (1-900)",
    )
    settings.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable (repeatable; replaces the set)",
    )
    settings.add_argument(
        "--env-file", metavar="FILE", type=Path, help="read environment variables from a .env file"
    )
    settings.add_argument(
        "--layer", action="append", default=[], metavar="ARN", help="layer version ARN (repeatable)"
    )
    settings.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tag (repeatable; added or overwritten)",
    )
    settings.add_argument("--description", metavar="TEXT", help="the function's description")
    _add_state_option(deploy)
    _add_aws_options(deploy)
    deploy.set_defaults(func=run_deploy)

    invoke = subparsers.add_parser(
        "remote-invoke",
        help="invoke a deployed function and print its result and log tail",
        description="Synchronous invoke with LogType=Tail; exits 1 when the function reports an error.",
    )
    invoke.add_argument("function_name", metavar="FUNCTION", help="function name or ARN")
    invoke.add_argument("--payload", metavar="JSON", help="the event as inline JSON (default: {})")
    invoke.add_argument(
        "--payload-file", metavar="PATH", help="read the event from PATH, or from stdin with -"
    )
    invoke.add_argument("--qualifier", metavar="VERSION_OR_ALIAS", help="version or alias to invoke")
    invoke.add_argument(
        "--no-sign-request",
        action="store_true",
        help="send unsigned requests (local emulators need no credentials)",
    )
    _add_aws_options(invoke)
    invoke.set_defaults(func=run_remote_invoke)
