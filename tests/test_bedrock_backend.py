"""The Bedrock backend (AWS SDK for Rust) against the local server over TCP: LangGraph conformance, the
replaced saver (boto3) handing a thread to ours, the replaced saver's constructor arguments, and retries
under injected faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langgraph.graph import END, START, StateGraph  # noqa: E402

from _lg_graphs import State, three_nodes  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from bedrock_sessions import AsyncSessionClient, BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.exceptions import ValidationException  # noqa: E402
from bedrock_sessions.server import LocalServer  # noqa: E402

KEYS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def with_approval() -> StateGraph:
    g = StateGraph(State)
    g.add_node("fast", lambda s: {"items": ["fast"]})
    g.add_node("ask", lambda s: {"items": [f"answer:{interrupt('ok?')}"]})
    g.add_edge(START, "fast")
    g.add_edge(START, "ask")
    g.add_edge(["fast", "ask"], END)
    return g


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


def bedrock_client(server: LocalServer, cls: type = SessionClient, **kw: Any) -> Any:
    return cls.bedrock(endpoint_url=server.endpoint_url, **KEYS, **kw)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("door", ["async", "sync"])
def test_conformance_through_the_server(server: LocalServer, door: str) -> None:
    from test_saver_conformance import SyncDriven, _run_suite

    index = server.client.create_session(sessionMetadata={"purpose": "thread index"})["sessionId"]

    def make() -> Any:
        saver = BedrockSessionSaver(client=bedrock_client(server, thread_index=index))
        return saver if door == "async" else SyncDriven(saver)

    _run_suite(make, f"BedrockSessionSaver[bedrock-over-server,{door}]")
    assert server.stats()["operations"].get("PutInvocationStep", 0) > 0, "the suite really went over HTTP"


def test_without_a_thread_index_threads_are_sessions(server: LocalServer) -> None:
    saver = BedrockSessionSaver(client=bedrock_client(server))
    app = three_nodes().compile(checkpointer=saver)
    with pytest.raises(ValidationException) as err:
        app.invoke({"items": ["x"]}, {"configurable": {"thread_id": "not-a-session"}})
    assert "not-a-session" in str(err.value) and "create_thread" in str(err.value)
    thread = saver.create_thread(metadata={"user": "ana"})
    app.invoke({"items": ["x"]}, {"configurable": {"thread_id": thread}})
    assert app.get_state({"configurable": {"thread_id": thread}}).values["items"] == ["x", "plan", "act", "reply"]
    arn = server.client.get_session(sessionIdentifier=thread)["sessionArn"]
    assert app.get_state({"configurable": {"thread_id": arn}}).values["items"][-1] == "reply"
    saver.delete_thread(thread)
    with pytest.raises(server.client.exceptions.ResourceNotFoundException):
        server.client.get_session(sessionIdentifier=thread)


def test_replaced_saver_over_boto3_then_ours_over_the_sdk(server: LocalServer, bedrock_sessions_endpoint: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import BedrockSessionSaver as OldSaver

    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", server.endpoint_url)
    boto = boto3.client("bedrock-agent-runtime", region_name="us-east-1")  # no endpoint_url: the env var
    sid = boto.create_session()["sessionId"]
    cfg = {"configurable": {"thread_id": sid}}
    old = with_approval().compile(checkpointer=OldSaver(client=boto))
    old.invoke({"items": ["start"]}, cfg)
    # (Not old.get_state: the replaced saver reads only the newest write step, so it loses "fast" in some runs.)
    before = server.stats()["requests"]

    # Ours, built with the replaced saver's arguments, through the AWS SDK for Rust.
    ours = with_approval().compile(checkpointer=BedrockSessionSaver(endpoint_url=server.endpoint_url, **KEYS))
    state = ours.get_state(cfg)
    assert state.next == ("ask",) and state.interrupts[0].value == "ok?"
    result = ours.invoke(Command(resume="yes"), cfg)
    assert sorted(result["items"]) == sorted(["start", "fast", "answer:yes"])
    assert server.stats()["requests"] > before
    # And ours given the boto3 client itself, as the replaced saver was.
    again = with_approval().compile(checkpointer=BedrockSessionSaver(client=boto))
    assert again.get_state(cfg).values == result


@pytest.mark.timeout(300)
def test_retries_under_twenty_percent_faults_give_the_fault_free_history() -> None:
    TURNS = 14  # about 170 requests (the group commit makes few per turn), so 20% is some 30 faults

    def run(fault_rate: float) -> tuple[list[Any], dict[str, Any]]:
        with LocalServer(fault_rate=fault_rate, seed=7) as srv:
            index = srv.client.create_session()["sessionId"]
            client = SessionClient.bedrock(endpoint_url=srv.endpoint_url, thread_index=index, max_attempts=12, **KEYS)
            app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
            cfg = {"configurable": {"thread_id": "faulty"}}
            for turn in range(TURNS):
                app.invoke({"items": [f"turn{turn}"]}, cfg)
            history = [
                (s.values, s.next, s.metadata["step"], s.metadata["source"], s.parent_config is not None)
                for s in app.get_state_history(cfg)
            ]
            return history, srv.stats()

    clean, clean_stats = run(0.0)
    faulty, faulty_stats = run(0.2)
    assert clean_stats["faults"] == 0
    assert faulty_stats["faults"] > 20, faulty_stats
    assert faulty == clean
    assert len(clean) == TURNS * 5 and clean[0][0]["items"][-1] == "reply"


def test_async_client_over_the_sdk(server: LocalServer) -> None:
    import asyncio

    async def go() -> Any:
        client = bedrock_client(server, AsyncSessionClient)
        s = await client.create_session(tags={"app": "x"})
        inv = await client.create_invocation(sessionIdentifier=s["sessionArn"])
        import datetime

        now = datetime.datetime.now(datetime.timezone.utc)
        await asyncio.gather(*[
            client.put_invocation_step(sessionIdentifier=s["sessionId"], invocationIdentifier=inv["invocationId"],
                                       invocationStepTime=now, payload={"contentBlocks": [{"text": str(i)}]})
            for i in range(30)
        ])
        pages = [p async for p in client.get_paginator("list_invocation_steps").paginate(
            sessionIdentifier=s["sessionId"], PaginationConfig={"PageSize": 7})]
        return sum(len(p["invocationStepSummaries"]) for p in pages), len(pages)

    count, pages = asyncio.run(go())
    assert count == 30 and pages == 5
    assert server.stats()["max_in_flight"] > 1, "the async client sends requests concurrently"
