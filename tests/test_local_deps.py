"""The function's interpreter and dependencies under ``invoke``: the active virtualenv's
Python, ``--python``, the one-line hint for a requirements.txt it lacks, ``--install-deps``.

Real virtualenvs (``python -m venv --without-pip``: nothing in them but the standard
library) and a real wheel built here, installed by pip from a local file with the
package index off, so no network is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from http_support import INVOKE_PATH, post
from local_support import ServeProcess, run_cli
from runtime_harness import write_task

from lambda_supervisor.local.dependencies import requirement_names
from lambda_supervisor.testing import FunctionError, lambda_invoke

USES_TINYDEP = """\
    import sys

    import tinydep

    def handler(event, context):
        return {"greeting": tinydep.GREETING, "prefix": sys.prefix, "from": tinydep.__file__}
    """
WHERE = """\
    import sys

    def handler(event, context):
        return {"prefix": sys.prefix}
    """


def build_wheel(directory: Path, name: str = "tinydep", version: str = "1.0") -> Path:
    """A pure-Python wheel of one module, ``GREETING`` in it, written by hand."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"GREETING = 'hello from {name} {version}'\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with nothing installed, not even pip (nor urllib3, which the runtime needs)."""
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = write_task(tmp_path / "function", {"app.py": USES_TINYDEP, "where.py": WHERE})
    wheel = build_wheel(tmp_path)
    (root / "requirements.txt").write_text(f"# what the function needs\ntinydep @ {wheel.as_uri()}\n")
    return root


def _env(venv: Path | None, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    return {**env, "PIP_NO_INDEX": "1", **extra}


@pytest.mark.timeout(60)
def test_the_function_runs_on_the_active_virtualenvs_python(app: Path, venv: Path) -> None:
    """Tried: ``invoke`` with VIRTUAL_ENV naming a venv that lacks even urllib3; then
    ``--python`` with that venv's interpreter and VIRTUAL_ENV unset."""
    for options, env in (((), _env(venv)), (("--python", str(venv / "bin" / "python")), _env(None))):
        done = run_cli("invoke", "where.handler", *options, cwd=app, env=env)
        assert done.returncode == 0, done.stderr.decode()
        assert json.loads(done.stdout) == {"prefix": str(venv)}


@pytest.mark.timeout(60)
def test_missing_requirements_are_named_in_one_line_with_the_fix(app: Path, venv: Path) -> None:
    """Tried: a requirements.txt whose package the venv lacks, without --install-deps: one
    line names it and both fixes; the init fails as on Lambda."""
    done = run_cli("invoke", "app.handler", cwd=app, env=_env(venv))
    stderr = done.stderr.decode()
    python = venv / "bin" / "python"
    hint = (
        f"lambda-supervisor: {app}/requirements.txt lists tinydep, missing from {python}: run with "
        f"--install-deps, or install them: {python} -m pip install -r {app}/requirements.txt"
    )
    assert hint in stderr.splitlines(), stderr
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert (body["errorType"], body["errorMessage"]) == (
        "Runtime.ImportModuleError",
        "Unable to import module 'app': No module named 'tinydep'",
    )


@pytest.mark.timeout(120)
def test_install_deps_installs_once_into_a_cached_folder_on_the_path(app: Path, venv: Path) -> None:
    """Tried: ``--install-deps`` twice with the file unchanged (the second run installs
    nothing), then with the file changed (a new folder, the new version)."""
    deps = app / ".lambda-supervisor" / "deps"
    first = run_cli("invoke", "app.handler", "--install-deps", cwd=app, env=_env(venv), timeout=100)
    assert first.returncode == 0, first.stderr.decode()
    result = json.loads(first.stdout)
    [folder] = list(deps.iterdir())
    assert result == {
        "greeting": "hello from tinydep 1.0",
        "prefix": str(venv),
        "from": str(folder / "tinydep" / "__init__.py"),
    }
    assert f"lambda-supervisor: installing {app}/requirements.txt into {folder}" in first.stderr.decode()
    assert "missing from" not in first.stderr.decode()

    again = run_cli("invoke", "app.handler", "--install-deps", cwd=app, env=_env(venv), timeout=100)
    assert again.returncode == 0, again.stderr.decode()
    assert json.loads(again.stdout)["from"] == result["from"]
    assert "installing" not in again.stderr.decode()

    newer = build_wheel(app.parent, version="2.0")
    (app / "requirements.txt").write_text(f"tinydep @ {newer.as_uri()}\n")
    changed = run_cli("invoke", "app.handler", "--install-deps", cwd=app, env=_env(venv), timeout=100)
    assert changed.returncode == 0, changed.stderr.decode()
    assert json.loads(changed.stdout)["greeting"] == "hello from tinydep 2.0"
    assert len(list(deps.iterdir())) == 2


@pytest.mark.timeout(120)
def test_serve_runs_on_the_given_python_with_installed_deps(
    app: Path, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: ``serve --python VENV --install-deps``, then a call over HTTP."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with ServeProcess(
        f"{app}/app.py:handler", "--python", str(venv / "bin" / "python"), "--install-deps"
    ) as server:
        status, _, body = post(server.host, server.port, INVOKE_PATH, b"{}")
    assert status == 200, body
    result = json.loads(body)
    assert (result["greeting"], result["prefix"]) == ("hello from tinydep 1.0", str(venv))


@pytest.mark.timeout(60)
def test_install_deps_failure_is_one_clear_line(app: Path, venv: Path) -> None:
    """Tried: a requirement pip cannot find with the index off; and --install-deps with no
    requirements.txt at all."""
    (app / "requirements.txt").write_text("no-such-package-anywhere==1.0\n")
    done = run_cli("invoke", "where.handler", "--install-deps", cwd=app, env=_env(venv), timeout=50)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert (
        f"lambda-supervisor: error: --install-deps: pip could not install {app}/requirements.txt: " in stderr
    )
    assert "Traceback" not in stderr
    assert not list((app / ".lambda-supervisor" / "deps").iterdir())
    (app / "requirements.txt").unlink()
    done = run_cli("invoke", "where.handler", "--install-deps", cwd=app, env=_env(venv))
    assert done.returncode == 2
    assert (
        f"lambda-supervisor: error: --install-deps: there is no requirements.txt in {app}"
        in done.stderr.decode()
    )


@pytest.mark.timeout(30)
def test_a_python_that_is_not_there_is_a_clear_error(app: Path, tmp_path: Path) -> None:
    """Tried: ``--python`` naming no file, and VIRTUAL_ENV naming a directory without bin/python."""
    done = run_cli("invoke", "where.handler", "--python", str(tmp_path / "nope"), cwd=app, env=_env(None))
    assert done.returncode == 2
    assert (
        f"lambda-supervisor: error: --python {tmp_path / 'nope'}: no such interpreter" in done.stderr.decode()
    )
    done = run_cli("invoke", "where.handler", cwd=app, env=_env(tmp_path))
    assert done.returncode == 2
    assert f"VIRTUAL_ENV={tmp_path} has no bin/python" in done.stderr.decode()


@pytest.mark.timeout(120)
def test_lambda_invoke_takes_the_interpreter_and_installs_deps(
    app: Path, venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried: ``lambda_invoke`` on the venv's Python without and with ``install_deps``: the
    failed import names the missing requirement, then the installed one is used."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    python = str(venv / "bin" / "python")
    with pytest.raises(FunctionError) as failure:
        lambda_invoke("app.handler", {}, cwd=str(app), python=python)
    assert failure.value.error_type == "Runtime.ImportModuleError"
    assert f"requirements.txt lists tinydep, missing from {python}: run with --install-deps" in str(
        failure.value
    )
    result = lambda_invoke("app.handler", {}, cwd=str(app), python=python, install_deps=True)
    assert (result["greeting"], result["prefix"]) == ("hello from tinydep 1.0", str(venv))


def test_requirement_names_are_read_as_pip_reads_the_lines(tmp_path: Path) -> None:
    """Tried: names with versions, extras, hashes, URLs and comments; options, paths, VCS
    URLs and marker lines are skipped (nothing to check them by)."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# a comment\n"
        "python-slugify>=8  # trailing comment\n"
        "requests[socks]==2.31 --hash=sha256:abc\n"
        "tinydep @ file:///tmp/tinydep-1.0-py3-none-any.whl\n"
        "Plain_Name\n"
        "-r other.txt\n"
        "--index-url https://example.invalid/simple\n"
        "./local/dir\n"
        "git+https://example.invalid/repo.git\n"
        "tomli; python_version < '3.11'\n"
        "\n"
    )
    assert requirement_names(requirements) == ["python-slugify", "requests", "tinydep", "Plain_Name"]
