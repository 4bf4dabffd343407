"""``lambda-supervisor package``: contents, modes, reproducibility, targets and limits.

Every build here is a real run of the CLI: real pip resolving real wheels for the target
platform, real bytecode compilation, a real zip on disk inspected entry by entry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest
from deploy_support import (
    CURRENT_PYTHON,
    OTHER_PYTHON,
    BuiltPackage,
    isolated_env,
    package,
    write_function,
)

from lambda_supervisor.deploy.ignore import DEFAULT_IGNORE_PATTERNS, IgnoreRules
from lambda_supervisor.deploy.sources import HandlerSpec

# Fixtures (moto server, wheelhouse, the built sample package) come from deploy_support.
pytest_plugins = ["deploy_support"]

CACHE_TAG = sys.implementation.cache_tag


def entry_modes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (info.external_attr >> 16) for info in archive.infolist()}


@pytest.mark.timeout(120)
def test_zip_holds_code_dependencies_runtime_and_bootstrap(built: BuiltPackage) -> None:
    names = set(entry_modes(built.zip_path))
    expected = {
        "app.py",
        "helpers/__init__.py",
        "helpers/greeting.py",
        "tool.sh",
        "requirements.txt",
        "tinydep.py",
        "urllib3/__init__.py",
        "structlog/__init__.py",
        "lambda-supervisor-runtime/supervisor/__init__.py",
        "lambda-supervisor-runtime/supervisor/__main__.py",
        "lambda-supervisor-runtime/worker/__init__.py",
        "bin/bootstrap",
        ".lambda-supervisor-package.json",
    }
    assert expected <= names
    assert str(built.zip_path) == built.stdout.strip()


@pytest.mark.timeout(120)
def test_ignored_files_stay_out(built: BuiltPackage) -> None:
    names = set(entry_modes(built.zip_path))
    for leaked in (".env", "tests/test_app.py", "test_local.py", ".git/HEAD", "notes.log", ".lambdaignore"):
        assert leaked not in names
    assert not [n for n in names if "cpython-38" in n], "stale bytecode of another Python was packaged"
    # pip's console scripts would carry the build machine's interpreter path.
    assert [n for n in names if n.startswith("bin/")] == ["bin/bootstrap"]


@pytest.mark.timeout(120)
def test_entries_are_sorted_with_fixed_times_and_modes(built: BuiltPackage) -> None:
    with zipfile.ZipFile(built.zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.create_system for info in infos} == {3}
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    assert modes["bin/bootstrap"] == stat.S_IFREG | 0o755
    assert modes["tool.sh"] == stat.S_IFREG | 0o755
    assert modes["app.py"] == stat.S_IFREG | 0o644
    assert {mode for name, mode in modes.items() if name not in {"bin/bootstrap", "tool.sh"}} == {
        stat.S_IFREG | 0o644
    }


@pytest.mark.timeout(120)
def test_bytecode_is_compiled_for_the_target_and_hash_based(built: BuiltPackage) -> None:
    with zipfile.ZipFile(built.zip_path) as archive:
        names = set(archive.namelist())
        app_pyc = archive.read(f"__pycache__/app.{CACHE_TAG}.pyc")
    runtime_init = "lambda-supervisor-runtime/supervisor/__pycache__/__init__"
    for module in ("helpers/__pycache__/greeting", runtime_init, "tinydep"):
        if "/" not in module:
            module = f"__pycache__/{module}"
        assert f"{module}.{CACHE_TAG}.pyc" in names
    assert app_pyc[:4] == importlib.util.MAGIC_NUMBER
    # Flags word: bit 0 = hash-based, bit 1 = check source; unchecked hash is 0b01.
    assert int.from_bytes(app_pyc[4:8], "little") == 0b01
    assert f"Bytecode: {len([n for n in names if n.endswith('.pyc')])} files compiled" in built.stderr


@pytest.mark.timeout(120)
def test_size_is_reported_against_lambda_limits(built: BuiltPackage) -> None:
    size = built.zip_path.stat().st_size
    assert "zipped (limit 50.0 MB)" in built.stderr
    assert "unzipped (limit 250.0 MB)" in built.stderr
    assert f"{size / 1024:.1f} KB zipped" in built.stderr


@pytest.mark.timeout(120)
def test_same_inputs_give_byte_identical_zip(tmp_path: Path, wheelhouse: Path) -> None:
    # Both builds run back to back here (not against the session's package) so that the
    # runtime files, which are inputs too, are the same for both.
    source = write_function(tmp_path / "function")
    first = tmp_path / "first.zip"
    built = package(source, first, wheelhouse, "--python", CURRENT_PYTHON)
    assert built.returncode == 0, built.stderr
    # Same files elsewhere, with other timestamps: only content may matter.
    copy = tmp_path / "elsewhere" / "function"
    shutil.copytree(source, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    again = tmp_path / "again.zip"
    result = package(copy, again, wheelhouse, "--python", CURRENT_PYTHON)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(again) as new, zipfile.ZipFile(first) as old:
        assert new.namelist() == old.namelist()
        differing = [name for name in old.namelist() if new.read(name) != old.read(name)]
    assert differing == []
    assert again.read_bytes() == first.read_bytes()


@pytest.mark.timeout(120)
def test_dependencies_are_the_lambda_platform_wheels(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    (source / "requirements.txt").write_text("tinydep==1.0\nnativedep\n")
    machines = {}
    for arch in ("arm64", "x86_64"):
        output = tmp_path / f"{arch}.zip"
        result = package(
            source, output, wheelhouse, "--arch", arch, "--python", CURRENT_PYTHON, "--no-bytecode"
        )
        assert result.returncode == 0, result.stderr
        with zipfile.ZipFile(output) as archive:
            machines[arch] = archive.read("nativedep/__init__.py").decode()
            assert "nativedep-1.0.dist-info/WHEEL" in archive.namelist()
    assert machines == {"arm64": 'MACHINE = "aarch64"\n', "x86_64": 'MACHINE = "x86_64"\n'}


@pytest.mark.timeout(120)
def test_dependency_without_a_lambda_wheel_fails_clearly(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    (source / "requirements.txt").write_text("sdistonly==1.0\n")
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--arch", "arm64", "--python", CURRENT_PYTHON)
    assert result.returncode == 2
    assert "error: Installing dependencies for Python" in result.stderr
    assert "manylinux2014_aarch64" in result.stderr
    assert "sdistonly" in result.stderr
    assert not output.exists()


@pytest.mark.timeout(120)
def test_other_target_python_ships_source_and_says_why(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = isolated_env(tmp_path, PATH=str(empty_bin))
    result = package(source, output, wheelhouse, "--python", OTHER_PYTHON, env=env)
    assert result.returncode == 0, result.stderr
    assert f"no working python{OTHER_PYTHON} was found on PATH" in result.stderr
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        manifest = archive.read(".lambda-supervisor-package.json").decode()
    assert not [n for n in names if n.endswith(".pyc")]
    assert "tinydep.py" in names and "app.py" in names
    assert f'"python_version": "{OTHER_PYTHON}"' in manifest


@pytest.mark.timeout(60)
def test_bytecode_python_of_the_wrong_version_is_refused(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    result = package(
        source, output, wheelhouse, "--python", OTHER_PYTHON, "--bytecode-python", sys.executable
    )
    assert result.returncode == 2
    assert f"is {CURRENT_PYTHON} cpython, but the target is CPython {OTHER_PYTHON}" in result.stderr


@pytest.mark.timeout(60)
def test_missing_handler_file_is_reported_before_any_work(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--handler", "service/api.handler")
    assert result.returncode == 2
    assert "Handler 'service/api.handler' needs service/api.py or service/api/__init__.py" in result.stderr
    assert "Installing dependencies" not in result.stderr
    assert not output.exists()


@pytest.mark.timeout(60)
def test_a_handler_file_under_source_is_packaged_in_lambdas_form(tmp_path: Path, wheelhouse: Path) -> None:
    """Tried: ``--handler helpers/greeting.py:greet``, the form ``invoke`` takes for a file:
    the package's Handler setting is Lambda's ``helpers.greeting.greet``."""
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--handler", "helpers/greeting.py:greet", "--no-bytecode")
    assert result.returncode == 0, result.stderr
    assert "(handler helpers.greeting.greet)" in result.stdout + result.stderr
    with zipfile.ZipFile(output) as archive:
        manifest = json.loads(archive.read(".lambda-supervisor-package.json"))
    assert manifest["handler"] == "helpers.greeting.greet"


@pytest.mark.timeout(60)
def test_handler_hidden_by_an_ignore_rule_is_explained(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--exclude", "app.py")
    assert result.returncode == 2
    assert "an ignore rule excludes it" in result.stderr


@pytest.mark.timeout(60)
def test_over_250_mb_unzipped_fails_before_installing(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    with open(source / "model.bin", "wb") as blob:
        blob.truncate(251 * 1024 * 1024)  # sparse: takes no disk space
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse)
    assert result.returncode == 2
    assert "251.0 MB unzipped, over Lambda's limit of 250.0 MB" in result.stderr
    assert "Installing dependencies" not in result.stderr
    assert not output.exists()


@pytest.mark.timeout(120)
def test_over_50_mb_zipped_fails_and_leaves_nothing(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    (source / "noise.bin").write_bytes(random.Random(7).randbytes(51 * 1024 * 1024))
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--no-bytecode")
    assert result.returncode == 2
    assert "zipped, over Lambda's limit of 50.0 MB for a direct upload" in result.stderr
    assert list(tmp_path.glob("function.zip*")) == []


@pytest.mark.timeout(120)
def test_image_format_writes_a_dockerfile_and_the_same_tree(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "image"
    result = package(
        source, output, wheelhouse, "--format", "image", "--arch", "arm64", "--python", CURRENT_PYTHON
    )
    assert result.returncode == 0, result.stderr
    dockerfile = (output / "Dockerfile").read_text()
    assert f"FROM --platform=linux/arm64 public.ecr.aws/lambda/python:{CURRENT_PYTHON}\n" in dockerfile
    assert "COPY task/ /var/task/\n" in dockerfile
    assert 'ENTRYPOINT ["/var/task/bin/bootstrap"]\n' in dockerfile
    assert 'CMD ["app.handler"]\n' in dockerfile
    task = output / "task"
    assert stat.S_IMODE((task / "bin" / "bootstrap").stat().st_mode) == 0o755
    assert stat.S_IMODE((task / "app.py").stat().st_mode) == 0o644
    assert (task / "lambda-supervisor-runtime" / "supervisor" / "__main__.py").is_file()
    assert (task / "__pycache__" / f"app.{CACHE_TAG}.pyc").is_file()
    assert not (task / ".env").exists()
    # A second run replaces the context it generated itself.
    again = package(
        source, output, wheelhouse, "--format", "image", "--arch", "arm64", "--python", CURRENT_PYTHON
    )
    assert again.returncode == 0, again.stderr


@pytest.mark.timeout(30)
def test_image_format_refuses_to_overwrite_a_foreign_directory(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    output = tmp_path / "precious"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    result = package(source, output, wheelhouse, "--format", "image", "--no-bytecode")
    assert result.returncode == 2
    assert "was not generated by this command" in result.stderr
    assert (output / "keep.txt").read_text() == "mine"


@pytest.mark.timeout(10)
def test_default_ignore_list_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text()
    for pattern in DEFAULT_IGNORE_PATTERNS:
        assert f"`{pattern}`" in docs, pattern


@pytest.mark.timeout(10)
def test_ignore_rules_follow_gitignore_conventions() -> None:
    rules = IgnoreRules.from_patterns(["*.log", "!keep.log", "data/", "/top.txt", "docs/*.md"])
    assert rules.is_ignored("debug.log", is_dir=False)
    assert rules.is_ignored("deep/er/debug.log", is_dir=False)
    assert not rules.is_ignored("keep.log", is_dir=False)
    assert rules.is_ignored("data", is_dir=True)
    assert not rules.is_ignored("data", is_dir=False)
    assert rules.is_ignored("top.txt", is_dir=False)
    assert not rules.is_ignored("sub/top.txt", is_dir=False)
    assert rules.is_ignored("docs/readme.md", is_dir=False)
    assert not rules.is_ignored("other/readme.md", is_dir=False)


@pytest.mark.timeout(10)
def test_handler_names_map_to_files_like_lambda() -> None:
    spec = HandlerSpec.parse("pkg/sub/mod.handler")
    assert (spec.module, spec.function) == ("pkg.sub.mod", "handler")
    assert spec.candidate_files() == ("pkg/sub/mod.py", "pkg/sub/mod/__init__.py")


@pytest.mark.timeout(120)
def test_output_inside_the_source_never_packages_itself(tmp_path: Path, wheelhouse: Path) -> None:
    source = write_function(tmp_path / "function")
    for _ in range(2):
        zipped = package(source, source / "out.zip", wheelhouse, "--no-bytecode")
        assert zipped.returncode == 0, zipped.stderr
    with zipfile.ZipFile(source / "out.zip") as archive:
        assert not [name for name in archive.namelist() if name.startswith("out.zip")]
    (source / "out.zip").unlink()
    for _ in range(2):
        image = package(source, source / "img", wheelhouse, "--format", "image", "--no-bytecode")
        assert image.returncode == 0, image.stderr
    assert (source / "img" / "task" / "app.py").is_file()
    assert not (source / "img" / "task" / "img").exists()


# Names a build machine commonly holds next to its code, each with a credential inside.
SECRET_FILES = (
    ".envrc",
    ".env-prod",
    "prod.env",
    ".aws/credentials",
    ".ssh/id_rsa",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "server.pem",
    "config/tls.key",
    "terraform.tfstate",
)


def zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.partial"))


@pytest.mark.timeout(120)
def test_secret_looking_files_stay_out_and_are_named(tmp_path: Path, wheelhouse: Path) -> None:
    """Secrets of every common kind, a ``.git`` file (a worktree's pointer, not a directory)
    and a certificate the function needs, brought back with ``!`` in .lambdaignore: only
    the certificate ships, and one stderr line names what was left out."""
    source = write_function(tmp_path / "function")
    for name in SECRET_FILES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("secret=hunter2\n")
    (source / "helpers" / ".git").write_text("gitdir: /home/me/repo/.git/worktrees/function\n")
    (source / "rds-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (source / ".lambdaignore").write_text("!rds-ca.pem\n")
    output = tmp_path / "function.zip"
    result = package(source, output, wheelhouse, "--no-bytecode")
    assert result.returncode == 0, result.stderr
    names = zip_names(output)
    shipped = [n for n in names if n.startswith((".aws", ".ssh", "config/")) or n.endswith(".git")]
    assert shipped == []
    assert [n for n in SECRET_FILES if n in names] == []
    assert "rds-ca.pem" in names
    assert (
        "Left out secret-looking files: .aws/, .env, .env-prod, .envrc, .netrc, .npmrc, .pypirc, "
        ".ssh/, config/tls.key, prod.env, server.pem, terraform.tfstate "
        "(to ship one on purpose, add !PATTERN to .lambdaignore)\n"
    ) in result.stderr


@pytest.mark.timeout(120)
def test_links_out_of_the_source_are_refused(tmp_path: Path, wheelhouse: Path) -> None:
    """A link to /proc/self/environ put the build machine's AWS_SECRET_ACCESS_KEY into the
    zip. Now any link leading out of the source stops the build, naming it;
    --allow-outside-links lets a link to a shared module out, never one into /proc; links
    that stay inside are followed as before."""
    source = write_function(tmp_path / "function")
    (tmp_path / "shared.py").write_text("SHARED = True\n")
    (source / "shared.py").symlink_to(tmp_path / "shared.py")
    (source / "environ.txt").symlink_to("/proc/self/environ")
    (source / "greeting_again.py").symlink_to(source / "helpers" / "greeting.py")
    output = tmp_path / "function.zip"
    env = isolated_env(tmp_path, AWS_SECRET_ACCESS_KEY="build-machine-secret")

    refused = package(source, output, wheelhouse, "--no-bytecode", env=env)
    assert refused.returncode == 2
    error = refused.stderr.splitlines()[-1]
    assert error.startswith(f"error: Symbolic links in {source} lead out of it: environ.txt -> /proc/")
    assert f"environ, shared.py -> {tmp_path / 'shared.py'}. " in error
    assert "Installing dependencies" not in refused.stderr
    assert not output.exists()

    still_refused = package(source, output, wheelhouse, "--no-bytecode", "--allow-outside-links", env=env)
    assert still_refused.returncode == 2
    assert "lead out of it: environ.txt -> /proc/" in still_refused.stderr
    assert "shared.py ->" not in still_refused.stderr
    assert not output.exists()

    (source / "environ.txt").unlink()
    allowed = package(source, output, wheelhouse, "--no-bytecode", "--allow-outside-links", env=env)
    assert allowed.returncode == 0, allowed.stderr
    with zipfile.ZipFile(output) as archive:
        assert archive.read("shared.py") == b"SHARED = True\n"
        assert archive.read("greeting_again.py") == (source / "helpers" / "greeting.py").read_bytes()
        assert not [n for n in archive.namelist() if b"build-machine-secret" in archive.read(n)]


@pytest.mark.timeout(120)
def test_file_name_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path, wheelhouse: Path) -> None:
    """A Latin-1 name (b"caf\\xe9.txt") ended the build with a UnicodeEncodeError traceback
    from zipfile and a function.zip.partial left behind. Now: one line naming the file,
    before any download, nothing written; excluding it with ``?`` lets the build through."""
    source = write_function(tmp_path / "function")
    (Path(os.fsdecode(bytes(source))) / os.fsdecode(b"caf\xe9.txt")).write_text("menu\n")
    out = tmp_path / "out"
    output = out / "function.zip"
    result = package(source, output, wheelhouse, "--no-bytecode")
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [
        f"error: File names in {source} are not UTF-8, which a zip cannot hold: caf\\xe9.txt. "
        "Rename them, or exclude them (.lambdaignore or --exclude; ? matches one such byte)"
    ]
    assert not out.exists()

    excluded = package(source, output, wheelhouse, "--no-bytecode", "--exclude", "caf?.txt")
    assert excluded.returncode == 0, excluded.stderr
    assert "app.py" in zip_names(output)
    assert leftovers(out) == []


@pytest.mark.timeout(60)
def test_output_of_the_wrong_kind_is_refused_before_any_work(tmp_path: Path, wheelhouse: Path) -> None:
    """``--output`` naming a directory ended in IsADirectoryError from os.replace with
    ``dist.partial`` left behind; an image output that is a file, or a zip under a file,
    raised tracebacks too. Each is now one ``error:`` line and exit status 2."""
    source = write_function(tmp_path / "function")
    directory = tmp_path / "dist"
    directory.mkdir()
    into_directory = package(source, directory, wheelhouse, "--no-bytecode")
    assert into_directory.returncode == 2
    assert into_directory.stderr.splitlines()[1:] == [
        f"error: --output {directory} is a directory; name the zip file, e.g. {directory / 'function.zip'}"
    ]
    assert list(directory.iterdir()) == []

    plain_file = tmp_path / "notes.txt"
    plain_file.write_text("mine")
    as_image = package(source, plain_file, wheelhouse, "--format", "image", "--no-bytecode")
    assert as_image.returncode == 2
    assert as_image.stderr.splitlines()[1:] == [
        f"error: --output {plain_file} is a file; an image build context is a directory"
    ]
    under_file = package(source, plain_file / "function.zip", wheelhouse, "--no-bytecode")
    assert under_file.returncode == 2
    assert under_file.stderr.splitlines()[1:] == [
        f"error: --output {plain_file / 'function.zip'} cannot be written: {plain_file} is a file, "
        "not a directory"
    ]
    assert plain_file.read_text() == "mine"
    for result in (into_directory, as_image, under_file):
        assert "Traceback" not in result.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.timeout(60)
def test_an_ignore_file_that_is_missing_or_not_utf8_is_refused(tmp_path: Path, wheelhouse: Path) -> None:
    """A mistyped --ignore-file was skipped without a word, so its rules silently did not
    apply; a Latin-1 .lambdaignore raised UnicodeDecodeError. Both now stop the build."""
    source = write_function(tmp_path / "function")
    output = tmp_path / "function.zip"
    missing = package(source, output, wheelhouse, "--ignore-file", str(tmp_path / "prod.ignore"))
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[1:] == [
        f"error: Ignore file {tmp_path / 'prod.ignore'} does not exist"
    ]
    (source / ".lambdaignore").write_bytes(b"caf\xe9.txt\n")
    latin1 = package(source, output, wheelhouse)
    assert latin1.returncode == 2
    assert latin1.stderr.splitlines()[1:] == [
        f"error: Ignore file {source / '.lambdaignore'} is not UTF-8 text"
    ]
    assert not output.exists()
