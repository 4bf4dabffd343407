"""Developer tooling for lambda-supervisor: local emulator, CLI, pytest plugin, packaging.

Nothing here is imported by the runtime itself (``supervisor`` and ``worker``), so the
production import path stays small.
"""
