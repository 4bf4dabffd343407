"""Shared pieces for the package/iam/deploy/remote-invoke tests.

Everything here is real: a moto server in its own process answering real HTTP, the real
CLI in a subprocess with a controlled environment, and real wheels on disk for pip. Test
modules load it with ``pytest_plugins`` for its fixtures and import its helpers; it is
imported before pytest could rewrite its asserts, hence PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import socket
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from runtime_harness import copy_handler

CURRENT_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
# A target version the build machine is not running, for the "no bytecode" path.
OTHER_PYTHON = "3.13" if CURRENT_PYTHON == "3.12" else "3.12"
CLI = [sys.executable, "-m", "lambda_supervisor.cli"]
RUNTIME_PINS = [f"{name}=={importlib.metadata.version(name)}" for name in ("urllib3", "structlog")]

_MOTO_LAUNCHER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the session, on a free loopback port, with AWS managed policies."""
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    errors = tmp_path_factory.mktemp("moto") / "stderr.log"
    with errors.open("w") as error_log:
        process = subprocess.Popen(
            [sys.executable, "-c", _MOTO_LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=error_log,
            text=True,
            env=env,
        )
    assert process.stdout is not None and process.stdin is not None
    try:
        line = process.stdout.readline()
        if not line.strip().isdigit():
            pytest.fail(f"the moto server did not start:\n{errors.read_text()}")
        yield MotoServer(f"http://127.0.0.1:{int(line)}")
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with no real AWS configuration: no profile files, no instance
    metadata lookups, nothing inherited that could reach a real account."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in {"PYTHONPATH"}
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        # Whatever a test forgets, nothing can reach a real AWS endpoint: port 9 on
        # loopback refuses at once. An explicit --endpoint-url overrides this.
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    env.update(extra)
    return env


def fake_credentials_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(
        tmp_path,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        **extra,
    )


def run_cli(
    args: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: bytes | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """Run ``lambda-supervisor ARGS`` as a user would, capturing its output."""
    result = subprocess.run(
        CLI + args,
        env=dict(env),
        cwd=cwd,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result


# ------------------------------------------------------------------------------ wheels


def write_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str,
    files: Mapping[str, bytes],
    requires: tuple[str, ...] = (),
) -> Path:
    """A minimal but valid wheel (METADATA, WHEEL, RECORD with hashes) for pip to install."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    purelib = "true" if tag.endswith("none-any") else "false"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = metadata.encode()
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n".encode()
    )
    record_lines = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(data)}")
    record_lines.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
    return wheel


def _native_wheel_files(machine: str) -> dict[str, bytes]:
    return {
        "nativedep/__init__.py": f'MACHINE = "{machine}"\n'.encode(),
        "nativedep/_speedups.abi3.so": f"not really an ELF file for {machine}".encode(),
    }


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels for every build in the tests, so builds run with ``--no-index``.

    The runtime's own two dependencies are downloaded once (pure-Python, a few hundred KB);
    everything else is made here: ``tinydep`` (pure), ``nativedep`` with Lambda wheels for
    both CPUs plus a newer build-machine-only ``linux_x86_64`` wheel that must never be
    chosen, and ``sdistonly`` that has no wheel at all.
    """
    directory = tmp_path_factory.mktemp("wheelhouse")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--only-binary=:all:",
        "--platform",
        "manylinux2014_x86_64",
        "--implementation",
        "cp",
        "--python-version",
        CURRENT_PYTHON,
        "--dest",
        str(directory),
        *RUNTIME_PINS,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        if not _pypi_reachable():
            pytest.skip(f"the package index is unreachable, cannot download {RUNTIME_PINS}")
        pytest.fail(f"pip download failed:\n{result.stderr}")
    write_wheel(directory, "tinydep", "1.0", "py3-none-any", {"tinydep.py": b"VALUE = 42\n"})
    for machine in ("x86_64", "aarch64"):
        write_wheel(
            directory, "nativedep", "1.0", f"cp39-abi3-manylinux2014_{machine}", _native_wheel_files(machine)
        )
    write_wheel(directory, "nativedep", "2.0", "cp39-abi3-linux_x86_64", _native_wheel_files("build-machine"))
    sdist = directory / "sdistonly-1.0.tar.gz"
    sdist.write_bytes(b"")
    return directory


def offline_package_args(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse)]


def write_function(directory: Path) -> Path:
    """A small function project: handler module (tests/handlers/greet_with_dependencies.py),
    a helper package, and files that must stay out of the package (tests, .env, .git,
    caches)."""
    copy_handler(directory, "greet_with_dependencies")
    (directory / "helpers").mkdir(exist_ok=True)
    (directory / "helpers" / "__init__.py").write_text("")
    (directory / "helpers" / "greeting.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    (directory / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (directory / "tool.sh").chmod(0o700)
    (directory / "requirements.txt").write_text("tinydep==1.0\n")
    (directory / ".env").write_text("SECRET=do-not-ship\n")
    (directory / "tests").mkdir(exist_ok=True)
    (directory / "tests" / "test_app.py").write_text("def test():\n    pass\n")
    (directory / "test_local.py").write_text("")
    (directory / ".git").mkdir(exist_ok=True)
    (directory / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (directory / "__pycache__").mkdir(exist_ok=True)
    (directory / "__pycache__" / "app.cpython-38.pyc").write_bytes(b"stale")
    (directory / "notes.log").write_text("debug notes\n")
    return directory


# ------------------------------------------------------------------------------ packages


def package(
    source: Path, output: Path, wheelhouse: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``lambda-supervisor package`` offline, from the session's wheelhouse."""
    args = ["package", str(source), "--output", str(output), *offline_package_args(wheelhouse), *extra]
    return run_cli(args, env=env or isolated_env(output.parent), cwd=source.parent)


def unpack_like_lambda(zip_path: Path, task_root: Path) -> None:
    """Extract with the modes recorded in the zip, as Lambda does (zipfile alone does not)."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = Path(archive.extract(info, task_root))
            os.chmod(target, stat.S_IMODE(info.external_attr >> 16))


@dataclass(frozen=True)
class BuiltPackage:
    source: Path
    zip_path: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> BuiltPackage:
    """The sample function packaged once with the default target Python (the build machine's
    own, so the default package carries bytecode) on x86_64."""
    root = tmp_path_factory.mktemp("built")
    source = write_function(root / "function")
    (source / ".lambdaignore").write_text("# local notes stay local\n*.log\n")
    output = root / "dist" / "function.zip"
    result = package(source, output, wheelhouse, "--arch", "x86_64")
    assert result.returncode == 0, result.stderr
    return BuiltPackage(source, output, result.stdout, result.stderr)
