"""Fixtures of the inspector's tests."""

from __future__ import annotations

import pytest
from _inspect_support import run_demo


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shoe-assistant demo's database, written once per test session by running the demo."""
    return run_demo(tmp_path_factory.mktemp("demo") / "shop.db")
