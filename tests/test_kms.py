"""Encryption at rest with AWS KMS (the AWS SDK for Rust: GenerateDataKey and Decrypt under the encryption context
``aws:bedrock:session:arn = <session ARN>``, DescribeKey to vet a key at CreateSession), against moto's KMS, which this
module starts on 127.0.0.1 in this process and stops.

moto's Decrypt does not look at a key's state (a disabled key still decrypts there), so a revoked key is played by
taking the key out of the emulator: KMS's answer for a key that is deleted or that the caller may no longer use
(AccessDeniedException). DescribeKey does report a disabled or pending-deletion key, which CreateSession refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from _at_rest import Plaintext, found, sql, wrapped_key

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(180)

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a test dependency (pip install '.[test]')")
REGION = "us-east-1"


@pytest.fixture(scope="module")
def kms_url() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Static credentials through the standard chain (the environment), and no profile or instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def kms(url: str) -> Any:
    return boto3.client("kms", endpoint_url=url, region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret")


def new_key(url: str) -> str:
    return str(kms(url).create_key(Description="bedrock-sessions test")["KeyMetadata"]["Arn"])


def local(db: Path, url: str, **options: Any) -> SessionClient:
    return SessionClient.local(db, kms_endpoint_url=url, **options)


def test_sessions_are_sealed_under_kms_data_keys(tmp_path: Path, kms_url: str) -> None:
    db = tmp_path / "s.db"
    default, named = new_key(kms_url), new_key(kms_url)
    a, b = Plaintext("a"), Plaintext("b")
    with local(db, kms_url, kms_key=default) as client:
        ids_a = a.write(client)
        ids_b = b.write(client, encryptionKeyArn=named)
        assert found(db, a.needles() + b.needles()) == []
        assert client.get_session(sessionIdentifier=ids_b["session"])["encryptionKeyArn"] == named
    # The wrapped keys are KMS's (source byte 2) and name the key that wrapped each.
    for ids, key in ((ids_a, default), (ids_b, named)):
        w = wrapped_key(db, ids["session"])
        assert w is not None and w[1] == 2 and key.encode() in w
    assert found(db, a.needles() + b.needles()) == []
    # A fresh client (no cached keys) unwraps them with KMS.
    with local(db, kms_url, kms_key=default) as client:
        a.check(client, ids_a)
        b.check(client, ids_b)
    # kms=True without a default key: a session that names none stays clear.
    with local(tmp_path / "nd.db", kms_url, kms=True) as client:
        clear = client.create_session(sessionMetadata={"m": "CLEAR-VALUE"})
        client.create_session(encryptionKeyArn=named, sessionMetadata={"m": "SEALED-VALUE"})
    assert found(tmp_path / "nd.db", [b"CLEAR-VALUE"]) != []
    assert found(tmp_path / "nd.db", [b"SEALED-VALUE"]) == []
    assert wrapped_key(tmp_path / "nd.db", clear["sessionId"]) is None


def test_keys_kms_cannot_use_are_refused_at_create_session(tmp_path: Path, kms_url: str) -> None:
    client_kms = kms(kms_url)
    disabled, doomed = new_key(kms_url), new_key(kms_url)
    client_kms.disable_key(KeyId=disabled.rsplit("/", 1)[1])
    client_kms.schedule_key_deletion(KeyId=doomed.rsplit("/", 1)[1], PendingWindowInDays=7)
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
    with local(tmp_path / "s.db", kms_url, kms=True) as client:
        for key, why in ((missing, "not found"), (disabled, "is disabled"), (doomed, "pending deletion")):
            with pytest.raises(client.exceptions.ValidationException) as err:
                client.create_session(encryptionKeyArn=key, sessionMetadata={"m": "NEVER-STORED"})
            assert key in str(err.value) and why in str(err.value), err.value
        assert client.list_sessions()["sessionSummaries"] == []
    assert found(tmp_path / "s.db", [b"NEVER-STORED"]) == []


def test_a_revoked_key_is_a_clear_error_and_changes_nothing(tmp_path: Path, kms_url: str) -> None:
    from moto.kms.models import kms_backends

    db = tmp_path / "s.db"
    key = new_key(kms_url)
    plain = Plaintext()
    writer = local(db, kms_url, kms_key=key)
    ids = plain.write(writer)
    backend = kms_backends["123456789012"][REGION]
    key_id = key.rsplit("/", 1)[1]
    revoked = backend.keys.pop(key_id)
    try:
        # A client that already unwrapped the session's key keeps it for at most 5 minutes (docs/encryption.md).
        plain.check(writer, ids)
        writer.close()
        with local(db, kms_url, kms_key=key) as client:
            for call in (
                lambda: client.get_session(sessionIdentifier=ids["session"]),
                lambda: client.get_invocation_step(sessionIdentifier=ids["session"],
                                                   invocationIdentifier=ids["invocation"],
                                                   invocationStepId=ids["step"]),
                lambda: client.update_session(sessionIdentifier=ids["session"], sessionMetadata={"m": "new"}),
                lambda: client.create_invocation(sessionIdentifier=ids["session"], description="more"),
            ):
                with pytest.raises(client.exceptions.AccessDeniedException) as err:
                    call()
                assert key in str(err.value) and ids["arn"] in str(err.value), err.value
            # A new session under the revoked key is refused too.
            with pytest.raises(client.exceptions.AccessDeniedException, match=key):
                client.create_session()
    finally:
        backend.keys[key_id] = revoked
    with local(db, kms_url, kms_key=key) as client:
        plain.check(client, ids)
        assert len(client.list_invocations(sessionIdentifier=ids["session"])["invocationSummaries"]) == 1
        assert len(client.list_sessions()["sessionSummaries"]) == 1


def test_a_wrapped_key_under_another_sessions_context_does_not_unwrap(tmp_path: Path, kms_url: str) -> None:
    db = tmp_path / "s.db"
    key = new_key(kms_url)
    a, b = Plaintext("a"), Plaintext("b")
    with local(db, kms_url, kms_key=key) as client:
        ids_a, ids_b = a.write(client), b.write(client)
    # A's wrapped data key in B's row: KMS refuses it under B's encryption context.
    sql(db, "UPDATE session_keys SET wrapped = ? WHERE session_seq = (SELECT seq FROM sessions WHERE id = ?)",
        wrapped_key(db, ids_a["session"]), ids_b["session"])
    with local(db, kms_url, kms_key=key) as client:
        with pytest.raises(client.exceptions.InternalServerException) as err:
            client.get_session(sessionIdentifier=ids_b["session"])
        assert "encryption context" in str(err.value) and ids_b["arn"] in str(err.value), err.value
        a.check(client, ids_a)


def test_the_local_server_encrypts_with_kms(tmp_path: Path, kms_url: str) -> None:
    db = tmp_path / "served.db"
    key = new_key(kms_url)
    plain = Plaintext()
    with LocalServer(db, kms_key=key, kms_endpoint_url=kms_url) as server:
        c = server.boto3_client()
        ids = plain.write(c)
        plain.check(c, ids)
        assert found(db, plain.needles()) == []
        err = c.exceptions.ValidationException
        with pytest.raises(err, match="not found"):
            c.create_session(encryptionKeyArn="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-0000000000ff")
