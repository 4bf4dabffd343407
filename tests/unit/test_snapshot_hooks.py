"""SnapStart's runtime hooks as the worker runs them (``worker/snapshot_hooks.py``), and the
pipe frames that ask for a phase and tell how it went (``worker/protocol.py``).

The hooks are registered through the real ``snapshot_restore_py`` package, its registries
emptied for each test so that no test sees another's hooks.
"""

from __future__ import annotations

import sys

import pytest
import snapshot_restore_py
from snapshot_restore_py import register_after_restore, register_before_snapshot

from worker import protocol, snapshot_hooks

pytestmark = pytest.mark.timeout(10)


@pytest.fixture(autouse=True)
def empty_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_restore_py, "_before_snapshot_registry", [])
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", [])
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", snapshot_restore_py)


def _recorder(calls: list[str], name: str):
    def hook(*args: object, **kwargs: object) -> None:
        calls.append(f"{name}{args}{sorted(kwargs.items())}")

    return hook


def test_before_snapshot_hooks_run_last_registered_first_and_only_once():
    """Tried: three before-snapshot hooks, one registered with arguments, run twice. They run
    in reverse order of registration with their arguments, and the second run finds none
    left: a process forked after the first run must not repeat them."""
    calls: list[str] = []
    register_before_snapshot(_recorder(calls, "one"))
    register_before_snapshot(_recorder(calls, "two"), 2, key="k")
    register_before_snapshot(_recorder(calls, "three"))
    assert snapshot_hooks.run_before_snapshot() is None
    assert calls == ["three()[]", "two(2,)[('key', 'k')]", "one()[]"]
    assert snapshot_hooks.run_before_snapshot() is None
    assert len(calls) == 3


def test_after_restore_hooks_run_in_order_every_time():
    """Tried: two after-restore hooks (one as a decorator), run twice. They run in the order
    registered, and again on the second run: every copy of the snapshot runs them."""
    calls: list[str] = []
    register_after_restore(_recorder(calls, "one"), "a")

    @register_after_restore
    def two() -> None:
        calls.append("two")

    assert snapshot_hooks.run_after_restore() is None
    assert snapshot_hooks.run_after_restore() is None
    assert calls == ["one('a',)[]", "two", "one('a',)[]", "two"]


@pytest.mark.parametrize(
    ("register", "run", "runs_first"),
    [
        (register_before_snapshot, snapshot_hooks.run_before_snapshot, "last"),
        (register_after_restore, snapshot_hooks.run_after_restore, "first"),
    ],
    ids=["before-snapshot", "after-restore"],
)
def test_the_first_hook_that_raises_ends_the_phase_with_its_report(register, run, runs_first):
    """Tried: three hooks, the middle one raising ``ConnectionError('pool closed')``. The
    hooks after it in the phase's order do not run, and the report is the four keys of the
    exception, as AWS's runtime reports it: its class as errorType, its text, and a stack
    of the user's frames only."""
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise ConnectionError("pool closed")

    register(lambda: calls.append("first"))
    register(failing)
    register(lambda: calls.append("last"))
    report = run()
    assert calls == [runs_first, "failing"]
    assert report is not None
    assert (report["errorType"], report["errorMessage"], report["requestId"]) == (
        "ConnectionError",
        "pool closed",
        "",
    )
    assert len(report["stackTrace"]) == 1
    assert report["stackTrace"][0].startswith(f'  File "{__file__}", line ')
    assert report["stackTrace"][0].endswith(', in failing\n    raise ConnectionError("pool closed")\n')


def test_a_hook_that_exits_is_not_caught():
    """Tried: a hook raising SystemExit. It propagates (the worker then exits, and the
    supervisor reports the death in that phase), as an exit in a handler does."""
    register_before_snapshot(sys.exit, 3)
    with pytest.raises(SystemExit):
        snapshot_hooks.run_before_snapshot()


def test_without_the_package_there_is_nothing_to_run(monkeypatch: pytest.MonkeyPatch):
    """Tried: running both phases when the function never imported snapshot_restore_py. Both
    succeed with nothing run, and the runtime does not import the package itself."""
    monkeypatch.delitem(sys.modules, "snapshot_restore_py")
    assert snapshot_hooks.run_before_snapshot() is None
    assert snapshot_hooks.run_after_restore() is None
    assert "snapshot_restore_py" not in sys.modules


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}, True),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}, False),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"}, False),
        ({"AWS_LAMBDA_INITIALIZATION_TYPE": "SNAP-START"}, False),
        ({}, False),
    ],
)
def test_only_the_snap_start_initialization_type_asks_for_the_restore_flow(environ, expected):
    """Tried: Lambda's initialization types, a wrongly cased one and none."""
    assert snapshot_hooks.snap_start(environ) is expected


# --- the frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("phase", protocol.HOOK_PHASES)
def test_the_phase_asked_for_is_the_phase_read(pipe, phase):
    """Tried: each phase written by the supervisor's side and read by the worker's."""
    read_fd, write_fd = pipe
    protocol.write_run_hooks(write_fd, phase, deadline=None, watch=None)
    assert protocol.read_run_hooks(read_fd) == phase


def test_an_unknown_phase_is_refused(pipe):
    """Tried: a RUN_HOOKS frame naming a phase there is none of."""
    read_fd, write_fd = pipe
    protocol.write_frame(write_fd, protocol.RUN_HOOKS, {"phase": "during_snapshot"})
    with pytest.raises(protocol.Garbled, match="unknown runtime hook phase 'during_snapshot'"):
        protocol.read_run_hooks(read_fd)


def test_how_the_hooks_went_reads_back_as_written(pipe):
    """Tried: a phase that ran in 12.5 ms, then one that failed with a report body."""
    read_fd, write_fd = pipe
    protocol.write_hooks_ran(write_fd, 12.5)
    protocol.write_hooks_failed(write_fd, protocol.HooksFailed(b'{"errorType": "ValueError"}'))
    frames = [protocol.read_frame(read_fd, max_body=1 << 10, allowed=protocol.HOOK_KINDS) for _ in range(2)]
    assert [protocol.parse_hooks_ran(frame) for frame in frames] == [
        protocol.HooksRan(12.5),
        protocol.HooksFailed(b'{"errorType": "ValueError"}'),
    ]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"hooks_ms": "fast"}, protocol.HooksRan(0.0)),
        ({"failed": "yes"}, protocol.HooksRan(0.0)),
        ({"failed": True}, protocol.HooksFailed(b"")),
    ],
)
def test_a_forged_hooks_reply_is_read_without_trusting_its_fields(pipe, meta, expected):
    """Tried: replies hook code could forge on the pipe, with fields of the wrong type."""
    read_fd, write_fd = pipe
    protocol.write_frame(write_fd, protocol.HOOKS_RAN, meta)
    frame = protocol.read_frame(read_fd, max_body=0, allowed=protocol.HOOK_KINDS)
    assert protocol.parse_hooks_ran(frame) == expected
