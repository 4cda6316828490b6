"""The LlamaIndex stores as they were before their engine moved to the Rust core: ``llama_index.py`` of commit
``BEFORE``, taken from git history and loaded beside the installed package (it uses the same ``_core`` ids and thread
resolver). Used by ``benches/llama_memory.py`` (before and after, in one run) and by
``tests/llama_index/data/make_li1_store.py`` (a store that implementation wrote). Nothing of it is committed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

BEFORE = "88bea87"
ROOT = Path(__file__).resolve().parent.parent


def load(rev: str = BEFORE) -> ModuleType:
    """The module, or OSError when the history is not there (a shallow clone)."""
    name = "bedrock_sessions._li_before"
    if name in sys.modules:
        return sys.modules[name]
    got = subprocess.run(
        ["git", "show", f"{rev}:python/bedrock_sessions/llama_index.py"], capture_output=True, text=True, cwd=ROOT
    )
    if got.returncode != 0:
        raise OSError(f"git show {rev}: {got.stderr.strip()}")
    path = Path(tempfile.mkdtemp(prefix="li-before-")) / "_li_before.py"
    path.write_text(got.stdout)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
