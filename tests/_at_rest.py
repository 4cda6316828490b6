"""Shared by the data-protection tests (encryption at rest, retention, erasure): keyring files, a scan of a store's
files for plaintext, a distinctive plaintext to write, and the raw rows of a closed store.

A store's files are read as bytes (no SQLite library) while a client has them open; they are changed with Python's
sqlite3 only after the client is closed (two SQLite libraries in one process must not hold one file at once).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

KEY_A = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_B = "arn:aws:kms:us-east-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab"
UNKNOWN_KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def new_material() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def write_keyring(path: Path, keys: dict[str, str | list[str]], default: str | None = None) -> Path:
    """A keyring file readable by its owner only (the store refuses any other)."""
    doc: dict[str, Any] = {"keys": keys}
    if default is not None:
        doc["default"] = default
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


def files_of(db: Path) -> list[Path]:
    """The database file, its WAL and its shared-memory index, those that exist."""
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def encodings(plain: bytes) -> list[bytes]:
    """``plain`` as it may sit in a store: raw, and base64-encoded at each of the three alignments (the saver keeps
    serialized state as base64 inside its JSON records): each variant is the run of base64 characters that every
    encoding of ``plain`` at that alignment contains."""
    out = [plain]
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + plain)
        out.append(enc[4:-4])  # the head carries the padding's bits, the tail the end's
    return out


def found(db: Path, needles: list[bytes]) -> list[str]:
    """Which needles occur in the store's files ("<needle> in <file>"); [] when none does."""
    hits = []
    for p in files_of(db):
        data = p.read_bytes()
        for n in needles:
            if n in data:
                hits.append(f"{n[:24]!r}... in {p.name}")
    return hits


class Plaintext:
    """Known plaintext, large and distinctive, for every kind of record: metadata values, an invocation description,
    step text (over several pages, so in overflow pages) and image bytes."""

    def __init__(self, tag: str = "") -> None:
        rnd = random.Random(f"plaintext{tag}")
        self.metadata = {"address": f"METADATA-{tag}-ana-lives-at-12-rue-des-lilas-{rnd.random()}",
                         "card": f"CARD-{tag}-4970-1234-5678-9012"}
        self.description = f"DESCRIPTION-{tag}-the-shoe-hunt-turn-one"
        self.text = f"MESSAGE-{tag}-she-wants-size-42-trail-shoes-in-blue " * 300
        self.image = bytes(rnd.getrandbits(8) for _ in range(120_000))
        self.metadata2 = {"address": f"UPDATED-{tag}-ana-moved-to-3-quai-des-fleurs"}

    def needles(self) -> list[bytes]:
        return [
            self.metadata["address"].encode(),
            self.metadata["card"].encode(),
            self.metadata2["address"].encode(),
            self.description.encode(),
            self.text[:60].encode(),
            self.image[1000:1048],
            self.image[90_000:90_048],
        ]

    def write(self, client: Any, **create: Any) -> dict[str, str]:
        """A session with all of it; returns its ids."""
        s = client.create_session(sessionMetadata=self.metadata, tags={"app": "shoes"}, **create)
        inv = client.create_invocation(sessionIdentifier=s["sessionId"], description=self.description)
        step = client.put_invocation_step(
            sessionIdentifier=s["sessionId"], invocationIdentifier=inv["invocationId"], invocationStepTime=T0,
            payload={"contentBlocks": [{"text": self.text},
                                       {"image": {"format": "png", "source": {"bytes": self.image}}}]},
        )
        client.update_session(sessionIdentifier=s["sessionId"], sessionMetadata=self.metadata2)
        return {"session": s["sessionId"], "arn": s["sessionArn"], "invocation": inv["invocationId"],
                "step": step["invocationStepId"]}

    def check(self, client: Any, ids: dict[str, str]) -> None:
        """Everything reads back intact through the API."""
        got = client.get_session(sessionIdentifier=ids["session"])
        assert got["sessionMetadata"] == self.metadata2
        invs = client.list_invocations(sessionIdentifier=ids["session"])["invocationSummaries"]
        assert [i["invocationId"] for i in invs] == [ids["invocation"]]
        step = client.get_invocation_step(sessionIdentifier=ids["session"], invocationIdentifier=ids["invocation"],
                                          invocationStepId=ids["step"])["invocationStep"]
        blocks = step["payload"]["contentBlocks"]
        assert blocks[0]["text"] == self.text
        assert blocks[1]["image"]["source"]["bytes"] == self.image


def sql(db: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Runs a statement on a store's file (no client may have it open), committed."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(query, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def step_payload(db: Path, step_id: str) -> bytes:
    return bytes(sql(db, "SELECT payload FROM steps WHERE id = ?", step_id)[0][0])


def wrapped_key(db: Path, session_id: str) -> bytes | None:
    rows = sql(db, "SELECT k.wrapped FROM session_keys k JOIN sessions s ON s.seq = k.session_seq WHERE s.id = ?",
               session_id)
    return bytes(rows[0][0]) if rows else None
