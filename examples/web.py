"""A handler for HTTP: what API Gateway or a function URL calls, here behind ``serve --http``.

Try it locally, and edit this file while it runs (``--watch`` restarts the runtime):

    lambda-supervisor serve examples/web.py:handler --http --watch --port 9000
    curl -i 'http://127.0.0.1:9000/greet?name=curl'
"""

from __future__ import annotations

import html
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    cookies = dict(cookie.partition("=")[::2] for cookie in event.get("cookies", []))
    visits = int(cookies["visits"]) + 1 if cookies.get("visits", "").isdigit() else 1
    page = f"<h1>Hello, {html.escape(name)}!</h1>\n<p>{method} {html.escape(path)}, visit {visits}</p>\n"
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/html; charset=utf-8"},
        "cookies": [f"visits={visits}; Path=/"],
        "body": page,
    }
