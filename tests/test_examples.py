"""The README's demo runs, offline, and tells its whole story."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_session_demo_runs_on_a_given_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "session_demo.py"), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for marker in ("1. created session", "2. turn 4", "3. the conversation", "4. session metadata", "5. ended", "6. deleted"):
        assert marker in out, f"{marker!r} missing from:\n{out}"
    # Oldest first, user before assistant, and the image block described.
    lines = [ln for ln in out.splitlines() if ln.startswith("   09:")]
    assert len(lines) == 8
    assert lines[0].split()[1] == "user:" and lines[1].split()[1] == "assistant:"
    assert "[png image, 70 bytes]" in out
    assert db.exists() and db.stat().st_size > 0


def test_session_demo_uses_only_boto3_calls() -> None:
    """The demo's `run(client)` is plain boto3 code: it must not reach into bedrock_sessions internals."""
    source = (ROOT / "examples" / "session_demo.py").read_text()
    body = source.split("def run(", 1)[1].split("\ndef main", 1)[0]
    assert "bedrock_sessions" not in body
    assert "_native" not in body


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_demo_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "session_demo.py"), "--help"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0 and "--db" in proc.stdout
