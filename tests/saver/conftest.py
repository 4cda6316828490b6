"""Fixtures of the LangGraph scenario tests (the savers and the scenario runner are in ``_saver_kinds.py``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _saver_kinds import MODES, SAVERS_UNDER_TEST, run_scenario  # noqa: E402

_reference_cache: dict[tuple[str, str], list[Any]] = {}


@pytest.fixture
def reference_record(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], list[Any]]:
    """``reference_record(name, mode)``: the scenario's record on ``InMemorySaver`` (computed once per session)."""

    def get(name: str, mode: str) -> list[Any]:
        key = (name, mode)
        if key not in _reference_cache:
            _reference_cache[key] = run_scenario(name, "reference", mode, tmp_path_factory.mktemp("ref"))
        return _reference_cache[key]

    return get


@pytest.fixture(params=SAVERS_UNDER_TEST)
def saver_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param
