"""Retention and erasure in the embedded store (docs/encryption.md, "Retention and erasure"), driven by a ManualClock:
sessions past retention (counted from their last update) are gone from the API at once; a sweep (or the next opening)
erases them from the SQLite file, its WAL and its index, their data keys first; DeleteSession erases the same way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _at_rest import KEY_A, T0, Plaintext, files_of, found, new_material, sql, wrapped_key, write_keyring

from bedrock_sessions import AsyncSessionClient, ManualClock, SessionClient

DAY = 86_400.0


def _long_lived(**options: object) -> dict[str, object]:
    # Sessions stay writable across the test's days (the idle timeout is the service's hour otherwise).
    return {"idle_timeout": 400 * DAY, **options}


@pytest.mark.parametrize("encrypted", [False, True], ids=["clear", "encrypted"])
def test_sessions_past_retention_leave_the_api_then_the_files(tmp_path: Path, encrypted: bool) -> None:
    db = tmp_path / "s.db"
    keys = {"keyring": write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)} if encrypted else {}
    clock = ManualClock(start=T0)
    old, kept = Plaintext("old"), Plaintext("kept")
    with SessionClient.local(db, clock=clock, retention_days=30, **_long_lived(**keys)) as client:
        old_ids = old.write(client)
        kept_ids = kept.write(client)
    old_key = wrapped_key(db, old_ids["session"])
    assert (old_key is not None) == encrypted
    with SessionClient.local(db, clock=clock, retention_days=30, **_long_lived(**keys)) as client:
        clock.advance(20 * DAY)
        client.update_session(sessionIdentifier=kept_ids["session"], sessionMetadata=kept.metadata2)  # day 20
        assert client.sweep() == 0
        clock.advance(10 * DAY)
        # Day 30: `old` was last updated 30 days ago. Gone from the API before any sweep, by id and by ARN.
        for ident in (old_ids["session"], old_ids["arn"]):
            with pytest.raises(client.exceptions.ResourceNotFoundException):
                client.get_session(sessionIdentifier=ident)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_invocation_step(sessionIdentifier=old_ids["session"], invocationIdentifier=old_ids["invocation"],
                                       invocationStepId=old_ids["step"])
        listed = [s["sessionId"] for s in client.list_sessions()["sessionSummaries"]]
        assert listed == [kept_ids["session"]]
        assert client.sweep() == 1
        # Its plaintext (and data key) is gone from the files while the client is open; the other session is intact.
        needles = old.needles() + ([old_key] if old_key else [])
        assert found(db, needles) == []
        kept.check(client, kept_ids)
        assert client.sweep() == 0
    assert found(db, needles) == []
    assert sql(db, "SELECT COUNT(*) FROM session_keys")[0][0] == (1 if encrypted else 0)


def test_a_store_sweeps_when_it_opens(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    clock = ManualClock(start=T0)
    plain = Plaintext()
    with SessionClient.local(db, clock=clock) as client:
        ids = plain.write(client)
    clock.advance(8 * DAY)
    # Without retention nothing goes; with a week of it, the session is erased as the store opens.
    with SessionClient.local(db, clock=clock) as client:
        plain.check(client, ids)
    with SessionClient.local(db, clock=clock, retention_days=7) as client:
        assert found(db, plain.needles()) == []
        assert client.list_sessions()["sessionSummaries"] == []


def test_delete_session_erases_from_the_files(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    gone, kept = Plaintext("gone"), Plaintext("kept")
    with SessionClient.local(db) as client:
        gone_ids, kept_ids = gone.write(client), kept.write(client)
        size = db.stat().st_size + Path(f"{db}-wal").stat().st_size
        client.end_session(sessionIdentifier=gone_ids["session"])
        client.delete_session(sessionIdentifier=gone_ids["session"])
        # A clear session: its plaintext is zeroed (secure_delete), the WAL checkpointed and truncated, the file's
        # freed pages given back (the file was created with incremental auto-vacuum).
        assert found(db, gone.needles()) == []
        assert Path(f"{db}-wal").stat().st_size == 0
        assert db.stat().st_size < size * 0.75
        kept.check(client, kept_ids)
    assert [p.name for p in files_of(db)] == ["s.db"]


def test_delete_session_destroys_the_data_key(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ring = write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)
    plain = Plaintext()
    with SessionClient.local(db, keyring=ring) as client:
        ids = plain.write(client)
    key = wrapped_key(db, ids["session"])
    assert key is not None
    with SessionClient.local(db, keyring=ring) as client:
        client.end_session(sessionIdentifier=ids["session"])
        client.delete_session(sessionIdentifier=ids["session"])
        assert found(db, [key]) == []
    assert sql(db, "SELECT COUNT(*) FROM session_keys")[0][0] == 0


def test_a_session_can_be_erased_without_its_key(tmp_path: Path) -> None:
    """Lost key material must not keep data alive: DeleteSession and the sweep need no key."""
    db = tmp_path / "s.db"
    ring = write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)
    clock = ManualClock(start=T0)
    with SessionClient.local(db, keyring=ring, clock=clock) as client:
        a = Plaintext("a").write(client)
        Plaintext("b").write(client)
        client.end_session(sessionIdentifier=a["session"])
    # Opened without the keyring: `a` is deleted, `b` swept once past retention.
    with SessionClient.local(db, clock=clock, retention_days=10) as client:
        client.delete_session(sessionIdentifier=a["session"])
        clock.advance(11 * DAY)
        assert client.sweep() == 1
    assert sql(db, "SELECT COUNT(*) FROM sessions")[0][0] == 0


def test_retention_in_memory_and_through_the_async_client(tmp_path: Path) -> None:
    clock = ManualClock(start=T0)
    with SessionClient.memory(clock=clock, retention_days=1) as client:
        s = client.create_session()
        clock.advance(DAY)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_session(sessionIdentifier=s["sessionId"])
        assert client.sweep() == 1

    async def main() -> None:
        async with AsyncSessionClient.local(tmp_path / "a.db", clock=clock, retention_days=1) as client:
            await client.create_session()
            clock.advance(2 * DAY)
            assert await client.sweep() == 1

    asyncio.run(main())


def test_retention_settings_are_checked(tmp_path: Path) -> None:
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="retention_days"):
            SessionClient.memory(retention_days=bad)
    # Without retention nothing is due.
    with SessionClient.local(tmp_path / "s.db") as client:
        client.create_session()
        assert client.sweep() == 0
