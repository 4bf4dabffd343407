"""``serve --http``: the function answers plain HTTP, as behind API Gateway or a function URL.

Each test runs a real ``lambda-supervisor serve --http`` subprocess and talks to it as a
browser would, with ``requests`` (a session keeps cookies, follows redirects) or raw
sockets for what a browser sends on its own. The app is FastAPI behind Mangum
(tests/handlers/web_app.py) or plain handlers answering in API Gateway's shape; streaming
ones (tests/handlers/stream_http.py) are read from a raw socket as their chunks come in.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

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


# How soon after the handler yields a chunk the HTTP client must have it.
CHUNK_LATENESS = 0.15


class StreamedAnswer(NamedTuple):
    """A chunked response as a raw socket read it: each chunk with its ``time.time()`` of
    arrival; ``complete`` when the last chunk came (False: the server closed first)."""

    status: int
    headers: list[tuple[str, str]]
    head_at: float
    chunks: list[tuple[bytes, float]]
    complete: bool

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def body(self) -> bytes:
        return b"".join(data for data, _ in self.chunks)


def get_streamed(port: int, path: str) -> StreamedAnswer:
    """GET ``path`` on a connection of its own and read the chunked answer as it arrives
    (one with a Content-Length, as one chunk)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        head_at = time.time()
        lengths = [int(value) for name, value in headers if name.lower() == "content-length"]
        if lengths:
            return StreamedAnswer(status, headers, head_at, [(reader.read(lengths[0]), time.time())], True)
        chunks: list[tuple[bytes, float]] = []
        while size_line := reader.readline():
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                assert reader.readline() == b"\r\n"
                return StreamedAnswer(status, headers, head_at, chunks, True)
            data = reader.read(size)
            chunks.append((data, time.time()))
            assert reader.read(2) == b"\r\n"
        return StreamedAnswer(status, headers, head_at, chunks, False)


def lines_on_arrival(answer: StreamedAnswer) -> list[tuple[dict, float]]:
    """Each JSON line of a streamed body (an SSE ``data:`` line too) and when its chunk arrived."""
    return [
        (json.loads(line.removeprefix(b"data: ")), arrived)
        for data, arrived in answer.chunks
        for line in data.splitlines()
        if line.strip()
    ]


@pytest.fixture(scope="module")
def streaming_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    handler = copy_handler(tmp_path_factory.mktemp("stream"), "stream_http", "stream_http.py")
    with ServeProcess(f"{handler}:handler", "--http", "--timeout", "30") as server:
        yield server


@pytest.mark.timeout(60)
def test_a_streamed_http_response_reaches_the_client_as_it_is_yielded(streaming_server: ServeProcess) -> None:
    """Tried: a generator yielding a function URL prelude (201, headers, 2 cookies), then 3
    lines 300 ms apart, each holding the time it was yielded, read from a raw socket. The
    status and headers (chunked, one Set-Cookie line per cookie) arrive before the first
    line is even yielded, and each line within 150 ms of its yield."""
    answer = get_streamed(streaming_server.port, "/page")
    assert (answer.status, answer.complete) == (201, True)
    assert answer.header("Content-Type") == ["text/plain"]
    assert answer.header("X-Streamed") == ["yes"]
    assert answer.header("Set-Cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark"]
    assert answer.header("Transfer-Encoding") == ["chunked"]
    assert answer.header("Content-Length") == []
    lines = lines_on_arrival(answer)
    assert [line["index"] for line, _ in lines] == [0, 1, 2], answer.body
    assert answer.head_at < lines[0][0]["yielded_at"]
    for line, arrived in lines:
        assert 0 <= arrived - line["yielded_at"] < CHUNK_LATENESS, (line, arrived)


@pytest.mark.timeout(60)
def test_a_server_sent_events_stream_passes_through_chunk_by_chunk(streaming_server: ServeProcess) -> None:
    """Tried: a generator with no HTTP metadata, its type set to text/event-stream through
    the context, yielding 3 events 300 ms apart. A 200 of that type, each event within
    150 ms of its yield, the body exactly the events."""
    answer = get_streamed(streaming_server.port, "/events")
    assert (answer.status, answer.complete) == (200, True)
    assert answer.header("Content-Type") == ["text/event-stream"]
    lines = lines_on_arrival(answer)
    assert [line["index"] for line, _ in lines] == [0, 1, 2], answer.body
    for line, arrived in lines:
        assert 0 <= arrived - line["yielded_at"] < CHUNK_LATENESS, (line, arrived)
    assert answer.body.count(b"\n\n") == 3 and answer.body.startswith(b"data: {")


@pytest.mark.timeout(60)
def test_an_error_mid_stream_cuts_the_body_and_the_server_goes_on(streaming_server: ServeProcess) -> None:
    """Tried: a stream that raises after its prelude and one chunk, then one that raises
    before yielding anything, one whose prelude has no valid statusCode, then the streamed
    page again. The first answer is its 200 head and the chunk, then the connection closes
    with no last chunk (a truncated body), logged; the next two are API Gateway's 502; the
    page after them is served in full."""
    answer = get_streamed(streaming_server.port, "/fail_midway")
    assert (answer.status, answer.header("Content-Type")) == (200, ["text/plain"])
    assert (answer.body, answer.complete) == (b"first\n", False)
    assert wait_until(lambda: "the HTTP response is cut short" in streaming_server.stderr(), 10)
    for path in ["/fail_before_streaming", "/bad_prelude"]:
        status, _, body = exchange(
            f"127.0.0.1:{streaming_server.port}",
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{streaming_server.port}\r\n\r\n".encode(),
        )
        assert (status, json.loads(body)) == (502, {"message": "Internal Server Error"}), path
    answer = get_streamed(streaming_server.port, "/page")
    assert (answer.status, answer.complete) == (201, True)
    assert [line["index"] for line, _ in lines_on_arrival(answer)] == [0, 1, 2]


@pytest.mark.timeout(60)
def test_head_and_http_1_0_clients_get_a_streamed_response_they_can_read(
    streaming_server: ServeProcess,
) -> None:
    """Tried: HEAD of the streamed page, then a GET on the same connection; and a GET in
    HTTP/1.0, which has no chunked encoding. HEAD gets the 201 head and no body, and the
    connection serves the next request; HTTP/1.0 gets the body as it is, ended by the close."""
    port = streaming_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(f"HEAD /page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 ")
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]
    assert rest.count(b"data: {") == 3 and rest.endswith(b"\r\n0\r\n\r\n")
    request = f"GET /page HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    status, headers, body = exchange(f"127.0.0.1:{port}", request)
    assert (status, headers.get("transfer-encoding"), headers.get("connection")) == (201, None, "close")
    assert [json.loads(line)["index"] for line in body.splitlines()] == [0, 1, 2]
