"""Fixtures of the LlamaIndex suite: our stores on three backends, and LlamaIndex's own stores as references.

Backends (``li_backend``): ``memory`` (SessionClient.memory()), ``file`` (an embedded SQLite file) and ``bedrock``
(SessionClient.bedrock() — the AWS SDK for Rust over HTTP — against a LocalServer started by the test, with a thread
index session created through the server's own client).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _li_support import Backend  # noqa: E402

BACKENDS = ("memory", "file", "bedrock")


@pytest.fixture
def make_backend(tmp_path: Path, aws_credentials: dict[str, str]) -> Iterator[Callable[..., Backend]]:
    """open(kind, **store_options) -> Backend; everything opened is closed after the test."""
    with contextlib.ExitStack() as stack:
        n = iter(range(1000))

        def open_(kind: str, **options: Any) -> Backend:
            return Backend(kind, tmp_path / f"b{next(n)}", stack, **options)

        yield open_


@pytest.fixture(params=BACKENDS)
def li_backend(request: pytest.FixtureRequest, make_backend: Callable[..., Backend]) -> Backend:
    return make_backend(request.param)
