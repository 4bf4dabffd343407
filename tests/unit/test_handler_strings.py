"""Handler strings split as Lambda splits them, and refused in Lambda's words.

One grammar (``worker/handler_names.py``) serves the runtime's ``HANDLER``, the local
commands and ``package``/``deploy``; these pin what each form means under each of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_supervisor.deploy.errors import DeployError
from lambda_supervisor.deploy.sources import HandlerSpec
from lambda_supervisor.local import UsageError, parse_handler
from worker import handler_names
from worker.handler_loader import InitError, split_handler

pytestmark = pytest.mark.timeout(10)

ACCEPTED = [
    ("app.handler", ("app", "handler")),
    ("app:handler", ("app", "handler")),
    ("pkg.sub.mod.fn", ("pkg.sub.mod", "fn")),
    ("pkg/sub/mod.fn", ("pkg.sub.mod", "fn")),
    ("pkg/sub/mod:fn", ("pkg.sub.mod", "fn")),
    ("pkg.sub.mod:fn", ("pkg.sub.mod", "fn")),
    ("app.py:handler", ("app", "handler")),
    ("./app.py:handler", ("app", "handler")),
    ("pkg/sub/mod.py:fn", ("pkg.sub.mod", "fn")),
    ("pkg/__init__.py:fn", ("pkg", "fn")),
    # What Lambda's import_module takes, though no identifier: a file called my-app.py.
    ("my-app.handler", ("my-app", "handler")),
]
MALFORMED = [
    "",
    "app",
    "app.",
    ".handler",
    ":handler",
    "app:",
    "..app.fn",
    "a..b.fn",
    "a:b:c",
    "app:fn.sub",
    ".py:fn",
    "pkg/.py:fn",
    "my.dir/app.py:fn",
]


@pytest.mark.parametrize(("handler", "expected"), ACCEPTED)
def test_accepted_forms(handler: str, expected: tuple[str, str]) -> None:
    """Tried: each accepted form through the runtime's loader; module and function as Lambda
    would import them from the code root."""
    assert split_handler(handler, "/var/task") == expected


@pytest.mark.parametrize("handler", MALFORMED)
def test_malformed_handlers_are_refused_in_lambdas_words(handler: str) -> None:
    """Tried: strings with no separator, an empty side, empty or relative module segments,
    two colons, a dotted function, a file without a name or in a dotted directory."""
    with pytest.raises(InitError) as refused:
        split_handler(handler, "/var/task")
    assert refused.value.error_type == "Runtime.MalformedHandlerName"
    assert refused.value.message.startswith(f"Bad handler '{handler}': ")


def test_a_string_without_separator_names_every_form() -> None:
    """Tried: ``app``; the message lists the three forms."""
    with pytest.raises(handler_names.MalformedHandler) as refused:
        handler_names.parse("app")
    assert str(refused.value) == (
        "Bad handler 'app': expected module.function (Lambda's form), module:function "
        "or path/to/file.py:function"
    )


def test_an_absolute_file_is_read_relative_to_the_task_root(tmp_path: Path) -> None:
    """Tried: ``HANDLER`` naming a file by its absolute path, inside the task root and outside it."""
    (tmp_path / "pkg").mkdir()
    assert split_handler(f"{tmp_path}/pkg/mod.py:fn", str(tmp_path)) == ("pkg.mod", "fn")
    with pytest.raises(InitError) as refused:
        split_handler("/elsewhere/app.py:fn", str(tmp_path))
    assert refused.value.error_type == "Runtime.MalformedHandlerName"
    assert refused.value.message == (
        f"Bad handler '/elsewhere/app.py:fn': /elsewhere/app.py is not under the code root {tmp_path}"
    )


def _package(root: Path) -> Path:
    """``root/outer/inner/mod.py`` with both directories packages; ``root`` is not one."""
    inner = root / "outer" / "inner"
    inner.mkdir(parents=True)
    (root / "outer" / "__init__.py").write_text("")
    (inner / "__init__.py").write_text("")
    (inner / "mod.py").write_text("")
    return inner / "mod.py"


def test_a_file_in_a_package_has_its_code_root_above_the_package(tmp_path: Path) -> None:
    """Tried: a module two packages deep, and a file in a plain directory beside it."""
    module_file = _package(tmp_path)
    assert handler_names.find_code_root(module_file) == (tmp_path, "outer.inner.mod")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "app.py").write_text("")
    assert handler_names.find_code_root(tmp_path / "plain" / "app.py") == (tmp_path / "plain", "app")


def test_the_cli_takes_every_form_and_gives_the_runtime_lambdas(tmp_path: Path) -> None:
    """Tried: the local commands' parser on each form, from the directory above a package."""
    _package(tmp_path)
    (tmp_path / "app.py").write_text("")
    for text in ("app.handler", "app:handler", "app.py:handler", f"{tmp_path}/app.py:handler"):
        location = parse_handler(text, cwd=tmp_path)
        assert (location.task_root, location.handler) == (tmp_path.resolve(), "app.handler")
    for text in ("outer/inner/mod.fn", "outer.inner.mod:fn", "outer/inner/mod.py:fn"):
        location = parse_handler(text, cwd=tmp_path)
        assert (location.task_root, location.handler) == (tmp_path.resolve(), "outer.inner.mod.fn")
    # From inside the package, the file still has its code root above it.
    location = parse_handler("mod.py:fn", cwd=tmp_path / "outer" / "inner")
    assert (location.task_root, location.handler) == (tmp_path.resolve(), "outer.inner.mod.fn")
    with pytest.raises(UsageError, match="^Bad handler 'app': expected"):
        parse_handler("app", cwd=tmp_path)


def test_package_and_deploy_take_every_form_and_set_lambdas() -> None:
    """Tried: ``--handler`` in each form; the Handler setting is always ``module.function``."""
    for text in ("pkg.sub.mod:handler", "pkg/sub/mod.py:handler", "./pkg/sub/mod.py:handler"):
        spec = HandlerSpec.parse(text)
        assert (spec.text, spec.module, spec.function) == ("pkg.sub.mod.handler", "pkg.sub.mod", "handler")
    # Lambda's own form is kept as written.
    assert HandlerSpec.parse("pkg/sub/mod.handler").text == "pkg/sub/mod.handler"
    with pytest.raises(DeployError, match=r"^Bad handler '\.\./app\.py:fn': give the file's path relative"):
        HandlerSpec.parse("../app.py:fn")
    with pytest.raises(DeployError, match="^Bad handler 'app': expected"):
        HandlerSpec.parse("app")
