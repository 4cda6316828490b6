"""Fixtures: every behaviour test runs against each store kind x each door.

* store kinds: ``memory`` (``SessionClient.memory()``), ``sqlite`` (a real SQLite file in ``tmp_path``) and
  ``server`` (the local Bedrock session server, ``bedrock_sessions.server.LocalServer``, on a free 127.0.0.1
  port over a SQLite file, reached with a boto3 ``bedrock-agent-runtime`` client over real HTTP). A new kind is
  added with one entry in ``STORE_FACTORIES`` and one in ``KIND_DOORS``.
* doors: ``sync`` (``SessionClient``) and ``async`` (``AsyncSessionClient`` behind ``AsyncDoor``, an adapter
  with the synchronous method names that runs each coroutine on one event loop owned by the fixture).
  boto3 has no async client, so the ``server`` kind has the ``sync`` door only: the (server, async) pair is not
  generated at all (see ``pytest_generate_tests``).
* tests that cannot run through boto3 and HTTP (our exception classes' extra bases, a Python type botocore cannot
  serialise, boto3's own API differences, async-only tests) are listed in ``NOT_OVER_HTTP`` with the reason, or
  carry ``@pytest.mark.not_over_http("reason")``: their ``server`` cases get a skip mark with that reason at
  collection time (``pytest_collection_modifyitems``), so ``-ra`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _support import OPERATIONS, suite_keyring  # noqa: E402

from bedrock_sessions import AsyncSessionClient, SessionClient  # noqa: E402

STORE_KINDS = ("memory", "sqlite", "server", "bedrock")
DOORS = ("sync", "async")
# The doors each store kind is reached through. boto3 (the client of the server kind) is synchronous only.
KIND_DOORS: dict[str, tuple[str, ...]] = {"memory": DOORS, "sqlite": DOORS, "server": ("sync",), "bedrock": DOORS}


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        # Without pytest-timeout the marks are inert (and must not warn: warnings are errors here).
        config.addinivalue_line("markers", "timeout(seconds): per-test time limit (pytest-timeout)")
    config.addinivalue_line(
        "markers",
        "not_over_http(reason): the test cannot run through boto3 and HTTP; its `server` store kind is skipped "
        "at collection time with this reason",
    )


def _directly_parametrized(metafunc: pytest.Metafunc) -> set[str]:
    """Argument names a ``parametrize`` mark sets itself (e.g. a test's own ``door`` argument): left alone."""
    out: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs["argnames"]
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",") if a.strip()]
        out.update(argnames)
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``store_kind`` x ``door`` as one parametrization, without the pairs a kind does not offer (server x
    async is never generated)."""
    names = set(metafunc.fixturenames) - _directly_parametrized(metafunc)
    if "store_kind" in names and "door" in names:
        metafunc.parametrize(
            ("store_kind", "door"),
            [pytest.param(kind, door, id=f"{kind}-{door}") for kind in STORE_KINDS for door in KIND_DOORS[kind]],
            indirect=True,
        )
    elif "store_kind" in names:
        metafunc.parametrize("store_kind", list(STORE_KINDS), indirect=True)
    elif "door" in names:
        metafunc.parametrize("door", list(DOORS), indirect=True)


# ---------------------------------------------------------------- tests that cannot run over HTTP
# The server kind reaches the store through boto3 (botocore serialises, sends over HTTP, parses). Some behaviour
# tests cannot be expressed that way: botocore refuses to build the request (no request is ever sent), a value
# loses its Python type on the wire, or the test checks our client classes rather than the service. Their
# `server` cases are skipped at collection time with the reason below (a test may also carry
# ``@pytest.mark.not_over_http("reason")`` itself). Keys: "<file>::<function>" or "<file>" for a whole module;
# a value is a reason, or a list of (predicate on the case's parameters, reason) for single cases.
_NO_REQUEST = "botocore's serializer raises before any request is sent"
_URI_LABELS = {"sessionIdentifier", "invocationStepId", "resourceArn"}
NotOverHttp = dict[str, "str | list[tuple[Callable[[dict[str, Any]], bool], str]]"]
NOT_OVER_HTTP: NotOverHttp = {
    "test_async.py": "asyncio tests of AsyncSessionClient; boto3 has no async client (the server kind is sync only)",
    "test_sessions.py::test_sync_client_is_context_manager": "a botocore client is not a context manager "
    "(TypeError on `with`)",
    "test_sessions.py::test_encryption_key_cannot_be_changed_by_update": "encryptionKeyArn is not a member of "
    f"UpdateSession: {_NO_REQUEST} (KeyError)",
    "test_errors.py::test_error_classes": "checks that client.exceptions.<Code> is bedrock_sessions.exceptions.<Code>;"
    " a boto3 client's classes are botocore's generated ones",
    "test_errors.py::test_not_found_error_details": "checks the extra base LookupError of our class; botocore's "
    "generated ResourceNotFoundException has none (code/status/operation are checked in tests/server)",
    "test_errors.py::test_validation_error_details": "checks the extra base ValueError of our class; botocore's "
    "generated ValidationException has none (code/status/operation are checked in tests/server)",
    "test_errors.py::test_unknown_kwarg": f"a member absent from the input shape: {_NO_REQUEST} (KeyError)",
    "test_boto3_shapes.py::test_unknown_member_rejected": f"a member absent from the input shape: {_NO_REQUEST} "
    "(KeyError)",
    "test_errors.py::test_none_for_optional_member_is_rejected": "botocore drops members set to None: "
    "description=None sends the same request as no description",
    "test_pagination.py::test_can_paginate": "boto3's can_paginate('nope') raises KeyError for an unknown name "
    "instead of returning False (boto3's own behaviour, no request)",
    "test_tags.py::test_resource_arn_must_be_an_arn": "its empty resourceArn makes GET /tags/, a path of no "
    "operation (404 UnknownOperationException); tests/server checks the other bad ARNs and that 404",
    "test_errors.py::test_malformed_session_identifier": [
        (
            lambda p: p["op"] == "end_session" and p["bad"] == "empty",
            "EndSession's URI has no trailing slash: an empty sessionIdentifier makes PATCH /sessions/, a path of "
            "no operation (404 UnknownOperationException, checked in tests/server)",
        ),
    ],
    "test_errors.py::test_malformed_invocation_and_step_identifiers": [
        (
            lambda p: p["bad"] == "",
            "an empty invocationStepId makes GetInvocationStep's path /sessions/{id}/invocationSteps/, which is "
            "ListInvocationSteps' (same method, same body): the server rightly answers a listing",
        ),
    ],
    "test_errors.py::test_missing_required_member": [
        (lambda p: p["member"] in _URI_LABELS, f"a missing URI label: {_NO_REQUEST} (KeyError building the path)"),
    ],
    "test_errors.py::test_wrong_type": [
        (
            lambda p: any(not isinstance(v, dict) for k, v in p["kwargs"].items() if k in ("sessionMetadata", "tags",
                                                                                            "payload")),
            f"a non-dict for a map or structure: {_NO_REQUEST} (AttributeError)",
        ),
        (
            lambda p: p["kwargs"].get("sessionMetadata") == {1: "a"},
            "JSON object keys are strings: json.dumps sends the key 1 as \"1\", a valid key",
        ),
        (
            lambda p: "sessionIdentifier" in p["kwargs"] and p["kwargs"]["sessionIdentifier"] is None,
            f"botocore drops None, leaving a URI label missing: {_NO_REQUEST} (KeyError)",
        ),
        (
            lambda p: p["kwargs"].get("maxResults") == "5",
            "a query-string value has no type: maxResults='5' is the same request as maxResults=5",
        ),
        (
            lambda p: "invocationStepTime" in p["kwargs"],
            f"botocore parses timestamps client-side: {_NO_REQUEST} (ValueError)",
        ),
        (
            lambda p: p["kwargs"].get("tagKeys") == "a",
            "botocore iterates a str given for a list: tagKeys='a' is sent as the valid list ['a']",
        ),
        (
            lambda p: p["kwargs"].get("tagKeys") == [5],
            "a query-string value has no type: tagKeys=[5] is the same request as tagKeys=['5']",
        ),
    ],
    "test_steps.py::test_malformed_payload_rejected": [
        (lambda p: p["name"] == "bytes-not-bytes", f"botocore base64-encodes blobs client-side: {_NO_REQUEST} "
         "(TypeError)"),
        (lambda p: p["name"] == "unknown-block-member", f"a member absent from the shape: {_NO_REQUEST} (KeyError)"),
        (lambda p: p["name"] == "blocks-not-list", f"a str for a list of structures: {_NO_REQUEST} "
         "(AttributeError)"),
    ],
    "test_steps.py::test_payload_not_a_dict": f"a str for a structure: {_NO_REQUEST} (AttributeError)",
}


def _not_over_http_reason(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("not_over_http")
    if marker is not None:
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: not_over_http needs a reason")
        return str(reason)
    file = item.path.name
    entry = NOT_OVER_HTTP.get(f"{file}::{getattr(item, 'originalname', item.name)}", NOT_OVER_HTTP.get(file))
    if entry is None or isinstance(entry, str):
        return entry
    params = item.callspec.params  # type: ignore[attr-defined]
    for applies, reason in entry:
        if applies(params):
            return reason
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The server cases of tests that cannot run over HTTP are skipped here, with their reason."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("store_kind") != "server":
            continue
        reason = _not_over_http_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"not over HTTP (boto3 + local server): {reason}"))


# ---------------------------------------------------------------- store factories
# A factory takes the client class of the door, the test's tmp_path, an ExitStack for its own cleanup
# (a server kind would stop its server there) and the client options (clock, idle_timeout,
# max_steps_per_session, max_step_bytes, default_page_size, region, account_id), and returns an open client.

StoreFactory = Callable[[type, Path, contextlib.ExitStack, dict[str, Any]], Any]

_file_numbers = itertools.count()


def _open_memory(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    return cls.memory(**options)


def _open_sqlite(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    path = tmp_path / f"store-{next(_file_numbers)}.db"
    return cls.local(str(path), **options)


# boto3 for the server kind: no client-side validation (what botocore would refuse goes to the server, which must
# refuse it itself) and no retries (an error surfaces at once, as with the embedded clients). Note: in botocore's
# `retries` dict, "max_attempts" counts retries (max_attempts=1 still retries once); "total_max_attempts"
# counts every attempt, so 1 means a single request. Timeouts so that no test waits forever on the network.
SERVER_BOTO3_CONFIG = {
    "parameter_validation": False,
    "retries": {"total_max_attempts": 1, "mode": "standard"},
    "connect_timeout": 10,
    "read_timeout": 120,
}


def _open_server(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    if cls is not SessionClient:
        raise RuntimeError("the server kind has no async door (boto3 is synchronous); see KIND_DOORS")
    from botocore.config import Config

    from bedrock_sessions.server import LocalServer

    server = stack.enter_context(LocalServer(str(tmp_path / f"server-{next(_file_numbers)}.db"), **options))
    return server.boto3_client(config=Config(**SERVER_BOTO3_CONFIG))


def _open_bedrock(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    """Our own client on the Bedrock backend (the AWS SDK for Rust) against the local server over TCP: the
    behaviour suite, unchanged, through the HTTP implementation. Store options go to the server's store."""
    from bedrock_sessions.server import LocalServer

    server = stack.enter_context(LocalServer(str(tmp_path / f"bedrock-{next(_file_numbers)}.db"), **options))
    return cls.bedrock(
        endpoint_url=server.endpoint_url,
        region_name=options.get("region", "us-east-1"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        max_attempts=1,
    )


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "server": _open_server,
    "bedrock": _open_bedrock,
}

DOOR_CLASSES: dict[str, type] = {"sync": SessionClient, "async": AsyncSessionClient}


def open_store(kind: str, door: str, tmp_path: Path, stack: contextlib.ExitStack, **options: Any) -> Any:
    """A raw client of store ``kind``: SessionClient or AsyncSessionClient, or a boto3 client for ``server``. Every
    kind's store holds the keys tests name (``_support.SUITE_KMS_KEYS``) in a keyring."""
    options.setdefault("keyring", suite_keyring())
    return STORE_FACTORIES[kind](DOOR_CLASSES[door], tmp_path, stack, options)


# ---------------------------------------------------------------- the async door as a sync object
async def _collect_pages(page_iterator: Any) -> list[dict[str, Any]]:
    return [page async for page in page_iterator]


class _AsyncPageIteratorDoor:
    def __init__(self, page_iterator: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._it = page_iterator
        self._loop = loop

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._loop.run_until_complete(_collect_pages(self._it)))

    def build_full_result(self) -> dict[str, Any]:
        result = self._it.build_full_result()
        assert inspect.isawaitable(result), "the async paginator's build_full_result must be awaitable"
        return self._loop.run_until_complete(result)


class _AsyncPaginatorDoor:
    def __init__(self, paginator: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._paginator = paginator
        self._loop = loop

    def paginate(self, **kwargs: Any) -> _AsyncPageIteratorDoor:
        return _AsyncPageIteratorDoor(self._paginator.paginate(**kwargs), self._loop)


class AsyncDoor:
    """``AsyncSessionClient`` with the synchronous method names of ``SessionClient``."""

    def __init__(self, aclient: AsyncSessionClient, loop: asyncio.AbstractEventLoop) -> None:
        self._aclient = aclient
        self._loop = loop

    @property
    def exceptions(self) -> Any:
        return self._aclient.exceptions

    @property
    def meta(self) -> Any:
        return self._aclient.meta

    def __getattr__(self, name: str) -> Any:
        if name not in OPERATIONS:
            raise AttributeError(name)
        method = getattr(self._aclient, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            awaitable = method(*args, **kwargs)
            assert inspect.isawaitable(awaitable), f"{name} of the async client must return an awaitable"
            return self._loop.run_until_complete(awaitable)

        return call

    def can_paginate(self, name: str) -> bool:
        return self._aclient.can_paginate(name)

    def get_paginator(self, name: str) -> _AsyncPaginatorDoor:
        return _AsyncPaginatorDoor(self._aclient.get_paginator(name), self._loop)

    def close(self) -> None:
        self._loop.run_until_complete(self._aclient.close())

    def __enter__(self) -> AsyncDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Parametrized by ``pytest_generate_tests`` (with ``door`` when the test uses both)."""
    return request.param


@pytest.fixture
def door(request: pytest.FixtureRequest) -> str:
    """Parametrized by ``pytest_generate_tests``."""
    return request.param


@pytest.fixture
def open_raw(store_kind: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``open_raw(door, **options)``: a raw client of the current store kind (closed at teardown)."""
    with contextlib.ExitStack() as stack:

        def open_(door: str, **options: Any) -> Any:
            raw = open_store(store_kind, door, tmp_path, stack, **options)
            if door == "sync":
                stack.callback(raw.close)
            else:
                stack.callback(lambda: asyncio.run(raw.close()))
            return raw

        yield open_


@pytest.fixture
def make_client(store_kind: str, door: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_client(**options)``: a new store of the current kind seen through the current door, with the
    synchronous method names either way. Each call opens a new, empty store."""
    with contextlib.ExitStack() as stack:
        loop: asyncio.AbstractEventLoop | None = None

        def make(**options: Any) -> Any:
            nonlocal loop
            raw = open_store(store_kind, door, tmp_path, stack, **options)
            if door == "sync":
                stack.callback(raw.close)
                return raw
            if loop is None:
                loop = asyncio.new_event_loop()
                stack.callback(loop.close)  # registered first: runs after every client is closed
            client = AsyncDoor(raw, loop)
            stack.callback(client.close)
            return client

        yield make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """A client with default options, 5 ways: {memory, sqlite} x {sync, async}, and server x sync (boto3)."""
    return make_client()
