"""maxResults / nextToken and the paginators."""

from __future__ import annotations

import datetime as dt

import pytest
from _support import T0, collect, list_all, new_invocation, new_session, put_text, raises_code

from bedrock_sessions import ManualClock

LISTINGS = ["list_sessions", "list_invocations", "list_invocation_steps"]
KEYS = {
    "list_sessions": "sessionSummaries",
    "list_invocations": "invocationSummaries",
    "list_invocation_steps": "invocationStepSummaries",
}
ID_KEYS = {"list_sessions": "sessionId", "list_invocations": "invocationId", "list_invocation_steps": "invocationStepId"}


def populate(client, listing, n):
    """n items in the listing, returned newest first, plus the kwargs that list them."""
    if listing == "list_sessions":
        ids = [new_session(client)[0] for _ in range(n)]
        return ids[::-1], {}
    sid, _ = new_session(client)
    if listing == "list_invocations":
        ids = [new_invocation(client, sid) for _ in range(n)]
        return ids[::-1], {"sessionIdentifier": sid}
    iid = new_invocation(client, sid)
    ids = [put_text(client, sid, iid, str(i), when=T0 + dt.timedelta(milliseconds=i)) for i in range(n)]
    return ids[::-1], {"sessionIdentifier": sid}


def ids_of(listing, items):
    return [it[ID_KEYS[listing]] for it in items]


@pytest.fixture
def clocked(make_client):
    return make_client(clock=ManualClock(start=T0))


# ---------------------------------------------------------------- maxResults / nextToken
@pytest.mark.parametrize("listing", LISTINGS)
def test_pages_with_max_results(clocked, listing):
    client = clocked
    expected, kwargs = populate(client, listing, 10)
    seen = []
    sizes = []
    token = None
    while True:
        call = dict(kwargs, maxResults=3)
        if token:
            call["nextToken"] = token
        page = getattr(client, listing)(**call)
        sizes.append(len(page[KEYS[listing]]))
        seen += ids_of(listing, page[KEYS[listing]])
        token = page.get("nextToken")
        if not token:
            break
        assert isinstance(token, str) and 1 <= len(token) <= 2048 and not any(c.isspace() for c in token)
    assert sizes == [3, 3, 3, 1]
    assert seen == expected


@pytest.mark.parametrize("listing", LISTINGS)
def test_default_page_size_is_10(clocked, listing):
    client = clocked
    expected, kwargs = populate(client, listing, 12)
    page = getattr(client, listing)(**kwargs)
    assert ids_of(listing, page[KEYS[listing]]) == expected[:10]
    rest = getattr(client, listing)(**kwargs, nextToken=page["nextToken"])
    assert ids_of(listing, rest[KEYS[listing]]) == expected[10:]
    assert "nextToken" not in rest


def test_default_page_size_option(make_client):
    client = make_client(default_page_size=4)
    expected, _ = populate(client, "list_sessions", 6)
    page = client.list_sessions()
    assert ids_of("list_sessions", page["sessionSummaries"]) == expected[:4]
    assert page["nextToken"]


def test_exact_page_boundary(clocked):
    client = clocked
    expected, _ = populate(client, "list_sessions", 4)
    items = list_all(client, "list_sessions", "sessionSummaries", maxResults=2)
    assert ids_of("list_sessions", items) == expected
    full = client.list_sessions(maxResults=4)
    assert ids_of("list_sessions", full["sessionSummaries"]) == expected


def test_max_results_1000_ok(clocked):
    expected, _ = populate(clocked, "list_sessions", 3)
    assert ids_of("list_sessions", clocked.list_sessions(maxResults=1000)["sessionSummaries"]) == expected
    assert ids_of("list_sessions", clocked.list_sessions(maxResults=1)["sessionSummaries"]) == expected[:1]


@pytest.mark.parametrize("listing", LISTINGS)
@pytest.mark.parametrize("bad", [0, 1001, -1, 5000])
def test_max_results_out_of_range(clocked, listing, bad):
    _, kwargs = populate(clocked, listing, 1)
    with raises_code("ValidationException", "maxResults"):
        getattr(clocked, listing)(**kwargs, maxResults=bad)


@pytest.mark.parametrize("listing", LISTINGS)
@pytest.mark.parametrize("bad", ["garbage", "", "x" * 2049, "has space", "eyJmb28iOiAxfQ==", "a\nb"])
def test_malformed_next_token(clocked, listing, bad):
    _, kwargs = populate(clocked, listing, 3)
    with raises_code("ValidationException", "nextToken"):
        getattr(clocked, listing)(**kwargs, nextToken=bad)


def test_next_token_of_another_operation(clocked):
    client = clocked
    _, kwargs = populate(client, "list_invocations", 3)
    populate(client, "list_sessions", 2)
    sessions_token = client.list_sessions(maxResults=1)["nextToken"]
    inv_token = client.list_invocations(**kwargs, maxResults=1)["nextToken"]
    with raises_code("ValidationException", "nextToken"):
        client.list_invocations(**kwargs, nextToken=sessions_token)
    with raises_code("ValidationException", "nextToken"):
        client.list_sessions(nextToken=inv_token)
    with raises_code("ValidationException", "nextToken"):
        client.list_invocation_steps(**kwargs, nextToken=inv_token)


def test_next_token_of_another_session(clocked):
    client = clocked
    _, a = populate(client, "list_invocation_steps", 3)
    _, b = populate(client, "list_invocation_steps", 3)
    token_a = client.list_invocation_steps(**a, maxResults=1)["nextToken"]
    with raises_code("ValidationException", "nextToken"):
        client.list_invocation_steps(**b, nextToken=token_a)
    _, ia = populate(client, "list_invocations", 3)
    _, ib = populate(client, "list_invocations", 3)
    token_ia = client.list_invocations(**ia, maxResults=1)["nextToken"]
    with raises_code("ValidationException", "nextToken"):
        client.list_invocations(**ib, nextToken=token_ia)


def test_pages_stable_while_items_are_added(clocked):
    client = clocked
    expected, _ = populate(client, "list_sessions", 6)
    first = client.list_sessions(maxResults=3)
    # new sessions are newer: they must not shift the rest of this listing
    newer = [new_session(client)[0] for _ in range(4)]
    second = client.list_sessions(maxResults=3, nextToken=first["nextToken"])
    assert ids_of("list_sessions", first["sessionSummaries"] + second["sessionSummaries"]) == expected
    assert "nextToken" not in second
    assert ids_of("list_sessions", client.list_sessions(maxResults=4)["sessionSummaries"]) == newer[::-1]


def test_steps_pages_stable_while_steps_are_added(clocked):
    client = clocked
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    ids = [put_text(client, sid, iid, when=T0) for _ in range(5)]  # all tied: later insert first
    first = client.list_invocation_steps(sessionIdentifier=sid, maxResults=2)
    put_text(client, sid, iid, when=T0)  # same time: a later insert goes before everything listed
    put_text(client, sid, iid, when=T0 + dt.timedelta(hours=1))
    rest = list_all(
        client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, maxResults=2,
        nextToken=first["nextToken"],
    )
    got = ids_of("list_invocation_steps", first["invocationStepSummaries"] + rest)
    assert got == ids[::-1]


def test_list_steps_pages_per_invocation(clocked):
    client = clocked
    sid, _ = new_session(client)
    i1, i2 = new_invocation(client, sid), new_invocation(client, sid)
    mine = []
    for n in range(7):
        mine.append(put_text(client, sid, i1, when=T0 + dt.timedelta(seconds=n)))
        put_text(client, sid, i2, when=T0 + dt.timedelta(seconds=n))
    items = list_all(
        client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, invocationIdentifier=i1,
        maxResults=3,
    )
    assert ids_of("list_invocation_steps", items) == mine[::-1]


# ---------------------------------------------------------------- paginators
def test_can_paginate(client):
    for name in LISTINGS:
        assert client.can_paginate(name) is True
    for name in ("get_session", "create_session", "list_tags_for_resource", "put_invocation_step", "nope"):
        assert client.can_paginate(name) is False


def test_get_paginator_of_non_pageable_operation(client):
    with pytest.raises(Exception):
        client.get_paginator("get_session")


@pytest.mark.parametrize("listing", LISTINGS)
def test_paginator_all_pages(clocked, listing):
    expected, kwargs = populate(clocked, listing, 23)
    pages = list(clocked.get_paginator(listing).paginate(**kwargs))
    assert [len(p[KEYS[listing]]) for p in pages] == [10, 10, 3]
    assert ids_of(listing, collect(pages, KEYS[listing])) == expected
    assert "nextToken" not in pages[-1]


@pytest.mark.parametrize("listing", LISTINGS)
def test_paginator_page_size(clocked, listing):
    expected, kwargs = populate(clocked, listing, 10)
    pages = list(clocked.get_paginator(listing).paginate(**kwargs, PaginationConfig={"PageSize": 3}))
    assert [len(p[KEYS[listing]]) for p in pages] == [3, 3, 3, 1]
    assert ids_of(listing, collect(pages, KEYS[listing])) == expected


@pytest.mark.parametrize("listing", LISTINGS)
def test_paginator_max_items_and_resume(clocked, listing):
    expected, kwargs = populate(clocked, listing, 10)
    paginator = clocked.get_paginator(listing)
    first = paginator.paginate(**kwargs, PaginationConfig={"MaxItems": 5, "PageSize": 3}).build_full_result()
    assert ids_of(listing, first[KEYS[listing]]) == expected[:5]
    assert first["NextToken"]
    second = paginator.paginate(
        **kwargs, PaginationConfig={"MaxItems": 4, "PageSize": 3, "StartingToken": first["NextToken"]}
    ).build_full_result()
    assert ids_of(listing, second[KEYS[listing]]) == expected[5:9]
    third = paginator.paginate(
        **kwargs, PaginationConfig={"PageSize": 3, "StartingToken": second["NextToken"]}
    ).build_full_result()
    assert ids_of(listing, third[KEYS[listing]]) == expected[9:]
    assert "NextToken" not in third


def test_paginator_max_items_on_page_boundary(clocked):
    expected, _ = populate(clocked, "list_sessions", 8)
    paginator = clocked.get_paginator("list_sessions")
    first = paginator.paginate(PaginationConfig={"MaxItems": 4, "PageSize": 2}).build_full_result()
    assert ids_of("list_sessions", first["sessionSummaries"]) == expected[:4]
    rest = paginator.paginate(PaginationConfig={"StartingToken": first["NextToken"]}).build_full_result()
    assert ids_of("list_sessions", rest["sessionSummaries"]) == expected[4:]


def test_paginator_max_items_pages(clocked):
    expected, _ = populate(clocked, "list_sessions", 10)
    pages = list(clocked.get_paginator("list_sessions").paginate(PaginationConfig={"MaxItems": 7, "PageSize": 3}))
    assert [len(p["sessionSummaries"]) for p in pages] == [3, 3, 1]
    assert ids_of("list_sessions", collect(pages, "sessionSummaries")) == expected[:7]


def test_paginator_starting_token_from_a_list_call(clocked):
    expected, _ = populate(clocked, "list_sessions", 7)
    token = clocked.list_sessions(maxResults=2)["nextToken"]
    result = clocked.get_paginator("list_sessions").paginate(PaginationConfig={"StartingToken": token}).build_full_result()
    assert ids_of("list_sessions", result["sessionSummaries"]) == expected[2:]


def test_build_full_result_all(clocked):
    expected, kwargs = populate(clocked, "list_invocation_steps", 12)
    result = clocked.get_paginator("list_invocation_steps").paginate(**kwargs).build_full_result()
    assert ids_of("list_invocation_steps", result["invocationStepSummaries"]) == expected
    assert "NextToken" not in result


def test_paginator_with_invocation_filter(clocked):
    client = clocked
    sid, arn = new_session(client)
    i1, i2 = new_invocation(client, sid), new_invocation(client, sid)
    mine = [put_text(client, sid, i1, when=T0 + dt.timedelta(seconds=n)) for n in range(4)]
    put_text(client, sid, i2)
    result = client.get_paginator("list_invocation_steps").paginate(
        sessionIdentifier=arn, invocationIdentifier=i1, PaginationConfig={"PageSize": 1}
    ).build_full_result()
    assert ids_of("list_invocation_steps", result["invocationStepSummaries"]) == mine[::-1]


def test_paginator_errors_surface(client):
    with raises_code("ResourceNotFoundException"):
        list(client.get_paginator("list_invocations").paginate(sessionIdentifier="00000000-0000-4000-8000-000000000000"))
    with raises_code("ValidationException", "maxResults"):
        list(client.get_paginator("list_sessions").paginate(PaginationConfig={"PageSize": 1001}))
