"""What the local server takes and refuses on the wire, as the replaced saver's users and apps built on the session
API meet it: times keep their microseconds and their order, impossible times are refused on every path (so nothing
stored can break a later read), ``null`` means absent, and every rejection, even of a request no handler sees
(malformed request line or headers, bad ``Content-Length``/``Transfer-Encoding``, oversized URI, head or body,
unknown route), comes in the AWS shape that botocore can name."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from typing import Any

import botocore.exceptions
import pytest
from _server_support import http
from _support import UTC, text_payload

from bedrock_sessions import AsyncSessionClient, SessionClient

pytestmark = pytest.mark.timeout(60)

T = dt.datetime(2025, 1, 1, tzinfo=UTC)
MICRO_TIMES = [T + dt.timedelta(microseconds=us) for us in (100, 200, 300)]


# ---------------------------------------------------------------- microseconds end to end
def _put_three_in_one_millisecond(client: Any) -> tuple[str, str, list[str]]:
    sid = client.create_session()["sessionId"]
    iid = client.create_invocation(sessionIdentifier=sid)["invocationId"]
    ids = {}
    for when in (MICRO_TIMES[1], MICRO_TIMES[2], MICRO_TIMES[0]):  # written out of order
        ids[when] = client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid,
                                               invocationStepTime=when, payload=text_payload("x"))["invocationStepId"]
    return sid, iid, [ids[t] for t in reversed(MICRO_TIMES)]  # newest first


def _check_order_and_times(client: Any, sid: str, iid: str, newest_first: list[str]) -> None:
    steps = client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
    assert [s["invocationStepId"] for s in steps] == newest_first
    assert [s["invocationStepTime"] for s in steps] == list(reversed(MICRO_TIMES))
    # The common app pattern: order the steps by their time.
    by_time = sorted(steps, key=lambda s: s["invocationStepTime"])
    assert [s["invocationStepId"] for s in by_time] == list(reversed(newest_first))
    for step_id, when in zip(newest_first, reversed(MICRO_TIMES)):
        got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step_id)
        assert got["invocationStep"]["invocationStepTime"] == when


def test_step_times_keep_microseconds_through_boto3_and_the_server(boto):
    _check_order_and_times(boto, *_put_three_in_one_millisecond(boto))


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_step_times_keep_microseconds_on_the_embedded_stores(kind, tmp_path):
    client = SessionClient.memory() if kind == "memory" else SessionClient.local(str(tmp_path / "s.db"))
    with client:
        _check_order_and_times(client, *_put_three_in_one_millisecond(client))


def test_step_times_keep_microseconds_through_the_aws_sdk_for_rust(server, aws_credentials):
    with SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1", max_attempts=1) as client:
        _check_order_and_times(client, *_put_three_in_one_millisecond(client))


def test_equal_times_list_later_insert_first(boto):
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    ids = [boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T,
                                    payload=text_payload(str(i)))["invocationStepId"] for i in range(5)]
    listed = [s["invocationStepId"] for s in boto.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]]
    assert listed == list(reversed(ids))


# ---------------------------------------------------------------- impossible times
IMPOSSIBLE_WIRE_TIMES = [
    253402300800,  # 10000-01-01T00:00:00Z as epoch seconds
    1735689600000,  # milliseconds passed as seconds
    "2025-02-30T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2025-01-01T24:00:00Z",
]


@pytest.mark.parametrize("when", IMPOSSIBLE_WIRE_TIMES, ids=str)
def test_impossible_step_times_are_refused_on_the_wire_and_reads_keep_working(server, boto, when):
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    resp = http(server.endpoint_url, "PUT", f"/sessions/{sid}/invocationSteps/",
                {"invocationIdentifier": iid, "invocationStepTime": when, "payload": text_payload("x")})
    assert resp.status == 400, resp.body
    assert resp.headers["x-amzn-errortype"] == "ValidationException"
    assert "invocationStepTime" in resp.json()["message"]
    # Nothing was stored, and the session still reads (boto3 raised "year 10000 is out of range" before).
    assert boto.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"] == []


@pytest.mark.parametrize("when", [253402300800, 1735689600000, 253402300800.5, "2025-02-30T00:00:00Z",
                                  "0000-01-01T00:00:00Z", float("inf")], ids=str)
def test_impossible_step_times_are_refused_by_the_session_api(when):
    with SessionClient.memory() as client:
        sid = client.create_session()["sessionId"]
        iid = client.create_invocation(sessionIdentifier=sid)["invocationId"]
        with pytest.raises(client.exceptions.ValidationException, match="invocationStepTime"):
            client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=when,
                                       payload=text_payload("x"))
        assert client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"] == []


def test_the_limits_of_the_range_are_accepted_and_read_back():
    first = dt.datetime(1, 1, 1, tzinfo=UTC)
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    with SessionClient.memory() as client:
        sid = client.create_session()["sessionId"]
        iid = client.create_invocation(sessionIdentifier=sid)["invocationId"]
        for when in (first, last, "0001-01-01T00:00:00Z", -62135596800):
            client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=when,
                                       payload=text_payload("x"))
        times = [s["invocationStepTime"] for s in client.list_invocation_steps(sessionIdentifier=sid)
                 ["invocationStepSummaries"]]
        assert times == [last, first, first, first]


# ---------------------------------------------------------------- null means absent
def test_null_for_optional_members_means_absent(server, boto):
    base = server.endpoint_url
    created = http(base, "PUT", "/sessions/", {"encryptionKeyArn": None, "sessionMetadata": None, "tags": None})
    assert created.status == 201, created.body
    sid = created.json()["sessionId"]
    inv = http(base, "PUT", f"/sessions/{sid}/invocations/", {"invocationId": None, "description": None})
    assert inv.status == 201, inv.body
    iid = inv.json()["invocationId"]
    step = http(base, "PUT", f"/sessions/{sid}/invocationSteps/", {
        "invocationIdentifier": iid, "invocationStepId": None, "invocationStepTime": "2025-01-01T00:00:00Z",
        "payload": {"contentBlocks": [{"text": "hi", "image": None}]},
    })
    assert step.status == 201, step.body
    listed = http(base, "POST", f"/sessions/{sid}/invocationSteps/", {"invocationIdentifier": None})
    assert listed.status == 200 and len(listed.json()["invocationStepSummaries"]) == 1
    assert http(base, "PUT", f"/sessions/{sid}/", {"sessionMetadata": None}).status == 200
    # A required member sent as null is missing, and said so.
    missing = http(base, "PUT", f"/sessions/{sid}/invocationSteps/", {
        "invocationIdentifier": None, "invocationStepTime": "2025-01-01T00:00:00Z", "payload": text_payload("x")})
    assert missing.status == 400 and "invocationIdentifier" in missing.json()["message"]


# ---------------------------------------------------------------- rejections before any handler
def named(server: Any, data: bytes) -> bytes:
    """The requests with their ``Host: x`` naming the server (it refuses other hosts: DNS rebinding)."""
    return data.replace(b"Host: x\r\n", f"Host: {server.host}:{server.port}\r\n".encode())


def raw(server: Any, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends raw bytes (``Host: x`` naming the server), reads the response up to the connection's close."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(named(server, data))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def assert_aws_shape(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> None:
    assert status == expected_status, (status, body)
    assert headers["x-amzn-errortype"] == code
    assert headers["x-amzn-requestid"]
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["__type"] == code and doc["message"]


PUT_SESSION = b"PUT /sessions/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

MALFORMED = [
    ("bad Content-Length", PUT_SESSION + b"Content-Length: abc\r\n\r\n{}", 400, "ValidationException"),
    ("negative Content-Length", PUT_SESSION + b"Content-Length: -2\r\n\r\n{}", 400, "ValidationException"),
    ("conflicting Content-Length",
     PUT_SESSION + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "ValidationException"),
    ("Transfer-Encoding and Content-Length",
     PUT_SESSION + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", 400, "ValidationException"),
    ("unknown Transfer-Encoding", PUT_SESSION + b"Transfer-Encoding: gzip\r\n\r\n", 501, "ValidationException"),
    ("malformed chunk size", PUT_SESSION + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400,
     "ValidationException"),
    ("malformed request line", b"PUT /sessions/ HTTP/9\r\nHost: x\r\n\r\n", 400, "ValidationException"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "ValidationException"),
    ("malformed header", b"GET /sessions/x/ HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400,
     "ValidationException"),
    ("no Host", b"GET /sessions/x/ HTTP/1.1\r\n\r\n", 400, "ValidationException"),
    ("oversized URI", b"GET /sessions/" + b"a" * 20000 + b"/ HTTP/1.1\r\nHost: x\r\n\r\n", 414,
     "ValidationException"),
    ("oversized head", b"GET /sessions/x/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431,
     "ValidationException"),
    ("too many headers", b"GET /sessions/x/ HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n", 431, "ValidationException"),
    ("oversized body", PUT_SESSION + b"Content-Length: 999999999999\r\n\r\n", 413, "ValidationException"),
    ("unknown route", b"GET /nothing/here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "UnknownOperationException"),
    ("unknown method", b"BREW /sessions/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "UnknownOperationException"),
]


@pytest.mark.parametrize(("data", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_every_rejection_is_in_the_aws_shape(server, data, status, code):
    assert_aws_shape(*raw(server, data), status, code)
    # The server goes on serving.
    assert http(server.endpoint_url, "POST", "/sessions/").status == 200


def test_chunked_bodies_and_pipelined_keep_alive_requests_are_served(server):
    body = json.dumps({"sessionMetadata": {"k": "v"}}).encode()
    chunked = PUT_SESSION + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    closing = b"POST /sessions/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(named(server, chunked + closing))  # two requests at once on one connection
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 201 Created") == 1 and data.count(b"HTTP/1.1 200 OK") == 1
    assert data.index(b"HTTP/1.1 201 Created") < data.index(b"HTTP/1.1 200 OK")  # answered in order
    listed = json.loads(data.split(b"\r\n\r\n")[-1])
    assert len(listed["sessionSummaries"]) == 1


def test_botocore_names_a_rejection_before_the_handler(server, make_boto):
    """An oversized URI, sent by boto3 itself: botocore reads the error's name from the header."""
    client = make_boto(server, validate=False)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_session(sessionIdentifier="a" * 9000)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 414


def test_async_client_keeps_microseconds_too(tmp_path):
    async def main() -> None:
        async with AsyncSessionClient.local(str(tmp_path / "a.db")) as client:
            sid = (await client.create_session())["sessionId"]
            iid = (await client.create_invocation(sessionIdentifier=sid))["invocationId"]
            for when in MICRO_TIMES:
                await client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid,
                                                 invocationStepTime=when, payload=text_payload("x"))
            steps = (await client.list_invocation_steps(sessionIdentifier=sid))["invocationStepSummaries"]
            assert [s["invocationStepTime"] for s in steps] == list(reversed(MICRO_TIMES))

    asyncio.run(main())
