"""The inspector commands on an embedded store encrypted at rest (``--keyring``), and ``copy`` as the way to encrypt the
sessions of an existing clear store (they are not encrypted in place: docs/encryption.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _at_rest import KEY_A, encodings, found, new_material, write_keyring  # noqa: E402
from _lg_graphs import three_nodes  # noqa: E402
from test_inspector_cli import cli, cli_json  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402

SECRET = "INSPECTED-secret-item-of-the-thread"


def test_inspect_and_copy_with_a_keyring(tmp_path: Path) -> None:
    clear, sealed = tmp_path / "clear.db", tmp_path / "sealed.db"
    ring = write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)
    with SessionClient.local(clear) as client:
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
        graph.invoke({"items": [SECRET]}, {"configurable": {"thread_id": "t1"}})
    assert found(clear, encodings(SECRET.encode())) != []
    # copy into a new file under the keyring: the same thread, now sealed.
    cli("copy", "--db", str(clear), "--to-db", str(sealed), "--to-keyring", str(ring))
    assert found(sealed, encodings(SECRET.encode())) == []
    threads = cli_json("threads", "--db", str(sealed), "--keyring", str(ring))
    assert [t["thread_id"] for t in threads] == ["t1"]
    shown = cli("show", "--db", str(sealed), "--keyring", str(ring), "t1").stdout
    assert SECRET in shown
    # Without the keyring: one clear line naming the key, no traceback.
    proc = cli("threads", "--db", str(sealed), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "AccessDeniedException" in proc.stderr and KEY_A in proc.stderr
    # A keyring without --db is refused.
    proc = cli("threads", "--endpoint", "http://127.0.0.1:9", "--keyring", str(ring), check=False)
    assert proc.returncode == 2 and "--keyring goes with --db" in proc.stderr
