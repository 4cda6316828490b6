"""pytest plugin of bedrock-sessions (registered through the ``pytest11`` entry point): fixtures to test code
that calls the Amazon Bedrock session API — with boto3, bedrock-sessions' clients or either LangGraph saver —
against a local server, without AWS.

Fixtures:

- ``bedrock_sessions_server``: a :class:`~bedrock_sessions.server.LocalServer` on a free 127.0.0.1 port with a
  temporary database; stopped after the test. Its options (``idle_timeout``, ``max_steps_per_session``,
  ``region``, ``account_id``, ``default_page_size``, ``latency``, ``fault_rate``...) come from the test's
  ``@pytest.mark.bedrock_sessions_server(...)`` marker, if any.
- ``aws_credentials``: dummy AWS credentials and region in the environment (and no profile or config files),
  so no real account is ever reached.
- ``bedrock_sessions_endpoint``: both of the above, plus ``AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME`` pointing at
  the server, so boto3 clients that the code under test creates itself go to the server. Yields the URL.
- ``bedrock_agent_runtime_client``: a boto3 ``bedrock-agent-runtime`` client for the server.
- ``bedrock_sessions_tenants``: a server that checks identities, with two tenants: ``tenants.a`` (account
  111111111111, principal ``alice``, tag ``tenant=a``) and ``tenants.b`` (222222222222, ``bob``, ``tenant=b``), each
  with :meth:`~Tenant.boto3_client`, :meth:`~Tenant.session_client` (for the savers and LlamaIndex stores) and
  :meth:`~Tenant.credentials`; ``tenants.audit_lines()`` reads the server's audit log. Each principal may do
  everything in its own account, unless the ``bedrock_sessions_tenants(policies=[...])`` marker gives the
  identity policies of both (other keyword options go to the :class:`~bedrock_sessions.server.LocalServer`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "bedrock_sessions_server(**options): options of the bedrock_sessions_server fixture's LocalServer "
        "(idle_timeout, max_steps_per_session, region, account_id, default_page_size, latency, fault_rate...)",
    )
    config.addinivalue_line(
        "markers",
        "bedrock_sessions_tenants(policies=None, **options): identity policies of both tenants of the "
        "bedrock_sessions_tenants fixture (default: everything in their own account), and options of its LocalServer",
    )


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Dummy credentials and region; profiles and shared files are hidden from boto3."""
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    missing = str(tmp_path / "no-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield dict(DUMMY_CREDENTIALS)


@pytest.fixture
def bedrock_sessions_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A local Bedrock session server with a temporary database, stopped after the test; options from the
    ``bedrock_sessions_server`` marker."""
    from .server import LocalServer

    marker = request.node.get_closest_marker("bedrock_sessions_server")
    options = dict(marker.kwargs) if marker is not None else {}
    with LocalServer(str(tmp_path / "bedrock-sessions-server.db"), **options) as server:
        yield server


@pytest.fixture
def bedrock_sessions_endpoint(
    bedrock_sessions_server: Any, aws_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The server's URL, also set as boto3's endpoint for bedrock-agent-runtime."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", bedrock_sessions_server.endpoint_url)
    yield bedrock_sessions_server.endpoint_url


@pytest.fixture
def bedrock_agent_runtime_client(bedrock_sessions_server: Any, aws_credentials: dict[str, str]) -> Any:
    """A boto3 bedrock-agent-runtime client for the local server."""
    return bedrock_sessions_server.boto3_client()


#: Everything in the principal's own account (the server keeps accounts apart).
OWN_ACCOUNT = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}]}]


@dataclass(frozen=True)
class Tenant:
    """One tenant of :func:`bedrock_sessions_tenants`: an account and its principal."""

    name: str
    account: str
    principal: str
    server: Any

    def credentials(self) -> dict[str, str]:
        return self.server.credentials(self.principal, account=self.account)

    def boto3_client(self, **kwargs: Any) -> Any:
        return self.server.boto3_client(self.principal, account=self.account, **kwargs)

    def session_client(self, **kwargs: Any) -> Any:
        return self.server.session_client(self.principal, account=self.account, **kwargs)


@dataclass(frozen=True)
class Tenants:
    server: Any
    a: Tenant
    b: Tenant
    iam_file: Path
    audit_file: Path

    def audit_lines(self, at_least: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The audit log's lines, once it has ``at_least`` of them (they are written in the background) or after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.audit_file.read_text(encoding="utf-8") if self.audit_file.exists() else ""
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


def two_tenant_identities(policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The identities file of :func:`bedrock_sessions_tenants`."""
    docs = OWN_ACCOUNT if policies is None else policies

    def principal(name: str, key: str, tenant: str) -> dict[str, Any]:
        return {name: {"access_keys": {key: f"{name}-secret-key"}, "tags": {"tenant": tenant}, "policies": docs}}

    return {"accounts": {
        "111111111111": {"principals": principal("alice", "AKIATENANTA000000001", "a")},
        "222222222222": {"principals": principal("bob", "AKIATENANTB000000001", "b")},
    }}


@pytest.fixture
def bedrock_sessions_tenants(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tenants]:
    """A local server that checks identities (SigV4, accounts, IAM policies), with two tenants and an audit log;
    stopped after the test."""
    from .server import LocalServer

    marker = request.node.get_closest_marker("bedrock_sessions_tenants")
    options = dict(marker.kwargs) if marker is not None else {}
    iam = tmp_path / "bedrock-sessions-iam.json"
    iam.write_text(json.dumps(two_tenant_identities(options.pop("policies", None))), encoding="utf-8")
    audit = tmp_path / "bedrock-sessions-audit.jsonl"
    options.setdefault("audit", str(audit))
    with LocalServer(str(tmp_path / "bedrock-sessions-tenants.db"), iam=str(iam), **options) as server:
        yield Tenants(
            server=server,
            a=Tenant("a", "111111111111", "alice", server),
            b=Tenant("b", "222222222222", "bob", server),
            iam_file=iam,
            audit_file=audit,
        )
