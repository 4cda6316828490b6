"""The SQLite store across processes: fork, concurrent writers on one file, SIGKILL mid-write, and file-level
checks (created if missing, WAL, persistence, delete really removes rows). Sync door only."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
import uuid

import pytest
from _support import T0, image_block, list_all, new_invocation, new_session, put_text

from bedrock_sessions import SessionClient

pytestmark = [
    pytest.mark.timeout(120),
    # Python >= 3.12 warns when forking a process that has threads; surviving fork is the point here.
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]

WAIT = 60.0  # seconds any child may take at most


def step_ids(client, sid):
    return [
        s["invocationStepId"]
        for s in list_all(client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, maxResults=100)
    ]


def wait_pid(pid, timeout=WAIT):
    """waitpid with a deadline; kills the child and fails when it does not end."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"child {pid} did not end within {timeout} s")
        time.sleep(0.01)


class LineReader:
    """Reads a child's stdout line by line with deadlines (no blocking readline)."""

    def __init__(self, proc):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.eof = False

    def readline(self, deadline):
        while b"\n" not in self.buf:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no line from the child in time")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def spawn(script, *args, stderr_path):
    stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed by the caller through proc_cleanup
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        bufsize=0,
    )
    proc._stderr_file = stderr  # type: ignore[attr-defined]
    return proc


def finish(proc, timeout=WAIT):
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise
    finally:
        proc.stdout.close()
        proc._stderr_file.close()
    return proc.returncode


# ---------------------------------------------------------------- fork
def test_fork_child_uses_the_same_client(tmp_path):
    path = tmp_path / "fork.db"
    client = SessionClient.local(str(path))
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    before = put_text(client, sid, iid, "before fork", when=T0)
    child_ids = [str(uuid.uuid4()) for _ in range(20)]
    parent_ids = [str(uuid.uuid4()) for _ in range(20)]

    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            signal.alarm(int(WAIT))
            assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
            for n, step in enumerate(child_ids):
                assert put_text(client, sid, iid, f"child {n}", step_id=step) == step
            got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=before)
            assert got["invocationStep"]["payload"]["contentBlocks"][0]["text"] == "before fork"
            assert set(child_ids) <= set(step_ids(client, sid))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    for n, step in enumerate(parent_ids):
        assert put_text(client, sid, iid, f"parent {n}", step_id=step) == step
    assert wait_pid(pid) == 0
    listed = step_ids(client, sid)
    assert sorted(listed) == sorted([before, *child_ids, *parent_ids])
    for step in child_ids:
        got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
        assert got["invocationStep"]["payload"]["contentBlocks"][0]["text"].startswith("child ")
    client.close()


def _mp_child(client, sid, iid, ids):
    signal.alarm(int(WAIT))
    for step in ids:
        put_text(client, sid, iid, "mp child", step_id=step)
    new_sid, _ = new_session(client, sessionMetadata={"from": "child"})
    assert set(ids) <= set(step_ids(client, sid))
    client.tag_resource(resourceArn=client.get_session(sessionIdentifier=sid)["sessionArn"], tags={"child": "yes"})


def test_multiprocessing_fork_context(tmp_path):
    client = SessionClient.local(str(tmp_path / "mp.db"))
    sid, arn = new_session(client)
    iid = new_invocation(client, sid)
    put_text(client, sid, iid, "before")
    ids = [str(uuid.uuid4()) for _ in range(15)]
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_mp_child, args=(client, sid, iid, ids))
    proc.start()
    mine = [put_text(client, sid, iid, "parent") for _ in range(15)]
    proc.join(WAIT)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        pytest.fail("multiprocessing child did not end")
    assert proc.exitcode == 0
    listed = set(step_ids(client, sid))
    assert set(ids) <= listed and set(mine) <= listed and len(listed) == 31
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"child": "yes"}
    metas = [client.get_session(sessionIdentifier=s["sessionId"]).get("sessionMetadata", {})
             for s in client.list_sessions()["sessionSummaries"]]
    assert {"from": "child"} in metas
    client.close()


def test_fork_before_first_use(tmp_path):
    """A client opened but never used before fork works in both processes."""
    path = tmp_path / "fresh.db"
    client = SessionClient.local(str(path))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(int(WAIT))
            new_session(client, sessionMetadata={"who": "child"})
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    new_session(client, sessionMetadata={"who": "parent"})
    assert wait_pid(pid) == 0
    whos = sorted(
        client.get_session(sessionIdentifier=s["sessionId"])["sessionMetadata"]["who"]
        for s in client.list_sessions()["sessionSummaries"]
    )
    assert whos == ["child", "parent"]
    client.close()


# ---------------------------------------------------------------- two processes writing at once
WRITER = r"""
import datetime as dt, json, os, sys, time
from bedrock_sessions import SessionClient

path, go, targets, count = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
client = SessionClient.local(path)
print("ready", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
ids, created = [], []
for n in range(count):
    sid, iid = targets[n % len(targets)]
    r = client.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=dt.datetime.now(dt.timezone.utc),
        payload={"contentBlocks": [{"text": f"{os.getpid()} {n}"}]},
    )
    ids.append(r["invocationStepId"])
    if n % 60 == 0:
        created.append(client.create_session(sessionMetadata={"pid": str(os.getpid())})["sessionId"])
client.close()
print(json.dumps({"ids": ids, "created": created}), flush=True)
"""


def test_two_processes_write_one_file(tmp_path):
    path = tmp_path / "shared.db"
    setup = SessionClient.local(str(path))
    targets = []
    for _ in range(3):
        sid, _ = new_session(setup)
        targets.append((sid, new_invocation(setup, sid)))
    go = tmp_path / "go"
    procs = [
        spawn(WRITER, path, go, json.dumps(targets), 300, stderr_path=tmp_path / f"writer{k}.err") for k in range(2)
    ]
    results = []
    try:
        readers = [LineReader(p) for p in procs]
        deadline = time.monotonic() + WAIT
        for r in readers:
            assert r.readline(deadline) == "ready"
        go.touch()
        for r in readers:
            line = r.readline(deadline)
            assert line is not None, "writer ended without a result"
            results.append(json.loads(line))
    finally:
        codes = [finish(p) for p in procs]
    errs = [(tmp_path / f"writer{k}.err").read_text() for k in range(2)]
    assert codes == [0, 0], errs
    written = [i for r in results for i in r["ids"]]
    assert len(written) == 600 and len(set(written)) == 600
    listed = []
    times = {}
    for sid, _ in targets:
        summaries = list_all(
            setup, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, maxResults=100
        )
        assert len(summaries) == 200
        listed += [s["invocationStepId"] for s in summaries]
        times.update({s["invocationStepId"]: s["invocationStepTime"] for s in summaries})
    assert sorted(listed) == sorted(written)
    # the two writers really ran at the same time
    spans = [(min(times[i] for i in r["ids"]), max(times[i] for i in r["ids"])) for r in results]
    assert max(a for a, _ in spans) <= min(b for _, b in spans), spans
    created = [s for r in results for s in r["created"]]
    assert len(created) == 10
    all_sessions = {s["sessionId"] for s in list_all(setup, "list_sessions", "sessionSummaries", maxResults=50)}
    assert all_sessions == {sid for sid, _ in targets} | set(created)
    setup.close()


# ---------------------------------------------------------------- SIGKILL in the middle of writes
KILLED_WRITER = r"""
import datetime as dt, sys, time
from bedrock_sessions import SessionClient

client = SessionClient.local(sys.argv[1])
deadline = time.monotonic() + 60  # stops by itself if nobody kills it
n = 0
while time.monotonic() < deadline:
    if n % 400 == 0:
        sid = client.create_session()["sessionId"]
        iid = client.create_invocation(sessionIdentifier=sid)["invocationId"]
    r = client.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=dt.datetime.now(dt.timezone.utc),
        payload={"contentBlocks": [{"text": "x" * 2000 + str(n)}, {"image": {"format": "png", "source": {"bytes": bytes([n % 256]) * 3000}}}]},
    )
    sys.stdout.write(f"{sid} {iid} {r['invocationStepId']} {n}\n")
    sys.stdout.flush()
    n += 1
"""


def test_sigkill_keeps_every_acknowledged_step(tmp_path):
    path = tmp_path / "killed.db"
    proc = spawn(KILLED_WRITER, path, stderr_path=tmp_path / "killed.err")
    acked = []
    try:
        reader = LineReader(proc)
        deadline = time.monotonic() + WAIT
        while len(acked) < 200:
            line = reader.readline(deadline)
            assert line is not None, (tmp_path / "killed.err").read_text()
            acked.append(line.split())
        os.kill(proc.pid, signal.SIGKILL)
        # whatever else was acknowledged before the kill counts too
        proc.wait(timeout=WAIT)
        while True:
            line = reader.readline(time.monotonic() + 5)
            if line is None:
                break
            acked.append(line.split())
    finally:
        finish(proc)
    assert proc.returncode == -signal.SIGKILL

    client = SessionClient.local(str(path))
    for sid, iid, step, n in acked:
        got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
        blocks = got["invocationStep"]["payload"]["contentBlocks"]
        assert blocks[0]["text"] == "x" * 2000 + n
        assert blocks[1]["image"]["source"]["bytes"] == bytes([int(n) % 256]) * 3000
    # the store still takes writes after the crash
    sid, iid = acked[-1][0], acked[-1][1]
    put_text(client, sid, iid, "after the crash")
    client.close()  # before this process opens the file with another SQLite library
    con = sqlite3.connect(str(path))
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()


# ---------------------------------------------------------------- file-level behaviour
def test_file_created_if_missing_and_persistent(tmp_path):
    path = tmp_path / "sub" / "state.db"
    path.parent.mkdir()
    assert not path.exists()
    client = SessionClient.local(str(path))
    sid, arn = new_session(client, sessionMetadata={"k": "v"}, tags={"t": "1"})
    iid = new_invocation(client, sid, description="d")
    step = client.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=T0,
        payload={"contentBlocks": [{"text": "persist"}, image_block(b"\x00\x01\x02")]},
    )["invocationStepId"]
    client.close()
    assert path.is_file()
    again = SessionClient.local(str(path))
    got = again.get_session(sessionIdentifier=arn)
    assert got["sessionMetadata"] == {"k": "v"}
    assert again.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "1"}
    payload = again.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)[
        "invocationStep"
    ]["payload"]
    assert payload == {"contentBlocks": [{"text": "persist"}, image_block(b"\x00\x01\x02")]}
    again.close()


def test_file_is_in_wal_mode(tmp_path):
    path = tmp_path / "wal.db"
    client = SessionClient.local(str(path))
    new_session(client)
    client.close()  # before this process opens the file with another SQLite library
    con = sqlite3.connect(str(path))
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()


def test_two_clients_on_one_file(tmp_path):
    path = str(tmp_path / "two.db")
    a = SessionClient.local(path)
    b = SessionClient.local(path)
    sid, _ = new_session(a)
    iid = new_invocation(b, sid)
    step = put_text(a, sid, iid, "from a")
    assert step_ids(b, sid) == [step]
    b.end_session(sessionIdentifier=sid)
    assert a.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"
    a.close()
    b.close()


ROW_COUNTS = r"""
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
print(json.dumps({t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}))
con.close()
"""


def _row_counts(path):
    """Row counts of every table, read by Python's sqlite3 in another process: a second SQLite library in this
    process would release the store's POSIX locks when it closes the file (see sqlite.org/howtocorrupt.html)."""
    out = subprocess.run([sys.executable, "-c", ROW_COUNTS, str(path)], capture_output=True, timeout=WAIT, check=True)
    return json.loads(out.stdout)


def test_delete_removes_rows_from_the_file(tmp_path):
    path = tmp_path / "purge.db"
    client = SessionClient.local(str(path))
    keep, _ = new_session(client, sessionMetadata={"a": "b"}, tags={"t": "1"})
    put_text(client, keep, new_invocation(client, keep))
    baseline = _row_counts(path)
    sid, _ = new_session(client, sessionMetadata={"a": "b"}, tags={"t": "1", "u": "2"})
    for _ in range(3):
        iid = new_invocation(client, sid)
        for _ in range(4):
            put_text(client, sid, iid, "to be deleted")
    assert _row_counts(path) != baseline
    client.end_session(sessionIdentifier=sid)
    client.delete_session(sessionIdentifier=sid)
    assert _row_counts(path) == baseline
    client.close()


OPENER = """
import os, sys, time
from bedrock_sessions import SessionClient
folder, rounds = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
for r in range(rounds):
    go = os.path.join(folder, f"go-{r}")
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go")
        time.sleep(0.0005)
    try:
        SessionClient.local(os.path.join(folder, f"new-{r}.db")).close()
        print("ok", flush=True)
    except Exception as e:
        print(repr(e).replace("\\n", " "), flush=True)
"""


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    """Processes starting together on a file that does not exist yet (switching it to WAL and creating the schema
    can answer "locked" without waiting on the busy timeout): every open succeeds, in every round."""
    n, rounds = 6, 20
    procs = [spawn(OPENER, tmp_path, rounds, stderr_path=tmp_path / f"opener{k}.err") for k in range(n)]
    outcomes = []
    try:
        readers = [LineReader(p) for p in procs]
        deadline = time.monotonic() + WAIT
        for r in readers:
            assert r.readline(deadline) == "ready"
        for r in range(rounds):
            (tmp_path / f"go-{r}").touch()
            outcomes += [reader.readline(deadline) for reader in readers]
    finally:
        codes = [finish(p) for p in procs]
    assert codes == [0] * n, [(tmp_path / f"opener{k}.err").read_text() for k in range(n)]
    failed = [o for o in outcomes if o != "ok"]
    assert len(outcomes) == n * rounds and not failed, failed[:3]
    assert all(SessionClient.local(str(tmp_path / f"new-{r}.db")).list_sessions()["sessionSummaries"] == []
               for r in range(rounds))
