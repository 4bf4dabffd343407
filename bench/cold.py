"""Cold start: from spawning a runtime to the stand-in seeing its first ``GET /next``.

A cold start is what a caller waits for when Lambda makes a new environment, and what it
costs is mostly imports, so it is measured as the caller would see it: from just before
``subprocess.Popen`` to the first ``GET /next`` (the runtime is ready), and to the first
response (an event is already waiting). First with a no-op handler, where the runtime alone
counts; then with a handler whose init imports boto3 and makes a client, as most functions
do, on every CPU and on one.
"""

from __future__ import annotations

from runtimes import AWS, OURS, Runtime
from session import Session
from trial import alternate, median_of, run_trial


def run(session: Session) -> None:
    """Process spawn to the first ``GET /next``, and to the first response, no-op handler.

    Then the same for a function whose init imports boto3 and makes a client (``sdk``):
    what most Python functions do at init, and where this runtime's supervisor imports
    run alongside the worker's init instead of before it. That is measured on every CPU
    and on one, since a Lambda function under 1,769 MB has less than one vCPU.
    """
    compare(session, "cold", "noop", session.n(30, 10), timeout=30)
    compare(session, "cold-sdk", "sdk", session.n(10, 4), timeout=60)
    compare(session, "cold-sdk-1cpu", "sdk", session.n(10, 4), timeout=60, cpus=session.cpus.one)


def compare(
    session: Session,
    phase: str,
    module: str,
    pairs: int,
    *,
    timeout: float,
    cpus: set[int] | None = None,
    runtimes: tuple[Runtime, Runtime] | None = None,
) -> None:
    """``pairs`` ABBA pairs of one-event cold starts with the handler ``module``, of the
    session's two runtimes or of ``runtimes`` (ours, awslambdaric) on another Python."""
    ours, aws = runtimes or (session.ours, session.aws)
    runs: dict[str, list[dict[str, float]]] = {OURS: [], AWS: []}
    for _, ours_first in alternate(pairs):
        order = (ours, aws) if ours_first else (aws, ours)
        for runtime in order:
            run = run_trial(session.stand_in, runtime, "noop", 1, module=module, timeout=timeout, cpus=cpus)
            runs[runtime.name].append(
                {
                    "first_next_ms": run.to_first_next_ms,
                    "first_response_ms": run.to_first_response_ms,
                    "cpu_s": run.cpu_s,
                }
            )
    session.results["runs"][phase] = runs
    session.say(
        f"{phase} to first /next: ours {median_of(runs[OURS], 'first_next_ms'):.1f} ms, "
        f"awslambdaric {median_of(runs[AWS], 'first_next_ms'):.1f} ms (medians of {pairs})"
    )
