"""``bedrock-sessions serve`` as a subprocess; the pytest plugin's fixtures used as a user project would; the
langgraph-checkpoint-aws BedrockSessionSaver (boto3 under the hood) against the server."""

from __future__ import annotations

import json
import operator
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import boto3
import botocore.exceptions
import pytest
from _server_support import boto3_config
from _support import T0, text_payload

from bedrock_sessions import SessionClient

pytestmark = pytest.mark.timeout(120)

WAIT = 20.0  # seconds: every wait on a subprocess
URL_LINE = re.compile(r"bedrock-sessions: serving the Bedrock session API at (http://127\.0\.0\.1:(\d+)) \(store: (.*)\)")


def serve_command(how: str) -> list[str]:
    if how == "module":
        return [sys.executable, "-m", "bedrock_sessions.cli", "serve"]
    script = Path(sys.executable).parent / "bedrock-sessions"
    found = str(script) if script.exists() else shutil.which("bedrock-sessions")
    assert found, "the bedrock-sessions console script is not installed"
    return [found, "serve"]


class Serve:
    """A ``bedrock-sessions serve`` subprocess whose output lines are read by a thread (waits are bounded)."""

    def __init__(self, args: list[str], how: str = "script") -> None:
        self.proc = subprocess.Popen(
            [*serve_command(how), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no output within {WAIT}s; so far: {self.seen}") from None
        assert line is not None, f"the server exited early: {self.seen}, stderr: {self.stderr()}"
        self.seen.append(line)
        return line

    def url(self) -> tuple[str, int, str]:
        line = self.next_line()
        m = URL_LINE.fullmatch(line)
        assert m, line
        return m.group(1), int(m.group(2)), m.group(3)

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, list[str], str]:
        """Sends ``sig``, waits for the exit; returns (exit code, all stdout lines, stderr)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=WAIT)
        self._reader.join(WAIT)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return code, self.seen, self.stderr()

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Serve] = []

    def start(*args: str, how: str = "script") -> Serve:
        s = Serve(list(args), how)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def boto3_for(url: str, **config: Any) -> Any:
    return boto3.client(
        "bedrock-agent-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=boto3_config(**config),
    )


def use_with_boto3(url: str) -> int:
    """A few calls through boto3; returns how many API requests were made."""
    c = boto3_for(url)
    try:
        sid = c.create_session(sessionMetadata={"via": "cli"})["sessionId"]
        iid = c.create_invocation(sessionIdentifier=sid)["invocationId"]
        c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                              payload=text_payload("hello"))
        steps = c.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
        assert len(steps) == 1
        assert c.get_session(sessionIdentifier=sid)["sessionMetadata"] == {"via": "cli"}
        return 5
    finally:
        c.close()


# ---------------------------------------------------------------- bedrock-sessions serve
@pytest.mark.parametrize("how", ["script", "module"])
def test_serve_port_0_prints_its_url_serves_boto3_and_stops_on_sigint(serve, how):
    s = serve(how=how)
    url, port, store = s.url()
    assert port != 0
    assert store == "a temporary file (deleted at exit)"
    use_with_boto3(url)
    code, lines, stderr = s.stop(signal.SIGINT)
    assert code == 0, (lines, stderr)
    assert "Traceback" not in stderr
    assert "bedrock-sessions: stopping (letting in-flight requests finish)" in lines
    # the port is released
    c = boto3_for(url)
    try:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            c.list_sessions()
    finally:
        c.close()


def test_serve_final_line_reports_the_requests_served(serve):
    """After SIGINT the last line reports how many API requests were served (cli.py prints
    'bedrock-sessions: served N requests' after the server stops)."""
    s = serve()
    url, _, _ = s.url()
    n = use_with_boto3(url)
    code, lines, stderr = s.stop(signal.SIGINT)
    assert code == 0, stderr
    assert lines[-1] == f"bedrock-sessions: served {n} requests", lines


def test_serve_sigterm_and_the_store_file_persists(serve, tmp_path):
    db = tmp_path / "cli.db"
    s = serve("--db", str(db))
    url, _, store = s.url()
    assert store == str(db)
    c = boto3_for(url)
    try:
        sid = c.create_session(tags={"kept": "yes"})["sessionId"]
    finally:
        c.close()
    code, lines, stderr = s.stop(signal.SIGTERM)
    assert code == 0, (lines, stderr)
    with SessionClient.local(str(db)) as store_client:
        assert store_client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
        arn = store_client.get_session(sessionIdentifier=sid)["sessionArn"]
        assert store_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"kept": "yes"}


def test_serve_with_identities_and_an_audit_log(serve, tmp_path):
    """`serve --iam FILE --audit FILE`: tenants are kept apart, and every request has its audit line once the
    process has stopped."""
    from bedrock_sessions.pytest_plugin import two_tenant_identities

    iam, audit = tmp_path / "iam.json", tmp_path / "audit.jsonl"
    iam.write_text(json.dumps(two_tenant_identities()))
    s = serve("--iam", str(iam), "--audit", str(audit))
    url, _, _ = s.url()
    assert "decided by its accounts and IAM policies" in s.next_line()
    assert s.next_line() == f"bedrock-sessions: audit log: {audit}"

    def client(key: str, secret: str) -> Any:
        return boto3.client("bedrock-agent-runtime", endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id=key, aws_secret_access_key=secret, config=boto3_config())

    alice, bob = client("AKIATENANTA000000001", "alice-secret-key"), client("AKIATENANTB000000001", "bob-secret-key")
    try:
        sid = alice.create_session()["sessionId"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            bob.get_session(sessionIdentifier=sid)
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert bob.list_sessions()["sessionSummaries"] == []
    finally:
        alice.close()
        bob.close()
    code, lines, stderr = s.stop(signal.SIGINT)
    assert code == 0, stderr
    audited = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(a["eventName"], a["userIdentity"]["userName"], a["decision"], a["outcome"]) for a in audited] == [
        ("CreateSession", "alice", "Allow", "Success"), ("GetSession", "bob", "Allow", "Failure"),
        ("ListSessions", "bob", "Allow", "Success")]


def test_serve_with_faults_and_latency(serve):
    s = serve("--fault-rate", "1", "--faults", "throttle", "--latency-ms", "50", "--seed", "3")
    url, _, _ = s.url()
    assert s.next_line() == "bedrock-sessions: injecting faults ['throttle'] at rate 1.0"
    c = boto3_for(url)
    try:
        with pytest.raises(c.exceptions.ThrottlingException) as info:
            c.list_sessions()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    finally:
        c.close()
    code, _, stderr = s.stop()
    assert code == 0, stderr


def test_serve_assumed_behaviours_are_options(serve):
    """ARNs, page size, quotas and the idle timeout: the choices made where the service is undocumented."""
    s = serve("--region", "eu-west-3", "--account-id", "123456789012", "--default-page-size", "2",
              "--max-steps-per-session", "1", "--max-step-bytes", "10", "--idle-timeout", "1")
    url, _, _ = s.url()
    c = boto3_for(url)
    try:
        created = c.create_session()
        assert created["sessionArn"].startswith("arn:aws:bedrock:eu-west-3:123456789012:session/")
        for _ in range(2):
            c.create_session()
        assert len(c.list_sessions()["sessionSummaries"]) == 2
        sid = created["sessionId"]
        iid = c.create_invocation(sessionIdentifier=sid)["invocationId"]
        with pytest.raises(c.exceptions.ValidationException):
            c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                  payload=text_payload("x" * 11))
        c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                              payload=text_payload("x"))
        with pytest.raises(c.exceptions.ServiceQuotaExceededException):
            c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                  payload=text_payload("y"))
        fresh = c.create_session()["sessionId"]
        deadline = time.monotonic() + 10
        while c.get_session(sessionIdentifier=fresh)["sessionStatus"] != "EXPIRED":
            assert time.monotonic() < deadline, "an idle session must expire after --idle-timeout"
            time.sleep(0.2)
    finally:
        c.close()
    code, _, stderr = s.stop()
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-rate", "2"], "fault_rate must be between 0 and 1"),
        (["--faults", "nope"], 'unknown fault "nope"'),
        (["--default-page-size", "0"], "default_page_size must be between 1 and 1000"),
        (["--idle-timeout", "-1"], "idle_timeout must be a non-negative number of seconds"),
        (["--account-id", "12"], "account"),
    ],
)
def test_serve_refuses_bad_options_with_exit_code_2(args, message):
    proc = subprocess.run([*serve_command("script"), "--port", "0", *args], capture_output=True, text=True,
                          timeout=WAIT)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_serve_refuses_a_port_in_use(serve):
    first = serve()
    _, port, _ = first.url()
    proc = subprocess.run([*serve_command("script"), "--port", str(port)], capture_output=True, text=True,
                          timeout=WAIT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bedrock-sessions: "), proc.stderr


# ---------------------------------------------------------------- the pytest plugin, as a user project uses it
def test_plugin_endpoint_reaches_the_server_from_a_plain_boto3_client(bedrock_sessions_endpoint,
                                                                      bedrock_sessions_server):
    assert os.environ["AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME"] == bedrock_sessions_endpoint
    assert bedrock_sessions_endpoint.startswith("http://127.0.0.1:")
    client = boto3.client("bedrock-agent-runtime")  # no endpoint_url, region or credentials: all from the fixtures
    try:
        assert client.meta.endpoint_url == bedrock_sessions_endpoint
        assert client.meta.region_name == "us-east-1"
        bedrock_sessions_server.reset_stats()
        sid = client.create_session()["sessionId"]
        assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
        assert bedrock_sessions_server.stats()["operations"] == {"CreateSession": 1, "GetSession": 1}
    finally:
        client.close()


def test_plugin_client_fixture(bedrock_agent_runtime_client, bedrock_sessions_server):
    assert bedrock_agent_runtime_client.meta.endpoint_url == bedrock_sessions_server.endpoint_url
    assert bedrock_agent_runtime_client.list_sessions()["sessionSummaries"] == []
    bedrock_agent_runtime_client.create_session()
    assert bedrock_sessions_server.stats()["operations"] == {"ListSessions": 1, "CreateSession": 1}


def test_plugin_credentials_are_dummies(aws_credentials):
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing" and os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    creds = boto3.session.Session().get_credentials()
    assert creds is not None and creds.access_key == "testing"


def test_plugin_autoloads_in_a_user_project(tmp_path):
    """A project with no conftest: the pytest11 entry point provides the fixtures."""
    project = tmp_path / "user_project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_user_code.py").write_text(textwrap.dedent('''
        import boto3


        def create_and_read(sid=None):
            client = boto3.client("bedrock-agent-runtime")
            sid = client.create_session(sessionMetadata={"user": "me"})["sessionId"]
            return client.get_session(sessionIdentifier=sid)["sessionMetadata"]


        def test_user_code_against_the_local_server(bedrock_sessions_endpoint, bedrock_sessions_server):
            assert create_and_read() == {"user": "me"}
            assert bedrock_sessions_server.stats()["operations"] == {"CreateSession": 1, "GetSession": 1}


        def test_client_fixture(bedrock_agent_runtime_client):
            assert bedrock_agent_runtime_client.list_sessions()["sessionSummaries"] == []


        def test_two_tenants(bedrock_sessions_tenants):
            a, b = bedrock_sessions_tenants.a.boto3_client(), bedrock_sessions_tenants.b.boto3_client()
            a.create_session()
            assert b.list_sessions()["sessionSummaries"] == []
            assert len(bedrock_sessions_tenants.audit_lines(at_least=2)) == 2
    '''))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_code.py"],
        cwd=project, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


# ---------------------------------------------------------------- langgraph-checkpoint-aws's saver over the server
class Chat(TypedDict):
    turns: Annotated[list[str], operator.add]


def chat_graph() -> Any:
    from langgraph.graph import END, START, StateGraph

    def reply(state: Chat) -> dict[str, Any]:
        return {"turns": [f"reply to {state['turns'][-1]}"]}

    g = StateGraph(Chat)
    g.add_node("reply", reply)
    g.add_edge(START, "reply")
    g.add_edge("reply", END)
    return g


def test_langgraph_checkpoint_aws_saver_against_the_server(bedrock_sessions_endpoint, bedrock_sessions_server):
    pytest.importorskip("langgraph_checkpoint_aws")
    from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import BedrockSessionSaver as AwsSaver

    saver = AwsSaver(region_name="us-east-1")  # its own boto3 client: the endpoint comes from the environment
    assert saver.session_client.client.meta.endpoint_url == bedrock_sessions_endpoint
    session_id = saver.session_client.create_session().session_id
    cfg = {"configurable": {"thread_id": session_id}}
    app = chat_graph().compile(checkpointer=saver)
    app.invoke({"turns": ["hello"]}, cfg)
    final = app.invoke({"turns": ["how are you"]}, cfg)
    assert final["turns"] == ["hello", "reply to hello", "how are you", "reply to how are you"]

    # a new saver (as another process would) reads the thread back from the server
    again = chat_graph().compile(checkpointer=AwsSaver(region_name="us-east-1"))
    assert again.get_state(cfg).values == final
    assert len(list(again.get_state_history(cfg))) >= 4

    # the same session read with plain boto3
    client = boto3.client("bedrock-agent-runtime")
    try:
        assert client.get_session(sessionIdentifier=session_id)["sessionStatus"] == "ACTIVE"
        invocations = client.get_paginator("list_invocations").paginate(
            sessionIdentifier=session_id).build_full_result()["invocationSummaries"]
        assert invocations and all(i["sessionId"] == session_id for i in invocations)
        steps = client.get_paginator("list_invocation_steps").paginate(
            sessionIdentifier=session_id, PaginationConfig={"PageSize": 5}).build_full_result()["invocationStepSummaries"]
        assert len(steps) >= 4
        for summary in steps[:5]:
            step = client.get_invocation_step(sessionIdentifier=session_id, invocationIdentifier=summary["invocationId"],
                                              invocationStepId=summary["invocationStepId"])["invocationStep"]
            blocks = step["payload"]["contentBlocks"]
            assert blocks and all(b.get("text") for b in blocks)
    finally:
        client.close()
    ops = bedrock_sessions_server.stats()["operations"]
    assert ops.get("PutInvocationStep", 0) >= 4 and ops.get("CreateInvocation", 0) >= 1


@pytest.mark.bedrock_sessions_server(max_steps_per_session=2, region="ap-south-1", default_page_size=1)
def test_plugin_marker_sets_the_server_options(bedrock_agent_runtime_client):
    c = bedrock_agent_runtime_client
    created = c.create_session()
    assert ":ap-south-1:" in created["sessionArn"]
    c.create_session()
    assert len(c.list_sessions()["sessionSummaries"]) == 1
    iid = c.create_invocation(sessionIdentifier=created["sessionId"])["invocationId"]
    for n in range(2):
        c.put_invocation_step(sessionIdentifier=created["sessionId"], invocationIdentifier=iid,
                              invocationStepTime=T0, payload=text_payload(str(n)))
    with pytest.raises(c.exceptions.ServiceQuotaExceededException):
        c.put_invocation_step(sessionIdentifier=created["sessionId"], invocationIdentifier=iid,
                              invocationStepTime=T0, payload=text_payload("over"))
