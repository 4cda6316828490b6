"""The server's structured traces of its own work: one JSON line per API request in the request log
(``LocalServer(log=...)``, ``bedrock-sessions serve --log``), and the Prometheus metrics at ``GET /metrics``.

Every server here is a real LocalServer on 127.0.0.1, driven by boto3 and by raw HTTP. The log is read after
``server.stop()`` (which returns once every queued line is written); the metrics are read while the server runs
(a request is counted before its answer is sent, so a client holding an answer finds it counted)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from _server_support import SESSION_ARN_PREFIX, http
from _support import T0, text_payload

from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(90)

WAIT = 20.0  # seconds: every bounded wait
UTC = dt.timezone.utc
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
BUCKET_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]
REQUIRED_FIELDS = {"time", "request_id", "status", "latency_ms", "bytes_in", "bytes_out"}
OPTIONAL_FIELDS = {"operation", "session", "error", "fault", "method", "path"}


# ---------------------------------------------------------------- reading the log
def read_log(path: Path) -> list[dict[str, Any]]:
    """Every line of the log as a JSON object (each line must be one, and the file must end with a newline)."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), text[-200:]
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert isinstance(line, dict), line
        assert REQUIRED_FIELDS <= line.keys() <= REQUIRED_FIELDS | OPTIONAL_FIELDS, line
        assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0, line
        assert isinstance(line["status"], int) and isinstance(line["bytes_in"], int), line
        assert isinstance(line["bytes_out"], int), line
    return lines


def log_time(line: dict[str, Any]) -> dt.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["time"]), line["time"]
    return dt.datetime.fromisoformat(line["time"].replace("Z", "+00:00"))


def request_id_of(response_or_error: Any) -> str:
    meta = (response_or_error.response if isinstance(response_or_error, Exception) else response_or_error)
    return meta["ResponseMetadata"]["RequestId"]


# ---------------------------------------------------------------- reading the metrics
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')

Series = tuple[str, frozenset[tuple[str, str]]]


class Metrics:
    """One scrape of /metrics, parsed: samples by (name, labels), the families' types and help."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[Series, float] = {}
        self.types: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self.order: list[Series] = []
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                assert name not in self.types, f"TYPE twice for {name}"
                self.types[name] = kind
            elif line.startswith("# HELP "):
                _, _, name, help_text = line.split(" ", 3)
                self.help[name] = help_text
            else:
                assert not line.startswith("#") and line, repr(line)
                m = SAMPLE.fullmatch(line)
                assert m, f"not a sample line: {line!r}"
                name, raw_labels, value = m.groups()
                labels = {}
                if raw_labels:
                    pos = 0
                    while pos < len(raw_labels):
                        lm = LABEL.match(raw_labels, pos)
                        assert lm, f"bad labels in {line!r}"
                        labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)),
                                                     lm.group(2))
                        pos = lm.end()
                key = (name, frozenset(labels.items()))
                assert key not in self.samples, f"series twice: {line!r}"
                self.samples[key] = float(value)
                self.order.append(key)
                family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in self.types else name
                assert family in self.types, f"sample {name} before its TYPE line"

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series is absent (a labelled counter appears once counted)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def scrape(server: LocalServer, path: str = "/metrics") -> Metrics:
    resp = http(server.endpoint_url, "GET", path)
    assert resp.status == 200, resp.body
    assert resp.headers["content-type"] == METRICS_CONTENT_TYPE
    return Metrics(resp.body.decode("ascii"))


def histogram(m: Metrics, operation: str) -> tuple[list[tuple[float, float]], float, float]:
    """(le, cumulative count) in bound order, _sum, _count of one operation's duration histogram."""
    name = "bedrock_sessions_request_duration_seconds"
    buckets = []
    for labels, v in m.series(name + "_bucket").items():
        d = dict(labels)
        if d["operation"] == operation:
            buckets.append((float(d["le"]), v))
    buckets.sort()
    return buckets, m.get(name + "_sum", operation=operation), m.get(name + "_count", operation=operation)


def requests_of(m: Metrics, operation: str) -> float:
    return sum(v for labels, v in m.series("bedrock_sessions_requests_total").items()
               if dict(labels)["operation"] == operation)


# ---------------------------------------------------------------- the request log
def test_log_lines_of_successes_errors_and_unknown_routes(make_server, make_boto, tmp_path):
    log = tmp_path / "requests.log"
    server = make_server(log=str(log))
    boto = make_boto(server)
    before = dt.datetime.now(UTC)

    created = boto.create_session(sessionMetadata={"k": "v"})
    sid, arn = created["sessionId"], created["sessionArn"]
    inv = boto.create_invocation(sessionIdentifier=arn)
    # One step over raw HTTP: its exact request and answer bodies are known.
    step_body = json.dumps({"invocationIdentifier": inv["invocationId"], "invocationStepTime": "2025-01-02T03:04:05Z",
                            "payload": text_payload("hello")})
    put = http(server.endpoint_url, "PUT", f"/sessions/{sid}/invocationSteps", step_body)
    assert put.status == 201, put.body
    missing = str(uuid.uuid4())
    with pytest.raises(boto.exceptions.ResourceNotFoundException) as not_found:
        boto.get_session(sessionIdentifier=missing)
    unknown = http(server.endpoint_url, "GET", "/definitely/not/here?x=1")
    assert unknown.status == 404
    # The server's own routes are not API requests: no lines.
    assert http(server.endpoint_url, "GET", "/health").status == 200
    assert http(server.endpoint_url, "GET", "/_bedrock_sessions/stats").status == 200
    scrape(server)
    scrape(server, "/_bedrock_sessions/metrics")
    after = dt.datetime.now(UTC)
    server.stop()  # returns once every line is written

    lines = read_log(log)
    assert [line.get("operation") for line in lines] == [
        "CreateSession", "CreateInvocation", "PutInvocationStep", "GetSession", None]
    create, invocation, step, get_missing, unknown_line = lines

    # Each line names the request id the client was given.
    assert create["request_id"] == request_id_of(created)
    assert invocation["request_id"] == request_id_of(inv)
    assert step["request_id"] == put.headers["x-amzn-requestid"]
    assert get_missing["request_id"] == request_id_of(not_found.value)
    assert unknown_line["request_id"] == unknown.headers["x-amzn-requestid"]
    assert len({line["request_id"] for line in lines}) == len(lines)

    # Times: RFC 3339 UTC, within the test's span, in request order (one client, one request at a time).
    times = [log_time(line) for line in lines]
    slack = dt.timedelta(milliseconds=1)  # microsecond rounding of both clocks' readings
    assert before - slack <= times[0] and times[-1] <= after + slack
    assert times == sorted(times)

    # A success: the operation, the session from the path (CreateSession: the new one), no error, no fault.
    assert create["session"] == sid and create["status"] == 201
    assert invocation["session"] == arn and invocation["status"] == 201
    assert step == {**step, "operation": "PutInvocationStep", "session": sid, "status": 201,
                    "bytes_in": len(step_body.encode()), "bytes_out": len(put.body)}
    for line in (create, invocation, step):
        assert "error" not in line and "fault" not in line and "method" not in line, line
    # A failed operation: the error code, the session asked for.
    assert get_missing == {**get_missing, "operation": "GetSession", "session": missing, "status": 404,
                           "error": "ResourceNotFoundException", "bytes_in": 0}
    assert get_missing["bytes_out"] > 0
    # No operation at that method and path: what was asked instead of an operation.
    assert unknown_line == {**unknown_line, "method": "GET", "path": "/definitely/not/here", "status": 404,
                            "error": "UnknownOperationException", "bytes_out": len(unknown.body)}
    assert "operation" not in unknown_line and "session" not in unknown_line


def test_log_lines_of_injected_faults(make_server, make_boto, tmp_path):
    """Each fault is named in its line: throttle and 500 answer an error, the drops answer nothing (status 0);
    drop-after ran the operation (CreateSession: the session it created is named)."""
    expected = {
        "throttle": (429, "ThrottlingException"),
        "500": (500, "InternalServerException"),
        "drop-before": (0, None),
        "drop-after": (0, None),
    }
    for fault, (status, error) in expected.items():
        log = tmp_path / f"{fault}.log"
        server = make_server(log=str(log), fault_rate=1.0, faults=[fault])
        boto = make_boto(server)
        raised = (botocore.exceptions.ClientError if error else botocore.exceptions.ConnectionClosedError)
        with pytest.raises(raised) as caught:
            boto.create_session()
        metrics = scrape(server)
        server.stop()
        [line] = read_log(log)
        assert line["operation"] == "CreateSession" and line["fault"] == fault, line
        assert line["status"] == status, line
        assert line.get("error") == error, line
        if error:
            assert line["request_id"] == request_id_of(caught.value)
            assert caught.value.response["Error"]["Code"] == error
            assert line["bytes_out"] > 0
        else:
            assert line["bytes_out"] == 0
        assert ("session" in line) == (fault == "drop-after"), line
        # The same request in the metrics.
        assert metrics.get("bedrock_sessions_requests_total", operation="CreateSession", status=str(status)) == 1
        assert metrics.get("bedrock_sessions_faults_injected_total", fault=fault) == 1
        assert sum(metrics.series("bedrock_sessions_faults_injected_total").values()) == 1
        if error:
            assert metrics.get("bedrock_sessions_errors_total", operation="CreateSession", code=error) == 1
        assert sum(metrics.series("bedrock_sessions_errors_total").values()) == (1 if error else 0)


def test_log_to_stderr_and_off(make_server, make_boto, capfd):
    server = make_server(log="-")
    make_boto(server).list_sessions()
    server.stop()
    err = capfd.readouterr().err
    json_lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(line["operation"], line["status"]) for line in json_lines] == [("ListSessions", 200)], err

    for quiet in (None, "off"):
        server = make_server(log=quiet)
        make_boto(server).list_sessions()
        server.stop()
        captured = capfd.readouterr()
        assert '"request_id"' not in captured.err + captured.out


def test_log_is_appended_and_a_bad_path_is_refused_at_start(make_server, make_boto, tmp_path):
    log = tmp_path / "requests.log"
    for _ in range(2):
        server = make_server(log=log)  # a PathLike works too
        make_boto(server).list_sessions()
        server.stop()
    assert [line["operation"] for line in read_log(log)] == ["ListSessions", "ListSessions"]
    with pytest.raises(OSError, match="cannot open the request log"):
        make_server(log=str(tmp_path / "no-such-dir" / "x.log"))
    with pytest.raises(TypeError):
        LocalServer(log=sys.stderr)  # type: ignore[arg-type]


def test_concurrent_requests_get_one_line_each(make_server, make_boto, tmp_path):
    log = tmp_path / "requests.log"
    server = make_server(log=str(log))
    boto = make_boto(server, max_pool_connections=8)
    sid = boto.create_session()["sessionId"]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                boto.get_session(sessionIdentifier=sid)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not errors and not any(t.is_alive() for t in threads)
    server.stop()
    lines = read_log(log)
    assert len(lines) == 1 + 100
    assert sum(line["operation"] == "GetSession" and line["status"] == 200 for line in lines) == 100
    assert len({line["request_id"] for line in lines}) == 101


# ---------------------------------------------------------------- the metrics
def test_metrics_are_prometheus_text_at_both_paths(server, boto):
    boto.list_sessions()
    for path in ("/metrics", "/_bedrock_sessions/metrics"):
        m = scrape(server, path)
        assert m.types == {
            "bedrock_sessions_requests_total": "counter",
            "bedrock_sessions_errors_total": "counter",
            "bedrock_sessions_request_duration_seconds": "histogram",
            "bedrock_sessions_request_bytes_total": "counter",
            "bedrock_sessions_steps_written_total": "counter",
            "bedrock_sessions_faults_injected_total": "counter",
            "bedrock_sessions_in_flight": "gauge",
            "bedrock_sessions_log_lines_dropped_total": "counter",
        }
        assert m.help.keys() == m.types.keys()
        assert m.text.endswith("\n")
        assert m.get("bedrock_sessions_requests_total", operation="ListSessions", status="200") == 1
        # A family's samples come together, right after its TYPE line.
        families = [re.sub(r"_(bucket|sum|count)$", "", n) if n not in m.types else n for n, _ in m.order]
        assert families == sorted(families, key=list(m.types).index)
    # Scrapes are not API requests: not counted in the metrics, nor in the stats.
    assert scrape(server).get("bedrock_sessions_requests_total", operation="ListSessions", status="200") == 1
    assert server.stats()["requests"] == 1
    # Only GET: another method there is no operation.
    assert http(server.endpoint_url, "POST", "/metrics").status == 404
    assert scrape(server).get("bedrock_sessions_errors_total", operation="unknown",
                              code="UnknownOperationException") == 1


def test_metrics_move_with_requests(make_server, make_boto, tmp_path):
    log = tmp_path / "requests.log"
    server = make_server(log=str(log))
    boto = make_boto(server)
    start = scrape(server)
    assert start.series("bedrock_sessions_requests_total") == {}
    assert start.get("bedrock_sessions_steps_written_total") == 0
    assert start.get("bedrock_sessions_in_flight") == 0

    sid = boto.create_session()["sessionId"]
    for _ in range(3):
        boto.get_session(sessionIdentifier=sid)
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    for n in range(2):
        boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                 payload=text_payload(f"step {n}"))
    with pytest.raises(boto.exceptions.ResourceNotFoundException):
        boto.get_session(sessionIdentifier=str(uuid.uuid4()))
    with pytest.raises(boto.exceptions.ResourceNotFoundException):  # a failed put writes no step
        boto.put_invocation_step(sessionIdentifier=str(uuid.uuid4()), invocationIdentifier=iid,
                                 invocationStepTime=T0, payload=text_payload("lost"))
    with pytest.raises(boto.exceptions.ValidationException):
        boto.get_session(sessionIdentifier=SESSION_ARN_PREFIX + "not-a-uuid")
    http(server.endpoint_url, "GET", "/nope")

    m = scrape(server)
    requests = {(dict(k)["operation"], dict(k)["status"]): v
                for k, v in m.series("bedrock_sessions_requests_total").items()}
    assert requests == {
        ("CreateSession", "201"): 1, ("GetSession", "200"): 3, ("GetSession", "404"): 1, ("GetSession", "400"): 1,
        ("CreateInvocation", "201"): 1, ("PutInvocationStep", "201"): 2, ("PutInvocationStep", "404"): 1,
        ("unknown", "404"): 1,
    }
    errors = {(dict(k)["operation"], dict(k)["code"]): v for k, v in m.series("bedrock_sessions_errors_total").items()}
    assert errors == {
        ("GetSession", "ResourceNotFoundException"): 1, ("GetSession", "ValidationException"): 1,
        ("PutInvocationStep", "ResourceNotFoundException"): 1, ("unknown", "UnknownOperationException"): 1,
    }
    assert m.get("bedrock_sessions_steps_written_total") == 2
    assert m.get("bedrock_sessions_in_flight") == 0

    # The histograms: one per operation seen, buckets at the documented bounds, cumulative, +Inf == _count ==
    # the operation's requests.
    ops_seen = {dict(k)["operation"] for k in m.series("bedrock_sessions_request_duration_seconds_count")}
    assert ops_seen == {op for op, _ in requests}
    for op in ops_seen:
        buckets, total, count = histogram(m, op)
        assert [le for le, _ in buckets] == BUCKET_BOUNDS
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), (op, counts)
        assert counts[-1] == count == requests_of(m, op), op
        assert total >= 0
    assert histogram(m, "GetSession")[2] == 5

    # More requests move the counters by as much.
    boto.get_session(sessionIdentifier=sid)
    again = scrape(server)
    assert again.get("bedrock_sessions_requests_total", operation="GetSession", status="200") == 4
    assert histogram(again, "GetSession")[2] == 6
    assert again.get("bedrock_sessions_request_bytes_total", direction="out") > \
        m.get("bedrock_sessions_request_bytes_total", direction="out")

    # The byte counters are the sums of the log's lines (the same requests, counted twice over).
    server.stop()
    lines = read_log(log)
    assert len(lines) == sum(again.series("bedrock_sessions_requests_total").values()) == 12
    bytes_in = sum(line["bytes_in"] for line in lines)
    bytes_out = sum(line["bytes_out"] for line in lines)
    assert again.get("bedrock_sessions_request_bytes_total", direction="in") == bytes_in
    assert again.get("bedrock_sessions_request_bytes_total", direction="out") == bytes_out
    # And the histograms' _sum is the log's latencies (these rounded to the microsecond: 1 µs each at most).
    total = sum(histogram(again, op)[1] for op in {line.get("operation", "unknown") for line in lines})
    assert abs(total - sum(line["latency_ms"] for line in lines) / 1000) <= len(lines) * 1e-6


def test_in_flight_counts_a_request_until_it_is_answered(server):
    """A request whose body has not all arrived is in flight; once answered it is not."""
    host, port = server.host, server.port

    def in_flight() -> float:
        return scrape(server).get("bedrock_sessions_in_flight")

    with socket.create_connection((host, port), timeout=WAIT) as sock:
        sock.sendall(f"PUT /sessions HTTP/1.1\r\nHost: {host}:{port}\r\n".encode() + b"Content-Type: application/json\r\n"
                     b"Content-Length: 2\r\n\r\n{")
        deadline = time.monotonic() + WAIT
        while in_flight() != 1:  # the server reads the head when it gets to it
            assert time.monotonic() < deadline, "the request never showed as in flight"
            time.sleep(0.02)
        sock.sendall(b"}")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 201 "), answer
    assert in_flight() == 0
    assert scrape(server).get("bedrock_sessions_requests_total", operation="CreateSession", status="201") == 1


def test_a_refused_request_is_logged_and_counted(make_server, tmp_path):
    """A request refused before any handler (here: a malformed Content-Length) is still an API request."""
    log = tmp_path / "requests.log"
    server = make_server(log=str(log))
    with socket.create_connection((server.host, server.port), timeout=WAIT) as sock:
        sock.sendall(b"PUT /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    m = scrape(server)
    assert m.get("bedrock_sessions_errors_total", operation="unknown", code="ValidationException") == 1
    server.stop()
    [line] = read_log(log)
    assert line["status"] == 400 and line["error"] == "ValidationException" and "operation" not in line
    assert line["request_id"].encode() in answer


# ---------------------------------------------------------------- bedrock-sessions serve --log
URL_LINE = re.compile(r"bedrock-sessions: serving the Bedrock session API at (http://127\.0\.0\.1:\d+) .*")


def run_serve(args: list[str], use: Callable[[str], None]) -> tuple[list[str], str]:
    """Runs ``bedrock-sessions serve --port 0 *args``, calls ``use(url)``, stops it with SIGINT; returns its
    stdout lines and its stderr (read at exit: the log lines there are few)."""
    proc = subprocess.Popen([sys.executable, "-m", "bedrock_sessions.cli", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    first_line = threading.Event()

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stdout.append(line.rstrip("\n"))
            first_line.set()
        first_line.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        assert first_line.wait(WAIT), "no output from bedrock-sessions serve"
        m = URL_LINE.fullmatch(stdout[0]) if stdout else None
        assert m, (stdout, proc.poll())
        use(m.group(1))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=WAIT) == 0
        reader.join(WAIT)
        assert proc.stderr is not None
        return stdout, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def two_requests(url: str) -> None:
    assert http(url, "POST", "/sessions/").status == 200  # ListSessions
    assert http(url, "GET", "/sessions/" + str(uuid.uuid4())).status == 404
    assert http(url, "GET", "/health").status == 200


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("mode", ["default", "-", "off", "file"])
def test_serve_log_option(mode, tmp_path):
    log = tmp_path / "serve.log"
    args = {"default": [], "-": ["--log", "-"], "off": ["--log", "off"], "file": ["--log", str(log)]}[mode]
    stdout, stderr = run_serve(args, two_requests)
    assert not json_lines("\n".join(stdout)), "the log never goes to stdout"
    expected = [("ListSessions", 200, None), ("GetSession", 404, "ResourceNotFoundException")]
    if mode in ("default", "-"):
        got = json_lines(stderr)
    elif mode == "file":
        assert not json_lines(stderr)
        got = read_log(log)
    else:
        assert not json_lines(stderr)
        got = []
        expected = []
    assert [(line["operation"], line["status"], line.get("error")) for line in got] == expected
