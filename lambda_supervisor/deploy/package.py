"""``lambda-supervisor package``: assemble the function, its dependencies and the runtime.

Everything is staged in a temporary tree first (sources are never written to), then either
zipped reproducibly or laid out as a container build context. Both shapes contain the same
tree, so a function behaves the same whichever way it is deployed.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .archive import (
    EXECUTABLE_MODE,
    FILE_MODE,
    ArchiveEntry,
    ArchiveReport,
    check_unzipped_size,
    entries_for_tree,
    human_size,
    unzipped_size,
    write_zip,
)
from .bytecode import BytecodeOutcome, compile_tree
from .dependencies import PipSource, install_dependencies
from .dockerfile import CONTEXT_TASK_DIR, DOCKERFILE_HEADER, render_dockerfile
from .errors import DeployError
from .ignore import IgnoreRules
from .manifest import PackageManifest
from .runtime_files import (
    BOOTSTRAP_PATH,
    RUNTIME_DIR,
    runtime_files,
    runtime_requirements,
)
from .sources import HandlerSpec, SourceFile, brief_list, require_handler_file, select_source_files
from .targets import MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES, Target

FORMATS = ("zip", "image")
DEFAULT_ZIP_OUTPUT = Path("dist/function.zip")
DEFAULT_IMAGE_OUTPUT = Path("dist/image")
# Image build contexts get the same fixed modification time as zip entries.
_FIXED_EPOCH = 315532800  # 1980-01-01T00:00:00Z

Echo = Callable[[str], None]


@dataclass(frozen=True)
class PackageRequest:
    """Everything that determines a package's bytes."""

    source: Path
    handler: HandlerSpec
    target: Target
    output: Path
    image: bool = False
    requirements: Path | None = None
    ignore_file: Path | None = None
    excludes: tuple[str, ...] = ()
    pip_source: PipSource = PipSource()
    bytecode: bool = True
    bytecode_python: str | None = None
    allow_outside_links: bool = False


@dataclass(frozen=True)
class PackageResult:
    output: Path
    manifest: PackageManifest
    files: int
    unzipped_bytes: int
    zipped_bytes: int | None
    bytecode: BytecodeOutcome


def _runtime_version() -> str:
    try:
        return importlib.metadata.version("lambda-supervisor")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _requirement_files(request: PackageRequest) -> list[Path]:
    if request.requirements is not None:
        if not request.requirements.is_file():
            raise DeployError(f"Requirements file {request.requirements} does not exist")
        return [request.requirements]
    default = request.source / "requirements.txt"
    return [default] if default.is_file() else []


def _refuse_runtime_clashes(files: Sequence[SourceFile], what: str) -> None:
    """The runtime's own paths must not be overwritten. Its packages live apart in
    ``RUNTIME_DIR``, so a ``worker.py`` or a dependency called ``supervisor`` is fine."""
    clashes = sorted(
        f.relative for f in files if f.relative.startswith(f"{RUNTIME_DIR}/") or f.relative == BOOTSTRAP_PATH
    )
    if clashes:
        raise DeployError(
            f"{what} uses paths lambda-supervisor needs ({RUNTIME_DIR}/, {BOOTSTRAP_PATH}): "
            f"{', '.join(clashes[:5])}"
        )


def _check_output(request: PackageRequest) -> None:
    """Refuse an output of the wrong kind before any work, rather than fail at the end."""
    output = request.output
    if not request.image and output.is_dir():
        raise DeployError(
            f"--output {output} is a directory; name the zip file, e.g. {output / 'function.zip'}"
        )
    if request.image and output.exists() and not output.is_dir():
        raise DeployError(f"--output {output} is a file; an image build context is a directory")
    nearest = next(parent for parent in output.absolute().parents if parent.exists())
    if not nearest.is_dir():
        raise DeployError(f"--output {output} cannot be written: {nearest} is a file, not a directory")


def _report_withheld(withheld: Sequence[str], echo: Echo) -> None:
    """Name the secret-looking files left out, so one needed on purpose can be brought back."""
    if withheld:
        echo(
            f"Left out secret-looking files: {brief_list(withheld, 20)} "
            "(to ship one on purpose, add !PATTERN to .lambdaignore)"
        )


def _copy_into(staging: Path, files: Sequence[SourceFile]) -> None:
    for item in files:
        destination = staging / item.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, destination)
        os.chmod(destination, EXECUTABLE_MODE if item.executable else FILE_MODE)


def _tree_files(root: Path) -> list[SourceFile]:
    return [SourceFile(e.name, e.path, e.mode == EXECUTABLE_MODE) for e in entries_for_tree(root)]


def _stage(request: PackageRequest, staging: Path, echo: Echo) -> BytecodeOutcome:
    """Fill ``staging`` with dependencies, runtime and function code, then bytecode."""
    source = request.source
    if not source.is_dir():
        raise DeployError(f"Source directory {source} does not exist")
    _check_output(request)
    rules = IgnoreRules.for_source(source, request.ignore_file, request.excludes)
    selection = select_source_files(source, rules, [request.output], request.allow_outside_links)
    _report_withheld(selection.withheld, echo)
    sources = selection.files
    require_handler_file(request.handler, source, sources)
    _refuse_runtime_clashes(sources, f"The function's code in {source}")
    if not request.image:
        check_unzipped_size(sum(f.path.stat().st_size for f in sources), "The function's code")

    requirement_files = _requirement_files(request)
    pins = runtime_requirements()
    listed = ", ".join(pins + [str(p) for p in requirement_files])
    echo(f"Installing dependencies for {request.target.describe()}: {listed}")
    install_dependencies(pins, requirement_files, request.target, staging, request.pip_source)
    _refuse_runtime_clashes(_tree_files(staging), "A dependency")

    _copy_into(staging, runtime_files())
    overridden = [f.relative for f in sources if (staging / f.relative).exists()]
    if overridden:
        echo(f"Note: the function's own files replace dependency files: {', '.join(overridden[:5])}")
    _copy_into(staging, sources)

    python_files = sorted(e.name for e in entries_for_tree(staging) if e.name.endswith(".py"))
    if not request.bytecode:
        outcome = BytecodeOutcome(None, skipped_reason="--no-bytecode was given")
    else:
        outcome = compile_tree(staging, python_files, request.target, request.bytecode_python)
    if outcome.interpreter:
        failed = f", {len(outcome.failed)} kept as source only" if outcome.failed else ""
        echo(f"Bytecode: {outcome.compiled} files compiled with {outcome.interpreter}{failed}")
    else:
        echo(f"Bytecode: none, {outcome.skipped_reason}")
    return outcome


def _write_image_context(staging: Path, request: PackageRequest) -> list[ArchiveEntry]:
    """Replace ``output`` with ``Dockerfile`` + ``task/``; refuse to clobber a directory
    this command did not generate."""
    output = request.output
    dockerfile = output / "Dockerfile"
    if output.exists():
        generated = dockerfile.is_file() and dockerfile.read_text().startswith(DOCKERFILE_HEADER)
        if not generated and any(output.iterdir()):
            raise DeployError(
                f"{output} exists and was not generated by this command; choose another --output"
            )
        shutil.rmtree(output)
    task = output / CONTEXT_TASK_DIR
    shutil.copytree(staging, task)
    entries = entries_for_tree(task)
    for entry in entries:
        os.chmod(entry.path, entry.mode)
        os.utime(entry.path, (_FIXED_EPOCH, _FIXED_EPOCH))
    dockerfile.write_text(render_dockerfile(request.target, request.handler), encoding="utf-8")
    return entries


def build_package(request: PackageRequest, echo: Echo = print) -> PackageResult:
    """Build the zip or image context described by ``request`` and report its size."""
    manifest = PackageManifest(
        handler=request.handler.text,
        python_version=request.target.python_version,
        architecture=request.target.architecture,
        runtime_version=_runtime_version(),
    )
    echo(f"Packaging {request.source} for {request.target.describe()} (handler {request.handler.text})")
    with tempfile.TemporaryDirectory(prefix="lambda-supervisor-package-") as temp:
        staging = Path(temp, "task")
        outcome = _stage(request, staging, echo)
        manifest.write(staging)
        if request.image:
            entries = _write_image_context(staging, request)
            total = unzipped_size(entries)
            echo(
                f"Wrote image build context {request.output}: {len(entries)} files, "
                f"{human_size(total)}; build it with "
                f"`docker build --platform {request.target.docker_platform} {request.output}`"
            )
            return PackageResult(request.output, manifest, len(entries), total, None, outcome)
        report: ArchiveReport = write_zip(entries_for_tree(staging), request.output)
    echo(
        f"Wrote {report.path}: {human_size(report.zipped_bytes)} zipped "
        f"(limit {human_size(MAX_ZIPPED_BYTES)}), {human_size(report.unzipped_bytes)} unzipped "
        f"(limit {human_size(MAX_UNZIPPED_BYTES)}), {report.files} files"
    )
    return PackageResult(
        report.path, manifest, report.files, report.unzipped_bytes, report.zipped_bytes, outcome
    )
