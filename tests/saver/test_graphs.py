"""Real LangGraph graphs on the saver under test, compared run for run with LangGraph's ``InMemorySaver``.

Each scenario (``_saver_scenarios.py``) returns a normalized record of its run (outputs, states, full histories with
pending writes; see ``_saver_harness.py`` for what is normalized and why) and asserts facts of its own. The record on
each saver under test must be identical to the record on ``InMemorySaver``, sync (``invoke``...) and async
(``ainvoke``...).
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from _saver_harness import Driver, Hits, assert_same_record
from _saver_scenarios import SCENARIOS, build_chat, cfg
from _saver_kinds import WRONG_KEY, encrypted_serde, open_driver, run_scenario

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_matches_in_memory_saver(name: str, saver_kind: str, mode: str, tmp_path: Path,
                                          reference_record: Any) -> None:
    expected = reference_record(name, mode)
    got = run_scenario(name, saver_kind, mode, tmp_path)
    assert_same_record(expected, got)


# ---------------------------------------------------------------- the harness itself
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_reference_run_is_deterministic(name: str, mode: str, tmp_path: Path, reference_record: Any) -> None:
    """Two InMemorySaver runs give the same record: a mismatch on another saver is the saver, not noise."""
    assert_same_record(reference_record(name, mode), run_scenario(name, "reference", mode, tmp_path))


class _MetadataNoiseSaver(InMemorySaver):
    """A saver with a bug no scenario fact looks for: it adds a metadata key."""

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        noisy: Any = {**metadata, "noise": 1}
        return super().put(config, checkpoint, noisy, new_versions)


class _ForgetfulSaver(InMemorySaver):
    """A saver that loses the pending writes of every checkpoint."""

    def get_tuple(self, config: Any) -> Any:
        tup = super().get_tuple(config)
        return None if tup is None else tup._replace(pending_writes=[])

    def list(self, config: Any, **kwargs: Any) -> Any:
        for tup in super().list(config, **kwargs):
            yield tup._replace(pending_writes=[])


def test_harness_catches_a_difference_only_the_record_shows(reference_record: Any) -> None:
    drv = Driver(_MetadataNoiseSaver(), "sync")
    SCENARIOS["history_order"](drv)  # its facts hold...
    with pytest.raises(AssertionError, match=r"\['metadata'\]\['noise'\]: only in saver under test"):
        assert_same_record(reference_record("history_order", "sync"), drv.rec.normalized())  # ...the record differs


def test_harness_catches_lost_pending_writes() -> None:
    drv = Driver(_ForgetfulSaver(), "sync")
    with pytest.raises(AssertionError):
        SCENARIOS["interrupt_parallel"](drv)


# ---------------------------------------------------------------- encryption: the key is needed to read the state
@pytest.mark.parametrize("kind", ["stock-sqlite", "bedrock-memory", "bedrock-sqlite"])
def test_encrypted_state_needs_the_key(kind: str, mode: str, tmp_path: Path) -> None:
    with open_driver(kind, mode, tmp_path, serde=encrypted_serde()) as (drv, factory):
        graph = drv.compile(build_chat(Hits()))
        drv.invoke(graph, {"messages": [HumanMessage("the secret", id="h1")]}, cfg("enc"))

        def read(saver: Any) -> Any:
            other = Driver(saver, mode, drv.loop)
            return other.get_tuple(cfg("enc"))

        with pytest.raises(NotImplementedError, match=r"msgpack\+aes"):
            read(factory.reopen())  # LangGraph's default serializer: an unknown (encrypted) type
        with pytest.raises(ValueError, match="MAC check failed"):
            read(factory.reopen(encrypted_serde(WRONG_KEY)))
        tup = read(factory.reopen(encrypted_serde()))
        assert [m.content for m in tup.checkpoint["channel_values"]["messages"]] == ["the secret", "1: heard the secret"]


def test_async_reference_matches_sync_reference(reference_record: Any) -> None:
    """Sync and async LangGraph runs record the same thing for these graphs (so both doors test the same)."""
    for name in SCENARIOS:
        assert_same_record(reference_record(name, "sync"), reference_record(name, "async"))



def _stored_typed_values(saver: Any) -> list[tuple[str, bytes]]:
    """Every (type tag, bytes) the saver stored, read back through the session API over its store."""
    from bedrock_sessions.saver import decode_step

    client = saver.sessions
    found: list[tuple[str, bytes]] = []
    for page in client.get_paginator("list_sessions").paginate():
        for session in page["sessionSummaries"]:
            sid = session["sessionId"]
            for steps in client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid):
                for summary in steps["invocationStepSummaries"]:
                    step = client.get_invocation_step(
                        sessionIdentifier=sid,
                        invocationIdentifier=summary["invocationId"],
                        invocationStepId=summary["invocationStepId"],
                    )
                    decoded = decode_step(step["invocationStep"]["payload"])
                    assert decoded is not None, "a step of the saver's session is not LangGraph state"
                    for record in decoded["records"] if decoded["kind"] == "batch" else [decoded]:
                        if record["kind"] == "checkpoint":
                            found.append(record["checkpoint"])
                            found.extend(record["channel_values"].values())
                        else:
                            found.extend(typed for _, _, typed in record["writes"])
    return found


@pytest.mark.parametrize("encrypt", [True, False], ids=["encrypted", "control-plain"])
@pytest.mark.parametrize("kind", ["bedrock-memory", "bedrock-sqlite"])
def test_values_at_rest(kind: str, encrypt: bool, tmp_path: Path) -> None:
    """With EncryptedSerializer every stored value is ciphertext; the plain control shows the check can see text."""
    serde = encrypted_serde() if encrypt else None
    with open_driver(kind, "sync", tmp_path, serde=serde) as (drv, _):
        graph = drv.compile(build_chat(Hits()))
        drv.invoke(graph, {"messages": [HumanMessage("the secret", id="h1")]}, cfg("enc"))
        stored = _stored_typed_values(drv.saver)
    assert len(stored) >= 6
    plaintext = [tag for tag, data in stored if b"the secret" in data]
    if encrypt:
        assert all(tag.endswith("+aes") for tag, _ in stored), sorted({tag for tag, _ in stored})
        assert plaintext == []
    else:
        assert plaintext, "the control should find the text in the stored values"


class QuotaCountState(TypedDict):
    n: int
    seen: Annotated[list[int], operator.add]


def test_long_thread_outlives_the_service_quota(tmp_path: Path) -> None:
    """With the default quota (the service's 1000 steps per session) a 1500-superstep run used to fail at about
    superstep 500; now the thread moves on to a new session when its session is full, and the run completes with
    its whole history. (A superstep costs one step when its writes share the next checkpoint's step, two when
    they do not.)"""
    from langgraph.graph import END, START, StateGraph

    from bedrock_sessions import BedrockSessionSaver, SessionClient

    g = StateGraph(QuotaCountState)
    g.add_node("inc", lambda s: {"n": s["n"] + 1, "seen": [s["n"]]})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < 1500 else END, ["inc", END])
    client = SessionClient.local(str(tmp_path / "quota.db"))
    graph = g.compile(checkpointer=BedrockSessionSaver(client=client))
    cfg = {"configurable": {"thread_id": "long-1"}, "recursion_limit": 1600}
    out = graph.invoke({"n": 0, "seen": []}, cfg)
    assert out["n"] == 1500 and out["seen"] == list(range(1500))
    history = list(graph.get_state_history({"configurable": {"thread_id": "long-1"}}))
    assert [s.metadata["step"] for s in history] == list(range(1500, -2, -1))
    sessions = client.list_sessions(maxResults=100)["sessionSummaries"]
    assert len(sessions) >= 2 and max(
        int(client.get_session(sessionIdentifier=s["sessionId"])["sessionMetadata"].get("langgraph:generation", 0))
        for s in sessions
    ) == len(sessions) - 1
