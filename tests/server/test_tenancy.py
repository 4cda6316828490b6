"""Tenants of a server that checks identities (issue 15): every session belongs to its creator's account, no
request of one tenant reads or changes another's sessions, identity policies decide each action as IAM does, and
the audit log holds a line for every request. Requests are signed by real boto3 (SigV4) over TCP; the store is
read afterwards through an unscoped client of the same file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bedrock_sessions import SessionClient
from bedrock_sessions.pytest_plugin import Tenants
from bedrock_sessions.server import LocalServer

A, B = "111111111111", "222222222222"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
STEP = {"contentBlocks": [{"text": "a tenant's secret"}]}


def snapshot(client: SessionClient) -> dict[str, Any]:
    """Everything the store holds, through an unscoped client of its file: sessions (all accounts), their status,
    times, metadata, tags, invocations and steps with their payloads."""
    out: dict[str, Any] = {}
    token: dict[str, Any] = {}
    while True:
        page = client.list_sessions(maxResults=100, **token)
        for s in page["sessionSummaries"]:
            sid = s["sessionId"]
            invs = client.list_invocations(sessionIdentifier=sid, maxResults=100)["invocationSummaries"]
            steps = client.list_invocation_steps(sessionIdentifier=sid, maxResults=100)["invocationStepSummaries"]
            out[sid] = {
                "session": {k: v for k, v in client.get_session(sessionIdentifier=sid).items()
                            if k != "ResponseMetadata"},
                "tags": client.list_tags_for_resource(resourceArn=s["sessionArn"])["tags"],
                "invocations": sorted(i["invocationId"] for i in invs),
                "steps": {st["invocationStepId"]: client.get_invocation_step(
                    sessionIdentifier=sid, invocationIdentifier=st["invocationId"],
                    invocationStepId=st["invocationStepId"])["invocationStep"]["payload"] for st in steps},
            }
        if "nextToken" not in page:
            return out
        token = {"nextToken": page["nextToken"]}


def seeded(client: Any, tags: dict[str, str] | None = None) -> dict[str, str]:
    """A session of `client`'s tenant with an invocation and a step: its id, ARN, invocation and step ids."""
    s = client.create_session(tags=tags or {"tenant": "x"})
    inv = client.create_invocation(sessionIdentifier=s["sessionId"])["invocationId"]
    step = client.put_invocation_step(sessionIdentifier=s["sessionId"], invocationIdentifier=inv,
                                      invocationStepTime="2026-12-05T10:00:00Z", payload=STEP)["invocationStepId"]
    return {"id": s["sessionId"], "arn": s["sessionArn"], "inv": inv, "step": step}


# The 14 operations, each as a call of a boto3 client on a target session (`ref`: its id or ARN, as named).
OPS: dict[str, Callable[[Any, dict[str, str], str], Any]] = {
    "CreateSession": lambda c, s, ref: c.create_session(),
    "ListSessions": lambda c, s, ref: c.list_sessions(),
    "GetSession": lambda c, s, ref: c.get_session(sessionIdentifier=ref),
    "UpdateSession": lambda c, s, ref: c.update_session(sessionIdentifier=ref, sessionMetadata={"m": "changed"}),
    "CreateInvocation": lambda c, s, ref: c.create_invocation(sessionIdentifier=ref),
    "ListInvocations": lambda c, s, ref: c.list_invocations(sessionIdentifier=ref),
    "PutInvocationStep": lambda c, s, ref: c.put_invocation_step(
        sessionIdentifier=ref, invocationIdentifier=s["inv"], invocationStepTime="2026-12-05T11:00:00Z",
        payload={"contentBlocks": [{"text": "written by another tenant"}]}),
    "GetInvocationStep": lambda c, s, ref: c.get_invocation_step(
        sessionIdentifier=ref, invocationIdentifier=s["inv"], invocationStepId=s["step"]),
    "ListInvocationSteps": lambda c, s, ref: c.list_invocation_steps(sessionIdentifier=ref),
    "TagResource": lambda c, s, ref: c.tag_resource(resourceArn=ref, tags={"tenant": "taken"}),
    "UntagResource": lambda c, s, ref: c.untag_resource(resourceArn=ref, tagKeys=["tenant"]),
    "ListTagsForResource": lambda c, s, ref: c.list_tags_for_resource(resourceArn=ref),
    "EndSession": lambda c, s, ref: c.end_session(sessionIdentifier=ref),
    "DeleteSession": lambda c, s, ref: c.delete_session(sessionIdentifier=ref),
}
ON_SESSIONS = [op for op in OPS if op not in ("CreateSession", "ListSessions")]
TAGGING = ("TagResource", "UntagResource", "ListTagsForResource")


def error(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


@pytest.fixture
def clients(bedrock_sessions_tenants: Tenants) -> Iterator[tuple[Any, Any]]:
    t = bedrock_sessions_tenants
    a, b = t.a.boto3_client(config=NO_RETRIES), t.b.boto3_client(config=NO_RETRIES)
    yield a, b
    a.close()
    b.close()


def test_each_tenant_runs_all_14_operations_on_its_own_sessions(
    bedrock_sessions_tenants: Tenants, clients: tuple[Any, Any]
) -> None:
    a, b = clients
    theirs = seeded(b)
    for op, call in OPS.items():
        mine = seeded(a)
        if op == "DeleteSession":
            a.end_session(sessionIdentifier=mine["id"])
        ref = mine["arn"] if op in TAGGING else mine["id"]
        call(a, mine, ref)  # raises on any refusal
    listed = a.list_sessions(maxResults=100)["sessionSummaries"]
    assert listed and all(f":{A}:session/" in s["sessionArn"] for s in listed)
    assert theirs["id"] not in {s["sessionId"] for s in listed}


def test_the_tenant_matrix_no_request_reaches_another_tenants_sessions(
    bedrock_sessions_tenants: Tenants, clients: tuple[Any, Any]
) -> None:
    """Tenant A on tenant B's sessions, by id and by ARN, through every operation on a session: zero successes,
    every refusal in the AWS shape (by id: not found in A's account; by ARN: a cross-account request, denied),
    and nothing changed in the store."""
    t = bedrock_sessions_tenants
    a, b = clients
    theirs = seeded(b, tags={"tenant": "b"})
    ended = seeded(b)
    b.end_session(sessionIdentifier=ended["id"])  # deletable by its owner, not by A
    before = snapshot(t.server.client)
    successes, refusals = [], []
    for op in ON_SESSIONS:
        target = ended if op == "DeleteSession" else theirs
        refs = [("arn", target["arn"])] if op in TAGGING else [("id", target["id"]), ("arn", target["arn"])]
        for how, ref in refs:
            try:
                OPS[op](a, target, ref)
                successes.append((op, how))
                continue
            except ClientError as exc:
                r = exc.response
            code, status, message = r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]
            refusals.append((op, how, code))
            if how == "id":
                assert (code, status) == ("ResourceNotFoundException", 404), (op, message)
            else:
                assert (code, status) == ("AccessDeniedException", 403), (op, message)
                assert message == (f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: bedrock:{op} "
                                   f"on resource: {target['arn']} because no resource-based policy allows the "
                                   f"bedrock:{op} action")
            assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    assert successes == []
    assert len(refusals) == 9 * 2 + 3
    assert snapshot(t.server.client) == before
    # B's own requests still work on them.
    assert b.get_invocation_step(sessionIdentifier=theirs["id"], invocationIdentifier=theirs["inv"],
                                 invocationStepId=theirs["step"])["invocationStep"]["payload"] == STEP
    assert [s["sessionId"] for s in a.list_sessions()["sessionSummaries"]] == []


# Tag-scoped access, after the IAM tutorial "Define permissions to access AWS resources based on tags" (ABAC): a
# principal works on sessions whose `tenant` tag is its own `tenant` tag, creates sessions only with that tag, and
# cannot change or remove the tag.
TAG_SCOPED = [{
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "CreateOnlyOwnTagged", "Effect": "Allow", "Action": "bedrock:CreateSession", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/tenant": "${aws:PrincipalTag/tenant}"},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["tenant", "purpose"]}}},
        {"Sid": "List", "Effect": "Allow", "Action": "bedrock:ListSessions", "Resource": "*"},
        {"Sid": "OwnTagged", "Effect": "Allow", "NotAction": ["bedrock:CreateSession", "bedrock:ListSessions",
                                                              "bedrock:TagResource", "bedrock:UntagResource"],
         "Resource": "arn:aws:bedrock:*:*:session/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/tenant}"}}},
        {"Sid": "TagOwnButNotTheTenantTag", "Effect": "Allow", "Action": ["bedrock:TagResource", "bedrock:UntagResource"],
         "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/tenant}"},
                       "ForAllValues:StringNotEquals": {"aws:TagKeys": ["tenant"]}}},
    ],
}]


@pytest.fixture
def same_account(tmp_path: Path) -> Iterator[tuple[LocalServer, Any, Any]]:
    """Alice (tenant a) and Carol (tenant b), both of account A under the tag-scoped policy, and their clients."""
    iam = tmp_path / "iam.json"
    iam.write_text(json.dumps({"accounts": {A: {"principals": {
        "alice": {"access_keys": {"AKIAALICE0000000001": "alice-secret"}, "tags": {"tenant": "a"},
                  "policies": TAG_SCOPED},
        "carol": {"access_keys": {"AKIACAROL0000000001": "carol-secret"}, "tags": {"tenant": "b"},
                  "policies": TAG_SCOPED},
    }}}}))
    with LocalServer(str(tmp_path / "s.db"), iam=str(iam)) as server:
        alice, carol = (server.boto3_client(p, config=NO_RETRIES) for p in ("alice", "carol"))
        yield server, alice, carol
        alice.close()
        carol.close()


def test_a_tag_scoped_policy_decides_every_operation(same_account: tuple[LocalServer, Any, Any]) -> None:
    server, a, carol = same_account
    # CreateSession: only with the principal's own tenant tag, and only the allowed tag keys.
    own = seeded(a, tags={"tenant": "a"})
    for tags in ({"tenant": "b"}, {}, {"tenant": "a", "owner": "mallory"}):
        with pytest.raises(ClientError) as e:
            a.create_session(tags=tags)
        code, _, message = error(e)
        assert code == "AccessDeniedException", tags
        # (an action without a resource: AWS's message names none)
        assert message == (f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: bedrock:CreateSession "
                           "because no identity-based policy allows the bedrock:CreateSession action")
    # Every operation on a session with the principal's tag works; tagging only for keys other than `tenant`.
    for op in ON_SESSIONS:
        mine = seeded(a, tags={"tenant": "a"}) if op in ("EndSession", "DeleteSession") else own
        if op == "DeleteSession":
            a.end_session(sessionIdentifier=mine["id"])
        ref = mine["arn"] if op in TAGGING else mine["id"]
        if op in ("TagResource", "UntagResource"):
            with pytest.raises(ClientError) as e:  # the tenant tag itself
                OPS[op](a, mine, ref)
            assert error(e)[0] == "AccessDeniedException"
            continue
        OPS[op](a, mine, ref)
    a.tag_resource(resourceArn=own["arn"], tags={"purpose": "demo"})
    a.untag_resource(resourceArn=own["arn"], tagKeys=["purpose"])
    # Carol's sessions are in the same account, tagged for tenant b: every operation denied, named, and nothing
    # changed; ListSessions is account-wide, as the service's (the policy cannot scope a list).
    hers = seeded(carol, tags={"tenant": "b"})
    ended = seeded(carol, tags={"tenant": "b"})
    carol.end_session(sessionIdentifier=ended["id"])
    before = snapshot(server.client)
    for op in ON_SESSIONS:
        target = ended if op == "DeleteSession" else hers
        for ref in ([target["arn"]] if op in TAGGING else [target["id"], target["arn"]]):
            with pytest.raises(ClientError) as e:
                OPS[op](a, target, ref)
            code, status, message = error(e)
            assert (code, status) == ("AccessDeniedException", 403), op
            assert message == (f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: bedrock:{op} on "
                               f"resource: {target['arn']} because no identity-based policy allows the bedrock:{op} "
                               "action")
    assert snapshot(server.client) == before
    assert hers["id"] in {s["sessionId"] for s in a.list_sessions(maxResults=100)["sessionSummaries"]}


def test_the_audit_log_has_a_line_for_every_request(
    bedrock_sessions_tenants: Tenants, clients: tuple[Any, Any]
) -> None:
    t = bedrock_sessions_tenants
    a, b = clients
    mine = a.create_session()
    a.get_session(sessionIdentifier=mine["sessionId"])
    with pytest.raises(ClientError):
        b.get_session(sessionIdentifier=mine["sessionArn"])
    with pytest.raises(ClientError):
        b.get_session(sessionIdentifier=mine["sessionId"])
    forged = t.server.boto3_client(aws_access_key_id="AKIATENANTA000000001", aws_secret_access_key="wrong",
                                   config=NO_RETRIES)
    with pytest.raises(ClientError):
        forged.list_sessions()
    lines = t.audit_lines(at_least=5)
    assert len(lines) == 5
    create, get, cross, missing, bad_sig = lines
    for line in lines:
        assert line["eventSource"] == "bedrock.amazonaws.com" and line["awsRegion"] == "us-east-1"
        assert line["requestID"] and line["eventTime"].endswith("Z") and line["sourceIPAddress"] == "127.0.0.1"
        assert "Boto3" in line["userAgent"] or "botocore" in line["userAgent"]
    assert create["eventName"] == "CreateSession" and create["decision"] == "Allow"
    assert create["outcome"] == "Success" and create["httpStatus"] == 201
    assert create["userIdentity"] == {"type": "IAMUser", "arn": f"arn:aws:iam::{A}:user/alice", "accountId": A,
                                      "userName": "alice", "accessKeyId": "AKIATENANTA000000001"}
    assert create["resources"] == [{"ARN": mine["sessionArn"], "accountId": A, "type": "AWS::Bedrock::Session"}]
    assert create["readOnly"] is False and create["action"] == "bedrock:CreateSession"
    assert get["readOnly"] is True and get["resources"][0]["ARN"] == mine["sessionArn"]
    assert cross["userIdentity"]["accountId"] == B and cross["decision"] == "ImplicitDeny"
    assert cross["outcome"] == "Failure" and cross["errorCode"] == "AccessDeniedException"
    assert cross["resources"] == [{"ARN": mine["sessionArn"], "accountId": A, "type": "AWS::Bedrock::Session"}]
    assert "no resource-based policy allows" in cross["errorMessage"]
    # By id, B's request is decided for B's account (allowed), and the session is not found there.
    assert missing["decision"] == "Allow" and missing["errorCode"] == "ResourceNotFoundException"
    assert missing["resources"][0]["ARN"] == f"arn:aws:bedrock:us-east-1:{B}:session/{mine['sessionId']}"
    assert bad_sig["decision"] == "Unauthenticated" and bad_sig["httpStatus"] == 403
    assert bad_sig["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIATENANTA000000001"}
    assert bad_sig["errorCode"] == "InvalidSignatureException"
    # What requests store never reaches the audit log.
    assert "secret" not in t.audit_file.read_text()


def test_an_open_server_audits_too(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with LocalServer(SessionClient.memory(), audit=str(audit)) as server:
        c = server.boto3_client(config=NO_RETRIES)
        c.create_session()
        with pytest.raises(ClientError):
            c.get_session(sessionIdentifier="not-a-session")
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(x["eventName"], x["decision"], x["outcome"]) for x in lines] == [
        ("CreateSession", "Open", "Success"), ("GetSession", "Open", "Failure")]
    with pytest.raises(TypeError, match="audit must be"):
        LocalServer(SessionClient.memory(), audit=3)  # type: ignore[arg-type]


def test_a_langgraph_graph_per_tenant_sees_only_its_own_threads(bedrock_sessions_tenants: Tenants) -> None:
    """Each tenant's graph runs through our saver (the AWS SDK for Rust, signing with the tenant's key): its threads
    are its account's sessions, another tenant's thread is not there for it, and listing shows its own only."""
    pytest.importorskip("langgraph")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from _lg_graphs import three_nodes

    from bedrock_sessions.saver import BedrockSessionSaver

    t = bedrock_sessions_tenants
    runs: dict[str, tuple[Any, str]] = {}
    for tenant in (t.a, t.b):
        creds = tenant.credentials()
        saver = BedrockSessionSaver(endpoint_url=t.server.endpoint_url, region_name=t.server.region, **creds)
        thread = tenant.boto3_client(config=NO_RETRIES).create_session()["sessionId"]
        graph = three_nodes().compile(checkpointer=saver)
        for turn in range(2):
            out = graph.invoke({"items": [f"{tenant.name}-{turn}"]}, {"configurable": {"thread_id": thread}})
        assert out["items"][-4:] == [f"{tenant.name}-1", "plan", "act", "reply"]
        runs[tenant.name] = (saver, thread)
    (saver_a, thread_a), (saver_b, thread_b) = runs["a"], runs["b"]
    # Each reads its own history...
    assert len(list(saver_a.list({"configurable": {"thread_id": thread_a}}))) == 10
    # ...and finds nothing of the other's thread, though it names the thread exactly.
    for saver, other in ((saver_a, thread_b), (saver_b, thread_a)):
        assert saver.get_tuple({"configurable": {"thread_id": other}}) is None
        assert list(saver.list({"configurable": {"thread_id": other}})) == []
    # Across all threads, each tenant sees its own only.
    assert {c.config["configurable"]["thread_id"] for c in saver_a.list(None)} == {thread_a}
    assert {c.config["configurable"]["thread_id"] for c in saver_b.list(None)} == {thread_b}
    # A graph of tenant B resumed on tenant A's thread id starts nothing in A's session.
    before = snapshot(t.server.client)[thread_a]
    with pytest.raises(Exception, match="is not a session of this store"):
        three_nodes().compile(checkpointer=saver_b).invoke({"items": ["b"]}, {"configurable": {"thread_id": thread_a}})
    assert snapshot(t.server.client)[thread_a] == before


# Patterns of the IAM User Guide's examples, decided by the server for real requests.
DOC_PATTERNS = [{
    "Version": "2012-10-17",
    "Statement": [
        # "Allow all except": NotAction with Allow (the guide's NotAction example).
        {"Effect": "Allow", "NotAction": ["bedrock:DeleteSession", "bedrock:UntagResource"], "Resource": "*",
         # "...IfExists": only when the request carries the key.
         "Condition": {"StringEqualsIfExists": {"aws:RequestTag/env": "dev"}}},
        # Explicit deny wins over the allow above: sessions owned by someone else (a policy variable).
        {"Effect": "Deny", "Action": "bedrock:*", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:ResourceTag/owner": "${aws:username}"},
                       "Null": {"aws:ResourceTag/owner": "false"}}},
    ],
}]


def test_iam_documentation_patterns_through_the_server(tmp_path: Path) -> None:
    iam = tmp_path / "iam.json"
    iam.write_text(json.dumps({"accounts": {A: {"principals": {
        "dana": {"access_keys": {"AKIADANA00000000001": "dana-secret"}, "policies": DOC_PATTERNS},
        "erin": {"access_keys": {"AKIAERIN00000000001": "erin-secret"}, "policies": DOC_PATTERNS},
    }}}}))
    with LocalServer(str(tmp_path / "s.db"), iam=str(iam)) as server:
        dana, erin = (server.boto3_client(p, config=NO_RETRIES) for p in ("dana", "erin"))
        # IfExists: no env tag, or env=dev, are allowed; env=prod is not.
        untagged = dana.create_session()["sessionId"]
        dana.create_session(tags={"env": "dev"})
        with pytest.raises(ClientError) as e:
            dana.create_session(tags={"env": "prod"})
        assert error(e)[0] == "AccessDeniedException"
        # NotAction: everything but DeleteSession / UntagResource.
        dana.end_session(sessionIdentifier=untagged)
        with pytest.raises(ClientError) as e:
            dana.delete_session(sessionIdentifier=untagged)
        assert "because no identity-based policy allows the bedrock:DeleteSession action" in error(e)[2]
        # The explicit deny: erin's session (owner=erin) is closed to dana, open to erin; untagged ones to both.
        hers = erin.create_session(tags={"owner": "erin"})
        assert erin.get_session(sessionIdentifier=hers["sessionId"])["sessionId"] == hers["sessionId"]
        with pytest.raises(ClientError) as e:
            dana.get_session(sessionIdentifier=hers["sessionId"])
        assert error(e)[2] == (f"User: arn:aws:iam::{A}:user/dana is not authorized to perform: bedrock:GetSession on "
                               f"resource: {hers['sessionArn']} with an explicit deny in an identity-based policy")
        assert dana.get_session(sessionIdentifier=untagged)["sessionStatus"] == "ENDED"
        dana.close()
        erin.close()


def test_the_replaced_saver_signs_as_a_tenant_too(bedrock_sessions_tenants: Tenants) -> None:
    """langgraph-checkpoint-aws's saver (botocore signing with the tenant's key) keeps a thread on the authenticated
    server; our saver reads it as the same tenant, and the other tenant's does not find it."""
    pytest.importorskip("langgraph_checkpoint_aws")
    from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import BedrockSessionSaver as AwsSaver

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from _lg_graphs import three_nodes

    from bedrock_sessions.saver import BedrockSessionSaver

    t = bedrock_sessions_tenants
    where = dict(endpoint_url=t.server.endpoint_url, region_name=t.server.region)
    from pydantic import SecretStr

    old = AwsSaver(**where, **{k: SecretStr(v) for k, v in t.a.credentials().items()})  # it takes SecretStr
    thread = old.session_client.create_session().session_id
    cfg = {"configurable": {"thread_id": thread}}
    final = three_nodes().compile(checkpointer=old).invoke({"items": ["hi"]}, cfg)
    ours_a = three_nodes().compile(checkpointer=BedrockSessionSaver(**where, **t.a.credentials()))
    assert ours_a.get_state(cfg).values == final
    ours_b = BedrockSessionSaver(**where, **t.b.credentials())
    assert ours_b.get_tuple(cfg) is None


def test_llama_index_chat_stores_per_tenant(bedrock_sessions_tenants: Tenants) -> None:
    """A LlamaIndex chat store per tenant (our client on the AWS SDK for Rust, signing with the tenant's key): the
    same key names two conversations, one per account, and neither sees the other's messages."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import ChatMessage

    from bedrock_sessions.llama_index import SessionChatStore

    t = bedrock_sessions_tenants

    def store(tenant: Any) -> SessionChatStore:
        # Keys are any strings through a thread index kept in a session of the tenant's own account.
        index = tenant.boto3_client(config=NO_RETRIES).create_session()["sessionId"]
        return SessionChatStore(tenant.session_client(thread_index=index))

    a, b = store(t.a), store(t.b)
    a.add_message("user-1", ChatMessage(role="user", content="tenant a's question"))
    assert b.get_messages("user-1") == []
    b.add_message("user-1", ChatMessage(role="user", content="tenant b's question"))
    assert [m.content for m in a.get_messages("user-1")] == ["tenant a's question"]
    assert [m.content for m in b.get_messages("user-1")] == ["tenant b's question"]
    assert a.get_keys() == ["user-1"] and b.get_keys() == ["user-1"]
    accounts = {line["userIdentity"]["accountId"] for line in t.audit_lines()}
    assert accounts == {A, B}
