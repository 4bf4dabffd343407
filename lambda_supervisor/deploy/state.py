"""What the AWS commands remember between runs, in ``.lambda-supervisor/state.json``.

Remembering the execution role means ``deploy`` needs no ``--role`` after ``iam`` has run
once (with a created role or a given ``--role``), and a second ``iam`` does not create a
second role. The file lives with the project (it is excluded from packages by the default
ignore rules) and is keyed by AWS account, so the same project can target several
accounts, or a local emulator, without confusion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_STATE_FILE = Path(".lambda-supervisor/state.json")


class DeployState:
    """A tiny JSON document, rewritten atomically on every change."""

    def __init__(self, path: Path = DEFAULT_STATE_FILE) -> None:
        self.path = path
        self._data: dict[str, Any] = {}
        if path.is_file():
            try:
                self._data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                self._data = {}

    def remembered_role(self, account: str) -> str | None:
        """The execution role ARN last chosen for ``account``, if any."""
        return self._data.get("execution_roles", {}).get(account)

    def remember_role(self, account: str, arn: str) -> None:
        self._data.setdefault("execution_roles", {})[account] = arn
        self._save()

    def forget_role(self, account: str) -> None:
        self._data.get("execution_roles", {}).pop(account, None)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self._data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, self.path)
