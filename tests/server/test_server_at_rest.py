"""The local server with encryption at rest and retention, through boto3 (docs/encryption.md, docs/server.md): the
service's errors for a key it cannot use, no plaintext in the served file, the service's 30-day retention by
default, and ``bedrock-sessions serve --keyring --retention-days``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _at_rest import KEY_A, KEY_B, T0, UNKNOWN_KEY, Plaintext, found, new_material, write_keyring  # noqa: E402
from test_cli_and_plugin import boto3_for, serve  # noqa: E402,F401 (the fixture)

from bedrock_sessions import ManualClock, SessionClient  # noqa: E402
from bedrock_sessions.server import SERVICE_RETENTION_DAYS, LocalServer  # noqa: E402

DAY = 86_400.0


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    return write_keyring(tmp_path / "k.json", {KEY_A: new_material(), KEY_B: new_material()}, default=KEY_A)


def test_boto3_on_an_encrypted_server(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "served.db"
    plain = Plaintext()
    with LocalServer(db, keyring=ring) as server:
        c = server.boto3_client()
        ids = plain.write(c, encryptionKeyArn=KEY_B)
        plain.check(c, ids)
        assert c.get_session(sessionIdentifier=ids["session"])["encryptionKeyArn"] == KEY_B
        assert found(db, plain.needles()) == []
        # The service's error for a key the store cannot use: ValidationException (HTTP 400), nothing created.
        with pytest.raises(c.exceptions.ValidationException) as err:
            c.create_session(encryptionKeyArn=UNKNOWN_KEY)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert UNKNOWN_KEY in str(err.value)
        assert len(c.list_sessions()["sessionSummaries"]) == 1
    assert found(db, plain.needles()) == []


def test_a_server_without_key_material_refuses_a_named_key(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "s.db") as server:
        c = server.boto3_client()
        with pytest.raises(c.exceptions.ValidationException, match="no key material"):
            c.create_session(encryptionKeyArn=KEY_A, sessionMetadata={"m": "NEVER-STORED"})
        assert c.list_sessions()["sessionSummaries"] == []
    assert found(tmp_path / "s.db", [b"NEVER-STORED"]) == []


def test_the_server_keeps_sessions_for_the_services_30_days(tmp_path: Path) -> None:
    assert SERVICE_RETENTION_DAYS == 30
    clock = ManualClock(start=T0)
    db = tmp_path / "s.db"
    with LocalServer(db, clock=clock, idle_timeout=40 * DAY) as server:
        c = server.boto3_client()
        old = c.create_session(sessionMetadata={"m": "OLD-SESSION-VALUE"})["sessionId"]
        clock.advance(29 * DAY)
        kept = c.create_session()["sessionId"]
        c.get_session(sessionIdentifier=old)
        clock.advance(1 * DAY)
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.get_session(sessionIdentifier=old)
        assert [s["sessionId"] for s in c.list_sessions()["sessionSummaries"]] == [kept]
        assert server.client.sweep() == 1
        assert found(db, [b"OLD-SESSION-VALUE"]) == []
    # retention_days=None keeps sessions until deleted.
    with LocalServer(tmp_path / "forever.db", clock=clock, retention_days=None) as server:
        c = server.boto3_client()
        sid = c.create_session()["sessionId"]
        clock.advance(400 * DAY)
        assert server.client.sweep() == 0
        c.get_session(sessionIdentifier=sid)


def test_store_options_are_for_a_new_store(tmp_path: Path) -> None:
    with SessionClient.local(tmp_path / "s.db") as client:
        with pytest.raises(TypeError, match="new store"):
            LocalServer(client, retention_days=7)


def test_serve_with_a_keyring_and_a_retention_period(serve, tmp_path: Path, ring: Path) -> None:  # noqa: F811
    db = tmp_path / "cli.db"
    s = serve("--db", str(db), "--keyring", str(ring), "--retention-days", "7")
    url, _, _ = s.url()
    c = boto3_for(url)
    try:
        plain = Plaintext()
        ids = plain.write(c)
        plain.check(c, ids)
        with pytest.raises(c.exceptions.ValidationException):
            c.create_session(encryptionKeyArn=UNKNOWN_KEY)
    finally:
        c.close()
    code, lines, stderr = s.stop(signal.SIGINT)
    assert code == 0, stderr
    assert f"bedrock-sessions: sessions are encrypted at rest with the keyring {ring}" in lines
    assert "bedrock-sessions: sessions are erased 7 days after their last update" in lines
    assert found(db, plain.needles()) == []
    with SessionClient.local(db, keyring=ring) as client:
        plain.check(client, ids)


def test_serve_refuses_a_loose_keyring(serve, tmp_path: Path, ring: Path) -> None:  # noqa: F811
    ring.chmod(0o644)
    s = serve("--keyring", str(ring))
    code = s.proc.wait(timeout=20)
    assert code == 2
    assert "chmod 600" in s.stderr()


def test_tenants_on_an_encrypted_server(tmp_path: Path, ring: Path) -> None:
    """Identities and encryption at rest together: each tenant's sessions are sealed (no plaintext in the file),
    kept apart by account, and a tenant whose policy allows it names its own customer key."""
    import json

    from botocore.config import Config
    from botocore.exceptions import ClientError

    from bedrock_sessions.pytest_plugin import two_tenant_identities

    iam = tmp_path / "iam.json"
    iam.write_text(json.dumps(two_tenant_identities()))
    db = tmp_path / "tenants.db"
    with LocalServer(db, keyring=ring, iam=str(iam)) as server:
        a, b = (server.boto3_client(p, config=Config(retries={"total_max_attempts": 1}))
                for p in ("alice", "bob"))
        plain = Plaintext()
        ids = plain.write(a, encryptionKeyArn=KEY_B)
        plain.check(a, ids)
        with pytest.raises(ClientError) as e:
            b.get_session(sessionIdentifier=ids["session"])
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert b.list_sessions()["sessionSummaries"] == []
        assert found(db, plain.needles()) == []
