"""``serve --http``: the function answers plain HTTP, as behind API Gateway or a function URL.

Each test runs a real ``lambda-supervisor serve --http`` subprocess and talks to it as a
browser would, with ``requests`` (a session keeps cookies, follows redirects) or raw
sockets for what a browser sends on its own. The app is FastAPI behind Mangum
(tests/handlers/web_app.py) or plain handlers answering in API Gateway's shape.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from http_support import INVOKE_PATH, exchange, post
from local_support import REPO_ROOT, ServeProcess
from proc_support import wait_until
from runtime_harness import copy_handler

TIMEOUT = 20


@pytest.fixture(scope="module")
def app_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_handler(tmp_path_factory.mktemp("web"), "web_app", "web_app.py")


@pytest.fixture(scope="module")
def fastapi_server(app_file: Path) -> Iterator[ServeProcess]:
    with ServeProcess(f"{app_file}:handler", "--http", "--timeout", "30") as server:
        yield server


def serve(app_file: Path, function: str) -> ServeProcess:
    return ServeProcess(f"{app_file}:{function}", "--http", "--timeout", "30")


@pytest.mark.timeout(60)
def test_fastapi_routes_answer_a_browser_like_client(fastapi_server: ServeProcess) -> None:
    """Tried: FastAPI behind Mangum through serve --http, with requests as the browser:
    a path parameter and a query string with a repeated key, a JSON body, cookies set by
    one response and sent back on the next request, a redirect (followed, and not), and
    a 404 of the app's own. Each answer is the app's, status, headers and body."""
    base = fastapi_server.endpoint
    with requests.Session() as browser:
        answer = browser.get(f"{base}/items/42?q=hello%20world&tag=a&tag=b", timeout=TIMEOUT)
        assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
        assert answer.json() == {"item_id": 42, "q": "hello world", "tags": ["a", "b"]}

        answer = browser.post(f"{base}/orders", json={"item": "tea", "quantity": 3}, timeout=TIMEOUT)
        assert (answer.status_code, answer.json()) == (
            201,
            {"item": "tea", "quantity": 3, "total_cents": 750},
        )

        assert browser.get(f"{base}/me", timeout=TIMEOUT).json() == {"session": None, "theme": None}
        answer = browser.post(f"{base}/login?user=ana", timeout=TIMEOUT)
        assert answer.json() == {"logged_in": "ana"}
        set_cookies = answer.raw.headers.getlist("Set-Cookie")
        assert len(set_cookies) == 2, set_cookies
        assert set_cookies[0].startswith("session=token-ana;") and "HttpOnly" in set_cookies[0]
        assert set_cookies[1].startswith("theme=dark;")
        assert browser.get(f"{base}/me", timeout=TIMEOUT).json() == {"session": "token-ana", "theme": "dark"}

        answer = browser.get(f"{base}/old-items", allow_redirects=False, timeout=TIMEOUT)
        assert (answer.status_code, answer.headers["location"]) == (307, "/items/7?q=moved")
        answer = browser.get(f"{base}/old-items", timeout=TIMEOUT)
        assert [r.status_code for r in answer.history] == [307]
        assert answer.json() == {"item_id": 7, "q": "moved", "tags": []}

        answer = browser.get(f"{base}/no/such/page", timeout=TIMEOUT)
        assert (answer.status_code, answer.json()) == (404, {"detail": "Not Found"})


@pytest.mark.timeout(60)
def test_binary_bodies_travel_both_ways_intact(fastapi_server: ServeProcess, app_file: Path) -> None:
    """Tried: an image/png the app returns as bytes, and an upload of every byte value
    (not UTF-8) as application/octet-stream. The PNG arrives byte for byte with its type;
    the app reads exactly the bytes sent (base64 in the event, decoded by Mangum)."""
    base = fastapi_server.endpoint
    answer = requests.get(f"{base}/pixel.png", timeout=TIMEOUT)
    assert (answer.status_code, answer.headers["content-type"]) == (200, "image/png")
    pixel = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201ffa1b2e8c40000000049454e44ae426082"
    )
    assert answer.content == pixel
    upload = bytes(range(256)) * 40
    answer = requests.post(
        f"{base}/upload",
        data=upload,
        headers={"Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert answer.json() == {"size": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}


@pytest.mark.timeout(60)
def test_the_invoke_api_and_its_protections_stay_under_http(fastapi_server: ServeProcess) -> None:
    """Tried, with --http on: an Invoke API call (still the Invoke API), the Runtime API's
    path and unknown paths under the Invoke APIs' prefixes (still 404, never the app), and
    a web page's requests
    to the app: another site's Host (DNS rebinding), a cross-origin Origin, Sec-Fetch-Site
    cross-site. Each of those is a 403 and runs nothing; a same-origin one is served."""
    port = fastapi_server.port
    event = {
        "version": "2.0",
        "rawPath": "/items/3",
        "rawQueryString": "",
        "headers": {"host": "example.com"},
        "requestContext": {"http": {"method": "GET", "path": "/items/3", "sourceIp": "127.0.0.1"}},
    }
    status, headers, body = post(fastapi_server.host, port, INVOKE_PATH, json.dumps(event).encode())
    assert (status, headers.get("x-amz-function-error")) == (200, None), body
    result = json.loads(body)  # the function's result itself, not turned into an HTTP response
    assert (result["statusCode"], json.loads(result["body"])) == (200, {"item_id": 3, "q": None, "tags": []})
    for method, path in [
        ("GET", "/2018-06-01/runtime/invocation/next"),
        ("POST", "/2021-11-15/functions/function/no-such-operation"),
        ("GET", "/2015-03-31/functions/function/invocations"),
    ]:
        request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
        status, headers, body = exchange(f"127.0.0.1:{port}", request.encode())
        assert status == 404, (method, path, body)
        assert headers.get("x-amzn-errortype") == "UnknownOperationException", (method, path)
    refused = [
        f"Host: evil.example:{port}",
        f"Host: 127.0.0.1:{port}\r\nOrigin: http://evil.example",
        f"Host: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site",
    ]
    for extra in refused:
        request = f"GET /items/1 HTTP/1.1\r\n{extra}\r\n\r\n"
        status, headers, body = exchange(f"127.0.0.1:{port}", request.encode())
        assert (status, headers.get("x-amzn-errortype")) == (403, "AccessDeniedException"), extra
    request = (
        f"GET /items/5 HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: http://localhost:{port}\r\n"
        "Sec-Fetch-Site: same-origin\r\nConnection: close\r\n\r\n"
    )
    status, _, body = exchange(f"127.0.0.1:{port}", request.encode())
    assert (status, json.loads(body)) == (200, {"item_id": 5, "q": None, "tags": []})


@pytest.mark.timeout(60)
def test_plain_handlers_answer_as_api_gateway_reads_them(app_file: Path) -> None:
    """Tried: a handler returning statusCode, headers, multiValueHeaders and body (with
    GET and HEAD); one returning a plain dict, one a plain string, and one raising. The
    first gives its own status and every header line; the plain values are 200
    application/json (the dict as JSON, the string as it is); the error is API Gateway's
    502 {"message": "Internal Server Error"}."""
    with serve(app_file, "teapot") as server:
        answer = requests.get(f"{server.endpoint}/pot?x=1", timeout=TIMEOUT)
        assert (answer.status_code, answer.text) == (418, "short and stout: GET")
        assert answer.headers["content-type"] == "text/plain"
        assert answer.headers["x-path"] == "/pot"
        assert answer.raw.headers.getlist("X-Tried") == ["tea", "coffee"]
        answer = requests.head(f"{server.endpoint}/pot", timeout=TIMEOUT)
        assert (answer.status_code, answer.content) == (418, b"")
        assert answer.headers["content-length"] == str(len("short and stout: HEAD"))
    with serve(app_file, "plain_dict") as server:
        answer = requests.post(f"{server.endpoint}/a/b?k=v&k=w", data="some text", timeout=TIMEOUT)
        assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
        assert answer.json() == {"path": "/a/b", "query": {"k": "v,w"}, "body": "some text"}
    with serve(app_file, "plain_string") as server:
        answer = requests.get(server.endpoint, timeout=TIMEOUT)
        assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
        assert answer.text == "just a string"
    with serve(app_file, "fail") as server:
        answer = requests.get(f"{server.endpoint}/anything", timeout=TIMEOUT)
        assert (answer.status_code, answer.json()) == (502, {"message": "Internal Server Error"})
        returncode, stderr = server.stop()
    assert returncode == 0
    assert "the handler failed" in stderr  # the function's own error is in the logs


@pytest.mark.timeout(60)
def test_the_readme_example_answers_urllib_and_reloads_on_save(tmp_path: Path) -> None:
    """Tried: the README's examples/web.py (copied) under serve --http --watch, called
    with urllib as curl would (a query, then the cookie it set sent back), then the file
    saved with a new greeting. The page, its cookie and, after the save, the new text."""
    app = tmp_path / "web.py"
    app.write_text((REPO_ROOT / "examples" / "web.py").read_text())
    with ServeProcess(f"{app}:handler", "--http", "--watch") as server:
        with urllib.request.urlopen(f"{server.endpoint}/greet?name=curl", timeout=TIMEOUT) as answer:
            assert (answer.status, answer.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
            assert answer.headers.get_all("Set-Cookie") == ["visits=1; Path=/"]
            assert answer.read() == b"<h1>Hello, curl!</h1>\n<p>GET /greet, visit 1</p>\n"
        again = urllib.request.Request(f"{server.endpoint}/", headers={"Cookie": "visits=1"})
        with urllib.request.urlopen(again, timeout=TIMEOUT) as answer:
            assert answer.read() == b"<h1>Hello, world!</h1>\n<p>GET /, visit 2</p>\n"
        app.write_text(app.read_text().replace("<h1>Hello, ", "<h1>Welcome back, "))
        assert wait_until(lambda: "web.py changed: restarting the runtime" in server.stderr(), 10)
        with urllib.request.urlopen(f"{server.endpoint}/", timeout=TIMEOUT) as answer:
            assert answer.read() == b"<h1>Welcome back, world!</h1>\n<p>GET /, visit 1</p>\n"
