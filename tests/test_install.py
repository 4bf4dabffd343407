"""``pip install .`` into a fresh environment gives a working runtime, as in a container image.

The project is installed by pip (no editable link) into a new virtual environment; its two
runtime dependencies are copied in from this environment so the test needs no network.
Then bin/bootstrap, both from the checkout and copied alone, runs with that environment's
python3 first on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
import urllib3
from runtime_harness import STARTUP_TIMEOUT, copy_handler, handler_files, invoke, write_task

from lambda_supervisor.process import RuntimeProcess

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_env(tmp_path_factory) -> Path:
    env_dir = tmp_path_factory.mktemp("installed") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python3"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    build_dir = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site_packages),
            str(REPO_ROOT),
        ],
        check=True,
        cwd=build_dir,
    )
    for module in (urllib3, structlog):
        package_dir = Path(module.__file__).parent
        shutil.copytree(package_dir, site_packages / package_dir.name)
    assert (site_packages / "supervisor" / "__main__.py").is_file()
    assert not any(p.name.endswith(".pth") and "lambda" in p.name for p in site_packages.iterdir())
    return env_dir


def _serve_once(emulator, tmp_path: Path, command: list[str], env_dir: Path) -> str:
    task_root = tmp_path / "task"
    copy_handler(task_root, "return_ok")
    env = RuntimeProcess(
        None,
        runtime_api=emulator.address,
        task_root=task_root,
        env={
            "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "LAMBDA_SUPERVISOR_PYTHON": None,
            "PYTHONPATH": None,
            "VIRTUAL_ENV": None,
            "_HANDLER": "app.handler",
            # The first worker's start is a DEBUG record: it shows structlog at work.
            "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        },
    ).environment()
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert emulator.wait_for_poll(STARTUP_TIMEOUT), "runtime never polled /next"
        assert invoke(emulator).json() == {"ok": True}
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    return output


@pytest.mark.timeout(180)
def test_checkout_bootstrap_runs_with_the_installed_environments_python(emulator, tmp_path, installed_env):
    output = _serve_once(emulator, tmp_path, [str(REPO_ROOT / "bin" / "bootstrap")], installed_env)
    assert '"message":"worker started"' in output


@pytest.mark.timeout(180)
def test_bootstrap_alone_runs_the_installed_package(emulator, tmp_path, installed_env):
    image_bin = tmp_path / "image" / "bin"
    image_bin.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "bin" / "bootstrap", image_bin / "bootstrap")
    output = _serve_once(emulator, tmp_path, [str(image_bin / "bootstrap")], installed_env)
    assert '"message":"worker started"' in output


# A handler module named ``worker.py`` beside a ``supervisor`` package: the names are the point
# (the package, one line of marker, stays a string).
SHADOWING_FUNCTION = {
    **handler_files("report_bundled_supervisor", "worker.py"),
    "supervisor/__init__.py": "MARKER = 'the function own'\n",
}


@pytest.mark.timeout(180)
def test_installed_cli_invokes_a_worker_module_beside_a_supervisor_package(tmp_path, installed_env):
    """Tried: ``lambda-supervisor invoke worker:handler`` from the installed package (no
    checkout beside it), in the function's directory, which holds ``worker.py`` and a
    ``supervisor`` package; ``python -m supervisor`` there would start the function's."""
    function = write_task(tmp_path / "function", SHADOWING_FUNCTION)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "LAMBDA_SUPERVISOR_PYTHON"}
    }
    env["PATH"] = f"{installed_env / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [str(installed_env / "bin" / "python3"), "-m", "lambda_supervisor.cli", "invoke", "worker:handler"],
        cwd=function,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"supervisor": "the function own"}
