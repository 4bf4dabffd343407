"""Faults a test asks for: the next requests on a route are dropped, refused or delayed.

The runtime's retry and recovery paths only run when the platform misbehaves, which the
real one does rarely and never on demand. A test plans the misbehaviour here, in order
and counted, and the route handlers take one planned fault per request.
"""

from __future__ import annotations

import threading

# The Runtime API routes that take faults.
ROUTES = ("next", "response", "error", "init_error", "extension_register", "restore_next", "restore_error")
# Close the socket unanswered; answer with an HTTP status; wait, then serve as usual.
FAULT_ACTIONS = ("drop", "status", "delay")


class Fault:
    """One planned misbehaviour, for the next ``remaining`` requests on its route."""

    def __init__(self, action: str, status: int, delay: float, count: int) -> None:
        self.action = action
        self.status = status
        self.delay = delay
        self.remaining = count


class FaultPlan:
    """The faults still to come on each route, applied in the order they were planned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {route: [] for route in ROUTES}

    def add(self, route: str, action: str, *, status: int, delay: float, count: int) -> None:
        if route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {route!r}")
        if action not in FAULT_ACTIONS:
            raise ValueError(f"action must be one of {FAULT_ACTIONS}, not {action!r}")
        with self._lock:
            self._faults[route].append(Fault(action, status, delay, count))

    def take(self, route: str) -> Fault | None:
        """The fault for this request on ``route``, counted as used; None when none is planned."""
        with self._lock:
            faults = self._faults.get(route) or []
            while faults and faults[0].remaining <= 0:
                faults.pop(0)
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            return fault
