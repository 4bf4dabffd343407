"""Run a handler through the real runtime from a test: ``lambda_invoke`` and a pytest fixture.

Calling a handler function directly skips everything Lambda does around it (JSON
marshalling, the context object, error bodies, timeouts). These helpers start
``bin/bootstrap`` against the local emulator instead, so a test sees what a caller on AWS
would. This module is loaded by every pytest run as a plugin, so it imports the emulator
and the process machinery only when a test actually invokes something.

    from lambda_supervisor.testing import FunctionError, lambda_invoke, lambda_invoke_stream

    def test_hello():
        assert lambda_invoke("examples/hello.py:handler", {"name": "Ada"})["message"] == "Hello, Ada!"

    def test_hello_with_fixture(lambda_invoke):   # one runtime per handler for the whole test
        with pytest.raises(FunctionError) as failure:
            lambda_invoke("examples/hello.py:handler", {"fail": True})
        assert failure.value.error_type == "GreetingError"

    def test_tokens_stream():   # a generator handler: each chunk, when it arrived
        chunks = list(lambda_invoke_stream("app.py:tokens", {"n": 3}))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from lambda_supervisor.runtime_modules import errors

if TYPE_CHECKING:
    from lambda_supervisor.emulator import Chunk
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
    """The decoded result, or ``FunctionError`` built from the runtime's error body (for a
    stream that ended in an error, the report in its trailers); a failed import also
    carries the hint about missing requirements, if there is one."""
    if result.is_error:
        report = result.error_body
        try:
            body = json.loads(report)
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        error_type = result.error_type or str(body.get("errorType") or errors.UNHANDLED)
        message = str(body.get("errorMessage", report.decode("utf-8", errors="replace")))
        if error_type == errors.IMPORT_MODULE_ERROR and hints:
            message = "\n".join([message, *hints])
        raise FunctionError(
            error_type,
            message,
            body.get("stackTrace") or [],
            request_id=result.request_id,
            body=report,
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
    it is not JSON); a streamed result is returned whole (``lambda_invoke_stream`` gives
    its chunks as they arrive). A function error raises ``FunctionError`` (a stream that
    ended in an error too, with the type in its trailers), an init that takes longer
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
    payload, context = _request(event, client_context)
    return _unwrap(runner.invoke(payload, client_context=context), _hints(runner))


def _hints(runner: LocalRunner) -> list[str]:
    return runner.interpreter.hints if runner.interpreter is not None else []


def _request(event: Any, client_context: Mapping[str, Any] | None) -> tuple[bytes | str, str | None]:
    """The payload and the client context as the runner takes them."""
    payload = event if isinstance(event, bytes) else json.dumps({} if event is None else event)
    return payload, json.dumps(dict(client_context)) if client_context is not None else None


def lambda_invoke_stream(
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
) -> Iterator[Chunk]:
    """Invoke ``handler`` once, as ``lambda_invoke`` does, and yield the chunks of its answer
    as they arrive: each a ``Chunk`` (``data``, ``received_at`` on ``time.monotonic()``,
    ``received_at_epoch`` on ``time.time()``), when the emulator received it from the runtime.

    A streaming handler (a generator) gives one chunk per item it yielded, a buffered one a
    single chunk holding its result. A function error raises ``FunctionError`` where it
    happens: at once when the function failed before streaming, after the chunks it sent
    when its stream ended in an error (its ``error_type`` is the stream's, e.g.
    ``Runtime.ExitError`` for a worker that died).

        chunks = list(lambda_invoke_stream("app.py:tokens", {"prompt": "hi"}))
        assert chunks[1].received_at - chunks[0].received_at >= 0.2
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
        yield from _stream_on(runner, event, client_context)
    finally:
        runner.stop()


def _stream_on(runner: LocalRunner, event: Any, client_context: Mapping[str, Any] | None) -> Iterator[Chunk]:
    from lambda_supervisor.emulator import Chunk

    payload, context = _request(event, client_context)
    answer = runner.start_invocation(payload, client_context=context)
    yield from answer
    result = answer.result()
    _unwrap(result, _hints(runner))  # raises on a function error
    if not result.streamed:
        received_at = result.outcome.received_at
        yield Chunk(result.body, received_at, time.time() - (time.monotonic() - received_at))


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
        runner = self._runner(handler, timeout, init_timeout, env, cwd, python, install_deps)
        return _invoke_on(runner, event, client_context)

    def stream(
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
    ) -> Iterator[Chunk]:
        """``lambda_invoke_stream`` on this pool's warm runtime for ``handler``."""
        runner = self._runner(handler, timeout, init_timeout, env, cwd, python, install_deps)
        return _stream_on(runner, event, client_context)

    def _runner(
        self,
        handler: str,
        timeout: float,
        init_timeout: float,
        env: Mapping[str, str | None] | None,
        cwd: str | None,
        python: str | None,
        install_deps: bool,
    ) -> LocalRunner:
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
        return runner

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


__all__ = ["FunctionError", "lambda_invoke", "lambda_invoke_fixture", "lambda_invoke_stream"]
