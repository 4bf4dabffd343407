"""The comparison again on the Pythons Lambda runs: 3.12 and 3.13.

The main rows run on whatever interpreter started the bench, but a function runs on the
Python of its Lambda runtime, and a new interpreter moves import, fork and per-call costs:
a gap between the two runtimes on one version need not hold on another. For each version
this finds the machine's interpreter (pyenv's builds first: ``python3.12`` need not be on
PATH), gives it a venv of its own with the runtimes' requirements, compiles the runtime and
the handlers for it, and compares both runtimes on it: the no-op cold start and warm no-op
invocations, in ABBA pairs as everywhere else. A version that cannot be found or set up is
said so in the output and the report, and has no rows.
"""

from __future__ import annotations

from typing import Any

import cold
import warm
from runtimes import aws_runtime, compile_runtime, our_runtime
from session import Session
from venvs import SetupFailed, find_python, version_venv, where_looked

VERSIONS = ("3.12", "3.13")


def phase_prefix(minor: str) -> str:
    """What the phases measured on Python ``minor`` are called in the results."""
    return f"py{minor}:"


def run(session: Session) -> None:
    """For each version: find it, set up its venv, compare both runtimes on it."""
    found: dict[str, dict[str, Any]] = {}
    session.results["pythons"] = found
    for minor in VERSIONS:
        interpreter = find_python(minor)
        if interpreter is None:
            found[minor] = {"absent": f"no interpreter found (looked for {where_looked(minor)})"}
            session.say(f"Python {minor}: not measured, {found[minor]['absent']}")
            continue
        try:
            python = str(version_venv(minor, interpreter))
        except SetupFailed as error:
            found[minor] = {"absent": str(error)}
            session.say(f"Python {minor}: not measured, {error}")
            continue
        found[minor] = {"version": interpreter.version, "interpreter": str(interpreter.path)}
        session.say(f"Python {minor}: {interpreter.version} from {interpreter.path}")
        compile_runtime(python, session.root)
        pair = (our_runtime(session.root, python=python), aws_runtime(python))
        prefix = phase_prefix(minor)
        cold.compare(session, f"{prefix}cold", "noop", session.n(10, 4), timeout=30, runtimes=pair)
        warm.compare(
            session, f"{prefix}warm:noop", "noop", session.n(3000, 1000), pairs=session.n(5, 2), runtimes=pair
        )
