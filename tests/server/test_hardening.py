"""The local server against requests from the web (found by fuzzing it): a server on loopback answers only requests
that name it (DNS rebinding: a page elsewhere reaches 127.0.0.1 through a name of its own), a request with a body must
be JSON (a cross-site text/plain POST, which a browser sends without asking, could tag a session), and with identities
its stats and metrics need a signature as the API does."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer


def request(server: LocalServer, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data) | {"type": r.getheader("x-amzn-ErrorType")}
        except ValueError:
            return r.status, data
    finally:
        conn.close()


def test_only_requests_naming_the_server_are_answered() -> None:
    with LocalServer(SessionClient.memory()) as server:
        mine = f"{server.host}:{server.port}"
        assert request(server, "POST", "/sessions/", Host=mine)[0] == 200
        assert request(server, "POST", "/sessions/", Host=f"localhost:{server.port}")[0] == 200
        for other in (f"attacker.example:{server.port}", "attacker.example", f"{server.host}:1"):
            status, body = request(server, "POST", "/sessions/", Host=other)
            assert (status, body["type"]) == (403, "AccessDeniedException"), other
            assert "not an address of this server" in body["message"]
        status, body = request(server, "GET", "/metrics", Host="attacker.example")
        assert status == 403


def test_a_body_must_be_json() -> None:
    with LocalServer(SessionClient.memory()) as server:
        sid = server.client.create_session()["sessionId"]
        arn = server.client.get_session(sessionIdentifier=sid)["sessionArn"]
        host = f"{server.host}:{server.port}"
        path = "/tags/" + arn.replace(":", "%3A").replace("/", "%2F")
        body = json.dumps({"tags": {"owner": "attacker"}}).encode()
        status, answer = request(server, "POST", path, body, Host=host, **{"Content-Type": "text/plain"})
        assert (status, answer["type"]) == (415, "UnsupportedMediaTypeException")
        assert server.client.list_tags_for_resource(resourceArn=arn)["tags"] == {}  # nothing changed
        status, _ = request(server, "POST", path, body, Host=host, **{"Content-Type": "application/json"})
        assert status == 200
        assert server.client.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "attacker"}


def test_with_identities_stats_and_metrics_need_a_signature_and_a_policy(tmp_path: Path) -> None:
    iam = tmp_path / "iam.json"
    operator = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "bedrock-sessions:Get*", "Resource": "*"}]}]
    tenant = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}]}]
    iam.write_text(json.dumps({"accounts": {"111111111111": {"principals": {
        "ops": {"access_keys": {"AKIAOPS000000000001": "ops-secret"}, "policies": operator},
        "app": {"access_keys": {"AKIAAPP000000000001": "app-secret"}, "policies": tenant}}}}}))
    with LocalServer(SessionClient.memory(), iam=str(iam)) as server:
        host = f"{server.host}:{server.port}"
        for path in ("/metrics", "/_bedrock_sessions/stats"):
            status, body = request(server, "GET", path, Host=host)
            assert (status, body["type"]) == (403, "MissingAuthenticationTokenException"), path
        assert request(server, "GET", "/health", Host=host)[0] == 200
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        def signed(method: str, path: str, key: str, secret: str) -> tuple[int, Any]:
            req = AWSRequest(method=method, url=server.endpoint_url + path)
            SigV4Auth(Credentials(key, secret), "bedrock", "us-east-1").add_auth(req)
            return request(server, method, path, **dict(req.headers.items()))

        status, text = signed("GET", "/metrics", "AKIAOPS000000000001", "ops-secret")
        assert status == 200 and b"bedrock_sessions_requests_total" in text
        assert signed("GET", "/_bedrock_sessions/stats", "AKIAOPS000000000001", "ops-secret")[0] == 200
        # Resetting is not a Get*; and a tenant allowed bedrock:* reads none of the operator's figures.
        status, body = signed("DELETE", "/_bedrock_sessions/stats", "AKIAOPS000000000001", "ops-secret")
        assert (status, body["type"]) == (403, "AccessDeniedException")
        for method, path in (("GET", "/metrics"), ("GET", "/_bedrock_sessions/stats")):
            status, body = signed(method, path, "AKIAAPP000000000001", "app-secret")
            assert (status, body["type"]) == (403, "AccessDeniedException"), path
            assert "user/app is not authorized to perform: bedrock-sessions:Get" in body["message"]


def test_the_web_inspector_is_not_served_where_requests_must_be_signed(tmp_path: Path) -> None:
    import pytest

    iam = tmp_path / "iam.json"
    iam.write_text(json.dumps({"accounts": {"111111111111": {"principals": {}}}}))
    with pytest.raises(ValueError, match="cannot sign"):
        LocalServer(SessionClient.memory(), iam=str(iam), ui=True)


def test_cleartext_http2_is_never_switched_to() -> None:
    """The prior-knowledge preface gets a 400 and a closed connection; an `Upgrade: h2c` request is answered in
    HTTP/1.1, not 101 Switching Protocols."""
    import socket

    with LocalServer(SessionClient.memory()) as server:
        def exchange(payload: bytes) -> bytes:
            with socket.create_connection((server.host, server.port), timeout=10) as c:
                c.sendall(payload)
                return c.recv(4096)

        preface = exchange(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert preface.startswith(b"HTTP/1.1 400 ") and b"connection: close" in preface.lower()
        upgrade = exchange(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: Upgrade, "
                           "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".encode())
        assert upgrade.startswith(b"HTTP/1.1 200 OK") and b"upgrade" not in upgrade.lower()
