"""Run a handler through the real runtime from a test: ``lambda_invoke`` and a pytest fixture.

Calling a handler function directly skips everything Lambda does around it (JSON
marshalling, the context object, error bodies, timeouts). These helpers start
``bin/bootstrap`` against the local emulator instead, so a test sees what a caller on AWS
would. This module is loaded by every pytest run as a plugin, so it imports the emulator
and the process machinery only when a test actually invokes something.

    from lambda_supervisor.testing import FunctionError, lambda_invoke

    def test_hello():
        assert lambda_invoke("examples/hello.py:handler", {"name": "Ada"})["message"] == "Hello, Ada!"

    def test_hello_with_fixture(lambda_invoke):   # one runtime per handler for the whole test
        with pytest.raises(FunctionError) as failure:
            lambda_invoke("examples/hello.py:handler", {"fail": True})
        assert failure.value.error_type == "GreetingError"
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from lambda_supervisor.runtime_modules import errors

if TYPE_CHECKING:
    from lambda_supervisor.local import InvocationResult, LocalRunner

DEFAULT_TIMEOUT = 30.0
# Lambda's bound on an on-demand function's init.
DEFAULT_INIT_TIMEOUT = 10.0


class FunctionError(Exception):
    """The function failed: its ``errorType``, ``errorMessage`` and ``stackTrace``.

    Its text ends with the function's own traceback, so a failing test's report shows the
    handler's frames and not only this module's.
    """

    def __init__(
        self,
        error_type: str,
        error_message: str,
        stack_trace: list[str] | None = None,
        *,
        request_id: str | None = None,
        body: bytes = b"",
        logs: str = "",
    ) -> None:
        super().__init__(f"{error_type}: {error_message}{_traceback_text(stack_trace or [])}")
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = list(stack_trace or [])
        self.request_id = request_id
        self.body = body
        self.logs = logs


def _traceback_text(stack_trace: list[str]) -> str:
    """The error body's ``stackTrace`` as Python prints a traceback (empty without frames)."""
    frames = "".join(
        frame if frame.endswith("\n") else frame + "\n" for frame in map(str, stack_trace) if frame
    )
    return f"\nThe function's traceback (most recent call last):\n{frames.rstrip()}" if frames else ""


def _start_runner(
    handler: str,
    *,
    timeout: float,
    init_timeout: float,
    env: Mapping[str, str | None] | None,
    cwd: str | None,
    python: str | None,
    install_deps: bool,
) -> LocalRunner:
    from pathlib import Path

    from lambda_supervisor.local import LocalRunner, UsageError, parse_handler
    from lambda_supervisor.local.dependencies import prepare

    try:
        spec = parse_handler(handler, cwd=Path(cwd) if cwd else None)
        interpreter = prepare(spec.task_root, python, install_deps, lambda line: None)
        runner = LocalRunner(
            spec, timeout=timeout, init_timeout=init_timeout, env=env, interpreter=interpreter
        )
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return runner.start()


def _unwrap(result: InvocationResult, hints: list[str]) -> Any:
    """The decoded result, or ``FunctionError`` built from the runtime's error body; a
    failed import also carries the hint about missing requirements, if there is one."""
    if result.is_error:
        try:
            body = json.loads(result.body)
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        error_type = result.error_type or str(body.get("errorType") or errors.UNHANDLED)
        message = str(body.get("errorMessage", result.body.decode("utf-8", errors="replace")))
        if error_type == errors.IMPORT_MODULE_ERROR and hints:
            message = "\n".join([message, *hints])
        raise FunctionError(
            error_type,
            message,
            body.get("stackTrace") or [],
            request_id=result.request_id,
            body=result.body,
            logs=result.logs,
        )
    try:
        return json.loads(result.body)
    except ValueError:
        return result.body


def lambda_invoke(
    handler: str,
    event: Any = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    init_timeout: float = DEFAULT_INIT_TIMEOUT,
    env: Mapping[str, str | None] | None = None,
    client_context: Mapping[str, Any] | None = None,
    cwd: str | None = None,
    python: str | None = None,
    install_deps: bool = False,
) -> Any:
    """Invoke ``handler`` once through a fresh runtime; return its result or raise.

    ``handler`` takes every form the runtime's ``HANDLER`` does: ``module.function``,
    ``module:function``, ``pkg/sub/module.function`` (a module looked up from ``cwd``,
    default the current directory) or ``path/to/file.py:function``. The function runs on
    ``python`` (default: the active virtualenv's, else this process's interpreter);
    ``install_deps`` installs the code root's requirements.txt for it, as ``invoke
    --install-deps`` does, and a failed import names what that file lists and the
    interpreter lacks. ``event`` is sent as JSON (``None`` as
    ``{}``); ``bytes`` are sent as they are. The result is decoded from JSON (bytes when
    it is not JSON). A function error raises ``FunctionError``, an init that takes longer
    than ``init_timeout`` one of type ``Sandbox.Timedout``; a ``timeout`` or
    ``init_timeout`` Lambda would not accept raises ``ValueError``. The function sees
    ``env`` and, of the test process's environment, only what Lambda would provide
    (``lambda_supervisor.process.PASSED_THROUGH``): no credentials unless ``env`` has them.
    """
    runner = _start_runner(
        handler,
        timeout=timeout,
        init_timeout=init_timeout,
        env=env,
        cwd=cwd,
        python=python,
        install_deps=install_deps,
    )
    try:
        return _invoke_on(runner, event, client_context)
    finally:
        runner.stop()


def _invoke_on(runner: LocalRunner, event: Any, client_context: Mapping[str, Any] | None) -> Any:
    payload = event if isinstance(event, bytes) else json.dumps({} if event is None else event)
    context = json.dumps(dict(client_context)) if client_context is not None else None
    hints = runner.interpreter.hints if runner.interpreter is not None else []
    return _unwrap(runner.invoke(payload, client_context=context), hints)


class RunnerPool:
    """One runtime per (handler, env) for a test, reused across calls, stopped at teardown."""

    def __init__(self) -> None:
        self._runners: dict[tuple[str, str], LocalRunner] = {}

    def __call__(
        self,
        handler: str,
        event: Any = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        init_timeout: float = DEFAULT_INIT_TIMEOUT,
        env: Mapping[str, str | None] | None = None,
        client_context: Mapping[str, Any] | None = None,
        cwd: str | None = None,
        python: str | None = None,
        install_deps: bool = False,
    ) -> Any:
        settings = [dict(env or {}), timeout, init_timeout, cwd, python, install_deps]
        key = (handler, json.dumps(settings, sort_keys=True))
        runner = self._runners.get(key)
        if runner is None:
            runner = _start_runner(
                handler,
                timeout=timeout,
                init_timeout=init_timeout,
                env=env,
                cwd=cwd,
                python=python,
                install_deps=install_deps,
            )
            self._runners[key] = runner
        return _invoke_on(runner, event, client_context)

    def close(self) -> None:
        for runner in self._runners.values():
            runner.stop()
        self._runners.clear()


@pytest.fixture(name="lambda_invoke")
def lambda_invoke_fixture() -> Iterator[Callable[..., Any]]:
    """``lambda_invoke(handler, event, ...)`` keeping each handler's runtime warm for the test."""
    pool = RunnerPool()
    try:
        yield pool
    finally:
        pool.close()


__all__ = ["FunctionError", "lambda_invoke", "lambda_invoke_fixture"]
