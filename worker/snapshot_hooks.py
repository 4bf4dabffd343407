"""SnapStart's runtime hooks: what a function registers with ``snapshot_restore_py``.

AWS's package keeps two lists: ``register_before_snapshot`` callables, run last registered
first just before the state they prepare is copied (a SnapStart snapshot, or here also the
preloaded process that every worker is forked from), and ``register_after_restore``
callables, run in order in each copy before it serves (to reconnect, reseed, refresh
credentials). A function that does not use the package registered nothing, and the
runtime itself never depends on it: the module is imported only if the function's code
root or its dependencies provide it.

Each runner takes the hooks off the list it runs, so that a process forked later does not
run them again, and returns the error report of the first hook that raised, or None.
``snap_start`` says whether the platform asked for SnapStart's restore flow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from worker import errors
from worker.reports import exception_report

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

# How Lambda tells a managed runtime that this environment's init is to be snapshotted.
INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"


def snap_start(environ: Mapping[str, str]) -> bool:
    """Is this environment initialised for a SnapStart snapshot (the restore flow due)?"""
    return environ.get(INITIALIZATION_TYPE) == SNAP_START


def run_before_snapshot() -> errors.ErrorReport | None:
    """Run the before-snapshot hooks, last registered first; the first failure's report."""
    hooks = _registered("get_before_snapshot")
    while hooks:
        failure = _call(hooks.pop())
        if failure is not None:
            return failure
    return None


def run_after_restore() -> errors.ErrorReport | None:
    """Run the after-restore hooks in the order they were registered; the first failure's
    report. The list is kept: every copy of the snapshot runs it."""
    for hook in list(_registered("get_after_restore")):
        failure = _call(hook)
        if failure is not None:
            return failure
    return None


def _registered(getter: str) -> list[Hook]:
    """The package's live list of hooks, or an empty one when the function does not use it.

    Only a package the function already imported counts: a function that registers hooks
    has imported it at init, and one that has not registered none.
    """
    module = sys.modules.get("snapshot_restore_py")
    get = getattr(module, getter, None)
    if get is None:
        return []
    hooks = get()
    return hooks if isinstance(hooks, list) else []


def _call(hook: Hook) -> errors.ErrorReport | None:
    """Run one hook. A failure's report keeps the exception's own type, as AWS's runtime
    reports it; the phase that failed is the error type the report is posted under."""
    try:
        function, args, kwargs = hook
        function(*args, **kwargs)
    except Exception as exc:
        return exception_report(exc)[0]
    return None
