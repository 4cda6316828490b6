"""The inspector commands of ``bedrock-sessions`` (sessions, steps, threads, history, show, diff, export, import, copy,
migrate, watch), run as a user runs them (a subprocess), against the shoe-assistant demo's database, the local server
(started here on 127.0.0.1) and, through the server, the Bedrock backend. ``--json`` output is checked against what
LangGraph itself reads through the saver."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")

from _lg_graphs import three_nodes  # noqa: E402
from _inspect_support import THREAD, demo_module  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.server import LocalServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "bedrock_sessions.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json").stdout)


@pytest.fixture()
def server() -> Iterator[LocalServer]:
    with LocalServer(SessionClient.memory()) as s:
        yield s


def tuples(saver: BedrockSessionSaver, thread: str) -> list[tuple[Any, ...]]:
    """A thread's history as LangGraph reads it: every field of every checkpoint tuple."""
    return [
        (t.config["configurable"]["checkpoint_ns"], t.config["configurable"]["checkpoint_id"], t.checkpoint,
         t.metadata, t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None,
         sorted(t.pending_writes or [], key=repr))
        for t in saver.list({"configurable": {"thread_id": thread}})
    ]


# ----------------------------------------------------------------------------- reading the demo's store


def test_threads_and_sessions_of_the_demo(demo_db: str) -> None:
    threads = cli_json("threads", "--db", demo_db)
    saver = BedrockSessionSaver(client=SessionClient.local(demo_db))
    assert [t["thread_id"] for t in threads] == [THREAD]
    assert threads[0]["checkpoints"] == len(list(saver.list({"configurable": {"thread_id": THREAD}})))
    assert threads[0]["generations"] == 1 and threads[0]["pending_interrupts"] == []
    sessions = cli_json("sessions", "--db", demo_db)
    assert [s["thread_id"] for s in sessions] == [THREAD]
    sid = sessions[0]["session_id"]
    assert sessions[0]["status"] == "ACTIVE" and sessions[0]["quota"] == 1000
    steps = cli_json("steps", sid, "--db", demo_db, "--decode")
    assert len(steps) == sessions[0]["steps"] > 0
    kinds = {s["decoded"]["kind"] for s in steps if s.get("decoded")}
    assert "checkpoint" in kinds
    # a checkpoint step decodes to the thread's id and readable messages
    cp = next(s["decoded"] for s in steps if s.get("decoded", {}) and s["decoded"]["kind"] == "checkpoint")
    assert cp["thread_id"] == THREAD
    human = cli("sessions", "--db", demo_db).stdout
    assert sid in human and "ACTIVE" in human


def test_history_matches_langgraphs_own_history(demo_db: str) -> None:
    """Each row's next nodes, interrupt and parent are what LangGraph's get_state_history says; the demo's replay
    and fork show as checkpoints with two branches."""
    demo = demo_module()
    graph = demo.build_graph(BedrockSessionSaver(client=SessionClient.local(demo_db)))
    cfg = {"configurable": {"thread_id": THREAD}}
    snapshots = list(graph.get_state_history(cfg))
    rows = cli_json("history", THREAD, "--db", demo_db)
    assert [r["checkpoint_id"] for r in rows] == [s.config["configurable"]["checkpoint_id"] for s in snapshots]
    for r, s in zip(rows, snapshots):
        assert r["next"] == sorted(s.next), (r["step"], r["next"], s.next)
        assert r["parent_checkpoint_id"] == (s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None)
        assert r["step"] == s.metadata["step"] and r["source"] == s.metadata["source"]
        assert r["interrupts"] == [{"interrupt": i.value, "id": i.id} for i in s.interrupts]
    assert sum(1 for r in rows if r["interrupts"]) == 2  # the two checkouts asked for approval...
    assert not any(r["waiting"] for r in rows)  # ...and were answered
    forks = [r for r in rows if r["fork"]]
    assert len(forks) == 2 and all(r["children"] == 2 for r in forks)
    table = cli("history", THREAD, "--db", demo_db).stdout
    assert "fork: 2 branches" in table and "#" + rows[0]["checkpoint_id"][-8:] in table


def test_show_decodes_the_state_as_a_person_reads_it(demo_db: str) -> None:
    demo = demo_module()
    graph = demo.build_graph(BedrockSessionSaver(client=SessionClient.local(demo_db)))
    state = graph.get_state({"configurable": {"thread_id": THREAD}})
    shown = cli_json("show", THREAD, "--db", demo_db)
    assert shown["checkpoint_id"] == state.config["configurable"]["checkpoint_id"]
    assert [(m["role"], m["content"]) for m in shown["values"]["messages"]] == [
        (m.type, m.content) for m in state.values["messages"]]
    assert shown["values"]["cart"] == state.values["cart"]
    # by a short id, as `history` prints it
    older = cli_json("history", THREAD, "--db", demo_db)[5]["checkpoint_id"]
    assert cli_json("show", THREAD, "#" + older[-8:], "--db", demo_db)["checkpoint_id"] == older
    text = cli("show", THREAD, "--db", demo_db).stdout
    assert "human: Do you have trail running shoes in size 42?" in text


def test_diff_of_two_checkpoints(demo_db: str) -> None:
    rows = cli_json("history", THREAD, "--db", demo_db)
    child = next(r for r in rows if r["source"] == "loop" and r["parent_checkpoint_id"] and r["next"] == ["tools"])
    d = cli_json("diff", THREAD, child["parent_checkpoint_id"], child["checkpoint_id"], "--db", demo_db)
    a = cli_json("show", THREAD, child["parent_checkpoint_id"], "--db", demo_db)["values"]["messages"]
    b = cli_json("show", THREAD, child["checkpoint_id"], "--db", demo_db)["values"]["messages"]
    assert d["changed"]["messages"] == {"appended": b[len(a):]} and len(b) > len(a)
    assert d["added"] == {} and d["removed"] == {}
    same = cli_json("diff", THREAD, child["checkpoint_id"], child["checkpoint_id"], "--db", demo_db)
    assert same["changed"] == {} and same["added"] == {}


def test_bad_input_gets_a_clear_error(demo_db: str, tmp_path: Path) -> None:
    missing = cli("threads", "--db", str(tmp_path / "nope.db"), check=False)
    assert missing.returncode == 2 and "no store file" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    unknown = cli("history", "nobody", "--db", demo_db, check=False)
    assert unknown.returncode == 2 and "no thread 'nobody'" in unknown.stderr
    bad = cli("show", THREAD, "zzzz", "--db", demo_db, check=False)
    assert bad.returncode == 2 and "has no checkpoint 'zzzz'" in bad.stderr
    ambiguous = cli("show", THREAD, "1", "--db", demo_db, check=False)
    assert ambiguous.returncode == 2 and "names several checkpoints" in ambiguous.stderr
    nostore = cli("threads", check=False)
    assert nostore.returncode == 2 and "--db FILE" in nostore.stderr
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n")
    refused = cli("import", str(junk), "--db", str(tmp_path / "t.db"), check=False)
    assert refused.returncode == 2 and "not a bedrock-sessions export" in refused.stderr
    assert not (tmp_path / "t.db").exists()  # refused before the target store is opened


# ----------------------------------------------------------------------------- moving threads


def test_export_import_into_the_server_gives_the_same_history(demo_db: str, server: LocalServer,
                                                              tmp_path: Path) -> None:
    """Embedded file → JSON Lines → the Bedrock backend through the local server (with a session-kept index):
    LangGraph reads the same history there, continues the thread, and a second import adds nothing."""
    out = tmp_path / "export.jsonl"
    cli("export", "--db", demo_db, "-o", str(out))
    index = server.client.create_session()["sessionId"]
    target = ["--endpoint", server.endpoint_url, "--thread-index", index]
    source = BedrockSessionSaver(client=SessionClient.local(demo_db))
    checkpoints = len(tuples(source, THREAD))
    assert cli_json("import", str(out), *target) == {"written": checkpoints, "already_there": 0}
    again = cli_json("import", str(out), *target)
    assert again == {"written": 0, "already_there": checkpoints}
    there = BedrockSessionSaver(client=SessionClient.bedrock(
        endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        thread_index=index))
    assert tuples(there, THREAD) == tuples(source, THREAD)
    demo = demo_module()
    graph = demo.build_graph(there)
    cfg = {"configurable": {"thread_id": THREAD}}
    before = len(list(graph.get_state_history(cfg)))
    graph.invoke({"messages": [("user", "What is in my cart right now?")]}, cfg)
    assert len(list(graph.get_state_history(cfg))) > before
    # decoded exports are for reading
    decoded = tmp_path / "decoded.jsonl"
    cli("export", THREAD, "--db", demo_db, "-o", str(decoded), "--decoded")
    lines = decoded.read_text().splitlines()
    assert json.loads(lines[0])["decoded"] is True
    assert any(m.get("role") == "human" for m in json.loads(lines[-1])["values"]["messages"])
    refused = cli("import", str(decoded), "--db", str(tmp_path / "x.db"), check=False)
    assert refused.returncode == 2 and "decoded export" in refused.stderr


def test_an_interrupted_copy_resumes_without_duplicates(tmp_path: Path) -> None:
    """A copy to a slow server killed half-way, then run again: the target ends with exactly the source's
    checkpoints, and as many steps as a copy that was never interrupted."""
    src = str(tmp_path / "src.db")
    saver = BedrockSessionSaver(client=SessionClient.local(src))
    app = three_nodes().compile(checkpointer=saver)
    for t in range(2):
        for i in range(15):
            app.invoke({"items": [f"t{i}"]}, {"configurable": {"thread_id": f"long-{t}"}})
    expected = {f"long-{t}": tuples(saver, f"long-{t}") for t in range(2)}
    total = sum(len(v) for v in expected.values())
    with LocalServer(SessionClient.memory(), latency=0.01) as slow, LocalServer(SessionClient.memory()) as clean:
        index = {srv.endpoint_url: srv.client.create_session()["sessionId"] for srv in (slow, clean)}
        target = ["--to-endpoint", slow.endpoint_url, "--to-thread-index", index[slow.endpoint_url]]
        proc = subprocess.Popen([sys.executable, "-m", "bedrock_sessions.cli", "copy", "--db", src, *target],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and slow.stats()["operations"].get("PutInvocationStep", 0) < 20:
            time.sleep(0.05)
        proc.kill()
        proc.communicate()
        assert proc.returncode != 0, "the copy finished before it could be interrupted"
        done = cli_json("copy", "--db", src, *target)
        assert 0 < done["already_there"] < total and done["already_there"] + done["written"] == total
        assert cli_json("copy", "--db", src, *target) == {"threads": 2, "written": 0, "already_there": total}
        cli("copy", "--db", src, "--to-endpoint", clean.endpoint_url, "--to-thread-index", index[clean.endpoint_url])

        def steps(server: LocalServer) -> int:
            c = server.client
            return sum(len(c.list_invocation_steps(sessionIdentifier=s["sessionId"], maxResults=1000)
                           ["invocationStepSummaries"])
                       for s in c.list_sessions(maxResults=1000)["sessionSummaries"])

        for server in (slow, clean):
            there = BedrockSessionSaver(client=SessionClient.bedrock(
                endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="x",
                aws_secret_access_key="x", thread_index=index[server.endpoint_url]))
            for tid, want in expected.items():
                assert tuples(there, tid) == want
        assert steps(slow) == steps(clean)


def test_migrate_moves_an_old_saver_thread_and_langgraph_continues_it(server: LocalServer) -> None:
    pytest.importorskip("langgraph_checkpoint_aws")
    from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import BedrockSessionSaver as OldSaver

    client = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                   aws_access_key_id="x", aws_secret_access_key="x")
    sid = client.create_session()["sessionId"]
    cfg = {"configurable": {"thread_id": sid}}
    old = three_nodes().compile(checkpointer=OldSaver(client=client))
    old.invoke({"items": ["t1"]}, cfg)
    old.invoke({"items": ["t2"]}, cfg)
    old_history = [(s.values, s.next) for s in old.get_state_history(cfg)]
    moved = cli_json("migrate", "--endpoint", server.endpoint_url)
    assert [m["from"] for m in moved] == [sid] and moved[0]["written"] == moved[0]["checkpoints"] > 0
    new = moved[0]["to"]
    # A second run (all, or this one named) continues the same migration, which is complete: nothing is written.
    for again in (cli_json("migrate", "--endpoint", server.endpoint_url),
                  cli_json("migrate", sid, "--endpoint", server.endpoint_url)):
        assert [(m["from"], m["to"], m["written"]) for m in again] == [(sid, new, 0)]
    ours = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    new_cfg = {"configurable": {"thread_id": new}}
    assert [(s.values, s.next) for s in ours.get_state_history(new_cfg)] == old_history
    ours.invoke({"items": ["t3"]}, new_cfg)
    assert ours.get_state(new_cfg).values["items"] == ["t1", "plan", "act", "reply", "t2", "plan", "act", "reply",
                                                      "t3", "plan", "act", "reply"]


def test_watch_prints_checkpoints_as_they_land(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(db)))
    app.invoke({"items": ["first"]}, {"configurable": {"thread_id": "w"}})
    proc = subprocess.Popen([sys.executable, "-m", "bedrock_sessions.cli", "watch", "w", "--db", db, "--json",
                             "--count", "5", "--timeout", "60", "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # the first poll sees what is there already
        app.invoke({"items": ["second"]}, {"configurable": {"thread_id": "w"}})
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    # the second turn's five checkpoints (input, then after __start__, plan, act, reply), in order
    assert [(r["step"], r["source"]) for r in rows] == [(4, "input"), (5, "loop"), (6, "loop"), (7, "loop"),
                                                       (8, "loop")]


def test_serve_shows_the_web_inspector_of_its_store() -> None:
    """``bedrock-sessions serve --ui``: the API and, under /ui/ of the same address, the inspector of its store."""
    import re
    import signal
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "bedrock_sessions.cli", "serve", "--port", "0", "--ui",
                             "--log", "off"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        api = re.search(r"at (http://\S+) ", proc.stdout.readline()).group(1)  # type: ignore[union-attr]
        ui = re.search(r"at (http://\S+/)$", proc.stdout.readline().strip()).group(1)  # type: ignore[union-attr]
        assert ui == api + "/ui/"
        client = SessionClient.bedrock(endpoint_url=api, region_name="us-east-1", aws_access_key_id="x",
                                       aws_secret_access_key="x")
        sid = client.create_session(tags={"team": "red"})["sessionId"]
        with urllib.request.urlopen(ui + "api/sessions", timeout=30) as r:
            sessions = json.loads(r.read())
        assert [(s["session_id"], s["tags"]) for s in sessions] == [(sid, {"team": "red"})]
        with urllib.request.urlopen(ui, timeout=30) as r:
            assert b"static/app.js" in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_sessions_export_and_import_as_stored(demo_db: str, server: LocalServer, tmp_path: Path) -> None:
    """``export --sessions`` carries sessions as stored (any application's data): imported into the server, every
    step is there again, the same ids, times and content blocks; a second import writes nothing."""
    import sqlite3

    copy = str(tmp_path / "shop.db")  # the demo's store, plus a session of another application
    with sqlite3.connect(demo_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    demo_db = copy
    client = SessionClient.local(demo_db)
    extra = client.create_session(sessionMetadata={"app": "not langgraph"}, tags={"team": "red"})["sessionId"]
    client.create_invocation(sessionIdentifier=extra, invocationId="8c0f4a3e-1111-4e36-9a56-0123456789ab",
                             description="hand-made")
    from datetime import datetime, timezone

    client.put_invocation_step(
        sessionIdentifier=extra, invocationIdentifier="8c0f4a3e-1111-4e36-9a56-0123456789ab",
        invocationStepId="8c0f4a3e-2222-4e36-9a56-0123456789ab",
        invocationStepTime=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        payload={"contentBlocks": [{"text": "hello"}, {"image": {"format": "png", "source": {"bytes": b"\x89PNG\r\n\x1a\n0"}}}]},
    )
    client.end_session(sessionIdentifier=extra)
    out = tmp_path / "sessions.jsonl"
    cli("export", "--sessions", "--db", demo_db, "-o", str(out))
    done = cli_json("import", str(out), "--endpoint", server.endpoint_url)
    assert len(done) == 2 and all(r["written"] == r["steps"] > 0 for r in done)
    again = cli_json("import", str(out), "--endpoint", server.endpoint_url)
    assert [(r["to"], r["written"]) for r in again] == [(r["to"], 0) for r in done]
    for r in done:
        source = cli_json("steps", r["from"], "--db", demo_db)
        there = cli_json("steps", r["to"], "--endpoint", server.endpoint_url)
        assert [(s["invocation_id"], s["step_id"], s["time"], s["content_blocks"]) for s in there] == [
            (s["invocation_id"], s["step_id"], s["time"], s["content_blocks"]) for s in source]
        info = server.client.get_session(sessionIdentifier=r["to"])
        assert info["sessionMetadata"]["bedrock-sessions:imported-from"] == r["from"]
        if r["from"] == extra:
            assert info["sessionStatus"] == "ENDED" and info["sessionMetadata"]["app"] == "not langgraph"
            assert server.client.list_tags_for_resource(resourceArn=info["sessionArn"])["tags"] == {"team": "red"}
