"""The type stub `_core.pyi` matches the built native module, and the package type-checks against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_core_stub_matches_native_module() -> None:
    pytest.importorskip("mypy", reason="mypy is a test dependency (pip install '.[test]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "bedrock_sessions._core", "--ignore-missing-stub"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_package_type_checks() -> None:
    """mypy on the package's sources (pyproject's settings), with the stub of the native module."""
    pytest.importorskip("mypy", reason="mypy is a test dependency (pip install '.[test]')")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(root / "python" / "bedrock_sessions")],
        capture_output=True, text=True, timeout=300, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_api() -> None:
    import bedrock_sessions
    from bedrock_sessions import _core

    for name in bedrock_sessions.__all__:
        assert hasattr(bedrock_sessions, name), name
    assert _core.OPERATIONS == [
        "CreateSession", "GetSession", "ListSessions", "UpdateSession", "EndSession", "DeleteSession",
        "CreateInvocation", "ListInvocations", "PutInvocationStep", "GetInvocationStep", "ListInvocationSteps",
        "TagResource", "UntagResource", "ListTagsForResource",
    ]
    assert bedrock_sessions.SCHEMA_VERSION >= 1
