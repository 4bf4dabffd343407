"""Which files of a function's source tree stay out of the package.

A deployment package should hold what runs and nothing else: version-control data, local
secrets (``.env``, keys, cloud credentials), caches compiled for another Python, virtualenvs
and tests only make it bigger, slower to cold-start, and sometimes leak. The rules are a
small, documented subset of ``.gitignore`` syntax so users can read them without learning a
new language.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import DeployError

IGNORE_FILE_NAME = ".lambdaignore"

# Documented in docs/deploy.md; keep the lists identical. Secret-looking files are
# reported when left out, so a user who needs one knows to bring it back with ``!``.
SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    ".env-*",
    "*.env",
    ".envrc",
    ".aws/",
    ".ssh/",
    ".gnupg/",
    ".docker/",
    ".kube/",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".git-credentials",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
)
CLUTTER_PATTERNS: tuple[str, ...] = (
    ".git",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "*.pyc",
    "*.pyo",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "*.egg-info/",
    ".lambda-supervisor/",
    IGNORE_FILE_NAME,
    "tests/",
    "test/",
    "test_*.py",
    "*_test.py",
    "conftest.py",
    "dist/",
    "build/",
    ".DS_Store",
    ".idea/",
    ".vscode/",
)
DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = CLUTTER_PATTERNS + SECRET_PATTERNS


@dataclass(frozen=True)
class IgnoreRule:
    """One pattern line: ``*.log``, ``docs/`` (directories only), ``/notes.txt`` (anchored),
    ``!keep.log`` (re-include). ``secret`` marks the default rules for secret-looking
    files, whose matches are reported."""

    pattern: str
    negated: bool
    directory_only: bool
    anchored: bool
    secret: bool = False

    @classmethod
    def parse(cls, line: str, secret: bool = False) -> IgnoreRule | None:
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        negated = text.startswith("!")
        if negated:
            text = text[1:]
        directory_only = text.endswith("/")
        text = text.rstrip("/")
        anchored = "/" in text
        text = text.lstrip("/")
        if not text:
            return None
        return cls(text, negated, directory_only, anchored, secret)

    def matches(self, relative_path: str, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(relative_path, self.pattern)
        return fnmatch.fnmatchcase(relative_path.rsplit("/", 1)[-1], self.pattern)


class IgnoreRules:
    """An ordered rule list where, as in ``.gitignore``, the last matching rule wins.

    Paths are POSIX-style and relative to the source root. A directory that is ignored is
    not descended into, so a ``!`` rule cannot bring back a file inside it.
    """

    def __init__(self, rules: Iterable[IgnoreRule]) -> None:
        self.rules: tuple[IgnoreRule, ...] = tuple(rules)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> IgnoreRules:
        parsed = (IgnoreRule.parse(p) for p in patterns)
        return cls(rule for rule in parsed if rule is not None)

    @classmethod
    def for_source(
        cls,
        source: Path,
        ignore_file: Path | None = None,
        extra_patterns: Sequence[str] = (),
    ) -> IgnoreRules:
        """Defaults, then the project's ignore file, then command-line ``--exclude`` patterns."""
        patterns = list(CLUTTER_PATTERNS)
        if ignore_file is not None and not ignore_file.is_file():
            raise DeployError(f"Ignore file {ignore_file} does not exist")
        path = ignore_file if ignore_file is not None else source / IGNORE_FILE_NAME
        if path.is_file():
            try:
                patterns.extend(path.read_text(encoding="utf-8").splitlines())
            except UnicodeDecodeError as exc:
                raise DeployError(f"Ignore file {path} is not UTF-8 text") from exc
        patterns.extend(extra_patterns)
        secrets = (IgnoreRule.parse(p, secret=True) for p in SECRET_PATTERNS)
        own = (IgnoreRule.parse(p) for p in patterns)
        return cls(rule for rule in (*secrets, *own) if rule is not None)

    def match(self, relative_path: str, is_dir: bool) -> IgnoreRule | None:
        """The rule that decides ``relative_path``'s fate, if any rule matches."""
        decisive = None
        for rule in self.rules:
            if rule.matches(relative_path, is_dir):
                decisive = rule
        return decisive

    def is_ignored(self, relative_path: str, is_dir: bool) -> bool:
        rule = self.match(relative_path, is_dir)
        return rule is not None and not rule.negated
