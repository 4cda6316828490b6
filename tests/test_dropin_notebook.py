"""The patterns of the AWS sample notebook of the Bedrock session management launch (a shoe-shopping sales assistant:
aws-samples/amazon-bedrock-samples, agents-and-function-calling/open-source-agents/langgraph/session-management-api),
written anew with the saver imported from ``bedrock_sessions`` instead of ``langgraph_checkpoint_aws.saver``.

As in the notebook: ``BedrockSessionSaver(region_name=...)`` with no endpoint in the code, sessions made with
``session_saver.session_client.client.create_session()["sessionId"]``, chat turns streamed on a thread, the state history,
a replay from a past checkpoint, a fork through ``update_state``, and a human-in-the-loop review with ``interrupt`` and
``Command(resume=...)``. The chat model is scripted (no network); the store is the local Bedrock session server, reached
over TCP through the pytest plugin's ``bedrock_sessions_endpoint`` fixture.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import boto3
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from bedrock_sessions.saver import BedrockSessionSaver  # the notebook: from langgraph_checkpoint_aws.saver import ...

pytestmark = pytest.mark.usefixtures("bedrock_sessions_endpoint")

# ---------------------------------------------------------------- the shop (the notebook keeps it in a SQLite file)
SHOES = [  # id, name, category, features
    (1, "Cloud Runner", "running", "light, cushioned"),
    (2, "Trail Blazer", "hiking", "waterproof, grippy"),
    (3, "Road Tempo", "running", "fast, firm"),
]
CART: list[tuple[int, int, str, int]] = []  # user_id, shoe_id, size, quantity


@tool
def search_shoes(preference: str) -> str:
    """Search for shoes based on user preferences and interests (running, hiking, ...).

    Args:
        preference: User preference
    """
    hits = [s for s in SHOES if preference.lower() in s[2] or preference.lower() in s[3]]
    return "; ".join(f"#{i} {name} ({cat}: {feat})" for i, name, cat, feat in hits) or "nothing found"


@tool
def add_to_cart(user_id: int, shoe_id: int, size: str, quantity: int = 1) -> str:
    """Add shoes to the user's cart.

    Args:
        user_id: User id
        shoe_id: Shoe id
        size: Shoe size
        quantity: Quantity
    """
    CART.append((user_id, shoe_id, size, quantity))
    return f"Added shoe #{shoe_id} size {size} to the cart"


tools = [search_shoes, add_to_cart]


class ScriptedSalesModel(BaseChatModel):
    """Stands in for Claude: asks about preferences, searches on a stated preference, adds "the first one" from the last
    search it finds in the conversation (so it needs the thread's history), and reports a tool's result."""

    @property
    def _llm_type(self) -> str:
        return "scripted-sales-assistant"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedSalesModel:
        return self

    def _generate(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        n = sum(isinstance(m, AIMessage) for m in messages)  # stable, distinct tool call ids within a thread
        if isinstance(last, ToolMessage):
            return AIMessage(f"Result: {last.content}")
        text = str(last.content).lower()
        if m := re.search(r"add the first one in size (\d+)", text):
            found = [msg for msg in messages if isinstance(msg, ToolMessage) and msg.name == "search_shoes"]
            if not found:
                return AIMessage("Which shoes would you like? Tell me what you like first.")
            shoe_id = int(re.search(r"#(\d+)", str(found[-1].content)).group(1))  # type: ignore[union-attr]
            args = {"user_id": 1, "shoe_id": shoe_id, "size": m.group(1)}
            return AIMessage("", tool_calls=[{"name": "add_to_cart", "args": args, "id": f"call-{n}"}])
        for preference in ("running", "hiking"):
            if preference in text:
                call = {"name": "search_shoes", "args": {"preference": preference}, "id": f"call-{n}"}
                return AIMessage("", tool_calls=[call])
        return AIMessage("What will you use the shoes for?")


llm = ScriptedSalesModel()


class State(TypedDict):
    messages: Annotated[list, add_messages]


primary_assistant_prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful and friendly chatbot who can help users to purchase shoes. "
                   "Ask questions about user preferences and interests "
                   "Ask questions that can help user to add shoes to the cart "),
        ("placeholder", "{messages}"),
    ]
)
runnable_with_tools = primary_assistant_prompt | llm.bind_tools(tools)


def chatbot(state: State) -> dict[str, Any]:
    return {"messages": [runnable_with_tools.invoke(state)]}


def sales_graph_builder() -> StateGraph:
    graph_builder = StateGraph(State)
    graph_builder.add_node("chatbot", chatbot)
    graph_builder.add_node("tools", ToolNode(tools))
    graph_builder.add_conditional_edges("chatbot", tools_condition, {"tools": "tools", "__end__": "__end__"})
    graph_builder.add_edge("tools", "chatbot")
    graph_builder.add_edge(START, "chatbot")
    return graph_builder


def chat(graph: Any, config: Any, user_inputs: list[str]) -> list[str]:
    """The notebook's input() loop, with the user's lines given: what the assistant printed."""
    printed: list[str] = []
    for user_input in user_inputs:
        for event in graph.stream({"messages": [("user", user_input)]}, config):
            for value in event.values():
                if isinstance(value["messages"][-1], BaseMessage):
                    printed.append(value["messages"][-1].content)
    return printed


@pytest.fixture(autouse=True)
def empty_cart() -> None:
    CART.clear()


# ---------------------------------------------------------------- stateful conversation, history, replay, fork
def test_conversation_is_kept_in_the_session(bedrock_sessions_server: Any) -> None:
    session_saver = BedrockSessionSaver(region_name="us-west-2")
    graph = sales_graph_builder().compile(checkpointer=session_saver)
    client = session_saver.session_client.client
    session_id = client.create_session()["sessionId"]
    config = {"configurable": {"thread_id": session_id}}

    printed = chat(graph, config, ["hello", "I like running", "add the first one in size 42"])
    assert printed[0] == "What will you use the shoes for?"
    assert printed[-1] == "Result: Added shoe #1 size 42 to the cart"
    assert CART == [(1, 1, "42", 1)]

    # The notebook's point: the conversation resumes where it left off, in a new process (a new saver here).
    later = sales_graph_builder().compile(checkpointer=BedrockSessionSaver(region_name="us-west-2"))
    assert chat(later, config, ["add the first one in size 43"])[-1] == "Result: Added shoe #1 size 43 to the cart"
    assert len(later.get_state(config).values["messages"]) == 14

    # The data lives in the Bedrock session the notebook created (plain boto3 sees it on the server).
    boto = boto3.client("bedrock-agent-runtime")
    assert boto.get_session(sessionIdentifier=session_id)["sessionStatus"] == "ACTIVE"
    steps = boto.list_invocation_steps(sessionIdentifier=session_id, maxResults=100)["invocationStepSummaries"]
    assert steps and bedrock_sessions_server.stats()["operations"]["PutInvocationStep"] >= len(steps)


def history_replay_and_fork(checkpointer: Any, session_id: str) -> list[Any]:
    """The notebook's History, Replaying and Forking cells on one thread; returns what a reader of them sees."""
    graph = sales_graph_builder().compile(checkpointer=checkpointer)
    config = {"configurable": {"thread_id": session_id}}
    chat(graph, config, ["I like running"])
    seen: list[Any] = []

    def shape(history: list[Any]) -> list[Any]:
        return [(s.next, s.metadata["source"], s.metadata["step"], len(s.values["messages"])) for s in history]

    # History
    seen.append(len(list(graph.get_state_history(config, limit=3))))
    all_checkpoints = list(graph.get_state_history(config))
    seen.append(shape(all_checkpoints))

    # Replaying: from the checkpoint before the tool ran, the graph runs the tool and the chatbot again.
    before_tools = all_checkpoints[2]
    config_replay = {"configurable": {"thread_id": session_id,
                                      "checkpoint_id": before_tools.config["configurable"]["checkpoint_id"]}}
    events = list(graph.stream(None, config_replay, stream_mode="values"))
    seen.append(events[-1]["messages"][-1].content)
    replayed = graph.get_state(config)
    seen.append(shape(list(graph.get_state_history(config))))

    # Forking: change the user's message at the checkpoint before the chatbot answered it, and run from there.
    first_input = all_checkpoints[3]
    original = first_input.values["messages"][-1]
    fork_at = {"thread_id": session_id, "checkpoint_id": first_input.config["configurable"]["checkpoint_id"]}
    if isinstance(checkpointer, InMemorySaver):
        fork_at["checkpoint_ns"] = ""  # InMemorySaver.put needs it; the notebook's config (for the Bedrock saver) has none
    fork_config = graph.update_state({"configurable": fork_at}, {"messages": [HumanMessage("I like hiking", id=original.id)]})
    events = list(graph.stream(None, fork_config, stream_mode="values"))
    seen.append([m.content for m in events[-1]["messages"]])
    # The first branch is intact.
    seen.append([m.content for m in graph.get_state(replayed.config).values["messages"]])
    seen.append(shape(list(graph.get_state_history(config))))
    return seen


def test_history_replay_and_fork() -> None:
    """The same cells on LangGraph's InMemorySaver show the same thing: history, replay and fork behave identically."""
    session_saver = BedrockSessionSaver(region_name="us-west-2")
    session_id = session_saver.session_client.client.create_session()["sessionId"]
    seen = history_replay_and_fork(session_saver, session_id)
    assert seen == history_replay_and_fork(InMemorySaver(), session_id)

    limited, history, replayed, _, fork, main_branch, _ = seen
    assert limited == 3
    assert [(n, source) for n, source, _, _ in history] == [
        ((), "loop"), (("chatbot",), "loop"), (("tools",), "loop"), (("chatbot",), "loop"), (("__start__",), "input")]
    assert replayed == "Result: #1 Cloud Runner (running: light, cushioned); #3 Road Tempo (running: fast, firm)"
    assert fork[0] == "I like hiking" and fork[-1] == "Result: #2 Trail Blazer (hiking: waterproof, grippy)"
    assert main_branch[0] == "I like running" and main_branch[-1] == replayed

    # Each of our checkpoints points at the one before it (the replaced saver stored no parent).
    graph = sales_graph_builder().compile(checkpointer=session_saver)
    snapshots = list(graph.get_state_history({"configurable": {"thread_id": session_id}}))
    assert all(s.parent_config for s in snapshots[:-1]) and snapshots[-1].parent_config is None


# ---------------------------------------------------------------- human in the loop
def human_review_node(state: State) -> Command[Literal["chatbot", "run_tool"]]:
    last_message = state["messages"][-1]
    tool_call = last_message.tool_calls[-1]
    human_review = interrupt({"question": "Is this correct?", "tool_call": tool_call})
    review_action = human_review["action"]
    review_data = human_review.get("data")
    if review_action == "continue":
        return Command(goto="run_tool")
    if review_action == "update":
        updated_message = {
            "role": "ai",
            "content": last_message.content,
            "tool_calls": [{"id": tool_call["id"], "name": tool_call["name"], "args": review_data}],
            "id": last_message.id,  # replaces the message under review
        }
        return Command(goto="run_tool", update={"messages": [updated_message]})
    tool_message = {"role": "tool", "content": review_data, "name": tool_call["name"], "tool_call_id": tool_call["id"]}
    return Command(goto="chatbot", update={"messages": [tool_message]})


def run_tool(state: State) -> dict[str, Any]:
    by_name = {"search_shoes": search_shoes, "add_to_cart": add_to_cart}
    new_messages = []
    for tool_call in state["messages"][-1].tool_calls:
        result = by_name[tool_call["name"]].invoke(tool_call["args"])
        new_messages.append({"role": "tool", "name": tool_call["name"], "content": result,
                             "tool_call_id": tool_call["id"]})
    return {"messages": new_messages}


def route_after_llm(state: State) -> Literal["__end__", "human_review_node"]:
    return END if len(state["messages"][-1].tool_calls) == 0 else "human_review_node"


def review_graph_builder() -> StateGraph:
    graph_builder = StateGraph(State)
    graph_builder.add_node("chatbot", chatbot)
    graph_builder.add_node("run_tool", run_tool)
    graph_builder.add_node("human_review_node", human_review_node)
    graph_builder.add_edge(START, "chatbot")
    graph_builder.add_conditional_edges("chatbot", route_after_llm)
    graph_builder.add_edge("run_tool", "chatbot")
    return graph_builder


@pytest.mark.parametrize(
    ("resume", "answer"),
    [
        ({"action": "continue"}, "Result: #1 Cloud Runner (running: light, cushioned); #3 Road Tempo (running: fast, firm)"),
        ({"action": "update", "data": {"preference": "hiking"}}, "Result: #2 Trail Blazer (hiking: waterproof, grippy)"),
        ({"action": "feedback", "data": "Only show waterproof shoes"}, "Result: Only show waterproof shoes"),
    ],
    ids=["continue", "update", "feedback"],
)
def test_human_in_the_loop(resume: dict[str, Any], answer: str) -> None:
    session_saver = BedrockSessionSaver(region_name="us-west-2")
    graph = review_graph_builder().compile(checkpointer=session_saver)
    client = session_saver.session_client.client
    session_id = client.create_session()["sessionId"]
    initial_input = {"messages": [{"role": "user", "content": "Can you help me buy running shoes"}]}
    thread = {"configurable": {"thread_id": session_id}}

    # Run the graph until the first interruption
    events = list(graph.stream(initial_input, thread, stream_mode="updates"))
    (paused,) = events[-1]["__interrupt__"]
    assert paused.value["question"] == "Is this correct?"
    assert paused.value["tool_call"]["args"] == {"preference": "running"}
    assert graph.get_state(thread).next == ("human_review_node",)

    # The reviewer answers later, from another process (a new saver on the same session).
    resumed = review_graph_builder().compile(checkpointer=BedrockSessionSaver(region_name="us-west-2"))
    events = list(resumed.stream(Command(resume=resume), thread, stream_mode="updates"))
    assert events[-1]["chatbot"]["messages"][-1].content == answer
    final = resumed.get_state(thread)
    assert final.next == () and final.values["messages"][-1].content == answer
    ai = [m for m in final.values["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert len(ai) == 1  # an "update" replaced the reviewed message rather than adding one
