"""Functions that run on AWS's Python runtime run here too, with nothing special done.

Module names the runtime uses itself (``worker``, ``supervisor``), error reports that are
huge or cannot be built the usual way, and a trace id the environment cannot hold: each
is driven through the real runtime (``bin/bootstrap`` against the emulator, the
``lambda-supervisor`` CLI as a subprocess, or a zip built by ``lambda-supervisor package``)
and must give the answer AWS's runtime gives, from the same warm worker where one exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from deploy_support import CLI, isolated_env, package, unpack_like_lambda, write_wheel
from runtime_harness import STARTUP_TIMEOUT, handler_files, handler_source, running_runtime, write_task

from lambda_supervisor.emulator import Outcome, RuntimeAPIEmulator
from lambda_supervisor.process import platform_environment
from worker.errors import ERROR_BODY_BYTES, XRAY_CAUSE_BYTES
from worker.reports import UNPRINTABLE

pytest_plugins = ["deploy_support"]

ERROR_KEYS = {"errorMessage", "errorType", "requestId", "stackTrace"}
# An answer that takes longer than this was not given by the worker (a timeout, a retry).
PROMPT = 10.0

# --------------------------------------------------------------------------- module names

# A function whose handler module is ``worker.py`` and which bundles a package named
# ``supervisor`` (PyPI's supervisord has that name); both only say where they came from.
# The package is a string: its one line is a marker, its name is the point.
SHADOW_FILES = {
    **handler_files("report_shadowed_modules", "worker.py"),
    "supervisor/__init__.py": "MARKER = 'the function own supervisor package'\n",
}


def expected_shadow_answer(task_root: Path, count: int) -> dict:
    return {
        "worker": str(task_root.resolve() / "worker.py"),
        "supervisor": "the function own supervisor package",
        "count": count,
    }


def assert_shadow_modules_served(emulator: RuntimeAPIEmulator, task_root: Path) -> None:
    """The first worker imports the function's modules; one that dies is replaced by a
    worker forked after the supervisor imported everything it uses, which must too."""
    first = emulator.submit({}, timeout=30).result(30)
    assert (first.kind, first.json()) == ("response", expected_shadow_answer(task_root, 1))
    died = emulator.submit({"exit": True}, timeout=30).result(30)
    assert died.error_type == "Runtime.ExitError"
    assert died.json()["errorMessage"] == "Runtime exited with error: exit status 3"
    replaced = emulator.submit({}, timeout=30).result(30)
    assert (replaced.kind, replaced.json()) == ("response", expected_shadow_answer(task_root, 1))
    warm = emulator.submit({}, timeout=30).result(30)
    assert (warm.kind, warm.json()) == ("response", expected_shadow_answer(task_root, 2))


@pytest.mark.timeout(60)
def test_worker_and_supervisor_modules_of_the_function_are_imported_by_every_worker(emulator, tmp_path):
    """Tried: handler ``worker.handler`` in ``worker.py`` importing a bundled ``supervisor``
    package, under bin/bootstrap from the checkout; then os._exit() in the handler so that a
    replacement worker is forked from a supervisor that has imported all of itself."""
    with running_runtime(emulator, tmp_path, SHADOW_FILES, "worker.handler"):
        assert_shadow_modules_served(emulator, tmp_path)


@pytest.mark.timeout(60)
def test_function_modules_on_the_python_path_are_not_shadowed_by_the_runtime(emulator, tmp_path):
    """Tried: the ``supervisor`` package in a directory on PYTHONPATH (as a layer provides
    it) rather than in the code root; the runtime's own directory used to stay on sys.path
    ahead of it."""
    layer = write_task(tmp_path / "layer", {"supervisor/__init__.py": SHADOW_FILES["supervisor/__init__.py"]})
    task_root = tmp_path / "task"
    files = {"worker.py": SHADOW_FILES["worker.py"]}
    with running_runtime(emulator, task_root, files, "worker.handler", env={"PYTHONPATH": str(layer)}):
        assert_shadow_modules_served(emulator, task_root)


@pytest.mark.timeout(60)
def test_invoke_cli_runs_a_worker_module_beside_a_supervisor_package(tmp_path):
    """Tried: ``lambda-supervisor invoke worker:handler`` in the function's directory."""
    function = write_task(tmp_path / "function", SHADOW_FILES)
    done = subprocess.run(
        CLI + ["invoke", "worker:handler"], cwd=function, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected_shadow_answer(function, 1)


@pytest.mark.timeout(180)
def test_packaged_worker_module_with_a_supervisor_dependency_runs(tmp_path, wheelhouse):
    """Tried: ``lambda-supervisor package`` of a function whose handler is in ``worker.py``
    and which depends on a distribution installing a top-level ``supervisor`` package; the
    zip unpacked as Lambda does (runtime files and function files in one directory) and
    started through its bin/bootstrap with no site-packages, then a worker death."""
    source = write_task(tmp_path / "function", {"worker.py": SHADOW_FILES["worker.py"]})
    (source / "requirements.txt").write_text("supervisor==4.2.5\n")
    dependency_wheels = tmp_path / "wheels"
    dependency_wheels.mkdir()
    write_wheel(
        dependency_wheels,
        "supervisor",
        "4.2.5",
        "py3-none-any",
        {"supervisor/__init__.py": SHADOW_FILES["supervisor/__init__.py"].encode()},
    )
    output = tmp_path / "function.zip"
    built = package(
        source, output, wheelhouse, "--find-links", str(dependency_wheels), "--handler", "worker.handler"
    )
    assert built.returncode == 0, built.stderr
    task_root = tmp_path / "var" / "task"
    unpack_like_lambda(output, task_root)
    assert (task_root / "supervisor" / "__init__.py").is_file()
    with RuntimeAPIEmulator() as emulator, packaged_runtime(emulator, task_root, tmp_path, "worker.handler"):
        assert_shadow_modules_served(emulator, task_root)


@pytest.mark.timeout(60)
def test_python_m_supervisor_in_the_code_root_runs_the_functions_worker_module(emulator, tmp_path):
    """Tried: ``python -m supervisor`` (a container ENTRYPOINT, say) started in the code root,
    which holds ``worker.py``: ``-m`` puts the current directory first on sys.path, and the
    supervisor then imported that file as its own ``worker`` package."""
    task_root = write_task(tmp_path / "task", handler_files("report_own_file", "worker.py"))
    env = platform_environment(runtime_api=emulator.address, handler="worker.handler", task_root=task_root)
    with started([sys.executable, "-m", "supervisor"], emulator, {**os.environ, **env}, task_root, tmp_path):
        outcome = emulator.submit({}, timeout=30).result(30)
    assert (outcome.kind, outcome.json()) == ("response", {"worker": str(task_root.resolve() / "worker.py")})


@contextmanager
def packaged_runtime(
    emulator: RuntimeAPIEmulator, task_root: Path, tmp_path: Path, handler: str
) -> Iterator[None]:
    """The unpacked package's bin/bootstrap started as the managed runtime starts an
    ``AWS_LAMBDA_EXEC_WRAPPER``, on an interpreter without site-packages: only the standard
    library and what the zip holds can be imported."""
    bootstrap = task_root / "bin" / "bootstrap"
    interpreter = tmp_path / "python-no-site"
    interpreter.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    interpreter.chmod(0o755)
    env = isolated_env(tmp_path)
    env.update(platform_environment(runtime_api=emulator.address, handler=None, task_root=task_root))
    env.update(
        _HANDLER=handler, LAMBDA_SUPERVISOR_PYTHON=str(interpreter), AWS_LAMBDA_EXEC_WRAPPER=str(bootstrap)
    )
    env.pop("HANDLER", None)
    with started([str(bootstrap), "/var/runtime/bootstrap"], emulator, env, task_root, tmp_path):
        yield


@contextmanager
def started(
    command: list[str], emulator: RuntimeAPIEmulator, env: dict[str, str], cwd: Path, tmp_path: Path
) -> Iterator[None]:
    """The runtime started by ``command`` in a session of its own, until it polls /next;
    stopped with everything it forked afterwards."""
    log_path = tmp_path / "runtime.log"
    with log_path.open("wb") as log:
        runtime = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        assert emulator.wait_for_poll(STARTUP_TIMEOUT), log_path.read_text()
        yield
    finally:
        os.killpg(runtime.pid, signal.SIGTERM)
        try:
            runtime.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(runtime.pid, signal.SIGKILL)
            runtime.wait(timeout=10)


# ------------------------------------------------------------------------- error reports


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """A code root at a long path, as deep project layouts have: every frame of a deep
    stack carries it, in the stack trace and in the X-Ray cause."""
    root = tmp_path / ("a_project_directory_with_a_rather_long_name_" * 3) / "src"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def errors_runtime(emulator: RuntimeAPIEmulator, task_root: Path) -> Iterator[None]:
    with running_runtime(emulator, task_root, handler_files("raise_hard_to_report"), "app.handler"):
        yield


def call(emulator: RuntimeAPIEmulator, event: dict, **submit: str) -> Outcome:
    """One event, answered promptly: a report the worker gave, not a deadline or a retry."""
    return emulator.submit(event, timeout=60, **submit).result(PROMPT)


def warm_state(emulator: RuntimeAPIEmulator) -> dict:
    outcome = call(emulator, {})
    assert outcome.kind == "response", outcome
    return outcome.json()


def assert_reported(outcome: Outcome, error_type: str) -> dict:
    """A four-key error body within the worker's budget, and an X-Ray cause that is JSON
    and a few KiB; returns the body."""
    assert outcome.kind == "error", outcome
    assert outcome.error_type == error_type
    assert len(outcome.body) <= ERROR_BODY_BYTES
    body = outcome.json()
    assert set(body) == ERROR_KEYS
    assert body["errorType"] == error_type
    cause_header = outcome.headers["Lambda-Runtime-Function-XRay-Error-Cause"]
    assert len(cause_header) <= XRAY_CAUSE_BYTES
    cause = json.loads(cause_header)
    assert set(cause) == {"working_directory", "exceptions", "paths"}
    assert cause["exceptions"][0]["type"] == error_type
    return body


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [100_000, 2_000_000])
def test_huge_exception_message_is_reported_by_the_same_worker(emulator, errors_runtime, size):
    """Tried: ``raise ValueError("x" * 100_000)`` (the message alone is over a header line's
    64 KiB, and the X-Ray cause carried it) and ``"x" * 2_000_000`` (over the 1 MiB the
    supervisor accepts in a reply's metadata)."""
    before = warm_state(emulator)
    body = assert_reported(call(emulator, {"raise": "huge", "size": size}), "ValueError")
    note = f"... [truncated, {size} characters in all]"
    assert body["errorMessage"].endswith(note)
    kept = body["errorMessage"][: -len(note)]
    assert kept == "x" * len(kept) and len(kept) > ERROR_BODY_BYTES - 2048
    assert len(body["stackTrace"]) == 1 and "in handler" in body["stackTrace"][0]
    assert warm_state(emulator) == {**before, "calls": before["calls"] + 2}


@pytest.mark.timeout(60)
def test_recursion_error_at_a_long_path_is_reported_by_the_same_worker(emulator, errors_runtime, task_root):
    """Tried: unbounded recursion in a module at a long path (a thousand frames, each naming
    the file, went whole into the X-Ray cause header)."""
    before = warm_state(emulator)
    outcome = call(emulator, {"raise": "recursion"})
    body = assert_reported(outcome, "RecursionError")
    assert body["errorMessage"].startswith("maximum recursion depth exceeded")
    assert "in handler" in body["stackTrace"][0] and "in recurse" in body["stackTrace"][1]
    stack = json.loads(outcome.headers["Lambda-Runtime-Function-XRay-Error-Cause"])["exceptions"][0]["stack"]
    call_line = handler_source("raise_hard_to_report").splitlines().index("        recurse(0)") + 1
    assert stack[0] == {"label": "handler", "path": str(task_root.resolve() / "app.py"), "line": call_line}
    assert stack[-1]["label"] == "recurse" and 1 <= len(stack) <= 16
    assert warm_state(emulator) == {**before, "calls": before["calls"] + 2}


@pytest.mark.timeout(60)
def test_exception_whose_str_raises_is_reported_with_its_own_type(emulator, errors_runtime):
    """Tried: an exception class whose ``__str__`` raises (the report used to be built
    with ``str(exc)``, which killed the worker)."""
    before = warm_state(emulator)
    body = assert_reported(call(emulator, {"raise": "unprintable"}), "Unprintable")
    assert body["errorMessage"] == UNPRINTABLE
    assert "in handler" in body["stackTrace"][-1]
    assert warm_state(emulator) == {**before, "calls": before["calls"] + 2}


@pytest.mark.timeout(60)
def test_exception_after_the_working_directory_was_removed_is_reported(emulator, errors_runtime):
    """Tried: the handler chdirs into a directory, removes it, then raises (``os.getcwd()``
    fails while the X-Ray cause is built)."""
    before = warm_state(emulator)
    outcome = call(emulator, {"raise": "cwd_removed"})
    body = assert_reported(outcome, "KeyError")
    assert body["errorMessage"] == "'after the working directory went'"
    cause = json.loads(outcome.headers["Lambda-Runtime-Function-XRay-Error-Cause"])
    assert cause["working_directory"] == ""
    assert warm_state(emulator) == {**before, "calls": before["calls"] + 2}


# Modules that fail as they are imported: each one's text is the case.
INIT_FAILURES = {
    "huge message": ("raise ValueError('y' * 2_000_000)\n", "ValueError"),
    "unprintable": (
        "class Unprintable(Exception):\n"
        "    def __str__(self):\n"
        "        raise RuntimeError('no text')\n"
        "raise Unprintable()\n",
        "Unprintable",
    ),
    "huge import error": ("raise ImportError('z' * 2_000_000)\n", "Runtime.ImportModuleError"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(INIT_FAILURES))
def test_init_error_that_is_huge_or_unprintable_is_reported(emulator, tmp_path, case):
    """Tried: a module that raises at import an exception with a 2 MB message (over the
    supervisor's 1 MiB limit for an init reply), an ImportError as large, and one whose
    ``__str__`` raises."""
    source, error_type = INIT_FAILURES[case]
    with running_runtime(emulator, tmp_path, {"app.py": source}, "app.handler", wait_ready=False):
        outcome = emulator.wait_init_error(STARTUP_TIMEOUT)
        assert outcome is not None
    assert outcome.error_type == error_type
    assert len(outcome.body) <= ERROR_BODY_BYTES
    body = outcome.json()
    assert set(body) == ERROR_KEYS and body["errorType"] == error_type
    if case == "unprintable":
        assert body["errorMessage"] == UNPRINTABLE
    else:
        assert body["errorMessage"].endswith("characters in all]")
    assert emulator.init_errors == [outcome]


# ------------------------------------------------------------------------------ trace ids

TRACE_ID = "Root=1-65f0a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.mark.timeout(60)
def test_trace_id_with_a_nul_byte_is_dropped_not_fatal(emulator, errors_runtime):
    """Tried: ``Lambda-Runtime-Trace-Id`` with a NUL byte in it (``os.environ`` refuses
    one, which failed every such event), after an event with a good trace id. The header
    line goes out verbatim: a well-behaved server would not send it, the runtime must cope."""
    before = warm_state(emulator)
    assert call(emulator, {}, trace_id=TRACE_ID).json()["trace_id"] == TRACE_ID
    nul_line = f"Lambda-Runtime-Trace-Id: {TRACE_ID.replace(';Parent', chr(0) + ';Parent')}".encode()
    outcome = emulator.submit({}, timeout=60, raw_header_lines=[nul_line]).result(PROMPT)
    assert outcome.kind == "response", outcome
    assert outcome.json() == {**before, "calls": before["calls"] + 2, "trace_id": None}
