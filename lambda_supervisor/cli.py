"""The ``lambda-supervisor`` console script.

Each group of subcommands lives in its own module and registers itself here, so the
local-development commands and the AWS commands (which need boto3) stay independent.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that expose ``register(subparsers)``; imported lazily so ``--help`` stays fast.
COMMAND_MODULES = ("lambda_supervisor.local", "lambda_supervisor.deploy.commands")


def installed_version() -> str:
    """The version pip installed, as ``pip show lambda-supervisor`` would say it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lambda-supervisor")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lambda-supervisor",
        description="Run, test, package and deploy Python Lambda functions on lambda-supervisor.",
    )
    parser.add_argument("--version", action="version", version=f"lambda-supervisor {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
