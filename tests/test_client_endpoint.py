"""Every client object we hand out on the Bedrock backend reports the endpoint and region its requests really use, and
resolves them as botocore does: explicit arguments, then a boto3 client or botocore ``Config``, then
``AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME``, then ``AWS_ENDPOINT_URL``, then the shared config file (``services`` section,
then the profile's ``endpoint_url``), then the service's default; ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` drops the
configured ones. Where requests go is checked on the servers' request counts; the region used on the request's
signature, on a server that records it.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bedrock_sessions import AsyncSessionClient, BedrockSessionSaver, SessionClient
from bedrock_sessions.server import LocalServer

SERVICE_VAR = "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME"

Handed = tuple[str, Any, Callable[[], Any]]  # what, the client object, one request through it


def handed_out(**kwargs: Any) -> list[Handed]:
    """Every client object we hand out for these arguments, each with a call that makes one request through it."""
    from bedrock_sessions import AsyncBedrockSessionSaver

    sync_client = SessionClient.bedrock(max_attempts=1, **kwargs)
    async_client = AsyncSessionClient.bedrock(max_attempts=1, **kwargs)
    saver = BedrockSessionSaver(**kwargs)
    async_saver = AsyncBedrockSessionSaver(**kwargs)
    return [
        ("SessionClient.bedrock", sync_client, sync_client.list_sessions),
        ("AsyncSessionClient.bedrock", async_client, lambda: asyncio.run(async_client.list_sessions())),
        ("saver.sessions", saver.sessions, saver.sessions.list_sessions),
        ("saver.session_client.client", saver.session_client.client, saver.session_client.client.list_sessions),
        ("async saver.session_client.client", async_saver.session_client.client,
         async_saver.session_client.client.list_sessions),
    ]


def assert_requests_go_where_reported(handed: list[Handed], servers: list[LocalServer], expected: LocalServer) -> None:
    for what, client, request in handed:
        assert client.meta.endpoint_url == expected.endpoint_url, what
        before = [s.stats()["requests"] for s in servers]
        request()
        after = [s.stats()["requests"] for s in servers]
        assert [a - b for a, b in zip(after, before)] == [int(s is expected) for s in servers], what


@pytest.fixture
def other_server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(str(tmp_path / "other.db")) as server:
        yield server


def test_service_endpoint_variable(bedrock_sessions_endpoint: str, bedrock_sessions_server: LocalServer) -> None:
    """The pytest plugin's fixture sets AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: code with no endpoint reaches the server,
    and says so."""
    handed = handed_out(region_name="us-east-1")
    assert_requests_go_where_reported(handed, [bedrock_sessions_server], bedrock_sessions_server)
    assert boto3.Session().client("bedrock-agent-runtime").meta.endpoint_url == bedrock_sessions_endpoint


def test_global_endpoint_variable(aws_credentials: Any, bedrock_sessions_server: LocalServer,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_sessions_server.endpoint_url)
    assert_requests_go_where_reported(handed_out(), [bedrock_sessions_server], bedrock_sessions_server)


def test_service_variable_before_global_variable(aws_credentials: Any, bedrock_sessions_server: LocalServer,
                                                 other_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", other_server.endpoint_url)
    monkeypatch.setenv(SERVICE_VAR, bedrock_sessions_server.endpoint_url)
    servers = [bedrock_sessions_server, other_server]
    assert_requests_go_where_reported(handed_out(), servers, bedrock_sessions_server)
    assert boto3.Session().client("bedrock-agent-runtime").meta.endpoint_url == bedrock_sessions_server.endpoint_url


def test_explicit_endpoint_before_variables(bedrock_sessions_endpoint: str, bedrock_sessions_server: LocalServer,
                                            other_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_sessions_endpoint)
    servers = [bedrock_sessions_server, other_server]
    assert_requests_go_where_reported(handed_out(endpoint_url=other_server.endpoint_url), servers, other_server)
    # a boto3 client's endpoint is its own, whatever the environment says
    boto = boto3.Session().client("bedrock-agent-runtime", endpoint_url=other_server.endpoint_url)
    assert_requests_go_where_reported(handed_out(client=boto), servers, other_server)


def test_ignore_configured_endpoints(bedrock_sessions_endpoint: str, bedrock_sessions_server: LocalServer,
                                     other_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_sessions_endpoint)
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    aws_default = boto3.Session().client("bedrock-agent-runtime").meta.endpoint_url
    assert aws_default == "https://bedrock-agent-runtime.us-east-1.amazonaws.com"
    for what, client, _ in handed_out():
        assert client.meta.endpoint_url == aws_default, what
        # Passed to the backend explicitly: the AWS SDK for Rust reads the service's variable even when told to ignore
        # it (its request would go to the server). A request here would go to AWS itself, which this suite never does.
        assert client._native.endpoint_url == aws_default, what
    # an explicit endpoint is never ignored
    servers = [bedrock_sessions_server, other_server]
    assert_requests_go_where_reported(handed_out(endpoint_url=other_server.endpoint_url), servers, other_server)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
    # ... nor is it in a botocore Config
    for what, client, _ in handed_out(config=Config(ignore_configured_endpoint_urls=True)):
        assert client.meta.endpoint_url == aws_default, what


@pytest.mark.parametrize("where", ["services section", "profile"])
def test_endpoint_from_the_shared_config_file(where: str, aws_credentials: Any, bedrock_sessions_server: LocalServer,
                                              other_server: LocalServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws-config"
    if where == "services section":
        config.write_text(f"[profile dev]\nservices = local\nendpoint_url = {other_server.endpoint_url}\n\n"
                          f"[services local]\nbedrock_agent_runtime =\n  endpoint_url = {bedrock_sessions_server.endpoint_url}\n")
    else:
        config.write_text(f"[profile dev]\nendpoint_url = {bedrock_sessions_server.endpoint_url}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert boto3.Session().client("bedrock-agent-runtime").meta.endpoint_url == bedrock_sessions_server.endpoint_url
    servers = [bedrock_sessions_server, other_server]
    assert_requests_go_where_reported(handed_out(), servers, bedrock_sessions_server)


# ---------------------------------------------------------------- regions, as signed
class SigningRecorder(http.server.ThreadingHTTPServer):
    """An HTTP endpoint that answers every request with an empty ListSessions page and records the region of its
    SigV4 signature (the credential scope of the Authorization header)."""

    def __init__(self) -> None:
        self.regions: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", self.headers.get("authorization", ""))
                recorder.regions.append(scope.group(1) if scope else "")
                body = json.dumps({"sessionSummaries": []}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder() -> Iterator[SigningRecorder]:
    server = SigningRecorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def assert_signed_in(region: str, handed: list[Handed], recorder: SigningRecorder) -> None:
    for what, client, request in handed:
        assert client.meta.region_name == region, what
        request()
        assert recorder.regions[-1] == region, what


def test_region_of_a_botocore_config_before_the_session(aws_credentials: Any, recorder: SigningRecorder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVICE_VAR, recorder.url)
    session = boto3.Session(region_name="eu-west-1")
    config = Config(region_name="eu-central-1")
    assert session.client("bedrock-agent-runtime", config=config).meta.region_name == "eu-central-1"
    assert_signed_in("eu-central-1", handed_out(session=session, config=config), recorder)
    assert_signed_in("ap-south-1", handed_out(session=session, config=config, region_name="ap-south-1"), recorder)
    assert_signed_in("eu-west-1", handed_out(session=session), recorder)


def test_region_of_a_boto3_client(aws_credentials: Any, recorder: SigningRecorder) -> None:
    boto = boto3.Session().client("bedrock-agent-runtime", region_name="sa-east-1", endpoint_url=recorder.url)
    assert_signed_in("sa-east-1", handed_out(client=boto), recorder)


def test_region_from_the_environment_and_the_profile(aws_credentials: Any, recorder: SigningRecorder, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVICE_VAR, recorder.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    assert boto3.Session().client("bedrock-agent-runtime").meta.region_name == "eu-north-1"  # botocore reads AWS_DEFAULT_REGION
    assert_signed_in("eu-north-1", handed_out(), recorder)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert_signed_in("us-west-1", handed_out(), recorder)  # which the AWS SDKs other than boto3 also read
    monkeypatch.delenv("AWS_REGION")
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert boto3.Session().client("bedrock-agent-runtime").meta.region_name == "ap-southeast-2"
    assert_signed_in("ap-southeast-2", handed_out(), recorder)
