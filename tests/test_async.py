"""Genuinely concurrent use of AsyncSessionClient (memory and sqlite stores)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from _support import T0, UUID_RE, new_uuid, text_payload

from bedrock_sessions import AsyncSessionClient, exceptions


async def session_and_invocation(c):
    s = await c.create_session()
    i = await c.create_invocation(sessionIdentifier=s["sessionId"])
    return s["sessionId"], i["invocationId"]


def put(c, sid, iid, n, **kw):
    return c.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=T0 + dt.timedelta(milliseconds=n),
        payload=text_payload(f"step {n}"),
        **kw,
    )


async def all_step_ids(c, sid):
    out = []
    async for page in c.get_paginator("list_invocation_steps").paginate(
        sessionIdentifier=sid, PaginationConfig={"PageSize": 7}
    ):
        out += [s["invocationStepId"] for s in page["invocationStepSummaries"]]
    return out


def test_gather_50_puts(open_raw):
    client = open_raw("async")

    async def main():
        sid, iid = await session_and_invocation(client)
        results = await asyncio.gather(*(put(client, sid, iid, n) for n in range(50)))
        ids = [r["invocationStepId"] for r in results]
        assert len(set(ids)) == 50 and all(UUID_RE.fullmatch(i) for i in ids)
        listed = await all_step_ids(client, sid)
        # newest first by step time: step n has time T0 + n ms
        assert listed == ids[::-1]
        got = await asyncio.gather(
            *(
                client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=i)
                for i in ids
            )
        )
        assert [g["invocationStep"]["payload"]["contentBlocks"][0]["text"] for g in got] == [
            f"step {n}" for n in range(50)
        ]

    asyncio.run(main())


def test_gather_respects_step_quota(open_raw):
    client = open_raw("async", max_steps_per_session=30)

    async def main():
        sid, iid = await session_and_invocation(client)
        results = await asyncio.gather(*(put(client, sid, iid, n) for n in range(50)), return_exceptions=True)
        ok = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(ok) == 30
        assert len(refused) == 20
        assert all(isinstance(r, exceptions.ServiceQuotaExceededException) for r in refused), refused
        assert sorted(await all_step_ids(client, sid)) == sorted(r["invocationStepId"] for r in ok)

    asyncio.run(main())


def test_gather_identical_retries(open_raw):
    client = open_raw("async")

    async def main():
        sid, iid = await session_and_invocation(client)
        step = new_uuid()
        results = await asyncio.gather(*(put(client, sid, iid, 0, invocationStepId=step) for _ in range(20)))
        assert {r["invocationStepId"] for r in results} == {step}
        assert await all_step_ids(client, sid) == [step]

    asyncio.run(main())


def test_gather_many_sessions(open_raw):
    client = open_raw("async")

    async def one_session(k):
        sid, iid = await session_and_invocation(client)
        await asyncio.gather(*(put(client, sid, iid, n) for n in range(5)))
        return sid

    async def main():
        sids = await asyncio.gather(*(one_session(k) for k in range(10)))
        assert len(set(sids)) == 10
        listed = (
            await client.get_paginator("list_sessions").paginate(PaginationConfig={"PageSize": 3}).build_full_result()
        )
        assert sorted(s["sessionId"] for s in listed["sessionSummaries"]) == sorted(sids)
        counts = await asyncio.gather(*(all_step_ids(client, s) for s in sids))
        assert [len(c) for c in counts] == [5] * 10

    asyncio.run(main())


def test_gather_with_failures_mixed_in(open_raw):
    client = open_raw("async")

    async def main():
        sid, iid = await session_and_invocation(client)
        calls = []
        for n in range(20):
            if n % 4 == 0:
                calls.append(put(client, sid, new_uuid(), n))  # unknown invocation
            else:
                calls.append(put(client, sid, iid, n))
        results = await asyncio.gather(*calls, return_exceptions=True)
        for n, r in enumerate(results):
            if n % 4 == 0:
                assert isinstance(r, client.exceptions.ResourceNotFoundException), r
            else:
                assert isinstance(r, dict), r
        assert len(await all_step_ids(client, sid)) == 15

    asyncio.run(main())


def test_async_with(open_raw):
    raw = open_raw("async")

    async def main():
        async with raw as c:
            assert c is raw
            sid, iid = await session_and_invocation(c)
            await put(c, sid, iid, 1)
            assert len(await all_step_ids(c, sid)) == 1
            with pytest.raises(c.exceptions.ResourceNotFoundException):
                await c.get_session(sessionIdentifier=new_uuid())

    asyncio.run(main())


def test_async_paginator_async_for(open_raw):
    client = open_raw("async")

    async def main():
        sid, iid = await session_and_invocation(client)
        ids = [(await put(client, sid, iid, n))["invocationStepId"] for n in range(9)]
        paginator = client.get_paginator("list_invocation_steps")
        sizes, seen = [], []
        async for page in paginator.paginate(
            sessionIdentifier=sid, invocationIdentifier=iid, PaginationConfig={"PageSize": 4}
        ):
            sizes.append(len(page["invocationStepSummaries"]))
            seen += [s["invocationStepId"] for s in page["invocationStepSummaries"]]
        assert sizes == [4, 4, 1]
        assert seen == ids[::-1]
        first = await paginator.paginate(
            sessionIdentifier=sid, PaginationConfig={"MaxItems": 5, "PageSize": 2}
        ).build_full_result()
        assert [s["invocationStepId"] for s in first["invocationStepSummaries"]] == ids[::-1][:5]
        rest = await paginator.paginate(
            sessionIdentifier=sid, PaginationConfig={"StartingToken": first["NextToken"]}
        ).build_full_result()
        assert [s["invocationStepId"] for s in rest["invocationStepSummaries"]] == ids[::-1][5:]

    asyncio.run(main())


def test_async_client_type(open_raw):
    assert isinstance(open_raw("async"), AsyncSessionClient)
