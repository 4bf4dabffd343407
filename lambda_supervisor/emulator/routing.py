"""Which route a request is for, and what every request goes through before its route runs.

Each request is recorded (tests assert on the exact sequence of calls), checked against
its listener (the route must be one it serves, the ``Host`` a local name of it), given
the fault a test planned for it, and only then handed to the Runtime API's or the Invoke
API's routes. Errors that end a request early take the shape of the API it was meant
for, so a caller's SDK can read them.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from .bodies import BadRequest
from .faults import ROUTES
from .front_routes import FrontRoutes
from .invoke_routes import InvokeRoutes
from .runtime_routes import RuntimeRoutes
from .server import Server
from .wire import Exchange, UnsendableHeader, error_json

if TYPE_CHECKING:
    from .state import RuntimeAPIEmulator

RUNTIME_PREFIX = "/2018-06-01"
EXTENSION_PREFIX = "/2020-01-01/extension"
# Every Runtime API route (ROUTES are those that take faults), and the Invoke API's: Invoke
# and InvokeWithResponseStream.
RUNTIME_ROUTES = frozenset((*ROUTES, "extension_next"))
INVOKE_ROUTES = frozenset(("invoke", "invoke_stream"))

# The paths the Lambda APIs (Invoke, streamed invoke, Runtime, Extensions) own: never the HTTP front's.
_API_PREFIXES = ("/2015-03-31/", "/2021-11-15/", f"{RUNTIME_PREFIX}/", f"{EXTENSION_PREFIX}/")

_INVOCATION_POST = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
_INVOKE_PATH = re.compile(r"^(?:/2015-03-31)?/functions/([^/]+)/invocations$")
_STREAM_INVOKE_PATH = re.compile(r"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")


def decode_path_segment(segment: str) -> str:
    """Percent-decode a path segment as UTF-8.

    The request line arrives decoded as latin-1, so raw (unencoded) UTF-8 bytes are
    recovered too, not only %XX escapes.
    """
    return unquote_to_bytes(segment.encode("latin-1", errors="replace")).decode("utf-8", errors="replace")


class Handler(Exchange):
    """The requests of one connection, each routed to the API it is for."""

    emulator: RuntimeAPIEmulator  # set on the bound subclass
    server: Server

    def setup(self) -> None:
        super().setup()
        self.emulator.connection_opened(self.connection)

    def finish(self) -> None:
        self.emulator.connection_closed(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _route(self) -> tuple[str | None, str | None]:
        """Name the route for ``requests`` and extract the request id when there is one."""
        path = self.path_only()
        if self.command == "GET" and path == f"{RUNTIME_PREFIX}/runtime/invocation/next":
            return "next", None
        if self.command == "POST" and path == f"{RUNTIME_PREFIX}/runtime/init/error":
            return "init_error", None
        if self.command == "GET" and path == f"{RUNTIME_PREFIX}/runtime/restore/next":
            return "restore_next", None
        if self.command == "POST" and path == f"{RUNTIME_PREFIX}/runtime/restore/error":
            return "restore_error", None
        if self.command == "POST" and path == f"{EXTENSION_PREFIX}/register":
            return "extension_register", None
        if self.command == "GET" and path == f"{EXTENSION_PREFIX}/event/next":
            return "extension_next", None
        if self.command == "POST":
            match = _INVOCATION_POST.match(path)
            if match:
                return match.group(2), decode_path_segment(match.group(1))
            match = _INVOKE_PATH.match(path)
            if match:
                return "invoke", decode_path_segment(match.group(1))
            match = _STREAM_INVOKE_PATH.match(path)
            if match:
                return "invoke_stream", decode_path_segment(match.group(1))
        return None, None

    def _dispatch(self) -> None:
        route, argument = self._route()
        if route not in self.server.routes:
            route = None  # the other API's route, on a listener that does not serve it
        self.emulator.record_request(self.command, self.path, route)
        try:
            refusal = self.server.refusal(self.headers)
            if refusal is not None:
                self._refuse(route, 403, "AccessDeniedException", f"Request refused: {refusal}.")
                return
            if route in ROUTES and self._apply_fault(route):
                return
            if route == "next":
                RuntimeRoutes(self).next()
            elif route in ("response", "error"):
                RuntimeRoutes(self).result(route, argument or "")
            elif route == "init_error":
                RuntimeRoutes(self).init_error()
            elif route == "restore_next":
                RuntimeRoutes(self).restore_next()
            elif route == "restore_error":
                RuntimeRoutes(self).restore_error()
            elif route in INVOKE_ROUTES:
                streaming = route == "invoke_stream"
                InvokeRoutes(self).handle(argument or self.emulator.function_name, streaming=streaming)
            elif route == "extension_register":
                RuntimeRoutes(self).extension_register()
            elif route == "extension_next":
                RuntimeRoutes(self).extension_next()
            elif self._for_http_front(route):
                assert self.emulator.http_front is not None
                FrontRoutes(self, self.emulator.http_front).handle()
            else:
                if self.command in ("POST", "PUT", "PATCH"):
                    self.discard_body()
                message = f"No route for {self.command} {self.path_only()}"
                if self._speaks_invoke(route):
                    InvokeRoutes(self).answer_error(404, "UnknownOperationException", message)
                else:
                    self.respond_json(404, error_json("NotFound", message))
        except BadRequest as exc:
            self._refuse(route, 400, "InvalidRequestContentException", f"Malformed request: {exc}.")
        except UnsendableHeader as exc:
            # The runtime posted a header that cannot be passed on (an obs-folded one).
            self._refuse(route, 502, "InvalidRuntimeResponseException", f"The answer cannot be sent: {exc}.")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch  # noqa: N815

    def _dispatch_to_http_front(self) -> None:
        """Methods only a web app answers (a browser's HEAD and OPTIONS): 501 without one."""
        if self._for_http_front(None):
            self._dispatch()
        else:
            self.send_error(501, f"Unsupported method ({self.command!r})")

    do_HEAD = do_OPTIONS = _dispatch_to_http_front  # noqa: N815

    def _for_http_front(self, route: str | None) -> bool:
        """Whether this request goes to the HTTP front (``serve --http``): any request to
        the Invoke API's listener that is for no route and under no API's own prefix."""
        if route is not None or self.emulator.http_front is None or "invoke" not in self.server.routes:
            return False
        return not self.path_only().startswith(_API_PREFIXES)

    def _apply_fault(self, route: str) -> bool:
        """Run an injected fault for ``route``; True when the request is fully handled."""
        fault = self.emulator.take_fault(route)
        if fault is None:
            return False
        if fault.action == "drop":
            self.drop()
            return True
        if fault.action == "status":
            if self.command == "POST":
                self.discard_body()
            self.respond_json(fault.status, error_json("InjectedFault", f"injected HTTP {fault.status}"))
            return True
        time.sleep(fault.delay)
        return False

    def _refuse(self, route: str | None, status: int, error_type: str, message: str) -> None:
        """Answer ``status`` in the shape of the API asked (or the listener's), then close.

        The request's body is not read, so the connection cannot carry another request.
        """
        self.close_connection = True
        try:
            if self._speaks_invoke(route):
                InvokeRoutes(self).answer_error(status, error_type, message)
            else:
                self.respond_json(status, error_json(error_type, message))
        except OSError:
            return
        self.linger()

    def _speaks_invoke(self, route: str | None) -> bool:
        """Whether an error about this request takes the Invoke API's shape."""
        return route in INVOKE_ROUTES or (route is None and "invoke" in self.server.routes)
