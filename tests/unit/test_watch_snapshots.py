"""What ``serve --watch`` counts as a change of the function's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_supervisor.local.watch import changed_paths, describe_changes, drop_stale_bytecode, snapshot

pytestmark = pytest.mark.timeout(10)


def test_added_removed_and_rewritten_files_are_changes_and_nothing_else_is():
    before = {"/c/a.py": (1, 10), "/c/b.py": (1, 10), "/c/gone.py": (1, 1)}
    after = {"/c/a.py": (1, 10), "/c/b.py": (2, 10), "/c/new.py": (3, 1)}
    assert changed_paths(before, after) == ["/c/b.py", "/c/gone.py", "/c/new.py"]
    assert changed_paths(after, dict(after)) == []


def test_only_code_requirements_and_env_files_outside_caches_and_virtualenvs_are_watched(tmp_path: Path):
    for name in ("app.py", "requirements.txt", ".env", "notes.txt", "pkg/mod.py", "pkg/data.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    for name in (".git/hook.py", "pkg/__pycache__/mod.py", "env/pyvenv.cfg", "env/lib/site.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    watched = sorted(Path(path).relative_to(tmp_path).as_posix() for path in snapshot(tmp_path))
    assert watched == [".env", "app.py", "pkg/mod.py", "requirements.txt"]


def test_a_change_is_described_relative_to_the_code_root():
    root = Path("/code")
    assert describe_changes([root / "app.py"], root) == "app.py changed"
    many = [root / f"m{n}.py" for n in range(5)]
    assert describe_changes(many, root) == "m0.py, m1.py, m2.py and 2 more changed"


def test_the_bytecode_of_changed_files_only_is_dropped(tmp_path: Path):
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("app.cpython-311.pyc", "app.cpython-313.opt-1.pyc", "other.cpython-311.pyc"):
        (cache / name).write_bytes(b"")
    drop_stale_bytecode([tmp_path / "app.py", tmp_path / "requirements.txt", tmp_path / "gone.py"])
    assert sorted(path.name for path in cache.iterdir()) == ["other.cpython-311.pyc"]
