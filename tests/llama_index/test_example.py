"""examples/llama_index_agent.py: a FunctionAgent whose Memory survives a process restart on the embedded store."""

from __future__ import annotations

import subprocess
from pathlib import Path

from _li_support import PYTHON, REPO

EXAMPLE = str(REPO / "examples" / "llama_index_agent.py")
# Warnings are errors here too, except the one third-party warning FunctionAgent cannot avoid (see test_costs.py):
# llama-index-workflows' inspect.getmembers() over the agent reads deprecated pydantic attributes.
WARNINGS = ["-W", "error", "-W", "ignore::DeprecationWarning:inspect"]


def _turn(db: Path, say: str) -> str:
    proc = subprocess.run(
        [PYTHON, *WARNINGS, EXAMPLE, "--db", str(db), "--say", say], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_memory_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    first = _turn(db, "Hi, my name is Ana. Do you have the Ridge Runner in size 42?")
    assert "agent: Nice to meet you, Ana!" in first
    second = _turn(db, "What is my name?")
    assert "agent: You are Ana. You asked about the Ridge Runner in size 42." in second
    assert "(4 messages in the memory of 'ana'" in second
