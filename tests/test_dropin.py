"""The replaced saver's users change one import and nothing else.

langgraph-checkpoint-aws's README examples, the patterns of its integration tests for the Bedrock session saver (sync,
async, and through its ``DeferredCheckpointSaver``) and its ``saver.session_client`` API, run with the import changed
to ``bedrock_sessions``: real LangGraph graphs, real boto3, the local Bedrock session server over TCP, reached through
the pytest plugin's fixtures exactly as the code under test would reach Amazon Bedrock (no endpoint in the code).

The replaced package is a test dependency only: its pydantic request models are passed in where its users pass them,
and its own session client runs next to ours to check that ours answers with the same attribute names.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import operator
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypedDict

import boto3
import pytest
from botocore.exceptions import ClientError

aws = pytest.importorskip("langgraph_checkpoint_aws")

from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, uuid6  # noqa: E402
from langgraph.graph import START, StateGraph  # noqa: E402
from langgraph.graph.message import add_messages  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402
from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import models as aws_models  # noqa: E402
from langgraph_checkpoint_aws.checkpoint.deferred_saver import DeferredCheckpointSaver  # noqa: E402

from bedrock_sessions import SessionClient  # noqa: E402

NOW = datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------- the replaced package's README, import changed
def test_readme_sync_example(bedrock_sessions_endpoint: str, bedrock_sessions_server: Any) -> None:
    from bedrock_sessions.saver import BedrockSessionSaver  # was: from langgraph_checkpoint_aws.saver import ...

    # Initialize the saver
    session_saver = BedrockSessionSaver(
        region_name="us-west-2",  # Your AWS region
        credentials_profile_name="default",  # Optional: AWS credentials profile
    )

    # Create a session
    session_id = session_saver.session_client.create_session().session_id

    # Use with LangGraph
    builder = StateGraph(int)
    builder.add_node("add_one", lambda x: x + 1)
    builder.set_entry_point("add_one")
    builder.set_finish_point("add_one")

    graph = builder.compile(checkpointer=session_saver)
    config = {"configurable": {"thread_id": session_id}}
    assert graph.invoke(1, config) == 2

    assert graph.get_state(config).values == 2
    stats = bedrock_sessions_server.stats()
    assert stats["operations"]["CreateSession"] == 1 and stats["operations"]["PutInvocationStep"] >= 1


def test_readme_async_example(bedrock_sessions_endpoint: str, bedrock_sessions_server: Any) -> None:
    from bedrock_sessions import AsyncBedrockSessionSaver  # was: from langgraph_checkpoint_aws.async_saver import ...

    async def main() -> Any:
        # Initialize the saver
        session_saver = AsyncBedrockSessionSaver(
            region_name="us-west-2",  # Your AWS region
            credentials_profile_name="default",  # Optional: AWS credentials profile
        )

        # Create a session
        session_create_response = await session_saver.session_client.create_session()
        session_id = session_create_response.session_id

        # Use with LangGraph
        builder = StateGraph(int)
        builder.add_node("add_one", lambda x: x + 1)
        builder.set_entry_point("add_one")
        builder.set_finish_point("add_one")

        graph = builder.compile(checkpointer=session_saver)
        config = {"configurable": {"thread_id": session_id}}
        result = await graph.ainvoke(1, config)
        return result, (await graph.aget_state(config)).values

    assert asyncio.run(main()) == (2, 2)
    assert bedrock_sessions_server.stats()["operations"]["CreateSession"] == 1


# ---------------------------------------------------------------- saver.session_client
def test_async_saver_is_the_saver_with_an_async_session_client(bedrock_sessions_endpoint: str) -> None:
    """AsyncBedrockSessionSaver keeps every sync and async method; only its session_client is the async flavour."""
    from bedrock_sessions import AsyncBedrockSessionSaver, BedrockSessionSaver

    assert issubclass(AsyncBedrockSessionSaver, BedrockSessionSaver) and AsyncBedrockSessionSaver is not BedrockSessionSaver
    sync_saver, async_saver = BedrockSessionSaver(region_name="us-east-1"), AsyncBedrockSessionSaver(region_name="us-east-1")
    assert not inspect.iscoroutinefunction(sync_saver.session_client.create_session)
    assert inspect.iscoroutinefunction(async_saver.session_client.create_session)
    for saver in (sync_saver, async_saver):
        # Our own boto3-shaped client stays reachable, under its own name.
        assert isinstance(saver.sessions, SessionClient)
        assert saver.session_client.client.meta.endpoint_url == saver.sessions.meta.endpoint_url

    # Both halves of the async saver run a graph on the same thread.
    thread = async_saver.sessions.create_session()["sessionId"]
    graph = _counter_graph().compile(checkpointer=async_saver)
    cfg = {"configurable": {"thread_id": thread}}
    assert graph.invoke({"items": ["sync"]}, cfg) == {"items": ["sync", "n"]}
    assert asyncio.run(graph.ainvoke({"items": ["async"]}, cfg)) == {"items": ["sync", "n", "async", "n"]}


def test_session_client_client_is_a_boto3_shaped_client(bedrock_sessions_endpoint: str, bedrock_sessions_server: Any) -> None:
    """The launch blog's notebook and langchain-aws's integration tests use ``saver.session_client.client`` as the boto3
    bedrock-agent-runtime client: boto3's names, arguments and dict responses, on the saver's own store."""
    from bedrock_sessions import AsyncBedrockSessionSaver, BedrockSessionSaver

    for saver in (BedrockSessionSaver(region_name="us-east-1"), AsyncBedrockSessionSaver(region_name="us-east-1")):
        client = saver.session_client.client
        session_id = client.create_session()["sessionId"]
        assert client.get_session(sessionIdentifier=session_id)["sessionStatus"] == "ACTIVE"
        assert client.meta.endpoint_url == bedrock_sessions_endpoint and client.meta.region_name == "us-east-1"
        assert client.meta.service_model.service_name == "bedrock-agent-runtime"
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_session(sessionIdentifier="00000000-0000-0000-0000-000000000000")
        # the same session seen by plain boto3 on the server
        boto = boto3.client("bedrock-agent-runtime")
        assert boto.get_session(sessionIdentifier=session_id)["sessionId"] == session_id
        client.end_session(sessionIdentifier=session_id)
        client.delete_session(sessionIdentifier=session_id)
    assert bedrock_sessions_server.stats()["operations"]["DeleteSession"] == 2


def _shape(value: Any) -> Any:
    """What a response looks like to code that reads it: attribute names (recursively) and value types, not ids."""
    fields = getattr(type(value), "model_fields", None) or getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _shape(getattr(value, name)) for name in fields}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def _session_client_story(call: Callable[[str, Any], Any]) -> list[tuple[str, Any]]:
    """Every method of the replaced session client, with its request models; returns (operation, response)."""
    m = aws_models
    out: list[tuple[str, Any]] = []

    def do(name: str, request: Any = None) -> Any:
        response = call(name, request)
        out.append((name, response))
        return response

    do("create_session")  # no request: the replaced client allows it
    created = do("create_session", m.CreateSessionRequest(session_metadata={"user": "ana"}, tags={"app": "shoes"}))
    sid = created.session_id
    assert created.session_arn.endswith(sid) and created.session_status == "ACTIVE"
    assert isinstance(created.created_at, datetime.datetime)
    got = do("get_session", m.GetSessionRequest(session_identifier=created.session_arn))
    assert got.session_id == sid and got.session_metadata == {"user": "ana"} and got.encryption_key_arn is None
    inv = do("create_invocation", m.CreateInvocationRequest(session_identifier=sid, description="turn 1")).invocation_id
    listed = do("list_invocations", m.ListInvocationsRequest(session_identifier=sid, max_results=5))
    assert [i.invocation_id for i in listed.invocation_summaries] == [inv] and listed.next_token is None
    assert listed.invocation_summaries[0].session_id == sid
    payload = m.InvocationStepPayload(content_blocks=[m.BedrockSessionContentBlock(text="size 42, please")])
    step = do("put_invocation_step", m.PutInvocationStepRequest(
        session_identifier=sid, invocation_identifier=inv, invocation_step_time=NOW, payload=payload)).invocation_step_id
    fetched = do("get_invocation_step", m.GetInvocationStepRequest(
        session_identifier=sid, invocation_identifier=inv, invocation_step_id=step)).invocation_step
    assert (fetched.session_id, fetched.invocation_id, fetched.invocation_step_id) == (sid, inv, step)
    assert [b.text for b in fetched.payload.content_blocks] == ["size 42, please"]
    steps = do("list_invocation_steps", m.ListInvocationStepsRequest(session_identifier=sid, invocation_identifier=inv))
    assert [s.invocation_step_id for s in steps.invocation_step_summaries] == [step]
    ended = do("end_session", m.EndSessionRequest(session_identifier=sid))
    assert ended.session_id == sid and ended.session_status == "ENDED"
    assert do("delete_session", m.DeleteSessionRequest(session_identifier=sid)) is None
    with pytest.raises(ClientError) as err:
        call("get_session", m.GetSessionRequest(session_identifier=sid))
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    return out


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_session_client_answers_as_the_replaced_one(flavour: str, bedrock_sessions_endpoint: str) -> None:
    """Every method of the replaced client takes its request models (the user's own instances of langgraph-checkpoint-aws's
    pydantic classes) and answers with its attribute names: checked against the replaced client itself, run on the same
    server."""
    import bedrock_sessions as ours_pkg

    theirs_cls = aws.BedrockAgentRuntimeSessionClient if flavour == "sync" else aws.AsyncBedrockAgentRuntimeSessionClient
    saver_cls = ours_pkg.BedrockSessionSaver if flavour == "sync" else ours_pkg.AsyncBedrockSessionSaver
    with asyncio.Runner() as runner:

        def caller(client: Any) -> Callable[[str, Any], Any]:
            def call(name: str, request: Any) -> Any:
                result = getattr(client, name)(*([] if request is None else [request]))
                if flavour == "async":
                    assert inspect.iscoroutine(result), f"{name} of the async flavour must be awaited"
                    result = runner.run(result)
                return result

            return call

        ours = _session_client_story(caller(saver_cls(region_name="us-east-1").session_client))
        theirs = _session_client_story(caller(theirs_cls(region_name="us-east-1")))
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, mine), (_, reference) in zip(ours, theirs):
        assert _shape(mine) == _shape(reference), name


def test_async_saver_end_session_with_a_positional_request(bedrock_sessions_endpoint: str) -> None:
    from bedrock_sessions import AsyncBedrockSessionSaver

    saver = AsyncBedrockSessionSaver(region_name="us-east-1")

    async def story() -> str:
        sid = (await saver.session_client.create_session()).session_id
        ended = await saver.session_client.end_session(aws_models.EndSessionRequest(session_identifier=sid))
        return ended.session_status

    assert asyncio.run(story()) == "ENDED"


def test_the_replaced_session_client_classes_by_name(bedrock_sessions_endpoint: str) -> None:
    """Code that builds the replaced package's session clients itself (it exports them) changes the import too."""
    from bedrock_sessions import AsyncBedrockAgentRuntimeSessionClient, BedrockAgentRuntimeSessionClient

    client = BedrockAgentRuntimeSessionClient(region_name="us-east-1")
    sid = client.create_session().session_id
    assert client.client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
    aclient = AsyncBedrockAgentRuntimeSessionClient(client=boto3.client("bedrock-agent-runtime"))  # or a boto3 client
    ended = asyncio.run(aclient.end_session(aws_models.EndSessionRequest(session_identifier=sid)))
    assert ended.session_status == "ENDED"


def test_session_client_without_the_replaced_package(bedrock_sessions_endpoint: str) -> None:
    """Code that stops installing langgraph-checkpoint-aws builds the same requests from bedrock_sessions.compat."""
    from bedrock_sessions import BedrockSessionSaver
    from bedrock_sessions.compat import (
        BedrockSessionContentBlock,
        CreateInvocationRequest,
        CreateSessionRequest,
        EndSessionRequest,
        GetInvocationStepRequest,
        InvocationStepPayload,
        PutInvocationStepRequest,
    )

    client = BedrockSessionSaver(region_name="us-east-1").session_client
    sid = client.create_session(CreateSessionRequest(session_metadata={"k": "v"})).session_id
    inv = client.create_invocation(CreateInvocationRequest(session_identifier=sid)).invocation_id
    step = client.put_invocation_step(PutInvocationStepRequest(
        session_identifier=sid, invocation_identifier=inv, invocation_step_time=NOW,
        payload=InvocationStepPayload(content_blocks=[BedrockSessionContentBlock(text="hi")]))).invocation_step_id
    got = client.get_invocation_step(GetInvocationStepRequest(
        session_identifier=sid, invocation_identifier=inv, invocation_step_id=step))
    assert got.invocation_step.payload.content_blocks[0].text == "hi"
    assert got.model_dump(by_alias=True)["invocationStep"]["invocationStepId"] == step
    assert client.end_session(EndSessionRequest(session_identifier=sid)).session_status == "ENDED"


# ---------------------------------------------------------------- langchain-aws's integration tests, import changed
@tool
def get_weather(city: Literal["nyc", "sf"]) -> str:
    """Use this to get weather information."""
    if city == "nyc":
        return "It might be cloudy in nyc"
    if city == "sf":
        return "It's always sunny in sf"
    raise AssertionError("Unknown city")


class WeatherModel(BaseChatModel):
    """A scripted stand-in for the chat model: a question names a city, it calls get_weather, then it reports."""

    @property
    def _llm_type(self) -> str:
        return "scripted-weather"

    def bind_tools(self, tools: Any, **kwargs: Any) -> WeatherModel:
        return self

    def _generate(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(f"Here is the weather: {last.content}")
        else:
            city = "sf" if "sf" in str(last.content) else "nyc"
            reply = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": f"call-{city}"}])
        return ChatResult(generations=[ChatGeneration(message=reply)])


class Messages(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def weather_agent(checkpointer: Any) -> Any:
    """The agent of the integration tests (a model with the weather tool, looping until it answers)."""
    model = WeatherModel().bind_tools([get_weather])
    g = StateGraph(Messages)
    g.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node("tools", ToolNode([get_weather]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer)


def _checkpoint() -> dict[str, Any]:
    return {
        "v": 1,
        "id": str(uuid6(clock_seq=-2)),
        "ts": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "channel_values": {"key": "value"},
        "channel_versions": {},
        "versions_seen": {},
        "pending_sends": [],
    }


class TestBedrockMemorySaver:
    """tests/integration_tests/saver/test_saver.py of langchain-aws, on the local server."""

    @pytest.fixture
    def session_saver(self, bedrock_sessions_endpoint: str) -> Any:
        from bedrock_sessions import BedrockSessionSaver

        return BedrockSessionSaver(region_name="us-west-2")

    @pytest.fixture
    def boto_session_client(self, session_saver: Any) -> Any:
        return session_saver.session_client.client

    def test_checkpoint_save_and_retrieve(self, boto_session_client: Any, session_saver: Any) -> None:
        session_id = boto_session_client.create_session()["sessionId"]
        assert session_id
        config = {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
        checkpoint = _checkpoint()
        checkpoint_metadata = {"source": "input", "step": 1, "writes": {"key": "value"}}
        try:
            saved_config = session_saver.put(config, checkpoint, checkpoint_metadata, {})
            assert saved_config == {
                "configurable": {"checkpoint_id": checkpoint["id"], "checkpoint_ns": "", "thread_id": session_id}
            }
            checkpoint_tuple = session_saver.get_tuple(saved_config)
            assert checkpoint_tuple.checkpoint == checkpoint
            assert checkpoint_tuple.metadata == checkpoint_metadata
            assert checkpoint_tuple.config == saved_config
        finally:
            boto_session_client.end_session(sessionIdentifier=session_id)
            boto_session_client.delete_session(sessionIdentifier=session_id)

    def test_weather_query_and_checkpointing(self, boto_session_client: Any, session_saver: Any) -> None:
        session_id = boto_session_client.create_session()["sessionId"]
        try:
            graph = weather_agent(session_saver)
            config = {"configurable": {"thread_id": session_id}}
            response = graph.invoke({"messages": [("human", "what's the weather in sf")]}, config)
            assert response["messages"][-1].content == "Here is the weather: It's always sunny in sf"
            checkpoint = session_saver.get(config)
            assert checkpoint and len(checkpoint["channel_values"]["messages"]) == 4
            checkpoint_tuples = list(session_saver.list(config))
            assert isinstance(checkpoint_tuples, list) and len(checkpoint_tuples) == 5
        finally:
            boto_session_client.end_session(sessionIdentifier=session_id)
            boto_session_client.delete_session(sessionIdentifier=session_id)


class TestAsyncBedrockMemorySaver:
    """tests/integration_tests/saver/test_async_saver.py of langchain-aws, on the local server."""

    @pytest.fixture
    def session_saver(self, bedrock_sessions_endpoint: str) -> Any:
        from bedrock_sessions import AsyncBedrockSessionSaver

        return AsyncBedrockSessionSaver(region_name="us-west-2")

    @pytest.fixture
    def boto_session_client(self, session_saver: Any) -> Any:
        return session_saver.session_client  # the async client wrapper

    def test_checkpoint_save_and_retrieve(self, boto_session_client: Any, session_saver: Any) -> None:
        async def run() -> None:
            session_id = (await boto_session_client.create_session()).session_id
            assert session_id
            config = {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
            checkpoint = _checkpoint()
            checkpoint_metadata = {"source": "input", "step": 1, "writes": {"key": "value"}}
            try:
                saved_config = await session_saver.aput(config, checkpoint, checkpoint_metadata, {})
                checkpoint_tuple = await session_saver.aget_tuple(saved_config)
                assert checkpoint_tuple.checkpoint == checkpoint
                assert checkpoint_tuple.metadata == checkpoint_metadata
                assert checkpoint_tuple.config == saved_config
            finally:
                await boto_session_client.end_session(aws_models.EndSessionRequest(session_identifier=session_id))
                await boto_session_client.delete_session(aws_models.DeleteSessionRequest(session_identifier=session_id))

        asyncio.run(run())

    def test_weather_query_and_checkpointing(self, boto_session_client: Any, session_saver: Any) -> None:
        async def run() -> None:
            session_id = (await boto_session_client.create_session()).session_id
            try:
                graph = weather_agent(session_saver)
                config = {"configurable": {"thread_id": session_id}}
                response = await graph.ainvoke({"messages": [("human", "what's the weather in sf")]}, config)
                assert response["messages"][-1].content == "Here is the weather: It's always sunny in sf"
                assert await session_saver.aget(config)
                assert len([t async for t in session_saver.alist(config)]) == 5
            finally:
                await boto_session_client.end_session(aws_models.EndSessionRequest(session_identifier=session_id))
                await boto_session_client.delete_session(aws_models.DeleteSessionRequest(session_identifier=session_id))

        asyncio.run(run())


# ---------------------------------------------------------------- through langgraph-checkpoint-aws's DeferredCheckpointSaver
def _deferred_checkpoint() -> Checkpoint:
    return Checkpoint(
        v=1,
        id=str(uuid6(clock_seq=-2)),
        ts=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        channel_values={"messages": ["test message"]},
        channel_versions={"messages": "v1"},
        versions_seen={"node1": {"messages": "v1"}},
        updated_channels=None,
    )


class TestDeferredCheckpointSaver:
    """The bedrock_session backend of langchain-aws's tests/integration_tests/test_deferred_saver.py: the saver and a
    session made as its ``create_bedrock_session`` helper makes them (``saver.session_client.client``)."""

    @pytest.fixture(params=[False, True], ids=["sequential", "batch_writes"])
    def batch_writes(self, request: pytest.FixtureRequest) -> bool:
        return request.param

    @pytest.fixture
    def saver_and_thread(self, bedrock_sessions_endpoint: str) -> Iterator[tuple[Any, str]]:
        from bedrock_sessions import BedrockSessionSaver

        saver = BedrockSessionSaver(region_name="us-east-1")
        client = saver.session_client.client
        session_id = client.create_session()["sessionId"]
        yield saver, session_id
        client.end_session(sessionIdentifier=session_id)
        client.delete_session(sessionIdentifier=session_id)

    @staticmethod
    def _config(thread_id: str, checkpoint_id: str | None = None) -> Any:
        conf = {"thread_id": thread_id, "actor_id": "actor", "checkpoint_ns": ""}
        return {"configurable": conf if checkpoint_id is None else {**conf, "checkpoint_id": checkpoint_id}}

    def test_nothing_persisted_before_flush(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "input", "step": 1}, {})
        assert not deferred.is_empty
        assert list(saver.list(self._config(thread))) == []
        deferred.clear()

    def test_flush_persists_to_underlying_saver(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        checkpoint = _deferred_checkpoint()
        deferred.put(self._config(thread), checkpoint, {"source": "input", "step": 1}, {})
        deferred.flush()
        assert deferred.is_empty
        assert len(list(saver.list(self._config(thread)))) >= 1
        result = saver.get_tuple(self._config(thread, checkpoint["id"]))
        assert result is not None and result.checkpoint["id"] == checkpoint["id"]
        assert result.checkpoint["channel_values"] == {"messages": ["test message"]}

    def test_flush_on_exit_context_manager(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        with deferred.flush_on_exit():
            deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "input", "step": 1}, {})
        assert deferred.is_empty
        assert len(list(saver.list(self._config(thread)))) >= 1

    def test_get_tuple_returns_buffered_data(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        checkpoint = _deferred_checkpoint()
        deferred.put(self._config(thread), checkpoint, {"source": "input", "step": 1}, {})
        result = deferred.get_tuple(self._config(thread))
        assert result is not None and result.checkpoint["id"] == checkpoint["id"]
        deferred.clear()

    def test_put_overwrites_keeps_only_latest(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        metadata: CheckpointMetadata = {"source": "loop", "step": 0}
        checkpoints = [_deferred_checkpoint() for _ in range(3)]
        for checkpoint in checkpoints:
            deferred.put(self._config(thread), checkpoint, metadata, {})
        deferred.flush()
        persisted = list(saver.list(self._config(thread)))
        assert [p.checkpoint["id"] for p in persisted] == [checkpoints[-1]["id"]]

    def test_clear_discards_without_persisting(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "input", "step": 1}, {})
        deferred.clear()
        assert deferred.is_empty and list(saver.list(self._config(thread))) == []

    def test_flush_persists_writes(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        checkpoint = _deferred_checkpoint()
        deferred.put(self._config(thread), checkpoint, {"source": "input", "step": 1}, {})
        deferred.put_writes(self._config(thread, checkpoint["id"]), [("messages", "hello")], "task-1")
        assert deferred.has_buffered_writes
        deferred.flush()
        assert deferred.is_empty
        stored = saver.get_tuple(self._config(thread, checkpoint["id"]))
        assert stored is not None and stored.pending_writes == [("task-1", "messages", "hello")]

    def test_multi_session_isolation(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        with deferred.flush_on_exit():
            deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "input", "step": 1}, {})
        with deferred.flush_on_exit():
            deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "loop", "step": 2}, {})
        assert len(list(saver.list(self._config(thread)))) >= 2

    def test_flush_on_exit_persists_on_exception(self, saver_and_thread: Any, batch_writes: bool) -> None:
        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        with pytest.raises(ValueError, match="simulated"):
            with deferred.flush_on_exit():
                deferred.put(self._config(thread), _deferred_checkpoint(), {"source": "input", "step": 1}, {})
                raise ValueError("simulated")
        assert deferred.is_empty and len(list(saver.list(self._config(thread)))) >= 1

    def test_a_graph_through_the_deferred_saver(self, saver_and_thread: Any, batch_writes: bool) -> None:
        """Its documented use: a graph compiled on the wrapper, flushed on exit, read back by a new saver."""
        from bedrock_sessions import BedrockSessionSaver

        saver, thread = saver_and_thread
        deferred = DeferredCheckpointSaver(saver, batch_writes=batch_writes)
        graph = weather_agent(deferred)
        config = {"configurable": {"thread_id": thread}}
        with deferred.flush_on_exit():
            graph.invoke({"messages": [HumanMessage("weather in nyc?")]}, config)
        again = weather_agent(BedrockSessionSaver(region_name="us-east-1"))
        assert again.get_state(config).values["messages"][-1].content == "Here is the weather: It might be cloudy in nyc"


# ---------------------------------------------------------------- helpers
class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def _counter_graph() -> StateGraph:
    g = StateGraph(Items)
    g.add_node("n", lambda s: {"items": ["n"]})
    g.add_edge(START, "n")
    return g



def test_the_replaced_packages_module_paths_exist_under_our_name():
    """``from langgraph_checkpoint_aws.<module> import X`` becomes ``from bedrock_sessions.<module> import X``."""
    import importlib

    import langgraph_checkpoint_aws  # noqa: F401  (the names it exports are the ones we must have)

    import bedrock_sessions

    for module, names in {
        "saver": ["BedrockSessionSaver"],
        "async_saver": ["AsyncBedrockSessionSaver"],
        "session": ["BedrockAgentRuntimeSessionClient"],
        "async_session": ["AsyncBedrockAgentRuntimeSessionClient"],
    }.items():
        ours = importlib.import_module(f"bedrock_sessions.{module}")
        for name in names:
            assert getattr(ours, name) is getattr(bedrock_sessions, name)
