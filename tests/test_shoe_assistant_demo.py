"""The main demo (examples/shoe_assistant.py) runs offline on BedrockSessionSaver and tells its whole story,
the same way every time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "shoe_assistant.py"

pytest.importorskip("langgraph")


def run_demo(db: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(DEMO), "--db", str(db)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def section(out: str, number: int) -> str:
    """The text of step `number` ("3. ..." up to the next numbered step)."""
    match = re.search(rf"^{number}\. .*?(?=^{number + 1}\. |\Z)", out, re.S | re.M)
    assert match, f"step {number} missing from:\n{out}"
    return match.group(0)


def mask(out: str) -> str:
    """Hide what legitimately differs between runs: file paths, ids and times."""
    out = re.sub(r"^embedded session store: .*$", "embedded session store: <db>", out, flags=re.M)
    out = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", out)
    out = re.sub(r"arn:aws:[^\s'\"]+", "<arn>", out)
    out = re.sub(r"#[0-9a-f]{8}\b", "#<id>", out)
    out = re.sub(r"\b\d+ bytes\b", "<n> bytes", out)  # serialized sizes vary a little (timestamps, versions)
    # Writes that meet in flight share a step (group commit), so the step count depends on timing.
    out = re.sub(r"\b\d+ steps in\b", "<n> steps in", out)
    out = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?", "<time>", out)
    return re.sub(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b", "<time>", out)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("shoe") / "shop.db"
    out = run_demo(db)
    assert db.exists() and db.stat().st_size > 0, "the demo must write its state to the --db file"
    return out


def test_step1_uses_bedrock_session_saver(output: str) -> None:
    assert "checkpointer BedrockSessionSaver" in section(output, 1)


def test_step2_turns_remember_the_cart(output: str) -> None:
    turns = section(output, 2)
    assert "search_catalogue(query='trail', size=42)" in turns
    assert "Ridge Runner (TR-RIDGE, 89 EUR); Summit Pro (TR-SUMMIT, 129 EUR)" in turns
    cart_lines = [ln.split("cart:", 1)[1].strip() for ln in turns.splitlines() if ln.strip().startswith("cart:")]
    assert cart_lines == [
        "(empty)",
        "Ridge Runner size 42 (89 EUR); total 89 EUR",
        "Ridge Runner size 42 (89 EUR), City Glide size 42 (75 EUR); total 164 EUR",
        "Ridge Runner size 42 (89 EUR), City Glide size 42 (75 EUR); total 164 EUR",
    ]
    # Turn 4 only says "my cart": the answer comes from the cart the checkpointer kept in graph state.
    assert "tool call: view_cart()" in turns
    assert "Your cart: Ridge Runner size 42 (89 EUR), City Glide size 42 (75 EUR); total 164 EUR" in turns


def test_step3_checkout_waits_for_approval(output: str) -> None:
    checkout = section(output, 3)
    assert "paused before: ('checkout',)" in checkout
    assert (
        "pending interrupt: {'question': 'Place this order?', 'cart': ['TR-RIDGE size 42', 'CT-GLIDE size 42'], "
        "'total': 164}" in checkout
    )
    # The interrupt is shown before resuming, and the resumed run places the order.
    assert checkout.index("pending interrupt") < checkout.index('Command(resume={"approved": True})')
    assert "Order placed: 2 pairs, 164 EUR." in checkout
    assert "order: {'status': 'placed', 'pairs': 2, 'total': 164}" in checkout


def test_step4_state_history(output: str) -> None:
    history = section(output, 4)
    rows = [ln.split() for ln in history.splitlines() if re.match(r"^\s+-?\d+\s+(input|loop)\s", ln)]
    assert len(rows) > 20
    assert int(rows[0][0]) > int(rows[-1][0]), "newest first"
    assert rows[-1][:3] == ["-1", "input", "__start__"] and rows[-1][-1] == "-"  # the first checkpoint has no parent
    assert all(re.fullmatch(r"#[0-9a-f]{8}", row[-2]) for row in rows)
    # Each checkpoint's parent is the one listed below it: one linear thread so far.
    assert [row[-1] for row in rows[:-1]] == [row[-2] for row in rows[1:]]
    assert f"{len(rows)} checkpoints" in history
    assert any(row[2] == "checkout" for row in rows)


def test_step5_replay_runs_again(output: str) -> None:
    replay = section(output, 5)
    assert "next ('tools',), cart Ridge Runner size 42 (89 EUR); total 89 EUR" in replay
    assert "ran again: tools -> agent" in replay
    assert "cart after the replay: Ridge Runner size 42 (89 EUR), City Glide size 42 (75 EUR); total 164 EUR" in replay
    assert replay.count("new checkpoint #") >= 2


def test_step6_fork_takes_another_path(output: str) -> None:
    fork = section(output, 6)
    assert "'cart': ['TR-RIDGE size 43', 'CT-GLIDE size 42'], 'total': 164" in fork
    assert "Order not placed: approval declined." in fork
    main = next(ln for ln in fork.splitlines() if ln.strip().startswith("main branch"))
    forked = next(ln for ln in fork.splitlines() if ln.strip().startswith("fork "))
    assert "Ridge Runner size 42" in main and "order: placed" in main
    assert "Ridge Runner size 43" in forked and "order: declined" in forked


def test_step7_audit_reads_the_session_data(output: str) -> None:
    audit = section(output, 7)
    assert "list_sessions" in audit and "list_invocation_steps" in audit
    m = re.search(r"(\d+) checkpoints, (\d+) writes records", audit)
    assert m and int(m.group(1)) > 20, audit
    # The auditor deserializes the cart out of the stored checkpoints.
    assert "Ridge Runner size 43" in audit and "Ridge Runner size 42" in audit


def test_output_is_deterministic(output: str, tmp_path: Path) -> None:
    again = run_demo(tmp_path / "again.db")
    assert mask(again) == mask(output)
