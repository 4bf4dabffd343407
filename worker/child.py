"""The child side of the supervisor's fork: what a process forked from it does to become a worker.

``become_worker`` is the worker's entry point. It runs in the forked child, in the
supervisor's memory but never again in its code: it cuts the child loose (its own process
group, death with the supervisor, default signal handling, none of the supervisor's
descriptors, the memory ceiling), forgets the runtime's modules so that the function's
own of those names can be imported, and runs the worker (``worker.main.run``) until it
exits, turning whatever ends it into the exit status the supervisor reports.

The keeper, the other process the supervisor forks (``supervisor/keeper.py``), cuts itself
loose with the same calls: ``prctl`` and ``close_inherited_fds``.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from worker import procfs
from worker.logs import SharedOutput
from worker.main import Preloaded, code_root, preload, run, run_preloaded

PR_SET_PDEATHSIG = 1

# The runtime's own packages, and the third-party ones the supervisor loads for itself.
# A function may have modules of these names (a ``worker.py``, PyPI's ``supervisor``, its
# own urllib3); every worker, whenever it was forked and whatever the supervisor had
# imported by then, must import the function's, as it would on AWS's runtime.
RUNTIME_MODULES = ("supervisor", "worker", "urllib3", "structlog")
# Of those, the libraries a function imports itself (boto3 brings urllib3). Where the
# function's search path finds the very file the supervisor loaded, the loaded copy is what
# an import would give, so it is kept: the function does not import it a second time, and
# its pages stay shared with the supervisor's.
SHAREABLE_MODULES = ("urllib3", "structlog")
# Standard-library modules most functions import (boto3 brings every one of them) that the
# runtime itself keeps off its path to the first event. The fork server of Lambda Managed
# Instances loads them before it forks its N workers (``load_common_modules``), so that the N
# share their pages instead of each loading its own.
COMMON_MODULES = (
    "base64", "bisect", "calendar", "concurrent.futures", "configparser", "copy", "csv",
    "dataclasses", "datetime", "decimal", "email.parser", "email.utils", "getpass", "gzip",
    "hashlib", "hmac", "html.parser", "http.client", "ipaddress", "mimetypes", "pathlib",
    "pickle", "platform", "queue", "shlex", "shutil", "socket", "ssl", "subprocess",
    "tempfile", "textwrap", "urllib.parse", "uuid", "xml.etree.ElementTree", "zipfile",
)  # fmt: skip
# What ``load_common_modules`` added to sys.modules.
_common_modules: frozenset[str] = frozenset()
# Where Lambda Managed Instances offer each worker's stdout and stderr a connection of its own.
FD_PROVIDER_SOCKET = "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"


def become_worker(
    handler_name: str,
    event_read: int,
    reply_write: int,
    max_response_bytes: int,
    worker_memory_mb: float | None,
    preloaded: Preloaded | None = None,
) -> NoReturn:  # pragma: no cover - runs in the child, measured by the e2e tests
    """Run the worker in the freshly forked child; never returns into the supervisor's code.

    Forked from the supervisor, or from the fork server (``supervisor/fork_server.py``),
    which is then the parent it dies with; ``preloaded`` is the function the fork server
    initialised, when it did (``worker.main.run_preloaded``)."""
    code = 1
    supervisor_pid = os.getppid()
    try:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        _die_with_supervisor(supervisor_pid)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        close_inherited_fds({event_read, reply_write})
        SharedOutput.open_lock()
        _connect_output()
        if worker_memory_mb:
            import resource

            limit = int(worker_memory_mb * 1024 * 1024)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        # From here on the runtime's code runs from the module objects it already holds.
        _forget_runtime_modules()
        if preloaded is None:
            run(handler_name, event_read, reply_write, max_response_bytes, worker_memory_mb)
        else:
            run_preloaded(preloaded, event_read, reply_write, max_response_bytes, worker_memory_mb)
        code = 0
    except SystemExit as exc:
        code = _system_exit_code(exc)
    except KeyboardInterrupt:
        # Die of SIGINT, as an interpreter does on an unhandled KeyboardInterrupt.
        _flush_stdio()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        if not _flush_stdio() and code == 0:
            code = 120  # what an interpreter returns when it cannot flush stdout at exit
        os._exit(code)


def preload_function(handler_name: str) -> Preloaded:
    """Initialise the function in the fork server, as a worker would (the runtime's modules
    forgotten first, so that the function's own of those names are the ones imported)."""
    _forget_runtime_modules()
    return preload(handler_name)


def _connect_output() -> None:  # pragma: no cover - runs in the child
    """Connect stdout and stderr each to a stream of its own from Lambda's log FD provider
    (``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``, a Unix socket), as AWS's runtime does on
    Managed Instances. Without it, or when it cannot be reached, they stay as they are."""
    path = os.environ.get(FD_PROVIDER_SOCKET)
    if not path:
        return
    import socket

    for fd in (1, 2):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream:
                stream.connect(path)
                os.dup2(stream.fileno(), fd)
        except OSError:
            return


def prctl(option: int, value: int | bytes) -> bool:
    """Linux's prctl(2) on this process; False where it failed or there is none."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # not Linux


def close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def close_inherited_fds(keep: set[int]) -> None:
    """Close what the supervisor had open (its Runtime API socket, old pipes), so user code
    can neither write on the supervisor's connection nor keep a dead worker's pipe alive."""
    for fd in procfs.open_fds() or ():
        if fd > 2 and fd not in keep:
            close_quietly(fd)


def _die_with_supervisor(supervisor_pid: int) -> None:  # pragma: no cover - runs in the child
    """Have the kernel SIGKILL this worker when the supervisor dies (even by SIGKILL).

    SIGKILL because handler code can block, catch or ignore any other signal. What the
    worker started is the keeper's to take down (``supervisor/keeper.py``).
    """
    if not prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        return  # not Linux: the worker still exits when its event pipe closes
    if os.getppid() != supervisor_pid:
        os.kill(os.getpid(), signal.SIGKILL)  # the supervisor died before the request took effect


def load_common_modules() -> None:
    """Import ``COMMON_MODULES`` (in the fork server, before any worker is forked)."""
    global _common_modules
    import importlib

    before = set(sys.modules)
    for name in COMMON_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            pass  # an interpreter built without it (no ssl): nothing to share
    _common_modules = frozenset(sys.modules.keys() - before)


def _forget_runtime_modules() -> None:
    forget = set(RUNTIME_MODULES).difference(_same_as_the_functions(SHAREABLE_MODULES))
    for name in [name for name in sys.modules if name.partition(".")[0] in forget]:
        del sys.modules[name]
    _forget_common_modules_if_shadowed()


def _forget_common_modules_if_shadowed() -> None:
    """A function may have a module named like one of the common ones (an ``email.py`` in
    its code root), which its import finds before the standard library's. Then all of them
    are forgotten, and the worker imports what it needs as on AWS's runtime."""
    loaded = _common_modules
    if not loaded:
        return
    from importlib.machinery import PathFinder

    # Only an entry of the function's search path ahead of the standard library can hold
    # a module that its import would find first (built-in modules come before any entry).
    search = [code_root(), *sys.path]
    stdlib = os.path.dirname(os.__file__)
    ahead = search[: next((i for i, entry in enumerate(search) if entry == stdlib), len(search))]
    for package in {name.partition(".")[0] for name in loaded}:
        try:
            found = PathFinder.find_spec(package, ahead)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.origin is not None:
            for name in loaded:
                sys.modules.pop(name, None)
            return


def _same_as_the_functions(names: tuple[str, ...]) -> set[str]:
    """Those of the loaded packages ``names`` that the function's own import would load from
    the same file: its search path is the code root first, then the interpreter's."""
    from importlib.machinery import PathFinder

    search = [code_root(), *sys.path]
    same = set()
    for name in names:
        loaded = getattr(sys.modules.get(name), "__file__", None)
        if loaded is None:
            continue
        try:
            spec = PathFinder.find_spec(name, search)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and os.path.abspath(spec.origin) == os.path.abspath(loaded):
            same.add(name)
    return same


def _system_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _flush_stdio() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok
