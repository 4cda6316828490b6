"""Encryption at rest in the embedded store with a local keyring (docs/encryption.md): no byte of known plaintext in the
SQLite file, its WAL or its shared-memory index; everything reads back through the API; an altered or moved record,
missing or wrong key material, and an unusable key at CreateSession each give a clear error and change nothing; old
clear sessions stay readable; keys rotate without rewriting data; the in-memory store follows the same rules.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from _at_rest import (
    KEY_A,
    KEY_B,
    UNKNOWN_KEY,
    Plaintext,
    found,
    new_material,
    sql,
    step_payload,
    wrapped_key,
    write_keyring,
)

from bedrock_sessions import AsyncSessionClient, SessionClient


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    """A keyring with KEY_A (the default) and KEY_B."""
    return write_keyring(tmp_path / "keyring.json", {KEY_A: new_material(), KEY_B: new_material()}, default=KEY_A)


@pytest.mark.parametrize("named", [None, KEY_B], ids=["default-key", "named-key"])
def test_no_plaintext_in_the_files_and_everything_reads_back(tmp_path: Path, ring: Path, named: str | None) -> None:
    db = tmp_path / "s.db"
    plain = Plaintext()
    create = {"encryptionKeyArn": named} if named else {}
    with SessionClient.local(db, keyring=ring) as client:
        ids = plain.write(client, **create)
        # While the client is open: the writes are in the WAL and its index.
        assert found(db, plain.needles()) == []
        plain.check(client, ids)
        got = client.get_session(sessionIdentifier=ids["session"])
        assert got.get("encryptionKeyArn") == named
    # Closed (the WAL checkpointed into the file): still none.
    assert found(db, plain.needles()) == []
    with SessionClient.local(db, keyring=ring) as client:
        plain.check(client, ids)
    # The control: the same writes without encryption are found by the same scan.
    clear_db = tmp_path / "clear.db"
    with SessionClient.local(clear_db) as client:
        plain.write(client)
        assert len(found(clear_db, plain.needles())) >= 5


def test_an_altered_record_is_refused_not_served(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    plain = Plaintext()
    with SessionClient.local(db, keyring=ring) as client:
        ids = plain.write(client)
    original = step_payload(db, ids["step"])
    altered = bytearray(original)
    altered[5000] ^= 0x01
    sql(db, "UPDATE steps SET payload = ? WHERE id = ?", bytes(altered), ids["step"])
    with SessionClient.local(db, keyring=ring) as client:
        with pytest.raises(client.exceptions.InternalServerException) as err:
            client.get_invocation_step(sessionIdentifier=ids["session"], invocationIdentifier=ids["invocation"],
                                       invocationStepId=ids["step"])
        message = str(err.value)
        assert "does not open" in message and ids["arn"] in message and ids["step"] in message
    # Put back, it reads again: nothing else was changed.
    sql(db, "UPDATE steps SET payload = ? WHERE id = ?", original, ids["step"])
    with SessionClient.local(db, keyring=ring) as client:
        plain.check(client, ids)


def test_a_record_moved_to_another_session_is_refused(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    a, b = Plaintext("a"), Plaintext("b")
    with SessionClient.local(db, keyring=ring) as client:
        ids_a, ids_b = a.write(client), b.write(client)
    # A's sealed step into B's step row; A's sealed metadata into B's session row.
    sql(db, "UPDATE steps SET payload = ? WHERE id = ?", step_payload(db, ids_a["step"]), ids_b["step"])
    sql(db, "UPDATE sessions SET metadata = (SELECT metadata FROM sessions WHERE id = ?) WHERE id = ?",
        ids_a["session"], ids_b["session"])
    with SessionClient.local(db, keyring=ring) as client:
        with pytest.raises(client.exceptions.InternalServerException, match="does not open"):
            client.get_invocation_step(sessionIdentifier=ids_b["session"], invocationIdentifier=ids_b["invocation"],
                                       invocationStepId=ids_b["step"])
        with pytest.raises(client.exceptions.InternalServerException, match="does not open"):
            client.get_session(sessionIdentifier=ids_b["session"])
        # A is untouched.
        a.check(client, ids_a)


def test_plaintext_put_in_place_of_a_sealed_value_is_refused(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    plain = Plaintext()
    with SessionClient.local(db, keyring=ring) as client:
        ids = plain.write(client)
    sql(db, "UPDATE sessions SET metadata = ? WHERE id = ?", json.dumps({"address": "forged"}), ids["session"])
    with SessionClient.local(db, keyring=ring) as client:
        with pytest.raises(client.exceptions.InternalServerException, match="stored in clear"):
            client.get_session(sessionIdentifier=ids["session"])


def _writes_all_refused(client: SessionClient, ids: dict[str, str], code: str) -> None:
    from datetime import datetime, timezone

    calls = [
        lambda: client.get_session(sessionIdentifier=ids["session"]),
        lambda: client.get_invocation_step(sessionIdentifier=ids["session"], invocationIdentifier=ids["invocation"],
                                           invocationStepId=ids["step"]),
        lambda: client.list_invocations(sessionIdentifier=ids["session"]),
        lambda: client.put_invocation_step(sessionIdentifier=ids["session"], invocationIdentifier=ids["invocation"],
                                           invocationStepTime=datetime.now(timezone.utc),
                                           payload={"contentBlocks": [{"text": "more"}]}),
        lambda: client.update_session(sessionIdentifier=ids["session"], sessionMetadata={"x": "y"}),
        lambda: client.create_invocation(sessionIdentifier=ids["session"], description="another"),
        lambda: client.end_session(sessionIdentifier=ids["session"]),
    ]
    for call in calls:
        with pytest.raises(Exception) as err:
            call()
        assert err.value.response["Error"]["Code"] == code, err.value  # type: ignore[attr-defined]
        assert KEY_A in str(err.value)


def test_missing_or_wrong_key_material_is_a_clear_error_and_changes_nothing(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    plain = Plaintext()
    with SessionClient.local(db, keyring=ring) as client:
        ids = plain.write(client)
    before = sql(db, "SELECT COUNT(*) FROM steps")[0][0], sql(db, "SELECT COUNT(*) FROM invocations")[0][0]
    # No key material at all.
    with SessionClient.local(db) as client:
        _writes_all_refused(client, ids, "AccessDeniedException")
        with pytest.raises(client.exceptions.AccessDeniedException, match="opened without key material"):
            client.get_session(sessionIdentifier=ids["session"])
        # What is clear stays listable: ids, times and tags.
        assert client.list_sessions()["sessionSummaries"][0]["sessionId"] == ids["session"]
        assert client.list_tags_for_resource(resourceArn=ids["arn"])["tags"] == {"app": "shoes"}
    # A keyring without the session's key; one with other material under the same key ARN.
    other = write_keyring(tmp_path / "other.json", {KEY_B: new_material()}, default=KEY_B)
    impostor = write_keyring(tmp_path / "impostor.json", {KEY_A: new_material()}, default=KEY_A)
    for keys, why in [(other, "is not in keyring"), (impostor, "does not hold")]:
        with SessionClient.local(db, keyring=keys) as client:
            _writes_all_refused(client, ids, "AccessDeniedException")
            with pytest.raises(client.exceptions.AccessDeniedException, match=why):
                client.get_session(sessionIdentifier=ids["session"])
    assert (sql(db, "SELECT COUNT(*) FROM steps")[0][0], sql(db, "SELECT COUNT(*) FROM invocations")[0][0]) == before
    with SessionClient.local(db, keyring=ring) as client:
        plain.check(client, ids)
        assert client.get_session(sessionIdentifier=ids["session"])["sessionStatus"] == "ACTIVE"


def test_a_key_the_store_cannot_use_is_refused_at_create_session(tmp_path: Path, ring: Path) -> None:
    no_default = write_keyring(tmp_path / "nd.json", {KEY_A: new_material()})
    for client, key, why in [
        (SessionClient.local(tmp_path / "none.db"), KEY_A, "no key material"),
        (SessionClient.local(tmp_path / "ring.db", keyring=ring), UNKNOWN_KEY, "is not in keyring"),
        (SessionClient.memory(), KEY_A, "no key material"),
        (SessionClient.memory(keyring=no_default), UNKNOWN_KEY, "is not in keyring"),
    ]:
        with client:
            with pytest.raises(client.exceptions.ValidationException) as err:
                client.create_session(encryptionKeyArn=key, sessionMetadata={"secret": "never stored"})
            assert key in str(err.value) and why in str(err.value) and "not created" in str(err.value)
            assert client.list_sessions()["sessionSummaries"] == []
    for db in ("none.db", "ring.db"):
        assert found(tmp_path / db, [b"never stored"]) == []
    # Without a default key, sessions that name none are clear; those that name a held key are encrypted.
    with SessionClient.local(tmp_path / "nd.db", keyring=no_default) as client:
        clear = client.create_session(sessionMetadata={"m": "CLEAR-METADATA-VALUE"})
        sealed = client.create_session(encryptionKeyArn=KEY_A, sessionMetadata={"m": "SEALED-METADATA-VALUE"})
    assert found(tmp_path / "nd.db", [b"CLEAR-METADATA-VALUE"]) != []
    assert found(tmp_path / "nd.db", [b"SEALED-METADATA-VALUE"]) == []
    assert wrapped_key(tmp_path / "nd.db", clear["sessionId"]) is None
    assert wrapped_key(tmp_path / "nd.db", sealed["sessionId"]) is not None


def test_old_clear_sessions_stay_readable_with_a_keyring(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    old, new = Plaintext("old"), Plaintext("new")
    with SessionClient.local(db) as client:
        old_ids = old.write(client)
    with SessionClient.local(db, keyring=ring) as client:
        old.check(client, old_ids)
        new_ids = new.write(client)
        new.check(client, new_ids)
    # The old session is as it was (clear: it was written so); the new one is sealed.
    assert found(db, [old.text[:60].encode()]) != []
    assert found(db, new.needles()) == []


def test_keys_rotate_without_rewriting_data(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    v1, v2 = new_material(), new_material()
    ring1 = write_keyring(tmp_path / "v1.json", {KEY_A: v1}, default=KEY_A)
    ring2 = write_keyring(tmp_path / "v2.json", {KEY_A: [v1, v2]}, default=KEY_A)
    only2 = write_keyring(tmp_path / "only2.json", {KEY_A: v2}, default=KEY_A)
    before, after = Plaintext("before"), Plaintext("after")
    with SessionClient.local(db, keyring=ring1) as client:
        ids1 = before.write(client)
    row = step_payload(db, ids1["step"])
    with SessionClient.local(db, keyring=ring2) as client:
        before.check(client, ids1)
        ids2 = after.write(client)
    assert step_payload(db, ids1["step"]) == row, "rotation rewrites nothing"
    # New data keys are wrapped by the newest version: a keyring with version 2 alone reads them, not the old ones.
    with SessionClient.local(db, keyring=only2) as client:
        after.check(client, ids2)
        with pytest.raises(client.exceptions.AccessDeniedException, match="does not hold"):
            client.get_session(sessionIdentifier=ids1["session"])


def test_keyring_files_are_checked(tmp_path: Path) -> None:
    loose = write_keyring(tmp_path / "loose.json", {KEY_A: new_material()})
    loose.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        SessionClient.local(tmp_path / "s.db", keyring=loose)
    bad = write_keyring(tmp_path / "bad.json", {"my-key": new_material()})
    with pytest.raises(ValueError, match="is not a KMS key ARN"):
        SessionClient.memory(keyring=bad)
    with pytest.raises(ValueError, match="cannot open"):
        SessionClient.memory(keyring=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="one key source"):
        SessionClient.memory(keyring=loose, kms_key=KEY_A)
    with pytest.raises(ValueError, match="give kms_key"):
        SessionClient.memory(kms_endpoint_url="http://127.0.0.1:1")


def test_the_memory_store_seals_the_same_way(ring: Path) -> None:
    plain = Plaintext()
    with SessionClient.memory(keyring=ring) as client:
        ids = plain.write(client)
        plain.check(client, ids)
        # A retry of a step with the same content is a success; other content is a conflict.
        from _at_rest import T0

        put = dict(sessionIdentifier=ids["session"], invocationIdentifier=ids["invocation"],
                   invocationStepId=ids["step"], invocationStepTime=T0,
                   payload={"contentBlocks": [{"text": plain.text},
                                              {"image": {"format": "png", "source": {"bytes": plain.image}}}]})
        assert client.put_invocation_step(**put)["invocationStepId"] == ids["step"]
        with pytest.raises(client.exceptions.ConflictException):
            client.put_invocation_step(**{**put, "payload": {"contentBlocks": [{"text": "other"}]}})


def test_the_async_client_reads_and_writes_sealed_sessions(tmp_path: Path, ring: Path) -> None:
    async def main() -> None:
        async with AsyncSessionClient.local(tmp_path / "s.db", keyring=ring) as client:
            s = await client.create_session(sessionMetadata={"k": "ASYNC-SECRET-VALUE"})
            got = await client.get_session(sessionIdentifier=s["sessionId"])
            assert got["sessionMetadata"] == {"k": "ASYNC-SECRET-VALUE"}
            with pytest.raises(client.exceptions.ValidationException):
                await client.create_session(encryptionKeyArn=UNKNOWN_KEY)

    asyncio.run(main())
    assert found(tmp_path / "s.db", [b"ASYNC-SECRET-VALUE"]) == []
