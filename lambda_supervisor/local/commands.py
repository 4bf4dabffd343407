"""The ``invoke`` and ``serve`` subcommands.

Only argument parsing and wiring live here; the runner, the handler and event parsing
and the log lines are in modules of their own. The result goes to stdout and everything
else (logs, errors) to stderr, so ``invoke`` composes in shell scripts; the exit status
tells a function error (1) from a request that could not be run at all (2).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from lambda_supervisor.process import AWS_CREDENTIALS, PASSED_THROUGH

from .dependencies import prepare
from .events import read_event, sample_names
from .handlers import parse_handler
from .http_front import ApiGatewayFront
from .runner import RUNTIME_START_GRACE, LocalRunner
from .settings import (
    CONCURRENCY_RANGE,
    DEFAULT_INIT_TIMEOUT,
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    INIT_TIMEOUT_RANGE,
    MEMORY_RANGE,
    TIMEOUT_RANGE,
    UsageError,
    check_range,
)
from .streaming import ChunkPrinter
from .watch import CodeWatcher

DEFAULT_PORT = 9000
# Exit statuses of the CLI: a function error is the function's business (1); anything
# that stopped us from running it at all is a usage problem (2).
EXIT_FUNCTION_ERROR = 1
EXIT_USAGE = 2


def parse_env(pairs: list[str] | None, env_file: str | None = None) -> dict[str, str]:
    """The function's variables: ``env_file`` read as ``deploy --env-file`` reads it, then
    each ``--env NAME=VALUE``, which wins. Errors never show a value."""
    env: dict[str, str] = {}
    if env_file is not None:
        from lambda_supervisor.deploy.errors import DeployError
        from lambda_supervisor.deploy.settings import read_env_file

        try:
            env.update(read_env_file(Path(env_file)))
        except DeployError as exc:
            raise UsageError(f"--env-file: {exc}") from None
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def inherited_names(args: argparse.Namespace) -> list[str]:
    """The variables of our environment the user chose to pass on to the function."""
    names = list(args.inherit_env or [])
    for name in names:
        if not name or "=" in name:
            raise UsageError(f"bad --inherit-env {name!r}: expected a variable name (use --env to set one)")
    if args.pass_aws_credentials:
        names.extend(AWS_CREDENTIALS)
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``invoke`` and ``serve`` to the ``lambda-supervisor`` command."""
    invoke = subparsers.add_parser(
        "invoke",
        help="run a handler once through the real runtime",
        description="Run HANDLER once through bin/bootstrap and a local Runtime API emulator. "
        "The result goes to stdout, logs to stderr; the exit status is 1 on a function error. "
        "In a terminal, a breakpoint() in the handler opens pdb there.",
    )
    _add_common(invoke)
    source = invoke.add_mutually_exclusive_group()
    source.add_argument("--event", help="the event as a JSON string")
    source.add_argument("--event-file", metavar="PATH", help="read the event from a file (- = stdin)")
    source.add_argument(
        "--event-sample", metavar="NAME", help=f"a shipped sample event: {', '.join(sample_names())}"
    )
    source.add_argument(
        "event_source", nargs="?", choices=["-"], metavar="-", help="read the event from stdin"
    )
    invoke.set_defaults(func=run_invoke)

    serve = subparsers.add_parser(
        "serve",
        help="serve the Invoke API for a handler, for curl, boto3 or the AWS CLI",
        description="Keep a local emulator and the runtime running; invoke with "
        "POST http://HOST:PORT/2015-03-31/functions/function/invocations.",
    )
    _add_common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 9000; 0 = any)")
    serve.add_argument(
        "--watch",
        action="store_true",
        help="restart the runtime before the next call when a .py file, requirements.txt or .env "
        "under the code root changes",
    )
    serve.add_argument(
        "--http",
        action="store_true",
        help="also answer plain HTTP requests (any path but the Invoke API's) as API Gateway "
        "HTTP API / function URL events, so the function can be opened in a browser",
    )
    serve.add_argument(
        "--concurrency",
        type=_in_range(int, "concurrency", CONCURRENCY_RANGE, "invocations"),
        metavar="N",
        help="run N invocations at once, as Lambda Managed Instances do (AWS_LAMBDA_MAX_CONCURRENCY); "
        "callers beyond N wait their turn",
    )
    serve.add_argument(
        "--refuse-when-busy",
        action="store_true",
        help="answer a call that finds all N busy at once with 400 Runtime.Unavailable, as the platform does",
    )
    serve.set_defaults(func=run_serve)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "handler",
        metavar="HANDLER",
        help="module.function, module:function, pkg/sub/module.function or path/to/file.py:function "
        "(a module from the current directory; a file from above its package, if it is in one)",
    )
    parser.add_argument(
        "--timeout",
        type=_in_range(float, "timeout", TIMEOUT_RANGE, "seconds"),
        default=DEFAULT_TIMEOUT,
        help="function timeout in seconds, 1 to 900 (default 300, as AWS's emulator; "
        "a function deployed without --timeout gets Lambda's default, 3)",
    )
    parser.add_argument(
        "--memory",
        type=_in_range(int, "memory size", MEMORY_RANGE, "MB"),
        default=DEFAULT_MEMORY_MB,
        help="memory size in MB, 128 to 10240 (default 3008, as AWS's emulator; a function deployed "
        "without --memory gets Lambda's default, 128). Not enforced locally: REPORT's Max Memory "
        "Used shows what the run took, and a warning follows when that is past this size",
    )
    parser.add_argument(
        "--init-timeout",
        type=_in_range(float, "init timeout", INIT_TIMEOUT_RANGE, "seconds"),
        default=DEFAULT_INIT_TIMEOUT,
        metavar="SECONDS",
        help="how long the function's init may take before calls get an error and the next "
        "call a fresh runtime (default 10, as Lambda's on-demand functions)",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="set a variable for the function (wins over --env-file)",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="set the variables of a .env file (KEY=value lines, read as deploy --env-file reads them)",
    )
    parser.add_argument(
        "--inherit-env",
        action="append",
        metavar="NAME",
        help="pass this variable of your environment on to the function "
        f"(otherwise it gets only {', '.join(PASSED_THROUGH)} of it)",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="the interpreter to run the function on: a path, a command or a version such as 3.12 "
        "(default: the active virtualenv's, from VIRTUAL_ENV, else the one running this command)",
    )
    parser.add_argument(
        "--install-deps",
        action="store_true",
        help="pip-install the code root's requirements.txt into .lambda-supervisor/deps/ there and "
        "put it on the function's sys.path; reused while the file is unchanged",
    )
    parser.add_argument(
        "--pass-aws-credentials",
        action="store_true",
        help="let the function use your AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws, ...)",
    )


def _in_range(kind: type, name: str, bounds: tuple[float, float], unit: str) -> Any:
    """An argparse ``type=`` that refuses what is not a ``kind`` or not in Lambda's range."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        try:
            check_range(name, value, bounds, unit)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    convert.__name__ = kind.__name__
    return convert


def _start_runner(args: argparse.Namespace, **listener: Any) -> LocalRunner:
    """The runner both commands start from their shared options; ``listener`` holds what
    only one sets (``serve``: its address, restarting a dead runtime; ``invoke``: the terminal)."""
    handler = parse_handler(args.handler)
    env = parse_env(args.env, args.env_file)
    interpreter = prepare(handler.task_root, args.python, args.install_deps, _say)
    return LocalRunner(
        handler,
        interpreter=interpreter,
        timeout=args.timeout,
        memory_mb=args.memory,
        init_timeout=args.init_timeout,
        env=env,
        inherit=inherited_names(args),
        log_stream=sys.stderr,
        **listener,
    ).start()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_invoke(args: argparse.Namespace) -> int:
    try:
        event = read_event(args)
        runner = _start_runner(args, terminal=_debuggable(args))
    except UsageError as exc:
        return _usage_error(exc)
    start_timeout = args.init_timeout + RUNTIME_START_GRACE
    printer = ChunkPrinter()
    try:
        result = runner.invoke(event, on_chunk=printer.write)
    except TimeoutError:
        print(
            f"lambda-supervisor: error: the runtime did not ask for the event within {start_timeout:.0f} s",
            file=sys.stderr,
        )
        return EXIT_FUNCTION_ERROR
    except KeyboardInterrupt:
        return 130
    finally:
        runner.stop()
    if result.streamed:
        # Printed as it arrived; a stream's error report goes with the logs.
        printer.finish()
        if result.is_error:
            print(result.error_body.decode("utf-8", errors="replace"), file=sys.stderr)
    else:
        _write_result(result.body)
    if result.is_error:
        print(f"function error: {result.error_type}", file=sys.stderr)
        return EXIT_FUNCTION_ERROR
    return 0


def _debuggable(args: argparse.Namespace) -> bool:
    """True when a ``breakpoint()`` in the handler can open pdb on our terminal: stdin and
    stderr (where the handler's output goes) are one, and the event does not come from it."""
    if args.event_source == "-" or args.event_file == "-":
        return False
    try:
        return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr))
    except ValueError:  # a closed stream
        return False


def _write_result(body: bytes) -> None:
    """The result exactly as the function returned it (binary-safe), then a newline."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(body.decode("utf-8", errors="replace") + "\n")
    else:
        out.write(body if body.endswith(b"\n") else body + b"\n")
    sys.stdout.flush()


def run_serve(args: argparse.Namespace) -> int:
    try:
        runner = _start_runner(
            args,
            host=args.host,
            port=args.port,
            restart=True,
            concurrency=args.concurrency,
            refuse_when_busy=args.refuse_when_busy,
        )
    except UsageError as exc:
        return _usage_error(exc)
    if args.http:
        runner.emulator.http_front = ApiGatewayFront()  # before the port is announced
    url = f"http://{runner.address}/2015-03-31/functions/function/invocations"
    print(f"Serving {runner.handler.handler} from {runner.handler.task_root} on {url}", flush=True)
    if args.http:
        front_url = f"http://{runner.address}/"
        print(f"HTTP requests to {front_url} go to the function as API Gateway events", flush=True)
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    watcher = CodeWatcher(runner.handler.task_root, lambda changed: _reload(runner, args, changed))
    if args.watch:
        watcher.start()
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        watcher.stop()
        runner.stop()
    return 0


def _reload(runner: LocalRunner, args: argparse.Namespace, changed: list[Path]) -> None:
    """Restart the runtime on saved files, with ``--env-file`` read again: a saved ``.env``
    is one of the changes watched. A file that no longer parses keeps the variables read
    before, and says why (never a value)."""
    if args.env_file is not None:
        try:
            env: dict[str, str | None] = dict(parse_env(args.env, args.env_file))
        except UsageError as exc:
            _say(f"lambda-supervisor: {exc}; the variables read before are kept")
        else:
            runner.env = env
    runner.reload(changed)


def _usage_error(exc: UsageError) -> int:
    print(f"lambda-supervisor: error: {exc}", file=sys.stderr)
    return EXIT_USAGE
