"""SigV4 on the local server (``LocalServer(iam=FILE)``, ``bedrock-sessions serve --iam FILE``): requests signed by
real boto3 and by the AWS SDK for Rust (our Bedrock backend) with a key of the identities file pass, session ARNs in
paths included; an unknown key, a wrong secret, a wrong region or service, a stale date, a missing or wrong session
token, an altered body and an unsigned request get AWS's 403 errors; the server refuses to listen openly beyond
loopback."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bedrock_sessions import SessionClient
from bedrock_sessions.exceptions import BedrockSessionsError
from bedrock_sessions.server import LocalServer

# Signatures are this file's concern: every principal may do everything in its own account.
ALL = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}]}]
KEYS = {
    "accounts": {
        "111111111111": {"principals": {
            "alice": {"access_keys": {"AKIAALICE0000000001": "alice-secret"}, "tags": {"team": "red"}, "policies": ALL},
            "temp": {"access_keys": {"ASIATEMP00000000001": {"secret": "temp-secret", "session_token": "tok-123"}},
                     "policies": ALL},
        }},
        "222222222222": {"principals": {"bob": {"access_keys": {"AKIABOB000000000001": "bob-secret"}, "policies": ALL}}},
    }
}


@pytest.fixture()
def iam_file(tmp_path: Path) -> str:
    p = tmp_path / "iam.json"
    p.write_text(json.dumps(KEYS))
    return str(p)


@pytest.fixture()
def server(iam_file: str) -> Iterator[LocalServer]:
    with LocalServer(SessionClient.memory(), iam=iam_file) as s:
        yield s


def b3(server: LocalServer, key: str, secret: str, region: str = "us-east-1", **kw: Any) -> Any:
    return boto3.client("bedrock-agent-runtime", endpoint_url=server.endpoint_url, region_name=region,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}), **kw)


def code(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_signed_requests_of_known_keys_pass(server: LocalServer) -> None:
    alice = b3(server, "AKIAALICE0000000001", "alice-secret")
    s = alice.create_session(sessionMetadata={"k": "v w"}, tags={"team": "red"})
    arn = s["sessionArn"]
    # an ARN in the path (percent-encoded on the wire, encoded twice in the canonical URI) and a query string
    assert alice.get_session(sessionIdentifier=arn)["sessionId"] == s["sessionId"]
    alice.create_invocation(sessionIdentifier=arn, description="ünïcode ✓")
    assert len(alice.list_invocations(sessionIdentifier=arn, maxResults=5)["invocationSummaries"]) == 1
    assert alice.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "red"}
    temp = b3(server, "ASIATEMP00000000001", "temp-secret", aws_session_token="tok-123")
    assert temp.get_session(sessionIdentifier=s["sessionId"])["sessionId"] == s["sessionId"]
    # the AWS SDK for Rust signs too (bob, in another account, has sessions of its own)
    ours = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                 aws_access_key_id="AKIABOB000000000001", aws_secret_access_key="bob-secret",
                                 max_attempts=1)
    bobs = ours.create_session()
    assert ours.get_session(sessionIdentifier=bobs["sessionArn"])["sessionId"] == bobs["sessionId"]


def test_bad_credentials_get_awss_errors(server: LocalServer) -> None:
    sid = b3(server, "AKIAALICE0000000001", "alice-secret").create_session()["sessionId"]
    cases = [
        (b3(server, "AKIAUNKNOWN00000001", "x"), ("UnrecognizedClientException", 403)),
        (b3(server, "AKIAALICE0000000001", "wrong-secret"), ("InvalidSignatureException", 403)),
        (b3(server, "AKIAALICE0000000001", "alice-secret", region="eu-west-1"), ("InvalidSignatureException", 403)),
        (b3(server, "ASIATEMP00000000001", "temp-secret"), ("UnrecognizedClientException", 403)),
        (b3(server, "ASIATEMP00000000001", "temp-secret", aws_session_token="other"),
         ("UnrecognizedClientException", 403)),
    ]
    for client, want in cases:
        with pytest.raises(ClientError) as e:
            client.get_session(sessionIdentifier=sid)
        assert code(e) == want
    with pytest.raises(ClientError) as e:
        b3(server, "AKIAALICE0000000001", "alice-secret", region="eu-west-1").get_session(sessionIdentifier=sid)
    assert "Credential should be scoped to a valid region" in e.value.response["Error"]["Message"]
    ours = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                 aws_access_key_id="AKIAALICE0000000001", aws_secret_access_key="nope",
                                 max_attempts=1)
    with pytest.raises(BedrockSessionsError) as err:
        ours.get_session(sessionIdentifier=sid)
    assert "signature we calculated does not match" in str(err.value)


def test_a_stale_signature_is_refused(server: LocalServer) -> None:
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=16)
    client = b3(server, "AKIAALICE0000000001", "alice-secret")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=old):
        with pytest.raises(ClientError) as e:
            client.list_sessions()
    assert code(e) == ("InvalidSignatureException", 403)
    assert "Signature expired" in e.value.response["Error"]["Message"]
    fine = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fine):
        client.list_sessions()


def test_a_body_altered_after_signing_and_an_unsigned_request_are_refused(server: LocalServer) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = server.endpoint_url + "/sessions/"
    req = AWSRequest(method="PUT", url=url, data=b'{"sessionMetadata": {"a": "1"}}',
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIAALICE0000000001", "alice-secret"), "bedrock", "us-east-1").add_auth(req)
    host, port = server.host, server.port

    def send(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("PUT", "/sessions/", body=body, headers=headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}") | {"type": r.getheader("x-amzn-ErrorType")}
        finally:
            conn.close()

    headers = dict(req.headers.items())
    status, body = send(req.body, headers)
    assert status == 201, body
    status, body = send(b'{"sessionMetadata": {"a": "2"}}', headers)
    assert (status, body["type"]) == (403, "InvalidSignatureException")
    unsigned = {k: v for k, v in headers.items() if k.lower() not in ("authorization",)}
    status, body = send(req.body, unsigned)
    assert (status, body["type"]) == (403, "MissingAuthenticationTokenException")
    # the server's own routes stay open (health), the API does not
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_identities_files_are_checked_and_open_servers_stay_on_loopback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"accounts": {"111111111111": {"principals": {"a": {
        "access_keys": {"AKIA1": "s"}, "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*", "Condition": {"StringEqualz": {"a": "b"}}}]}]}}}}}))
    with pytest.raises(ValueError, match="StringEqualz"):
        LocalServer(SessionClient.memory(), iam=str(bad)).start()
    with pytest.raises(ValueError, match="cannot read the identities file"):
        LocalServer(SessionClient.memory(), iam=str(tmp_path / "missing.json")).start()
    with pytest.raises(ValueError, match="unauthenticated requests on 0.0.0.0"):
        LocalServer(SessionClient.memory(), host="0.0.0.0")
    with LocalServer(SessionClient.memory(), host="::1") as s:  # loopback, open
        assert s.running


def test_each_part_of_a_signed_request_is_covered(server: LocalServer) -> None:
    """A request signed by botocore, then altered in one part at a time: its path, its query, a signed header, its
    date, or signed for another service: each refused with AWS's code; the original passes."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    alice = b3(server, "AKIAALICE0000000001", "alice-secret")
    mine, other = (alice.create_session()["sessionId"] for _ in range(2))

    def signed(service: str = "bedrock") -> dict[str, str]:
        req = AWSRequest(method="POST", url=f"{server.endpoint_url}/sessions/{mine}/invocations?maxResults=5",
                         data=b"", headers={"X-Tenant-Hint": "a"})
        SigV4Auth(Credentials("AKIAALICE0000000001", "alice-secret"), service, "us-east-1").add_auth(req)
        return dict(req.headers.items())

    def send(path: str, headers: dict[str, str]) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("POST", path, headers=headers)
            r = conn.getresponse()
            body = json.loads(r.read() or b"{}")
            return r.status, r.getheader("x-amzn-ErrorType") or "", body.get("message", "")
        finally:
            conn.close()

    path = f"/sessions/{mine}/invocations?maxResults=5"
    assert send(path, signed())[0] == 200
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=120)  # another second, within 15 minutes
    cases = {
        "path": (f"/sessions/{other}/invocations?maxResults=5", signed()),
        "query": (f"/sessions/{mine}/invocations?maxResults=6", signed()),
        "signed header": (path, signed() | {"X-Tenant-Hint": "b"}),
        "date": (path, signed() | {"X-Amz-Date": later.strftime("%Y%m%dT%H%M%SZ")}),
        "service": (path, signed("bedrock-agent")),
    }
    for what, (p, h) in cases.items():
        status, error, message = send(p, h)
        assert (status, error) == (403, "InvalidSignatureException"), (what, message)
    assert "correct service" in send(path, signed("bedrock-agent"))[2]
