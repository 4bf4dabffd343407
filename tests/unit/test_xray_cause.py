"""The X-Ray cause: one bound for the cause the worker builds and for one handler code forges."""

from __future__ import annotations

import json
import traceback

import pytest

from worker.errors import XRAY_CAUSE_BYTES
from worker.reports import bound_xray_cause, encode_xray_cause, parse_xray_cause, xray_cause

pytestmark = pytest.mark.timeout(10)


def _frames(count: int, path: str = "/var/task/app.py") -> traceback.StackSummary:
    return traceback.StackSummary.from_list([(path, n + 1, f"f{n}", None) for n in range(count)])


def test_a_cause_the_worker_built_passes_the_supervisor_unchanged(tmp_path, monkeypatch):
    """Tried: a RecursionError's cause (a thousand frames at a long path, in a working
    directory of over 400 characters) built by the worker, then read back from its JSON as
    the supervisor reads a reply: what the worker bounded is what gets posted, to the byte."""
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    built = xray_cause("RecursionError", "maximum recursion depth exceeded", _frames(1000, "/" + "p" * 200))
    assert built is not None
    assert built["working_directory"].startswith(str(tmp_path)) and len(built["working_directory"]) < 256
    assert parse_xray_cause(json.loads(json.dumps(built))) == built
    assert len(encode_xray_cause(built)) <= XRAY_CAUSE_BYTES


def test_frames_go_from_the_middle_and_the_paths_follow():
    """Tried: 40 frames at distinct 200-byte paths, far over the budget: the outermost and
    innermost frames are kept, and ``paths`` names exactly the files of the frames kept."""
    stack = [{"label": f"f{n}", "path": f"/{n:03d}" + "p" * 200, "line": n} for n in range(40)]
    cause = bound_xray_cause(
        {
            "working_directory": "/var/task",
            "exceptions": [{"message": "m", "type": "T", "stack": stack}],
            "paths": [],
        }
    )
    assert cause is not None
    kept = cause["exceptions"][0]["stack"]
    assert 1 < len(kept) < 16
    assert (kept[0]["label"], kept[-1]["label"]) == ("f0", "f39")
    assert cause["paths"] == sorted(frame["path"] for frame in kept)
    assert len(encode_xray_cause(cause)) <= XRAY_CAUSE_BYTES


def test_a_forged_cause_keeps_only_its_own_fields_of_their_own_types():
    """Tried: a forged cause with unknown keys, texts that are numbers, a line that is a bool
    and stack entries that are not frames: only the cause's own fields come back, each as
    its type, and a cause with no exception in it is no cause at all."""
    forged = {
        "working_directory": 7,
        "junk": "j" * 1000,
        "exceptions": [None, {"message": ["m"], "type": "T", "stack": [1, {"label": "f", "line": True}]}],
    }
    assert parse_xray_cause(forged) == {
        "working_directory": "",
        "exceptions": [{"message": "", "type": "T", "stack": [{"label": "f", "path": "", "line": 0}]}],
        "paths": [""],
    }
    assert parse_xray_cause({"exceptions": "not a list"}) is None
    assert parse_xray_cause(["not", "a", "cause"]) is None
