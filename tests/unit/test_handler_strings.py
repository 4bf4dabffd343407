"""Handler strings split as Lambda splits them, and refused in Lambda's words."""

from __future__ import annotations

import pytest

from worker.handler_loader import InitError, split_handler

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("app.handler", ("app", "handler")),
        ("app:handler", ("app", "handler")),
        ("pkg.sub.mod.fn", ("pkg.sub.mod", "fn")),
        ("pkg/sub/mod.fn", ("pkg.sub.mod", "fn")),
        ("pkg/sub/mod:fn", ("pkg.sub.mod", "fn")),
        ("app.py:handler", ("app", "handler")),
    ],
)
def test_accepted_forms(handler, expected):
    assert split_handler(handler) == expected


@pytest.mark.parametrize("handler", ["", "app", "app.", ".handler", ":handler", "..app.fn", "a..b.fn"])
def test_malformed_handlers_are_refused_in_lambdas_words(handler):
    with pytest.raises(InitError) as refused:
        split_handler(handler)
    assert refused.value.error_type == "Runtime.MalformedHandlerName"
    assert refused.value.message.startswith(f"Bad handler '{handler}': ")
