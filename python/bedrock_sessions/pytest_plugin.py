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
"""

from __future__ import annotations

from collections.abc import Iterator
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
