"""The handler string's grammar: one for the runtime's ``HANDLER`` and every command of the CLI.

Lambda's own form is ``module.function``, split at the last dot, a ``/`` in the module
part standing for a ``.`` (``pkg/sub/mod.handler``). Also accepted: ``module:function``
(``pkg.mod:fn``, ``pkg/mod:fn``) and a file, ``path/to/file.py:function``. A module is
looked up under the code root; so is a relative file, ``pkg/mod.py:fn`` meaning
``pkg/mod.fn``. Only the grammar is checked here. Whether the module imports is for the
import to say, in Lambda's words, so that a name which works on Lambda (``my-app.handler``
for a ``my-app.py``) works here too.

This module imports only the standard library: the dev tooling loads it by its path
(``lambda_supervisor/runtime_modules.py`` says why).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # imported where a file is resolved: pathlib is not on the path to an event
    from pathlib import Path

FORMS = "module.function (Lambda's form), module:function or path/to/file.py:function"


class MalformedHandler(ValueError):
    """The string does not follow the grammar; its text is Lambda's ``Bad handler '...': why``."""

    def __init__(self, handler: str, reason: str) -> None:
        super().__init__(f"Bad handler '{handler}': {reason}")
        self.handler = handler
        self.reason = reason


class HandlerName(NamedTuple):
    """A parsed handler string.

    ``module`` is the dotted module name under the code root; it is None only for a
    ``file`` that is absolute or climbs out of the code root (``../x.py``), whose module
    depends on where the code root is (``module_under``, ``find_code_root``).
    """

    text: str
    function: str
    module: str | None
    file: str | None = None

    def lambda_form(self, module: str | None = None) -> str:
        """``module.function``, the way Lambda's Handler setting spells it."""
        module = module or self.module
        if module is None:
            raise MalformedHandler(self.text, "a file outside the code root has no module name")
        return f"{module}.{self.function}"


def parse(text: str) -> HandlerName:
    """Split ``text`` into module (or file) and function; ``MalformedHandler`` if it cannot be."""
    if ":" in text:
        target, _, function = text.rpartition(":")
        if ":" in target:
            raise MalformedHandler(text, "more than one ':'")
        if not target:
            raise MalformedHandler(text, f"no module before ':'; expected {FORMS}")
    else:
        target, dot, function = text.rpartition(".")
        if not dot:
            raise MalformedHandler(text, f"expected {FORMS}")
        if not target:
            raise MalformedHandler(text, f"no module before '.'; expected {FORMS}")
    if not function:
        raise MalformedHandler(text, "no function name after the module")
    if "." in function or "/" in function:
        raise MalformedHandler(text, f"{function!r} is not a function name")
    if ":" in text and target.endswith(".py"):
        return HandlerName(text, function, _module_of_relative_file(text, target), target)
    return HandlerName(text, function, _module_of_path(text, target))


def _module_of_path(text: str, target: str) -> str:
    """``pkg/sub/mod`` or ``pkg.sub.mod`` as the dotted name ``pkg.sub.mod``."""
    module = target.strip("/").replace("/", ".")
    if not all(module.split(".")):
        # A relative or empty segment ("..app", "a..b") would make import_module resolve
        # something other than what the string names.
        raise MalformedHandler(text, "empty module name segment")
    return module


def _module_of_relative_file(text: str, file: str) -> str | None:
    """``pkg/mod.py`` (relative to the code root) as ``pkg.mod``; None when that depends on
    where the code root is (an absolute path, one through ``..``)."""
    from pathlib import PurePosixPath

    path = PurePosixPath(file)
    if path.is_absolute() or ".." in path.parts:
        return None
    parts = [part for part in path.parts if part != "."]
    if not parts or parts[-1] == ".py":
        raise MalformedHandler(text, "no file name before '.py'")
    return _dotted(text, parts)


def _dotted(text: str, parts: list[str]) -> str:
    """The module a file's path parts (``pkg``, ``mod.py``) name: ``pkg.mod``; a package's
    ``__init__.py`` names the package."""
    *packages, file = parts
    stem = file.removesuffix(".py")
    names = packages if stem == "__init__" and packages else [*packages, stem]
    if not all(names) or any("." in name for name in names):
        raise MalformedHandler(text, f"{'/'.join(parts)!r} cannot be imported as a module")
    return ".".join(names)


def module_under(name: HandlerName, code_root: str | os.PathLike[str]) -> str:
    """The module ``name`` names when the code is in ``code_root``."""
    if name.module is not None:
        return name.module
    assert name.file is not None
    from pathlib import Path

    root = Path(os.path.realpath(code_root))
    file = Path(os.path.realpath(root / name.file))
    try:
        relative = file.relative_to(root)
    except ValueError:
        raise MalformedHandler(name.text, f"{name.file} is not under the code root {root}") from None
    return _dotted(name.text, list(relative.parts))


def find_code_root(file: str | os.PathLike[str]) -> tuple[Path, str]:
    """Where Lambda's code root would be for ``file``, and the module it is there.

    A file in a package (a directory with ``__init__.py``) is imported as that package's
    module from above the outermost such directory, so the package's relative imports
    work; any other file from its own directory.
    """
    from pathlib import Path

    path = Path(os.path.abspath(file))
    root = path.parent
    parts = [path.name]
    while (root / "__init__.py").is_file() and root.parent != root:
        parts.insert(0, root.name)
        root = root.parent
    return root, _dotted(str(file), parts)
