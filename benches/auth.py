#!/usr/bin/env python
"""What checking identities costs the local server: the same requests, from our client (the AWS SDK for Rust, which
signs every request either way) over TCP, against a server

- ``open``: no identities (the signature is not verified);
- ``signed``: identities, a principal allowed ``bedrock:*`` (SigV4 verified, one policy evaluated);
- ``abac``: identities, the tag-scoped policy set of docs/server.md (each request also reads the session's tags);
- ``abac + audit``: the same, with an audit log written to a file.

Medians of ``--runs`` runs of ``--requests`` requests each (GetSession, PutInvocationStep, ListInvocationSteps in
turn), in ms per request, and each case's ratio to ``open`` measured in the same run.

    python benches/auth.py                  # 3 runs of 600 requests
    python benches/auth.py --quick          # 1 run of 60 (a smoke test)

Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer

ABAC = [{
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "bedrock:CreateSession", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/tenant": "${aws:PrincipalTag/tenant}"}}},
        {"Effect": "Allow", "NotAction": ["bedrock:CreateSession", "bedrock:TagResource", "bedrock:UntagResource"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/tenant}"}}},
    ],
}]
ALLOW_ALL = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}]}]
KEY, SECRET = "AKIABENCH0000000001", "bench-secret"


def identities(policies: list[dict[str, Any]]) -> dict[str, Any]:
    return {"accounts": {"111111111111": {"principals": {"bench": {
        "access_keys": {KEY: SECRET}, "tags": {"tenant": "t1"}, "policies": policies}}}}}


def run_case(tmp: str, name: str, requests: int) -> float:
    """Seconds per request of one run of `requests` requests against a fresh server of case `name`."""
    options: dict[str, Any] = {}
    if name != "open":
        path = os.path.join(tmp, f"iam-{name.replace(' ', '-')}.json")
        with open(path, "w") as f:
            json.dump(identities(ALLOW_ALL if name == "signed" else ABAC), f)
        options["iam"] = path
    if name.endswith("audit"):
        options["audit"] = os.path.join(tmp, "audit.jsonl")
    db = os.path.join(tmp, f"{name.replace(' ', '-')}-{time.monotonic_ns()}.db")
    with LocalServer(db, **options) as server:
        client = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name=server.region,
                                       aws_access_key_id=KEY, aws_secret_access_key=SECRET, max_attempts=1)
        sid = client.create_session(tags={"tenant": "t1"})["sessionId"]
        inv = client.create_invocation(sessionIdentifier=sid)["invocationId"]
        step = {"contentBlocks": [{"text": "x" * 512}]}
        calls = [
            lambda: client.get_session(sessionIdentifier=sid),
            lambda: client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv,
                                               invocationStepTime="2026-12-05T10:00:00Z", payload=step),
            lambda: client.list_invocation_steps(sessionIdentifier=sid, maxResults=5),
        ]
        for call in calls:  # warm the connection and the server's caches
            call()
        start = time.perf_counter()
        for i in range(requests):
            calls[i % 3]()
        elapsed = time.perf_counter() - start
        client.close()
    return elapsed / requests


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--quick", action="store_true", help="1 run of 60 requests")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()
    runs, requests = (1, 60) if args.quick else (args.runs, args.requests)
    cases = ["open", "signed", "abac", "abac + audit"]
    times: dict[str, list[float]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        for _ in range(runs):
            for c in cases:  # interleaved, so that the machine's drift spreads over every case
                times[c].append(run_case(tmp, c, requests))
    med = {c: statistics.median(v) for c, v in times.items()}
    print(f"{'server':<14} {'ms/request':>10} {'vs open':>8}")
    for c in cases:
        print(f"{c:<14} {med[c] * 1e3:>10.3f} {med[c] / med['open']:>7.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "requests": requests,
                       "ms_per_request": {c: med[c] * 1e3 for c in cases},
                       "vs_open": {c: med[c] / med["open"] for c in cases}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
