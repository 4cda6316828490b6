"""The benchmark harness in its --quick mode, as a correctness check (no timing is asserted): every saver, ours in the
default and in the deferred mode, the replaced saver over the local server, InMemorySaver and SqliteSaver, must end the
same graph runs with the same results, or the command exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph_checkpoint_aws")
pytest.importorskip("langgraph.checkpoint.sqlite")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_and_every_saver_agrees(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "run.py"), "--quick", "--no-memory", "--only", "linear,fanout,history",
         "--latency-ms", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=580,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "every correctness check passed" in proc.stdout
    import json

    data = json.loads(out.read_text())
    kinds = {s["kind"] for s in data["sections"]}
    assert {"old", "ours-http", "ours-http-deferred", "ours-local", "ours-local-deferred", "inmemory", "sqlite"} <= kinds
    assert not [s for s in data["sections"] if s["error"]]


@pytest.mark.timeout(300)
def test_quick_llama_index_memory_benchmark_runs(tmp_path: Path) -> None:
    """benches/llama_memory.py --quick: every store reads back every message and every Memory turn (it asserts the
    counts itself), and the report names each store."""
    import json

    out = tmp_path / "li.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "llama_memory.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    stores = {"sqlalchemy", "ours-file", "ours-memory", "ours-http"}
    # The implementation before the move to Rust is measured too where git history has it (not in a shallow clone).
    history = subprocess.run(["git", "cat-file", "-e", "88bea87^{commit}"], cwd=ROOT, capture_output=True).returncode == 0
    if history:
        stores |= {"before-file", "before-memory", "before-http"}
    assert set(data["median_ms"]) == stores, proc.stderr[-2000:]
    assert all(set(v) == {"get_messages cold", "get_messages warm", "memory turn"} for v in data["median_ms"].values())


@pytest.mark.timeout(600)
def test_quick_inspector_benchmark_runs(tmp_path: Path) -> None:
    """benches/inspector.py --quick: a 500-checkpoint thread's history through Python, HTTP and (with Chromium) the
    page; the report counts every checkpoint."""
    import json

    out = tmp_path / "inspector.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "inspector.py"), "--quick", "--runs", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=580,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["checkpoints"] == 500
    assert {"history (Python)", "history (HTTP)"} <= set(data["median_ms"])


@pytest.mark.timeout(300)
def test_quick_auth_benchmark_runs(tmp_path: Path) -> None:
    """benches/auth.py --quick: the same requests against an open server, a signed one, one with tag-scoped policies,
    and one that also audits; every case reports a figure."""
    import json

    out = tmp_path / "auth.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "auth.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert set(data["ms_per_request"]) == {"open", "signed", "abac", "abac + audit"}
    assert all(v > 0 for v in data["ms_per_request"].values())


@pytest.mark.timeout(300)
def test_quick_encryption_benchmark_runs(tmp_path: Path) -> None:
    """benches/encryption.py --quick: a 3-node turn and 1 MB puts with and without encryption at rest, on a file and in
    memory; each run checks its results and that the encrypted file holds none of the turn's text."""
    import json

    out = tmp_path / "encryption.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "encryption.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert len(data["ratio"]) == 9 and all(v > 0 for v in data["ratio"].values())
