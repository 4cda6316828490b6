"""Shared by the inspector's tests: the shoe-assistant demo (its module, to compare with what LangGraph reads) and
running the demo as a user runs it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO = ROOT / "examples" / "shoe_assistant.py"
THREAD = "shopper-ana"


def demo_module() -> Any:
    spec = importlib.util.spec_from_file_location("shoe_assistant_demo", DEMO)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its type hints are resolved through it
    spec.loader.exec_module(mod)
    return mod


def run_demo(db: Path) -> str:
    proc = subprocess.run([sys.executable, str(DEMO), "--db", str(db)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(db)
