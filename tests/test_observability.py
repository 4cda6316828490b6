"""What our requests look like from outside: a DEBUG record per session API request on the logger
``bedrock_sessions.requests`` (from the session clients, the saver and the LlamaIndex engine alike) with the request's
id, a WARNING record per retried attempt, and OpenTelemetry spans around the saver's and the LlamaIndex stores'
methods (docs/observability.md).

The request ids are checked against what the caller sees (``ResponseMetadata.RequestId``, the error's) and, over
HTTP, against the local server's own request log. No timing is asserted."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support import T0, text_payload

from bedrock_sessions import AsyncSessionClient, SessionClient, _telemetry
from bedrock_sessions.server import LocalServer

LOGGER = "bedrock_sessions.requests"
KEYS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
MISSING = "00000000-0000-0000-0000-000000000000"

pytestmark = pytest.mark.timeout(120)


class Records(logging.Handler):
    """Every record of the requests logger, whatever the level of the root logger and its handlers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, operation: str) -> list[logging.LogRecord]:
        """The request records (DEBUG) of an operation."""
        return [r for r in self.requests if r.operation == operation]  # type: ignore[attr-defined]

    @property
    def requests(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == logging.DEBUG]

    @property
    def retries(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == logging.WARNING]


@pytest.fixture
def records() -> Iterator[Records]:
    """The requests logger at DEBUG, with a handler collecting its records; put back as it was afterwards."""
    logger = logging.getLogger(LOGGER)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def check_record(r: logging.LogRecord, operation: str, request_id: str, session: str | None, status: str = "ok") -> None:
    assert r.name == LOGGER and r.levelno == logging.DEBUG
    assert (r.operation, r.request_id, r.session, r.status) == (operation, request_id, session, status)  # type: ignore[attr-defined]
    assert isinstance(r.latency_ms, float) and r.latency_ms >= 0  # type: ignore[attr-defined]
    assert r.attempts == 1  # type: ignore[attr-defined]
    message = r.getMessage()
    assert message.startswith(f"{operation} {request_id} {status} ") and " ms" in message, message
    assert message.endswith(f" session {session}") if session else "session" not in message, message


def request_id(response_or_error: Any) -> str:
    meta = response_or_error.response if isinstance(response_or_error, Exception) else response_or_error
    return str(meta["ResponseMetadata"]["RequestId"])


# ---------------------------------------------------------------- the session clients
def test_a_client_call_logs_one_record_with_the_response_request_id(records: Records, tmp_path: Path) -> None:
    client = SessionClient.local(tmp_path / "s.db")
    created = client.create_session()
    sid = created["sessionId"]
    assert len(records.records) == 1
    # CreateSession names no session: its record names the one it created.
    check_record(records.records[0], "CreateSession", request_id(created), sid)
    got = client.get_session(sessionIdentifier=created["sessionArn"])
    inv = client.create_invocation(sessionIdentifier=sid)
    put = client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv["invocationId"],
                                     invocationStepTime=T0, payload=text_payload("hi"))
    listed = client.list_sessions()
    assert [r.operation for r in records.records] == [  # type: ignore[attr-defined]
        "CreateSession", "GetSession", "CreateInvocation", "PutInvocationStep", "ListSessions"]
    check_record(records.records[1], "GetSession", request_id(got), sid)
    check_record(records.records[3], "PutInvocationStep", request_id(put), sid)
    check_record(records.records[4], "ListSessions", request_id(listed), None)
    # An embedded store's request ids are made per request (uuid4), never shared.
    ids = [r.request_id for r in records.records]  # type: ignore[attr-defined]
    assert len(set(ids)) == len(ids) and all(uuid.UUID(i).version == 4 for i in ids)


def test_an_error_logs_its_code_and_the_error_request_id(records: Records) -> None:
    client = SessionClient.memory()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        client.get_session(sessionIdentifier=MISSING)
    [r] = records.records
    check_record(r, "GetSession", request_id(err.value), MISSING, "ResourceNotFoundException")
    # A request refused before it reaches the store is no request: nothing logged.
    with pytest.raises(client.exceptions.ValidationException):
        client.get_session(sessionIdentifier="not an id")
    assert len(records.records) == 1


def test_the_async_client_logs_each_request(records: Records, tmp_path: Path) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], Exception]:
        async with AsyncSessionClient.local(tmp_path / "a.db") as client:
            created = await client.create_session()  # a write: on a store thread
            got = await client.get_session(sessionIdentifier=created["sessionId"])  # a read: in the coroutine
            try:
                await client.end_session(sessionIdentifier=MISSING)
            except client.exceptions.ResourceNotFoundException as e:
                return created, got, e
            raise AssertionError("no error")

    created, got, error = asyncio.run(main())
    sid = created["sessionId"]
    assert len(records.records) == 3
    check_record(records.records[0], "CreateSession", request_id(created), sid)
    check_record(records.records[1], "GetSession", request_id(got), sid)
    check_record(records.records[2], "EndSession", request_id(error), MISSING, "ResourceNotFoundException")


def test_nothing_is_emitted_at_warning_and_a_later_level_change_is_seen(tmp_path: Path) -> None:
    logger = logging.getLogger(LOGGER)
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        client = SessionClient.local(tmp_path / "w.db")
        sid = client.create_session()["sessionId"]
        client.get_session(sessionIdentifier=sid)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_session(sessionIdentifier=MISSING)
        saver = _saver(client)
        _graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "quiet"}})
        assert handler.records == []
        # Turned on later (no reset of anything): the next request is logged.
        logger.setLevel(logging.DEBUG)
        got = client.get_session(sessionIdentifier=sid)
        assert [r.request_id for r in handler.records] == [request_id(got)]  # type: ignore[attr-defined]
        # And off again.
        logger.setLevel(logging.INFO)
        client.get_session(sessionIdentifier=sid)
        assert len(handler.records) == 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_caplog_at_debug_sees_the_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    client = SessionClient.memory()
    created = client.create_session()
    [r] = [r for r in caplog.records if r.name == LOGGER]
    assert r.request_id == request_id(created) and r.session == created["sessionId"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the saver and the LlamaIndex engine
def _saver(client: Any, **kwargs: Any) -> Any:
    pytest.importorskip("langgraph")
    from bedrock_sessions import BedrockSessionSaver

    return BedrockSessionSaver(client=client, **kwargs)


def _graph(saver: Any) -> Any:
    from _lg_graphs import three_nodes

    return three_nodes().compile(checkpointer=saver)


def test_a_saver_on_a_file_logs_its_put_invocation_steps(records: Records, tmp_path: Path) -> None:
    client = SessionClient.local(tmp_path / "saver.db")
    saver = _saver(client)
    _graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "ana"}})
    puts = records.of("PutInvocationStep")
    assert puts, [r.getMessage() for r in records.records]
    sid = saver._native.resolve_thread("ana")
    records.records.clear()
    # One record per step the saver stored in the thread's session.
    steps = client.list_invocation_steps(sessionIdentifier=sid, maxResults=1000)["invocationStepSummaries"]
    assert len(puts) == len(steps)
    for r in puts:
        assert (r.session, r.status, r.levelno) == (sid, "ok", logging.DEBUG)  # type: ignore[attr-defined]
        assert r.getMessage().startswith(f"PutInvocationStep {r.request_id} ok ")  # type: ignore[attr-defined]
    assert len({r.request_id for r in puts}) == len(puts)  # type: ignore[attr-defined]
    # The saver's reads are requests too.
    records.records.clear()
    saver.get_tuple({"configurable": {"thread_id": "ana"}})
    assert records.requests and all(r.session == sid for r in records.requests)  # type: ignore[attr-defined]


def test_a_deferred_saver_in_memory_logs_its_background_writes(records: Records) -> None:
    """The background task's requests are recorded off the GIL (the in-memory store's calls keep it: taking it to
    log there would deadlock flush) and handed to logging when the next call returns."""
    saver = _saver(SessionClient.memory(), deferred=True)
    _graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "later"}})
    saver.flush()
    assert records.of("PutInvocationStep"), [r.getMessage() for r in records.records]


def test_the_llama_index_engine_logs_its_requests(records: Records, tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import ChatMessage

    from bedrock_sessions.llama_index import SessionDBChatStore

    store = SessionDBChatStore.local(tmp_path / "li.db")
    asyncio.run(store.add_message("ana", ChatMessage(role="user", content="hello")))
    puts = records.of("PutInvocationStep")
    assert len(puts) == 1
    sid = store.session_of("ana")
    assert puts[0].session == sid  # type: ignore[attr-defined]
    records.records.clear()
    messages = asyncio.run(store.get_messages("ana"))
    assert [m.content for m in messages] == ["hello"]
    assert records.requests and {r.session for r in records.requests} == {sid}  # type: ignore[attr-defined]


# ---------------------------------------------------------------- over HTTP: the server's request ids
def _server_log(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["request_id"]: line for line in lines}


def test_request_ids_over_http_are_the_server_ones(records: Records, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with LocalServer(tmp_path / "served.db", log=str(log)) as server:
        client = SessionClient.bedrock(endpoint_url=server.endpoint_url, **KEYS)
        created = client.create_session()
        sid = created["sessionId"]
        got = client.get_session(sessionIdentifier=sid)
        with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
            client.get_session(sessionIdentifier=MISSING)
        saver = _saver(client)
        _graph(saver).invoke({"items": []}, {"configurable": {"thread_id": sid}})
        asyncio.run(saver.aget_tuple({"configurable": {"thread_id": sid}}))  # the core's own future

        async def get_async() -> dict[str, Any]:
            async with AsyncSessionClient.bedrock(endpoint_url=server.endpoint_url, **KEYS) as aclient:
                return await aclient.get_session(sessionIdentifier=sid)

        got_async = asyncio.run(get_async())
    # The server's requests are the server's: the client's records are those of the client's requests only.
    served = _server_log(log)
    assert len(records.requests) == len(served)
    for r in records.requests:
        line = served[r.request_id]  # type: ignore[attr-defined]
        assert line["operation"] == r.operation, (line, r.getMessage())  # type: ignore[attr-defined]
        assert line.get("error", "ok") == r.status, (line, r.getMessage())  # type: ignore[attr-defined]
    # What the caller is told is the same id.
    check_record(records.records[0], "CreateSession", request_id(created), sid)
    check_record(records.records[1], "GetSession", request_id(got), sid)
    check_record(records.records[2], "GetSession", request_id(err.value), MISSING, "ResourceNotFoundException")
    assert served[request_id(err.value)]["status"] == 404
    check_record(records.records[-1], "GetSession", request_id(got_async), sid)
    assert {r.operation for r in records.requests} >= {"PutInvocationStep", "ListInvocationSteps"}  # type: ignore[attr-defined]


def test_a_retried_request_logs_a_warning_per_failed_attempt(records: Records, tmp_path: Path) -> None:
    log = tmp_path / "faulty.log"
    with LocalServer(tmp_path / "faulty.db", log=str(log), fault_rate=0.5, faults=["throttle"], seed=11) as server:
        client = SessionClient.bedrock(endpoint_url=server.endpoint_url, max_attempts=12, **KEYS)
        sid = client.create_session()["sessionId"]
        responses = [client.get_session(sessionIdentifier=sid) for _ in range(12)]
    served = _server_log(log)
    retries = records.retries
    assert retries, "no attempt was throttled"
    for w in retries:
        line = served[w.request_id]  # type: ignore[attr-defined]
        assert (line["fault"], line["status"]) == ("throttle", 429), line
        assert (w.status, w.operation) == ("ThrottlingException", line["operation"])  # type: ignore[attr-defined]
        assert 1 <= w.attempt < w.max_attempts == 12 and w.delay_ms >= 0  # type: ignore[attr-defined]
        message = w.getMessage()
        assert message.startswith(f"{w.operation} {w.request_id} attempt {w.attempt} of 12 failed: ThrottlingException")  # type: ignore[attr-defined]
        assert "retrying in" in message
    # Each request's record carries its last attempt's id (the one answered), and its attempts.
    gets = records.of("GetSession")
    assert [r.request_id for r in gets] == [request_id(x) for x in responses]  # type: ignore[attr-defined]
    assert all(served[r.request_id]["status"] == 200 for r in gets)  # type: ignore[attr-defined]
    assert sum(r.attempts - 1 for r in records.requests) == len(retries)  # type: ignore[attr-defined]
    assert [x["ResponseMetadata"]["RetryAttempts"] for x in responses] == [r.attempts - 1 for r in gets]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- OpenTelemetry
@pytest.fixture(scope="module")
def exporter() -> Iterator[Any]:
    """An in-memory span exporter on the global tracer provider: one set here (unless an SDK provider already is),
    and taken away afterwards, so that the tests after these run without spans, as they did before."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    # The API sets its global provider once per process; its own tests reset these two (opentelemetry-test-utils).
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    provider = trace.get_tracer_provider()
    ours = not isinstance(provider, TracerProvider)
    if ours:
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exp = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    _telemetry._TRACER.reset()  # our tracer is taken anew, of this provider
    try:
        yield exp
    finally:
        exp.shutdown()
        if ours:
            provider.shutdown()
            trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved
            _telemetry._TRACER.reset()


@pytest.fixture
def spans(exporter: Any) -> Any:
    exporter.clear()
    return exporter


def _ours(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "bedrock_sessions"]


def test_a_graph_invoke_makes_spans_of_the_saver_methods(spans: Any) -> None:
    saver = _saver(SessionClient.memory())
    cfg = {"configurable": {"thread_id": "traced"}}
    _graph(saver).invoke({"items": []}, cfg)
    got = _ours(spans)
    names = [s.name for s in got]
    assert names.count("BedrockSessionSaver.put") == 5 and names.count("BedrockSessionSaver.put_writes") == 4, names
    assert "BedrockSessionSaver.get_tuple" in names
    assert all(s.attributes["thread_id"] == "traced" for s in got)
    # put: the checkpoint it stores, and its parent; put_writes: the checkpoint its writes belong to.
    stored = {t.config["configurable"]["checkpoint_id"] for t in saver.list(cfg)}
    puts = [s for s in got if s.name == "BedrockSessionSaver.put"]
    assert {s.attributes["checkpoint_id"] for s in puts} == stored
    assert all(s.attributes["checkpoint_ns"] == "" for s in puts)
    assert sum("parent_checkpoint_id" in s.attributes for s in puts) == 4
    writes = [s for s in got if s.name == "BedrockSessionSaver.put_writes"]
    assert {s.attributes["checkpoint_id"] for s in writes} <= stored
    assert all(s.attributes["task_id"] and s.attributes["writes"] >= 1 for s in writes)
    # list (a generator) has its span too, ended when the listing is.
    listing = [s for s in _ours(spans) if s.name == "BedrockSessionSaver.list"]
    assert len(listing) == 1 and listing[0].end_time is not None


def test_the_async_methods_make_spans_too(spans: Any) -> None:
    saver = _saver(SessionClient.memory())
    cfg = {"configurable": {"thread_id": "async"}}

    async def main() -> int:
        await _graph(saver).ainvoke({"items": []}, cfg)
        return len([t async for t in saver.alist(cfg)])

    assert asyncio.run(main()) == 5
    names = [s.name for s in _ours(spans)]
    for name in ("aget_tuple", "aput", "aput_writes", "alist"):
        assert f"BedrockSessionSaver.{name}" in names, names
    assert names.count("BedrockSessionSaver.aput") == 5


def test_a_failed_call_records_its_exception(spans: Any) -> None:
    saver = _saver(SessionClient.memory())
    with pytest.raises(ValueError, match="unknown prune strategy"):
        saver.prune(["t1", "t2"], strategy="everything")
    [span] = _ours(spans)
    assert span.name == "BedrockSessionSaver.prune"
    assert span.attributes["thread_ids"] == ("t1", "t2")
    assert span.status.status_code.name == "ERROR"
    [event] = span.events
    assert event.name == "exception" and event.attributes["exception.type"] == "ValueError"


def test_the_llama_index_stores_make_spans(spans: Any, tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import ChatMessage

    from bedrock_sessions.llama_index import SessionDBChatStore

    store = SessionDBChatStore.local(tmp_path / "spans.db", namespace="shop")
    asyncio.run(store.add_message("ana", ChatMessage(role="user", content="hello")))
    [span] = _ours(spans)
    assert span.name == "SessionDBChatStore.add_message"
    assert dict(span.attributes) == {"key": "ana", "namespace": "shop"}
    assert span.status.status_code.name == "UNSET"


def test_without_opentelemetry_nothing_changes_and_nothing_is_imported() -> None:
    """In a process where the package cannot be imported, the methods are the undecorated ones. Importing ours
    imports none of it, installed or not (langgraph may import it itself: checked before langgraph is imported)."""
    pytest.importorskip("langgraph")
    script = """
import sys
if sys.argv[1] == "absent":
    sys.modules["opentelemetry"] = None  # unimportable
import bedrock_sessions, bedrock_sessions.llama_index, bedrock_sessions._telemetry
imported = any(m.startswith("opentelemetry") for m in sys.modules if sys.modules[m] is not None)
from bedrock_sessions import BedrockSessionSaver, SessionClient
from bedrock_sessions.llama_index import SessionDBChatStore
decorated = hasattr(BedrockSessionSaver.put, "__wrapped__"), hasattr(SessionDBChatStore.add_message, "__wrapped__")
saver = BedrockSessionSaver(client=SessionClient.memory())
saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
          {"v": 1, "id": "1", "ts": "", "channel_values": {}, "channel_versions": {}, "versions_seen": {}}, {}, {})
assert saver.get_tuple({"configurable": {"thread_id": "t"}}).checkpoint["id"] == "1"
print(bedrock_sessions._telemetry.available(), imported, *decorated)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = {
        mode: subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, env=env, timeout=60)
        for mode in ("absent", "installed")
    }
    for mode, proc in out.items():
        assert proc.returncode == 0, (mode, proc.stderr)
    assert out["absent"].stdout.split() == ["False", "False", "False", "False"]
    if importlib.util.find_spec("opentelemetry") is not None:
        assert out["installed"].stdout.split() == ["True", "False", "True", "True"]
