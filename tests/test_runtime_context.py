"""The context object, marshalling and tracing, as AWS's Python runtime provides them."""

from __future__ import annotations

import json
import time

import pytest
from runtime_harness import handler_files, invoke, running_runtime


@pytest.fixture
def runtime(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("context_and_results"), "app:route") as runtime:
        yield runtime


@pytest.mark.timeout(60)
def test_context_carries_everything_awss_runtime_gives(emulator, runtime):
    client_context = {
        "custom": {"k": "v"},
        "env": {"platform": "ios"},
        "client": {"installation_id": "i-1", "app_title": "App"},
    }
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    invocation = emulator.submit(
        {"do": "describe"},
        timeout=30,
        client_context=json.dumps(client_context),
        cognito_identity=json.dumps(identity),
        tenant_id="tenant-7",
        trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn:live",
    )
    got = invocation.result(30).json()
    assert got["aws_request_id"] == invocation.request_id
    assert got["function_name"] == "function"
    assert got["function_version"] == "$LATEST"
    assert got["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
    assert got["memory_limit_in_mb"] == "3008"  # a str, as on Lambda
    assert got["log_group_name"] == "/aws/lambda/function"
    assert got["log_stream_name"]
    assert got["tenant_id"] == "tenant-7"
    assert got["identity"] == ["id-1", "pool-1"]
    assert got["client_context"] == {
        "custom": {"k": "v"},
        "env": {"platform": "ios"},
        "client": ["i-1", "App"],
    }
    assert got["remaining_type"] == "int"
    first, second = got["remaining"]
    assert 25_000 < first <= 30_000 and second < first
    assert got["trace"] == "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"


@pytest.mark.timeout(60)
def test_context_defaults_without_optional_headers(emulator, runtime):
    got = invoke(emulator, {"do": "describe"}, timeout=30).json()
    assert got["client_context"] is None
    assert got["identity"] == [None, None]
    assert got["tenant_id"] is None


@pytest.mark.timeout(60)
def test_trace_id_is_cleared_when_the_next_event_has_none(emulator, runtime):
    traced = invoke(emulator, {"do": "describe"}, timeout=30, trace_id="Root=1-aaaa;Sampled=0").json()
    untraced = invoke(emulator, {"do": "describe"}, timeout=30).json()
    assert traced["trace"] == "Root=1-aaaa;Sampled=0"
    assert untraced["trace"] is None


@pytest.mark.timeout(10)
def test_remaining_time_is_never_negative():
    """Tried: reading the remaining time of an invocation whose deadline passed a second ago."""
    from worker.context import LambdaContext

    past = int(time.time() * 1000) - 1000
    context = LambdaContext({"request_id": "r", "deadline_ms": past}, environ={})
    assert context.get_remaining_time_in_millis() == 0


@pytest.mark.timeout(60)
def test_client_context_that_is_not_json_is_a_context_unmarshal_error(emulator, runtime):
    """Tried: a Lambda-Runtime-Client-Context header of '{not json'."""
    outcome = emulator.submit({"do": "describe"}, timeout=30, client_context="{not json").result(30)
    body = outcome.json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"].startswith("Unable to parse Client Context JSON: ")
    assert invoke(emulator, {"do": "text"}).json() == "plain"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("action", "content_type", "body"),
    [
        ("decimals", "application/json", b'{"price": 19.990000000000000001, "count": 3}'),
        ("raw_bytes", "application/unknown", b"\x00\x01binary"),
        ("text", "application/json", b'"plain"'),
        ("nothing", "application/json", b"null"),
    ],
)
def test_results_are_marshalled_like_awss_runtime(emulator, runtime, action, content_type, body):
    outcome = invoke(emulator, {"do": action})
    assert outcome.kind == "response"
    assert outcome.body == body
    assert outcome.headers["Content-Type"] == content_type


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [5, 300_000])
def test_non_json_event_reaches_the_handler_as_bytes(emulator, runtime, size):
    """Tried: a small body, and one large enough to be read into a buffer in place."""
    text = ("hello" * size)[:size]
    outcome = emulator.submit(text.encode(), content_type="application/octet-stream", timeout=30).result(30)
    assert outcome.json() == {"type": "bytes", "value": text}


@pytest.mark.timeout(60)
def test_invocation_id_is_echoed_on_response_and_error(emulator, runtime):
    ok = emulator.submit({"do": "text"}, timeout=30)
    ok_outcome = ok.result(30)
    bad = emulator.submit(b"{", timeout=30)
    bad_outcome = bad.result(30)
    assert ok_outcome.headers["Lambda-Runtime-Invocation-Id"] == ok.invocation_id
    assert bad_outcome.headers["Lambda-Runtime-Invocation-Id"] == bad.invocation_id


@pytest.mark.timeout(60)
def test_handler_exception_carries_an_xray_cause(emulator, tmp_path):
    with running_runtime(emulator, tmp_path, handler_files("raise_lookup_error")):
        outcome = invoke(emulator)
    cause = json.loads(outcome.headers["Lambda-Runtime-Function-XRay-Error-Cause"])
    assert cause["exceptions"][0]["type"] == "LookupError"
    assert cause["exceptions"][0]["message"] == "gone"
    assert cause["exceptions"][0]["stack"][0]["label"] == "handler"


@pytest.mark.timeout(90)
def test_a_popular_library_reads_the_context_unchanged(emulator, tmp_path):
    """AWS Lambda Powertools' Logger reads context attributes by name and logs them."""
    pytest.importorskip("aws_lambda_powertools")
    with running_runtime(emulator, tmp_path, handler_files("powertools_logger")) as runtime:
        invocation = emulator.submit({"order": 1}, timeout=30)
        assert invocation.result(30).json() == {"request": invocation.request_id}
        record = runtime.wait_for_json(lambda r: r.get("message") == "processing order", 10)
    assert record is not None, runtime.output()
    assert record["function_request_id"] == invocation.request_id
    assert record["function_name"] == "function"
    assert record["function_memory_size"] in (3008, "3008")
    assert record["function_arn"].startswith("arn:aws:lambda:")
    assert record["service"] == "orders"
