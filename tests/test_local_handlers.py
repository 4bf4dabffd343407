"""One handler syntax for every local command: the forms Lambda's runtime takes, and files.

The CLI runs as users run it (a subprocess) on a package whose module uses relative
imports, so a code root chosen wrongly (inside the package) shows as an import error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_support import run_cli
from runtime_harness import write_task

from lambda_supervisor.testing import lambda_invoke

# pkg/mod.py imports its sibling relatively: it works only when pkg's parent is the code root.
PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/helpers.py": "def greet(name):\n    return 'hello ' + name\n",
    "pkg/mod.py": """\
        import os
        from .helpers import greet

        def handler(event, context):
            return {"greeting": greet(event["name"]), "module": __name__,
                    "root": os.environ["LAMBDA_TASK_ROOT"]}
        """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_task(tmp_path / "project", PACKAGE)


def _invoke(handler: str, cwd: Path) -> dict:
    done = run_cli("invoke", handler, "--event", '{"name": "ada"}', cwd=cwd, timeout=40)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "handler",
    ["pkg/mod.py:handler", "pkg.mod.handler", "pkg/mod.handler", "pkg.mod:handler", "pkg/mod:handler"],
)
def test_every_form_runs_a_package_module_with_relative_imports(project: Path, handler: str) -> None:
    """Tried: ``invoke`` with each form from the directory above the package; the module is
    imported as ``pkg.mod`` with that directory as the code root, its relative import works."""
    result = _invoke(handler, project)
    assert result == {"greeting": "hello ada", "module": "pkg.mod", "root": str(project.resolve())}


@pytest.mark.timeout(60)
def test_a_file_in_a_package_has_its_code_root_above_the_package(project: Path, tmp_path: Path) -> None:
    """Tried: the package's file by absolute path from elsewhere, and by its bare name from
    inside the package: neither makes ``pkg/`` the code root."""
    expected = {"greeting": "hello ada", "module": "pkg.mod", "root": str(project.resolve())}
    assert _invoke(f"{project}/pkg/mod.py:handler", tmp_path) == expected
    assert _invoke("mod.py:handler", project / "pkg") == expected


@pytest.mark.timeout(60)
def test_lambda_invoke_takes_the_same_forms(project: Path) -> None:
    """Tried: the test helper with Lambda's form and with the file form."""
    for handler in ("pkg/mod.handler", "pkg/mod.py:handler"):
        result = lambda_invoke(handler, {"name": "bo"}, cwd=str(project))
        assert (result["greeting"], result["module"]) == ("hello bo", "pkg.mod")


@pytest.mark.timeout(30)
def test_help_names_every_handler_form() -> None:
    """Tried: ``serve --help`` and ``invoke --help`` name every form."""
    for command in ("invoke", "serve"):
        done = run_cli(command, "--help")
        assert done.returncode == 0
        text = " ".join(done.stdout.decode().split())
        assert "module.function, module:function, pkg/sub/module.function or path/to/file.py:function" in text
