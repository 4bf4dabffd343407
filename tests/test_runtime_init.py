"""Init failures are posted to /runtime/init/error with AWS's errorType, then the runtime exits.

Also: where the handler is configured (HANDLER, _HANDLER, the first argument), and the
package paths Lambda accepts.
"""

from __future__ import annotations

import pytest
from runtime_harness import STARTUP_TIMEOUT, handler_files, invoke, running_runtime


def _init_error(emulator, tmp_path, files, handler):
    with running_runtime(emulator, tmp_path, files, handler, wait_ready=False) as runtime:
        outcome = emulator.wait_init_error(STARTUP_TIMEOUT)
        assert outcome is not None, f"no init error posted:\n{runtime.output()}"
        exit_code = runtime.wait(STARTUP_TIMEOUT)
        assert exit_code != 0, "the runtime must exit non-zero after an init error"
        assert not any(route == "next" for _, _, _, route in emulator.requests), (
            "no /next after a failed init"
        )
        return outcome, runtime


# Where a case's module fails as it is imported, its text is the case: it stays a string here.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        pytest.param(
            {"app.py": "import not_a_module_anywhere\n"},
            "app:handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_a_module_anywhere'",
            id="import-error",
        ),
        pytest.param(
            handler_files("return_ok", "other.py"),
            "app:handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'app'",
            id="missing-module",
        ),
        pytest.param(
            {"app.py": "def handler(event, context)\n    return 1\n"},
            "app:handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app': expected ':' (app.py, line 1)",
            id="syntax-error",
        ),
        pytest.param(
            handler_files("return_ok"),
            "app:nope",
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
            id="missing-function",
        ),
        pytest.param(
            handler_files("return_ok"),
            "nodothere",
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodothere': expected module.function (Lambda's form), module:function "
            "or path/to/file.py:function",
            id="malformed-no-separator",
        ),
        pytest.param(
            handler_files("return_ok"),
            "..app.handler",
            "Runtime.MalformedHandlerName",
            "Bad handler '..app.handler': empty module name segment",
            id="malformed-relative",
        ),
        pytest.param(
            handler_files("return_ok"),
            "sys.handler",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
            id="builtin-module",
        ),
        pytest.param(
            {"app.py": "raise RuntimeError('config missing')\n"},
            "app:handler",
            "RuntimeError",
            "config missing",
            id="exception-at-import",
        ),
        pytest.param(
            {"app.py": "import os\nos._exit(9)\n"},
            "app:handler",
            "Runtime.ExitError",
            "Runtime exited with error: exit status 9",
            id="exit-at-import",
        ),
        pytest.param(
            {"app.py": "import ctypes\nctypes.string_at(0)\n"},
            "app:handler",
            "Runtime.ExitError",
            "Runtime exited with error: signal: segmentation fault",
            id="segfault-at-import",
        ),
    ],
)
def test_init_failure_is_posted_with_awss_error_type(emulator, tmp_path, files, handler, error_type, message):
    outcome, runtime = _init_error(emulator, tmp_path, files, handler)
    body = outcome.json()
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message
    assert outcome.error_type == error_type
    assert any(record.get("message") == "init failed" for record in runtime.json_lines())


@pytest.mark.timeout(60)
def test_exception_at_import_carries_the_user_stack(emulator, tmp_path):
    # The module's text is the case: the stack it raises at import from.
    files = {"app.py": "def load():\n    raise KeyError('DB_URL')\n\nload()\n"}
    outcome, _ = _init_error(emulator, tmp_path, files, "app:handler")
    body = outcome.json()
    assert body["errorType"] == "KeyError"
    assert [line.split(", in ")[1].split("\n")[0] for line in body["stackTrace"]] == ["<module>", "load"]


@pytest.mark.timeout(60)
def test_no_handler_configured_is_a_malformed_name(emulator, tmp_path):
    outcome, _ = _init_error(emulator, tmp_path, handler_files("return_ok"), None)
    assert outcome.json()["errorType"] == "Runtime.MalformedHandlerName"


# --- where the handler comes from -------------------------------------------------------------

PACKAGE_FILES = {
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    **handler_files("report_module_and_path", "pkg/sub/mod.py"),
    **handler_files("return_ok"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("env", "args"),
    [
        pytest.param({"HANDLER": "pkg.sub.mod:handler"}, (), id="HANDLER-colon-dotted"),
        pytest.param({"_HANDLER": "pkg/sub/mod.handler"}, (), id="_HANDLER-slash-path"),
        pytest.param({"HANDLER": "pkg/sub/mod.py:handler"}, (), id="HANDLER-file"),
        pytest.param({"_HANDLER": "pkg.sub.mod.handler"}, (), id="_HANDLER-dotted"),
        pytest.param({"_HANDLER": "pkg.sub.mod:handler"}, (), id="_HANDLER-colon"),
        pytest.param({}, ("pkg.sub.mod.handler",), id="first-argument"),
        pytest.param(
            {"HANDLER": "pkg.sub.mod:handler", "_HANDLER": "app.handler"}, ("app.handler",), id="HANDLER-wins"
        ),
        pytest.param({"_HANDLER": "pkg.sub.mod.handler"}, ("app.handler",), id="_HANDLER-beats-argument"),
    ],
)
def test_handler_configuration_order_and_forms(emulator, tmp_path, env, args):
    with running_runtime(emulator, tmp_path, PACKAGE_FILES, None, env=env, args=args):
        result = invoke(emulator).json()
    assert result == {"where": "pkg.sub.mod", "path0": str(tmp_path)}


@pytest.mark.timeout(60)
def test_a_replacement_worker_imports_the_functions_own_copy_of_the_supervisors_libraries(emulator, tmp_path):
    """A function bundling its own urllib3 and structlog gets them in every worker, not only
    in the first one (which is forked before the supervisor imports its copies)."""
    files = {
        # The function's own copies of the two libraries: their names are the point.
        "urllib3/__init__.py": "__version__ = 'bundled-urllib3'\n",
        "structlog/__init__.py": "__version__ = 'bundled-structlog'\n",
        **handler_files("bundled_library_versions"),
    }
    with running_runtime(emulator, tmp_path, files):
        first = invoke(emulator).json()
        invoke(emulator, {"die": True})
        second = invoke(emulator).json()
    assert first[:2] == second[:2] == ["bundled-urllib3", "bundled-structlog"]
    assert first[2] != second[2]


@pytest.mark.timeout(60)
def test_a_function_importing_the_supervisors_own_urllib3_gets_the_loaded_copy(emulator, tmp_path):
    """Tried: a function whose search path finds the very urllib3 the supervisor runs on (the
    one installed beside the runtime), in the first worker and in a replacement. The first
    is forked before the supervisor loads urllib3 (after its first answer) and imports it
    itself; the replacement finds the supervisor's copy loaded and keeps it (it is not
    imported a second time). Both get it from that file."""
    import urllib3

    with running_runtime(emulator, tmp_path, handler_files("report_shared_urllib3")):
        first = invoke(emulator).json()
        invoke(emulator, {"die": True})
        second = invoke(emulator).json()
    assert first[:2] == [False, urllib3.__file__]
    assert second[:2] == [True, urllib3.__file__]
    assert first[2] != second[2]
