"""Entry point: ``python -m supervisor`` (what ``bin/bootstrap`` runs).

The order here is deliberate. Only what the worker runs is loaded before the first fork;
the rest of the supervisor's imports run while the worker initialises. urllib3 is loaded
once the first answer is out (``supervisor/runtime_connection.py``), structlog when the
supervisor first has something to log (``SupervisorLogger``): neither is on the path to the
first response. A replacement worker forked later finds the supervisor's urllib3 loaded and
keeps it when the function would import that very file (``worker.child.SHAREABLE_MODULES``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    from supervisor.config import ConfigError, load_settings

    try:
        settings = load_settings(os.environ, sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"lambda-supervisor: {exc}", file=sys.stderr)
        if exc.runtime_api:
            from supervisor.logs import SupervisorLogger
            from supervisor.runtime_api import report_config_error

            report_config_error(exc.runtime_api, str(exc), SupervisorLogger("supervisor"))
        return 2
    if settings.forks_from_server:  # Lambda Managed Instances, or preload
        from supervisor.slots import run_slots

        return run_slots(settings)

    # What the worker runs is loaded before the first fork: the worker needs all of it and
    # the supervisor keeps it for replacement workers anyway, so it is imported once, not
    # once in each process, and its pages stay shared between the two.
    import worker.child  # noqa: F401
    from supervisor.keeper import become_subreaper
    from supervisor.worker_process import WorkerProcess

    # Before the first fork, so that nothing a handler starts can escape to init.
    become_subreaper()
    first_worker = WorkerProcess.spawn(settings)

    # From here on the worker initialises in parallel with the supervisor's own imports.
    from supervisor.logs import SupervisorLogger
    from supervisor.loop import (
        EXIT_INIT_FAILED,
        EXIT_OK,
        EXIT_RUNTIME_API_FAILED,
        ShutdownDuringInit,
        Supervisor,
    )
    from supervisor.runtime_api import RuntimeAPIClient, RuntimeAPIError

    log = SupervisorLogger("supervisor")
    api = RuntimeAPIClient(settings.runtime_api, retry_window=settings.api_retry_window, log=log)
    supervisor = Supervisor(settings, api, log, first_worker)
    supervisor.install_signal_handlers()
    if settings.register_extension and api.register_extension():
        log.info("registered internal extension for SIGTERM on shutdown")
    try:
        if not supervisor.start():
            return EXIT_INIT_FAILED
        if settings.snap_start and (failed := supervisor.restore()) is not None:
            return failed
    except ShutdownDuringInit:
        supervisor.shutdown()
        return EXIT_OK
    try:
        return supervisor.serve_forever()
    except RuntimeAPIError as exc:
        log.error("runtime API failure, exiting", error=str(exc))
        supervisor.worker.release()
        return EXIT_RUNTIME_API_FAILED


def _leave_the_current_directory() -> None:
    """``python -m supervisor`` put the current directory first on sys.path, where a
    function's ``worker.py`` would be found before the runtime's ``worker`` package. That
    package is imported from beside this one, then the entry goes: the worker puts the
    function's code root first itself, as AWS's runtime does."""
    if sys.flags.isolated or getattr(sys.flags, "safe_path", False):
        return  # -I or -P: nothing was put there
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import worker  # noqa: F401

    del sys.path[0]


if __name__ == "__main__":
    _leave_the_current_directory()
    sys.exit(main())
