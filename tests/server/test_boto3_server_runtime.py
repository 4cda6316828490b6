"""The server as a process component: health and stats routes, request counting, concurrency, injected latency,
graceful shutdown, fault injection under boto3's retries (idempotent step writes survive dropped connections)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any

import botocore.exceptions
import pytest
from botocore.config import Config
from _server_support import boto3_config, http
from _support import T0, text_payload

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(90)

JOIN_TIMEOUT = 20.0


# ---------------------------------------------------------------- health and unknown routes
@pytest.mark.parametrize("path", ["/health", "/_bedrock_sessions/health"])
def test_health_route(server, path):
    resp = http(server.endpoint_url, "GET", path)
    assert resp.status == 200
    assert resp.json() == {"status": "ok"}
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-amzn-requestid"]
    assert server.stats()["requests"] == 0  # not an API request


def test_unknown_route_is_404(server):
    resp = http(server.endpoint_url, "GET", "/definitely/not/here")
    assert resp.status == 404
    assert resp.headers["x-amzn-errortype"] == "UnknownOperationException"
    assert resp.json() == {"__type": "UnknownOperationException", "message": "no operation at GET /definitely/not/here"}


def test_server_binds_loopback_and_reports_its_url(server):
    assert server.host == "127.0.0.1" and 0 < server.port < 65536
    assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
    assert server.running and repr(server) == f"<LocalServer {server.endpoint_url}>"


def test_not_started_server_refuses_url_and_stats(tmp_path):
    s = LocalServer(str(tmp_path / "x.db"))
    try:
        with pytest.raises(RuntimeError):
            s.endpoint_url
        with pytest.raises(RuntimeError):
            s.stats()
        assert not s.running and "not started" in repr(s)
    finally:
        s.stop()


# ---------------------------------------------------------------- stats
def test_stats_count_api_requests_per_operation(server, boto):
    boto.list_sessions()
    server.reset_stats()
    assert server.stats() == {"requests": 0, "faults": 0, "max_in_flight": 0, "operations": {}}
    sid = boto.create_session()["sessionId"]
    for _ in range(3):
        boto.get_session(sessionIdentifier=sid)
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                             payload=text_payload("x"))
    with pytest.raises(boto.exceptions.ResourceNotFoundException):  # errors count too
        boto.get_session(sessionIdentifier=str(uuid.uuid4()))
    http(server.endpoint_url, "GET", "/health")  # not counted
    http(server.endpoint_url, "GET", "/nope")  # not counted
    stats = server.stats()
    assert stats["operations"] == {"CreateSession": 1, "GetSession": 4, "CreateInvocation": 1, "PutInvocationStep": 1}
    assert stats["requests"] == 7 and stats["faults"] == 0
    assert stats["max_in_flight"] >= 1


def test_stats_route_get_and_delete(server, boto):
    server.reset_stats()
    boto.create_session()
    boto.list_sessions()
    got = http(server.endpoint_url, "GET", "/_bedrock_sessions/stats")
    assert got.status == 200
    doc = got.json()
    assert doc["requests"] == 2 and doc["faults"] == 0 and doc["maxInFlight"] >= 1
    assert doc["operations"] == {"CreateSession": 1, "ListSessions": 1}
    assert doc["operations"] == server.stats()["operations"]
    reset = http(server.endpoint_url, "DELETE", "/_bedrock_sessions/stats")
    assert reset.status == 200 and reset.json()["requests"] == 0 and reset.json()["operations"] == {}
    assert server.stats()["requests"] == 0


def test_max_in_flight_sees_concurrent_requests(make_server, make_boto):
    server = make_server(latency=0.4)
    clients = [make_boto(server) for _ in range(4)]
    barrier = threading.Barrier(4, timeout=JOIN_TIMEOUT)
    errors: list[BaseException] = []

    def call(c: Any) -> None:
        try:
            barrier.wait()
            c.list_sessions()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    stats = server.stats()
    assert stats["requests"] == 4
    assert stats["max_in_flight"] >= 2


# ---------------------------------------------------------------- latency
def test_injected_latency_is_added_to_api_requests(make_server, make_boto):
    latency = 0.25
    server = make_server(latency=latency)
    c = make_boto(server)
    for call in (c.list_sessions, c.create_session):
        start = time.monotonic()
        call()
        assert time.monotonic() - start >= latency  # a lower bound only: no upper-bound timing asserts


# ---------------------------------------------------------------- graceful shutdown
def test_graceful_shutdown_lets_an_in_flight_request_finish(tmp_path):
    db = str(tmp_path / "graceful.db")
    server = LocalServer(db, latency=1.0).start()
    client = server.boto3_client(config=boto3_config())
    result: dict[str, Any] = {}

    def request() -> None:
        try:
            result["response"] = client.create_session(sessionMetadata={"in": "flight"})
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    def stop() -> None:
        server.stop()
        result["stopped"] = True

    try:
        requester = threading.Thread(target=request, daemon=True)
        requester.start()
        deadline = time.monotonic() + JOIN_TIMEOUT
        while server.stats()["requests"] < 1:  # the request reached the server and sleeps in its latency
            assert time.monotonic() < deadline, "the request never reached the server"
            time.sleep(0.01)
        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        stopper.join(JOIN_TIMEOUT)
        requester.join(JOIN_TIMEOUT)
        assert not stopper.is_alive() and not requester.is_alive()
        assert result.get("stopped") is True
        assert "error" not in result, result.get("error")
        response = result["response"]
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert not server.running
        # the server is gone: a new request cannot connect
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.list_sessions()
    finally:
        client.close()
        server.stop()
    # the in-flight write was committed
    with SessionClient.local(db) as store:
        got = store.get_session(sessionIdentifier=response["sessionId"])
        assert got["sessionMetadata"] == {"in": "flight"}


def test_stop_with_an_idle_keep_alive_connection_and_twice(tmp_path):
    server = LocalServer(str(tmp_path / "idle.db")).start()
    client = server.boto3_client(config=boto3_config())
    try:
        client.list_sessions()  # leaves a pooled keep-alive connection open
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(JOIN_TIMEOUT)
        assert not stopper.is_alive(), "stop() hangs on an idle keep-alive connection"
        server.stop()  # idempotent
        assert not server.running
    finally:
        client.close()
        server.stop()


def test_context_manager_stops_and_removes_the_temporary_store():
    with LocalServer() as server:
        url = server.endpoint_url
        client = server.boto3_client(config=boto3_config())
        client.create_session()
    try:
        assert not server.running
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.list_sessions()
    finally:
        client.close()
    assert url.startswith("http://127.0.0.1:")


# ---------------------------------------------------------------- faults under boto3's retries
# The fault sequence comes from a generator seeded with `seed`, so each of these tests is deterministic.
# At fault_rate=0.2, an operation fails for good only if all of boto3's attempts (3 by default) draw a fault:
# 0.8% per operation, about one 50-operation run in three. The server's default seed (24301) is such a run for
# the sequence below (three faults in a row on one operation); seed 1 is not, so the test uses it.
FAULT_SEED = 1


def test_fault_rate_with_default_retries(make_server):
    server = make_server(fault_rate=0.2, seed=FAULT_SEED)
    # boto3's default retries: no `retries` in the Config (only timeouts)
    c = server.boto3_client(config=Config(connect_timeout=5, read_timeout=30))
    responses: list[dict[str, Any]] = []
    try:
        r = c.create_session()
        responses.append(r)
        sid = r["sessionId"]
        r = c.create_invocation(sessionIdentifier=sid)
        responses.append(r)
        iid = r["invocationId"]
        step_ids = []
        for n in range(48):
            kind = n % 4
            if kind == 0:  # an idempotent write with a fixed id
                step = str(uuid.uuid4())
                r = c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step,
                                          invocationStepTime=T0 + dt.timedelta(seconds=n),
                                          payload=text_payload(f"step {n}"))
                assert r["invocationStepId"] == step
                step_ids.append(step)
            elif kind == 1:
                r = c.get_session(sessionIdentifier=sid)
            elif kind == 2:
                r = c.update_session(sessionIdentifier=sid, sessionMetadata={"n": str(n)})
            else:
                r = c.list_invocation_steps(sessionIdentifier=sid)
            responses.append(r)
        assert len(responses) == 50  # all succeeded
        retries = sum(r["ResponseMetadata"]["RetryAttempts"] for r in responses)
        stats = server.stats()
        assert stats["faults"] > 0 and retries > 0
        # every fault cost one attempt that boto3 retried; every attempt is a request
        assert stats["faults"] == retries
        assert stats["requests"] == 50 + retries
        steps = c.list_invocation_steps(sessionIdentifier=sid, maxResults=100)["invocationStepSummaries"]
        assert sorted(s["invocationStepId"] for s in steps) == sorted(step_ids)  # no duplicates from retries
    finally:
        c.close()


def test_drop_after_put_with_fixed_step_id_is_retried_idempotently(make_server, make_boto, tmp_path):
    with SessionClient.local(str(tmp_path / "shared.db")) as store:
        clean_server = make_server(db=store)
        clean = make_boto(clean_server)
        faulty_server = make_server(db=store, fault_rate=0.5, faults=["drop-after"], seed=FAULT_SEED)
        faulty = make_boto(faulty_server, retries={"total_max_attempts": 10, "mode": "standard"})
        sid = clean.create_session()["sessionId"]
        iid = clean.create_invocation(sessionIdentifier=sid)["invocationId"]
        written: dict[str, int] = {}
        retried = 0
        for n in range(6):
            step = str(uuid.uuid4())
            r = faulty.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step,
                                           invocationStepTime=T0 + dt.timedelta(seconds=n),
                                           payload=text_payload(f"step {n}"))
            assert r["invocationStepId"] == step and r["ResponseMetadata"]["HTTPStatusCode"] == 201
            written[step] = n
            retried += r["ResponseMetadata"]["RetryAttempts"]
        stats = faulty_server.stats()
        # each drop-after ran the put (and committed it) before dropping; boto3 retried each one
        assert stats["faults"] > 0 and retried == stats["faults"]
        assert stats["requests"] == 6 + retried
        steps = clean.list_invocation_steps(sessionIdentifier=sid, maxResults=100)["invocationStepSummaries"]
        assert sorted(s["invocationStepId"] for s in steps) == sorted(written)  # exactly one step per id
        for step, n in written.items():
            got = clean.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
            assert got["invocationStep"]["payload"] == text_payload(f"step {n}")
        clean_server.stop()
        faulty_server.stop()


def test_drop_after_single_put_then_manual_retry(make_server, make_boto, tmp_path):
    """Retries disabled: the put is lost to the client but committed; resending the same put succeeds and
    leaves exactly one step."""
    with SessionClient.local(str(tmp_path / "shared.db")) as store:
        clean_server = make_server(db=store)
        faulty_server = make_server(db=store, fault_rate=1.0, faults=["drop-after"])
        clean, faulty = make_boto(clean_server), make_boto(faulty_server)
        sid = clean.create_session()["sessionId"]
        iid = clean.create_invocation(sessionIdentifier=sid)["invocationId"]
        put = dict(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=str(uuid.uuid4()),
                   invocationStepTime=T0, payload=text_payload("once"))
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            faulty.put_invocation_step(**put)
        assert clean.put_invocation_step(**put)["invocationStepId"] == put["invocationStepId"]
        steps = clean.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
        assert [s["invocationStepId"] for s in steps] == [put["invocationStepId"]]
        clean_server.stop()
        faulty_server.stop()


@pytest.mark.parametrize("bad", [{"fault_rate": 1.5}, {"fault_rate": -0.1}, {"faults": ["nope"]}])
def test_bad_fault_options_are_refused(tmp_path, bad):
    s = LocalServer(str(tmp_path / "bad.db"), **bad)
    try:
        with pytest.raises((ValueError, OSError)):
            s.start()
        assert not s.running
    finally:
        s.stop()


def fault_pattern(make_server: Any, seed: int) -> list[int]:
    server = make_server(fault_rate=0.5, faults=["throttle"], seed=seed)
    return [http(server.endpoint_url, "POST", "/sessions/").status for _ in range(32)]


def test_same_seed_same_faults(make_server):
    """The fault sequence is a function of the seed (reproducible runs)."""
    first = fault_pattern(make_server, 7)
    assert first == fault_pattern(make_server, 7)
    assert set(first) == {200, 429}


@pytest.mark.parametrize("seeds", [(2, 3), (24300, 24301)])
def test_neighbouring_seeds_give_different_faults(make_server, seeds):
    """Another seed, another run: `--seed 2` and `--seed 3` must not replay the same faults."""
    a, b = seeds
    assert fault_pattern(make_server, a) != fault_pattern(make_server, b)
