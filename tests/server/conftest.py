"""Fixtures of the local-server tests. Every server binds 127.0.0.1 on a free port and is stopped at teardown;
every boto3 client has connect/read timeouts and is closed at teardown."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _server_support import boto3_config  # noqa: E402
from _support import suite_keyring  # noqa: E402

from bedrock_sessions import SessionClient  # noqa: E402
from bedrock_sessions.server import LocalServer  # noqa: E402

_numbers = itertools.count()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """``make_server(**options)``: a started LocalServer over a new SQLite file (or ``db=``), stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def make(db: Any = None, **options: Any) -> LocalServer:
            if db is None:
                db = str(tmp_path / f"server-{next(_numbers)}.db")
            options.setdefault("host", "127.0.0.1")
            if not isinstance(db, SessionClient):
                # The keys tests name in CreateSession (see _support.SUITE_KMS_KEYS).
                options.setdefault("keyring", suite_keyring())
            return stack.enter_context(LocalServer(db, **options))

        yield make


@pytest.fixture
def server(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server()


@pytest.fixture
def make_boto() -> Iterator[Callable[..., Any]]:
    """``make_boto(server, validate=True, retries=None, **config)``: a boto3 client of ``server`` (no retries
    unless ``retries`` is given), closed at teardown."""
    clients: list[Any] = []

    def make(server: LocalServer, *, validate: bool = True, retries: dict[str, Any] | None = None,
             **config: Any) -> Any:
        client = server.boto3_client(config=boto3_config(validate=validate, retries=retries, **config))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def boto(server: LocalServer, make_boto: Callable[..., Any]) -> Any:
    """boto3 with botocore's own parameter validation, no retries."""
    return make_boto(server)


@pytest.fixture
def raw_boto(server: LocalServer, make_boto: Callable[..., Any]) -> Any:
    """boto3 without client-side validation (what botocore would refuse reaches the server), no retries."""
    return make_boto(server, validate=False)
