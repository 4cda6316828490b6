"""A short tour of the session API on the embedded store: a shoe-shopping assistant's conversation
kept as a Bedrock session (session -> invocations -> invocation steps), read back as an auditor would.

Runs offline: `python examples/session_demo.py [--db PATH]` (default: a fresh file in a temp folder).
The code is plain boto3 `bedrock-agent-runtime` code: pass a boto3 client to `run()` and it runs the same.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from datetime import datetime, timedelta, timezone

from bedrock_sessions import SessionClient

# A 1x1 PNG, standing in for the photo of a shoe the shopper uploads.
SHOE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)

TURNS = [
    ("Do you have trail running shoes in size 42?", "Yes: the Ridge Runner (89 EUR) and the Summit Pro (129 EUR)."),
    ("Add the Ridge Runner to my cart.", "Added Ridge Runner, size 42. Cart: 1 item, 89 EUR."),
    ("Here is a photo of my old pair, anything similar?", "The Summit Pro has the same lugged sole. Want it too?"),
    ("Yes, add it, then check out.", "Cart: 2 items, 218 EUR. Checkout needs your approval."),
]


def run(client, say=print) -> None:  # noqa: ANN001 - any boto3-compatible client
    start = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)

    session = client.create_session(
        sessionMetadata={"shopper": "ana", "channel": "web"}, tags={"app": "shoe-assistant"}
    )
    sid = session["sessionId"]
    say(f"1. created session {sid} ({session['sessionStatus']})")
    say(f"   ARN {session['sessionArn']}")

    for n, (user, assistant) in enumerate(TURNS, start=1):
        inv = client.create_invocation(sessionIdentifier=sid, description=f"turn {n}")
        blocks = [{"text": f"user: {user}"}]
        if "photo" in user:
            blocks.append({"image": {"format": "png", "source": {"bytes": SHOE_PNG}}})
        at = start + timedelta(minutes=n)
        client.put_invocation_step(
            sessionIdentifier=session["sessionArn"],  # ARN and id forms both work
            invocationIdentifier=inv["invocationId"],
            invocationStepTime=at,
            payload={"contentBlocks": blocks},
        )
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=inv["invocationId"],
            invocationStepTime=at + timedelta(seconds=2),
            payload={"contentBlocks": [{"text": f"assistant: {assistant}"}]},
        )
        say(f"2. turn {n}: stored the user and assistant steps of invocation {inv['invocationId'][:8]}")

    client.update_session(sessionIdentifier=sid, sessionMetadata={"shopper": "ana", "channel": "web", "cart": "2"})

    say("3. the conversation read back, oldest first, through the paginator (pages of 3):")
    summaries = []
    for page in client.get_paginator("list_invocation_steps").paginate(
        sessionIdentifier=sid, PaginationConfig={"PageSize": 3}
    ):
        summaries.extend(page["invocationStepSummaries"])
    for summary in reversed(summaries):  # the service lists newest first
        step = client.get_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=summary["invocationId"],
            invocationStepId=summary["invocationStepId"],
        )["invocationStep"]
        parts = []
        for block in step["payload"]["contentBlocks"]:
            if "text" in block:
                parts.append(block["text"])
            else:
                image = block["image"]
                parts.append(f"[{image['format']} image, {len(image['source']['bytes'])} bytes]")
        say(f"   {step['invocationStepTime']:%H:%M:%S}  " + " ".join(parts))

    info = client.get_session(sessionIdentifier=sid)
    tags = client.list_tags_for_resource(resourceArn=info["sessionArn"])["tags"]
    say(f"4. session metadata {info['sessionMetadata']}, tags {tags}")

    client.end_session(sessionIdentifier=sid)
    try:
        client.create_invocation(sessionIdentifier=sid)
    except client.exceptions.ConflictException as err:
        say(f"5. ended: the session is now read-only -> {err.response['Error']['Code']}")
    say(f"   still readable: {len(client.list_invocations(sessionIdentifier=sid, maxResults=100)['invocationSummaries'])} invocations")

    client.delete_session(sessionIdentifier=sid)
    try:
        client.get_session(sessionIdentifier=sid)
    except client.exceptions.ResourceNotFoundException:
        say("6. deleted: the session, its invocations and steps are gone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file of the embedded store (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or os.path.join(tmp, "sessions.db")
        print(f"embedded session store: {path}")
        with SessionClient.local(path) as client:
            run(client)


if __name__ == "__main__":
    main()
