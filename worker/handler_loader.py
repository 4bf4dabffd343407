"""Turn a handler string into a callable, failing the way Lambda's Python runtime fails.

Init errors carry the errorType and message AWS's runtime uses, so a misconfigured
function reports the same thing here as on the managed runtime.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from worker import errors, handler_names
from worker.reports import describe, user_stack

Handler = Callable[[Any, Any], Any]


class InitError(Exception):
    """Init failed; ``error_type`` and ``message`` go to ``/runtime/init/error`` as they are."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


def split_handler(handler: str, task_root: str | None = None) -> tuple[str, str]:
    """The module and function names ``handler`` gives (``worker/handler_names.py`` has the
    grammar), its module found under ``task_root`` (default ``LAMBDA_TASK_ROOT``)."""
    try:
        name = handler_names.parse(handler)
        module = handler_names.module_under(
            name, task_root or os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
        )
    except handler_names.MalformedHandler as exc:
        raise InitError(errors.MALFORMED_HANDLER_NAME, str(exc)) from None
    return module, name.function


def load_handler(handler: str, task_root: str | None = None) -> Handler:
    module_name, function_name = split_handler(handler, task_root)
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise InitError(
            errors.BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module {module_name} as a handler module",
        )
    # The exception's text comes from user code: taken through ``describe``, which cannot fail.
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InitError(
            errors.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {describe(exc)[1]}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {(exc.text or "").strip()}']
        raise InitError(
            errors.USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{module_name}': {describe(exc)[1]}",
            trace,
        ) from None
    except Exception as exc:
        raise InitError(*describe(exc), user_stack(exc)[1]) from None
    try:
        function = getattr(module, function_name)
    except AttributeError:
        raise InitError(
            errors.HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
    except Exception as exc:  # a module-level __getattr__ that fails otherwise
        raise InitError(*describe(exc), user_stack(exc)[1]) from None
    if not callable(function):
        raise InitError(
            errors.HANDLER_NOT_FOUND,
            f"Handler '{function_name}' on module '{module_name}' is not callable",
        )
    return function
