"""``serve`` and local runs as a network service: only the runtime and local clients get in.

Each test attacks a real ``lambda-supervisor serve`` (or ``invoke``) subprocess over real
sockets, or a real runtime through the emulator: a process that is not the runtime trying
the Runtime API, a web page's requests (foreign Host, cross-origin), malformed framing,
values that would split the runtime's header lines, and the developer's secrets in the
environment of a local run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_harness import invoke, running_runtime
from test_local_cli import INVOKE_PATH, REPO_ROOT, ServeProcess, post

from lambda_supervisor.emulator import MAX_HAND_OUTS, UNDELIVERABLE, RuntimeAPIEmulator
from lambda_supervisor.testing import lambda_invoke

APP_SOURCE = """
import os


def echo(event, context):
    return {
        "event": event,
        "arn": context.invoked_function_arn,
        "remainingMs": context.get_remaining_time_in_millis(),
        "traceId": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def environment(event, context):
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    names = event.get("names", [])
    return {
        "seen": {name: os.environ.get(name) for name in names},
        "accessKey": credentials.access_key if credentials else None,
        "hasPath": bool(os.environ.get("PATH")),
    }
"""

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIADEVELOPERSOWNKEY",
    "AWS_SECRET_ACCESS_KEY": "developers-own-secret",
    "AWS_SESSION_TOKEN": "developers-own-session",
    "GITHUB_TOKEN": "ghp_developers_own_token",
}


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    path = tmp_path / "app.py"
    path.write_text(APP_SOURCE)
    return path


@pytest.fixture
def serve_echo(app_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(f"{app_path}:echo", "--timeout", "30")
    try:
        yield server
    finally:
        if server.popen.poll() is None:
            server.stop()


def exchange(
    port: int, request: bytes, *, half_close: bool = False
) -> tuple[int | None, dict[str, str], bytes]:
    """Send raw bytes to 127.0.0.1:port and read until the server closes: status, headers, body.

    The status is None when the server closed without answering.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, sep, rest = received.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                if len(rest) >= length:
                    break
    if not received:
        return None, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def invoke_request(port: int, body: bytes, extra: str = "", path: str = INVOKE_PATH) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
    if "content-length" not in extra.lower() and "transfer-encoding" not in extra.lower():
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def assert_served_normally(server: ServeProcess) -> None:
    status, _, body = post(server.host, server.port, INVOKE_PATH, b'{"still": "serving"}')
    assert status == 200
    assert json.loads(body)["event"] == {"still": "serving"}, body


def started_invocations(server: ServeProcess) -> int:
    """How many events reached the handler (one START line each), once serve has stopped."""
    returncode, stderr = server.stop()
    assert returncode == 0
    assert "Traceback" not in stderr, stderr
    return stderr.count("START RequestId:")


def runtime_of(server: ServeProcess) -> tuple[int, dict[str, str]]:
    """The runtime process ``serve`` started (its child) and that process's environment."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[1] != str(server.popen.pid):
                    continue
                raw = (entry / "environ").read_bytes()
            except (OSError, IndexError):
                continue
            env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
            if "AWS_LAMBDA_RUNTIME_API" in env:
                return int(entry.name), env
        time.sleep(0.05)
    pytest.fail("serve started no runtime process")


# ----------------------------------------------------------------------------- Runtime API


@pytest.mark.timeout(60)
def test_the_invoke_port_serves_no_runtime_api_route(serve_echo: ServeProcess) -> None:
    """Tried: the Runtime API's calls (take the next event, answer one, report an init
    error, register an extension) on the port callers use. Each is 404, nothing waits."""
    conn = http.client.HTTPConnection(serve_echo.host, serve_echo.port, timeout=10)
    try:
        calls = [
            ("GET", "/2018-06-01/runtime/invocation/next", None),
            ("POST", "/2018-06-01/runtime/invocation/some-id/response", b'"forged"'),
            ("POST", "/2018-06-01/runtime/invocation/some-id/error", b"{}"),
            ("POST", "/2018-06-01/runtime/init/error", b"{}"),
            ("POST", "/2020-01-01/extension/register", b"{}"),
        ]
        for method, path, body in calls:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert (response.status, response.getheader("X-Amzn-Errortype")) == (
                404,
                "UnknownOperationException",
            ), (method, path)
            assert answer == {"Type": "User", "message": f"No route for {method} {path}"}
    finally:
        conn.close()
    assert_served_normally(serve_echo)


@pytest.mark.timeout(60)
def test_the_runtime_api_is_private_to_the_runtime_serve_started(app_path: Path) -> None:
    """Tried: ``serve --host 0.0.0.0``, then another local process that read the runtime's
    AWS_LAMBDA_RUNTIME_API and asks it for the next event while a caller waits. The API
    is on loopback at a port of its own; the stranger is cut off unanswered, the caller
    gets the function's result."""
    server = ServeProcess(f"{app_path}:echo", "--timeout", "30", "--host", "0.0.0.0")
    try:
        _, env = runtime_of(server)
        host, _, port = env["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) != server.port
        stranger = http.client.HTTPConnection(host, int(port), timeout=10)
        with pytest.raises(ConnectionError):  # reset, or closed before any answer
            stranger.request("GET", "/2018-06-01/runtime/invocation/next")
            stranger.getresponse()
        stranger.close()
        status, _, body = post("127.0.0.1", server.port, INVOKE_PATH, b'{"n": 1}')
        assert (status, json.loads(body)["event"]) == (200, {"n": 1})
    finally:
        assert started_invocations(server) == 1


# ----------------------------------------------------------------------------- browsers


@pytest.mark.timeout(60)
def test_requests_a_web_page_could_make_are_refused(serve_echo: ServeProcess) -> None:
    """Tried: what a browser sends when a web page drives serve: another site's name as
    Host (DNS rebinding), the right address with another port, a cross-origin Origin
    (another site, a sandboxed page's "null", another local port), Sec-Fetch-Site
    cross-site. Each is a 403 in the Invoke API's shape and runs nothing; local names
    and a same-origin Origin are served."""
    port = serve_echo.port
    refused = [
        f"Host: evil.example:{port}",
        f"Host: evil.example:{port}\r\nOrigin: http://evil.example:{port}",
        "Host: 127.0.0.1:1",
        f"Host: 127.0.0.1:{port}\r\nOrigin: http://evil.example",
        f"Host: 127.0.0.1:{port}\r\nOrigin: null",
        f"Host: 127.0.0.1:{port}\r\nOrigin: http://localhost:{port + 1}",
        f"Host: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site",
        f"Host: 127.0.0.1:{port}\r\nHost: evil.example:{port}",
    ]
    for headers in refused:
        request = f"POST {INVOKE_PATH} HTTP/1.1\r\n{headers}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        status, answer_headers, body = exchange(port, request)
        assert (status, answer_headers.get("x-amzn-errortype")) == (403, "AccessDeniedException"), headers
        assert json.loads(body)["message"].startswith("Request refused: "), headers
    served = [
        f"Host: localhost:{port}",
        f"Host: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin",
    ]
    for headers in served:
        request = (
            f"POST {INVOKE_PATH} HTTP/1.1\r\n{headers}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        status, _, body = exchange(port, request.encode())
        assert (status, json.loads(body)["event"]) == (200, {}), headers
    assert started_invocations(serve_echo) == len(served)


# ----------------------------------------------------------------------------- framing


@pytest.mark.timeout(90)
def test_malformed_framing_is_a_400_and_queues_nothing(serve_echo: ServeProcess) -> None:
    """Tried: Content-Length 'abc', a negative Content-Length with a 7 MB body (it read to
    the end of the stream, past the 6 MB limit, and queued the event), two different
    lengths, a chunk size 'zz', a chunk without its CRLF, Transfer-Encoding and
    Content-Length together, an unknown Transfer-Encoding, and a valid body nested
    100,000 deep. Each gets a 400 with an Invoke API error, no traceback, and runs
    nothing; serve answers the next caller."""
    port = serve_echo.port
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = {
        "content-length-abc": (invoke_request(port, b"{}", "Content-Length: abc\r\n"), False),
        "negative-length": (
            invoke_request(port, b"[" + b"0," * 3_500_000 + b"0]", "Content-Length: -1\r\n"),
            True,
        ),
        "two-lengths": (invoke_request(port, b"{}", "Content-Length: 2\r\nContent-Length: 3\r\n"), False),
        "chunk-size-zz": (
            invoke_request(port, b"zz\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
            False,
        ),
        "chunk-without-crlf": (
            invoke_request(port, b"2\r\n{}XX0\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
            False,
        ),
        "both-framings": (
            invoke_request(
                port, b"2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 14\r\n"
            ),
            False,
        ),
        "unknown-encoding": (invoke_request(port, b"{}", "Transfer-Encoding: gzip, chunked\r\n"), False),
        "nested-100000-deep": (invoke_request(port, deep), False),
    }
    for name, (request, half_close) in cases.items():
        status, headers, body = exchange(port, request, half_close=half_close)
        assert (status, headers.get("x-amzn-errortype")) == (400, "InvalidRequestContentException"), name
        assert "message" in json.loads(body), name
    assert_served_normally(serve_echo)
    assert started_invocations(serve_echo) == 1


@pytest.mark.timeout(60)
def test_an_event_the_runtime_never_receives_is_answered_not_requeued_for_ever(emulator) -> None:
    """Tried: a taker that asks for the next event and drops the connection while the event
    is being written, again and again (as a runtime does that refuses an event's size). The
    event used to go back first in line each time, so no one was ever served again; now it
    is answered with an error after MAX_HAND_OUTS tries, and the next event is handed out."""
    too_big = emulator.submit(b'"' + b"x" * (16 << 20) + b'"', timeout=30)
    host, port = emulator.address.split(":")
    for _ in range(MAX_HAND_OUTS):
        with socket.create_connection((host, int(port)), timeout=10) as taker:
            taker.sendall(
                f"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
            )
            assert taker.recv(1024).startswith(b"HTTP/1.1 200")
            taker.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not FIN
    outcome = too_big.result(20)
    assert (outcome.kind, outcome.error_type, outcome.status) == ("error", UNDELIVERABLE, 0)
    assert too_big.hand_outs == MAX_HAND_OUTS
    after = emulator.submit({"n": 1}, timeout=30)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = conn.getresponse()
    assert (answer.status, answer.getheader("Lambda-Runtime-Aws-Request-Id")) == (200, after.request_id)
    conn.close()


@pytest.mark.timeout(60)
def test_an_event_over_what_the_runtime_reads_is_answered_once_by_the_runtime(emulator, tmp_path) -> None:
    """Tried: an event over the 64 MB the runtime reads. The runtime knows its request id
    from the answer's head, so it answers it itself, once, and serves the next event."""
    with running_runtime(emulator, tmp_path, {"app.py": "def handler(event, context):\n    return 'ok'\n"}):
        too_big = emulator.submit(b'"' + b"x" * (65 << 20) + b'"', timeout=30)
        outcome = too_big.result(20)
        assert (outcome.kind, outcome.error_type, outcome.status) == ("error", "Runtime.IncompleteEvent", 202)
        assert too_big.hand_outs == 1
        assert invoke(emulator).json() == "ok"
        assert len(emulator.outcomes(too_big.request_id)) == 1


# ----------------------------------------------------------------------------- header lines


@pytest.mark.timeout(60)
def test_values_that_would_split_the_runtimes_header_lines_are_refused(serve_echo: ServeProcess) -> None:
    """Tried: a function name holding %0D%0A in the path, an obs-folded X-Amzn-Trace-Id
    (its value keeps the CRLF), and a client context whose JSON holds a CRLF. Each
    value would have been written into a header line of the runtime's /next answer,
    ending it and starting a forged one; each is a 400 and runs nothing."""
    port = serve_echo.port
    context = base64.b64encode(b'{"custom":\r\n{"a": 1}}').decode()  # valid JSON: CRLF is whitespace
    cases = {
        "function-name": invoke_request(
            port, b"{}", path="/2015-03-31/functions/fn%0D%0ALambda-Runtime-Deadline-Ms:%201/invocations"
        ),
        "folded-trace-id": invoke_request(
            port, b"{}", "X-Amzn-Trace-Id: Root=1\r\n Lambda-Runtime-Deadline-Ms: 1\r\n"
        ),
        "client-context": invoke_request(port, b"{}", f"X-Amz-Client-Context: {context}\r\n"),
    }
    for name, request in cases.items():
        status, headers, body = exchange(port, request)
        assert (status, headers.get("x-amzn-errortype")) == (400, "InvalidRequestContentException"), name
        assert "line break" in json.loads(body)["message"], name
    assert_served_normally(serve_echo)
    assert started_invocations(serve_echo) == 1


# ----------------------------------------------------------------------------- environment


def run_invoke(app_path: Path, tmp_path: Path, *options: str) -> dict:
    """``lambda-supervisor invoke`` from a shell holding the developer's secrets."""
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text("[default]\naws_access_key_id = AKIAFROMTHEFILE\naws_secret_access_key = s\n")
    env = {**os.environ, **SECRETS, "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file)}
    event = json.dumps({"names": [*SECRETS, "AWS_SHARED_CREDENTIALS_FILE", "GREETING"]})
    done = subprocess.run(
        [sys.executable, "-m", "lambda_supervisor.cli", "invoke", f"{app_path}:environment", "--event", event]
        + list(options),
        capture_output=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.timeout(60)
def test_a_local_run_keeps_the_developers_secrets_from_the_handler(app_path: Path, tmp_path: Path) -> None:
    """Tried: ``invoke`` from a shell with AWS keys, a session token, a GitHub token and a
    credentials file. The handler sees none of them, and botocore finds no credentials
    (not even in ~/.aws); it has PATH and what --env sets."""
    result = run_invoke(app_path, tmp_path, "--env", "GREETING=hi")
    assert result["seen"] == {
        **{name: None for name in SECRETS},
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "GREETING": "hi",
    }
    assert result["accessKey"] is None
    assert result["hasPath"] is True


@pytest.mark.timeout(60)
def test_credentials_and_other_variables_pass_only_when_asked(app_path: Path, tmp_path: Path) -> None:
    """Tried: ``--pass-aws-credentials`` and ``--inherit-env GITHUB_TOKEN``: exactly those
    reach the handler, and botocore uses the developer's credentials."""
    result = run_invoke(app_path, tmp_path, "--pass-aws-credentials", "--inherit-env", "GITHUB_TOKEN")
    assert result["seen"] == {
        **SECRETS,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "GREETING": None,
    }
    assert result["accessKey"] == SECRETS["AWS_ACCESS_KEY_ID"]
    only_the_file = run_invoke(app_path, tmp_path, "--inherit-env", "AWS_SHARED_CREDENTIALS_FILE")
    assert only_the_file["accessKey"] == "AKIAFROMTHEFILE"
    assert only_the_file["seen"]["AWS_SECRET_ACCESS_KEY"] is None


@pytest.mark.timeout(60)
def test_lambda_invoke_passes_only_its_env_argument(app_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tried: the pytest helper in a test process holding AWS keys and a token: the handler
    gets the variables ``env=`` names and none of the process's secrets."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    event = {"names": [*SECRETS, "STAGE"]}
    result = lambda_invoke(f"{app_path}:environment", event, env={"STAGE": "test"})
    assert result["seen"] == {**{name: None for name in SECRETS}, "STAGE": "test"}
    assert result["accessKey"] is None


@pytest.mark.timeout(10)
def test_the_emulator_refuses_to_queue_a_header_it_could_not_send() -> None:
    """Tried: the test API with a trace id holding CRLF: refused before it is queued."""
    with RuntimeAPIEmulator() as emulator:
        with pytest.raises(ValueError, match="line break"):
            emulator.submit({}, trace_id="Root=1\r\nLambda-Runtime-Deadline-Ms: 1")
        assert emulator.all_invocations() == []
