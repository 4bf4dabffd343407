"""A small record inside each package of what it was built for.

``deploy --zip`` reads it so the function's runtime, architecture and handler always match
the code that was built, instead of trusting the user to repeat the same options.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import DeployError

MANIFEST_NAME = ".lambda-supervisor-package.json"


@dataclass(frozen=True)
class PackageManifest:
    handler: str
    python_version: str
    architecture: str
    runtime_version: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    def write(self, root: Path) -> None:
        (root / MANIFEST_NAME).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_zip(cls, path: Path) -> PackageManifest:
        try:
            with zipfile.ZipFile(path) as archive:
                data = json.loads(archive.read(MANIFEST_NAME))
        except FileNotFoundError as exc:
            raise DeployError(f"No package at {path}; build one with `lambda-supervisor package`") from exc
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise DeployError(
                f"{path} is not a package built by `lambda-supervisor package` ({exc})"
            ) from exc
        return cls(**{key: str(data[key]) for key in cls.__dataclass_fields__})
