"""The web inspector in a real browser: Chromium from the system's packages, driven by Playwright, against the page
served for the shoe-assistant demo's database and for a thread a graph is writing to (live updates). With
``BEDROCK_SESSIONS_SCREENSHOTS=DIR`` the tests save a screenshot of each page there (docs/images holds them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")

from _browser import chromium  # noqa: E402
from _inspect_support import THREAD, demo_module  # noqa: E402
from _lg_graphs import three_nodes  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.inspect import Inspector  # noqa: E402
from bedrock_sessions.inspect._web import WebInspector  # noqa: E402

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    p.close()
    assert not errors, errors


@pytest.fixture()
def demo_ui(demo_db: str) -> Iterator[WebInspector]:
    with WebInspector(Inspector(SessionClient.local(demo_db))) as web:
        yield web


def shot(page: Any, name: str) -> None:
    where = os.environ.get("BEDROCK_SESSIONS_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"inspector-{name}.png"), full_page=False)


def test_thread_list_with_search(page: Any, demo_ui: WebInspector) -> None:
    page.goto(demo_ui.url)
    rows = page.locator("#threads tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and THREAD in rows.first.inner_text()
    assert "31" in rows.first.inner_text()  # checkpoints
    shot(page, "threads")
    page.fill("#search", "nobody")
    assert rows.count() == 0
    page.fill("#search", "shopper")
    assert rows.count() == 1


def test_sessions_page_and_raw_steps(page: Any, demo_ui: WebInspector) -> None:
    page.goto(demo_ui.url + "#/sessions")
    rows = page.locator("#sessions tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and "ACTIVE" in rows.first.inner_text()
    page.select_option("#status-filter", "EXPIRED")
    assert rows.count() == 0
    page.select_option("#status-filter", "ACTIVE")
    shot(page, "sessions")
    rows.first.locator("a").click()
    page.locator("#session-info").wait_for()
    steps = page.locator(".step")
    steps.first.wait_for()
    want = demo_ui.inspector.session(page.url.rsplit("/", 1)[1])["steps"]
    assert steps.count() == want
    assert "of 1000 steps used" in page.locator("#session-info").inner_text()
    shot(page, "session")


def test_a_thread_is_a_tree_with_its_forks_and_its_state(page: Any, demo_ui: WebInspector, demo_db: str) -> None:
    page.goto(demo_ui.url + "#/thread/" + THREAD)
    nodes = page.locator("#tree .node")
    nodes.first.wait_for()
    history = demo_ui.inspector.history(THREAD)
    assert nodes.count() == len(history) == 31
    assert page.locator("#tree .node.fork").count() == 2  # the replay and the fork branch off two checkpoints
    assert page.locator("#tree path.edge").count() == sum(1 for r in history if r["parent_checkpoint_id"])
    # the newest checkpoint's state, as LangGraph has it
    state = demo_module().build_graph(BedrockSessionSaver(client=SessionClient.local(demo_db))).get_state(
        {"configurable": {"thread_id": THREAD}})
    msgs = page.locator("#state .channel[data-channel=messages] .msg")
    msgs.first.wait_for()
    assert msgs.count() == len(state.values["messages"])
    assert "Do you have trail running shoes in size 42?" in msgs.first.inner_text()
    shot(page, "thread")
    # another checkpoint: one with an interrupt (the approval)
    asked = next(r for r in history if r["interrupts"])
    page.locator(f'#tree .node[data-checkpoint="{asked["checkpoint_id"]}"] circle').click()
    page.locator("#interrupts").wait_for()
    assert "Place this order?" in page.locator("#interrupts").inner_text()
    assert page.locator(f'#tree .node.selected[data-checkpoint="{asked["checkpoint_id"]}"]').count() == 1


def test_a_diff_between_two_checkpoints(page: Any, demo_ui: WebInspector) -> None:
    history = demo_ui.inspector.history(THREAD)
    child = next(r for r in history if r["source"] == "loop" and r["next"] == ["tools"] and r["parent_checkpoint_id"])
    page.goto(demo_ui.url + "#/thread/" + THREAD)
    page.locator("#tree .node").first.wait_for()
    page.fill("#diff-a", "#" + child["parent_checkpoint_id"][-8:])  # short ids, as the tree shows them
    page.fill("#diff-b", child["checkpoint_id"])
    page.click("#diff-go")
    changed = page.locator('#diff .changed[data-channel="messages"] .msg')
    changed.first.wait_for()
    appended = demo_ui.inspector.diff(THREAD, child["parent_checkpoint_id"], child["checkpoint_id"])
    assert changed.count() == len(appended["changed"]["messages"]["appended"])
    shot(page, "diff")


def test_a_long_thread_draws_the_rows_in_view_and_the_rest_on_scroll(page: Any, tmp_path: Path) -> None:
    db = str(tmp_path / "long.db")
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(db)))
    for i in range(70):
        app.invoke({"items": [i]}, {"configurable": {"thread_id": "long"}})
    from playwright.sync_api import expect

    with WebInspector(Inspector(SessionClient.local(db))) as web:
        page.goto(web.url + "#/thread/long")
        page.locator("#tree .node").first.wait_for()
        # the newest 300 first, then the whole history
        expect(page.locator("#count")).to_have_text("350 checkpoints", timeout=30_000)
        drawn = page.locator("#tree .node").count()
        assert 20 < drawn < 350  # the rows in view, not all of them
        oldest = web.inspector.history("long")[-1]["checkpoint_id"]
        assert page.locator(f'#tree .node[data-checkpoint="{oldest}"]').count() == 0
        page.locator(".tree").evaluate("box => { box.scrollTop = box.scrollHeight; }")
        page.locator(f'#tree .node[data-checkpoint="{oldest}"]').wait_for()
        # every drawn checkpoint but the thread's first has its edge to its parent
        assert page.locator("#tree path.edge").count() >= page.locator("#tree .node").count() - 1


def test_live_updates_while_a_graph_runs(page: Any, tmp_path: Path) -> None:
    db = str(tmp_path / "live.db")
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(db)))
    cfg = {"configurable": {"thread_id": "live"}}
    app.invoke({"items": ["first"]}, cfg)
    with WebInspector(Inspector(SessionClient.local(db))) as web:
        page.goto(web.url + "#/thread/live")
        page.locator("#tree .node").first.wait_for()
        assert page.locator("#count").inner_text() == "5 checkpoints"
        assert page.locator("#live").is_visible()
        app.invoke({"items": ["second"]}, cfg)  # written by this process while the page is open
        from playwright.sync_api import expect

        expect(page.locator("#count")).to_have_text("10 checkpoints", timeout=10_000)
        assert page.locator("#tree .node").count() == 10


def test_the_server_refuses_other_hosts(demo_ui: WebInspector) -> None:
    import http.client

    host, port = demo_ui.url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/api/threads", headers={"Host": f"attacker.example:{port}"})
    assert conn.getresponse().status == 403
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/api/threads/nobody/history")
    r = conn.getresponse()
    assert r.status == 404 and b"no thread" in r.read()


def test_the_pages_under_the_servers_own_address(page: Any, demo_db: str) -> None:
    """``LocalServer(ui=True)`` (``bedrock-sessions serve --ui``): the pages under /ui/ of the API's address."""
    from bedrock_sessions.server import LocalServer

    with LocalServer(SessionClient.local(demo_db), ui=True) as server:
        page.goto(server.ui_url + "#/thread/" + THREAD)
        page.locator("#tree .node").first.wait_for()
        assert page.locator("#tree .node.fork").count() == 2
        page.goto(server.endpoint_url + "/ui")  # the bare prefix is redirected
        page.locator("#threads tbody tr").first.wait_for()
        assert page.url == server.ui_url
