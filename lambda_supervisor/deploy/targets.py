"""Where the code will run: the Lambda Python version and CPU architecture, and their limits.

Everything that depends on the target (pip platform tags, the managed runtime's name, the
container base image) is derived here so the package and deploy steps cannot disagree.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from .errors import DeployError

# Python versions Lambda offers as managed runtimes (``python3.X``).
SUPPORTED_PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
# The build machine's own version when Lambda offers it: then the package's bytecode can be
# compiled right here, with no second interpreter to find.
_BUILD_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
DEFAULT_PYTHON_VERSION = _BUILD_PYTHON if _BUILD_PYTHON in SUPPORTED_PYTHON_VERSIONS else "3.12"
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_ARCHITECTURE = "x86_64"

# Lambda's documented deployment package quotas.
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

# Where Lambda unpacks a function's code; tracebacks and the exec wrapper refer to it.
TASK_ROOT = "/var/task"

_MACHINE_BY_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Target:
    """A Lambda execution environment to build for."""

    python_version: str
    architecture: str

    @classmethod
    def parse(cls, python_version: str, architecture: str) -> Target:
        """Validate user input once, so later steps can trust the values."""
        if not re.fullmatch(r"3\.\d+", python_version or ""):
            raise DeployError(f"--python must look like 3.12, not {python_version!r}")
        if python_version not in SUPPORTED_PYTHON_VERSIONS:
            raise DeployError(
                f"Lambda has no managed runtime for Python {python_version}; "
                f"choose one of {', '.join(SUPPORTED_PYTHON_VERSIONS)}"
            )
        if architecture not in ARCHITECTURES:
            raise DeployError(f"--arch must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
        return cls(python_version, architecture)

    @property
    def runtime(self) -> str:
        """The managed runtime identifier, e.g. ``python3.12``."""
        return f"python{self.python_version}"

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")
        return int(major), int(minor)

    @property
    def pip_platforms(self) -> tuple[str, ...]:
        """Wheel platform tags the runtime's glibc accepts, newest first.

        Python 3.12 and later run on Amazon Linux 2023 (glibc 2.34), older ones on Amazon
        Linux 2 (glibc 2.26). pip does not widen an explicit ``--platform`` to older
        manylinux levels beyond the 2014 family, so every level is listed.
        """
        machine = _MACHINE_BY_ARCH[self.architecture]
        tags = [f"manylinux2014_{machine}"]
        if self.version_tuple >= (3, 12):
            tags = [f"manylinux_2_34_{machine}", f"manylinux_2_28_{machine}", *tags]
        return tuple(tags)

    @property
    def docker_platform(self) -> str:
        return "linux/arm64" if self.architecture == "arm64" else "linux/amd64"

    @property
    def base_image(self) -> str:
        """AWS's Lambda base image for this Python: it has the interpreter at ``/var/lang``."""
        return f"public.ecr.aws/lambda/python:{self.python_version}"

    def describe(self) -> str:
        return f"Python {self.python_version} on {self.architecture}"
