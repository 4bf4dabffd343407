"""Bytecode in the deployment package: the cold start of ours with and without ``.pyc`` files.

Lambda's code directory is read-only, so a package shipped as source is compiled again at
every cold start and never cached. This phase measures what shipping bytecode saves, on two
copies of the runtime laid out as its deployment package is: the figure behind ``package``
shipping compiled bytecode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from paths import WORK
from runtimes import our_runtime
from session import Session
from trial import alternate, median_of, run_trial


def run(session: Session) -> None:
    """Cold start of a deployment-like copy of the runtime, without and with ``.pyc`` files.

    Both copies hold the runtime's packages and its dependencies (urllib3, structlog)
    side by side, as a deployment package does, and run with bytecode writing off, as
    on Lambda's read-only code directory. The standard library is compiled in both,
    as it is on Lambda.
    """
    plain, compiled = build_packages(session.root)
    variants = {
        "source only": our_runtime(plain, "source only"),
        "with .pyc": our_runtime(compiled, "with .pyc"),
    }
    pairs = session.n(20, 8)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _, plain_first in alternate(pairs):
        order = ("source only", "with .pyc") if plain_first else ("with .pyc", "source only")
        for name in order:
            run = run_trial(session.stand_in, variants[name], "noop", 1, timeout=30)
            runs[name].append(
                {"first_next_ms": run.to_first_next_ms, "first_response_ms": run.to_first_response_ms}
            )
    session.results["runs"]["bytecode"] = runs
    session.say(
        f"cold start, source only {median_of(runs['source only'], 'first_next_ms'):.1f} ms, "
        f"with .pyc {median_of(runs['with .pyc'], 'first_next_ms'):.1f} ms"
    )


def build_packages(root: Path) -> tuple[Path, Path]:
    """Two copies of the runtime laid out like its deployment package: source only, and
    compiled with unchecked-hash ``.pyc`` files (the code of a deployment never changes, so
    there is nothing to check at import)."""
    import compileall
    import py_compile

    import structlog
    import urllib3

    made = []
    for name in ("pkg-source", "pkg-compiled"):
        target = WORK / name
        if target.exists():
            shutil.rmtree(target)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("supervisor", "worker", "bin"):
            shutil.copytree(root / package, target / package, ignore=ignore)
        for module in (urllib3, structlog):
            source = Path(module.__file__).parent  # type: ignore[arg-type]
            shutil.copytree(source, target / source.name, ignore=ignore)
        made.append(target)
    compileall.compile_dir(
        str(made[1]), quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    return made[0], made[1]
