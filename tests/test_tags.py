"""tag_resource / untag_resource / list_tags_for_resource: limits, pattern, ARNs."""

from __future__ import annotations

import pytest
from _support import new_session, new_uuid, other_arn, raises_code


def tags_of(client, arn):
    return client.list_tags_for_resource(resourceArn=arn).get("tags", {})


def test_tags_at_create_and_listed(client):
    _, arn = new_session(client, tags={"team": "ai", "env": "dev"})
    resp = client.list_tags_for_resource(resourceArn=arn)
    assert resp["tags"] == {"team": "ai", "env": "dev"}
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_no_tags(client):
    _, arn = new_session(client)
    assert tags_of(client, arn) == {}


def test_tag_untag(client):
    _, arn = new_session(client, tags={"a": "1"})
    resp = client.tag_resource(resourceArn=arn, tags={"b": "2", "a": "changed"})
    assert set(resp) == {"ResponseMetadata"} and resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(client, arn) == {"a": "changed", "b": "2"}
    resp = client.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert set(resp) == {"ResponseMetadata"} and resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(client, arn) == {"b": "2"}


def test_untag_absent_key_is_noop(client):
    _, arn = new_session(client, tags={"a": "1"})
    client.untag_resource(resourceArn=arn, tagKeys=["nope", "also-nope"])
    assert tags_of(client, arn) == {"a": "1"}


def test_tags_are_per_session(client):
    _, a = new_session(client, tags={"who": "a"})
    _, b = new_session(client)
    client.tag_resource(resourceArn=b, tags={"who": "b"})
    assert tags_of(client, a) == {"who": "a"}
    assert tags_of(client, b) == {"who": "b"}


def test_tag_ops_unknown_session(client):
    _, arn = new_session(client)
    unknown = other_arn(arn)[: -36] + new_uuid()
    with raises_code("ResourceNotFoundException", operation="TagResource"):
        client.tag_resource(resourceArn=unknown, tags={"a": "b"})
    with raises_code("ResourceNotFoundException", operation="UntagResource"):
        client.untag_resource(resourceArn=unknown, tagKeys=["a"])
    with raises_code("ResourceNotFoundException", operation="ListTagsForResource"):
        client.list_tags_for_resource(resourceArn=unknown)


@pytest.mark.parametrize("which", ["region", "account"])
def test_tag_ops_arn_of_other_region_or_account(client, which):
    _, arn = new_session(client, tags={"a": "b"})
    foreign = other_arn(arn, region="ap-south-1") if which == "region" else other_arn(arn, account="999999999999")
    with raises_code("ResourceNotFoundException"):
        client.list_tags_for_resource(resourceArn=foreign)
    with raises_code("ResourceNotFoundException"):
        client.tag_resource(resourceArn=foreign, tags={"x": "y"})
    with raises_code("ResourceNotFoundException"):
        client.untag_resource(resourceArn=foreign, tagKeys=["a"])
    assert tags_of(client, arn) == {"a": "b"}


def test_resource_arn_must_be_an_arn(client):
    sid, arn = new_session(client)
    for bad in (sid, "arn:aws:bedrock:us-east-1:000000000000:agent/" + sid, arn.replace(":", "%3A"), "", arn + "/"):
        with raises_code("ValidationException", "resourceArn"):
            client.list_tags_for_resource(resourceArn=bad)
        with raises_code("ValidationException", "resourceArn"):
            client.tag_resource(resourceArn=bad, tags={"a": "b"})
        with raises_code("ValidationException", "resourceArn"):
            client.untag_resource(resourceArn=bad, tagKeys=["a"])


# ---------------------------------------------------------------- limits
def test_200_tags_ok_201_rejected_at_create(client):
    two_hundred = {f"k{i}": f"v{i}" for i in range(200)}
    _, arn = new_session(client, tags=two_hundred)
    assert tags_of(client, arn) == two_hundred
    with raises_code("ValidationException", "tags"):
        client.create_session(tags={f"k{i}": "v" for i in range(201)})


def test_tag_resource_past_200_per_session(client):
    _, arn = new_session(client, tags={f"k{i}": "v" for i in range(150)})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={f"n{i}": "v" for i in range(51)})
    assert len(tags_of(client, arn)) == 150
    client.tag_resource(resourceArn=arn, tags={f"n{i}": "v" for i in range(50)})
    assert len(tags_of(client, arn)) == 200
    # overwriting existing keys does not add tags
    client.tag_resource(resourceArn=arn, tags={"k0": "new", "n0": "new"})
    assert len(tags_of(client, arn)) == 200
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={"one-more": "v"})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={f"z{i}": "v" for i in range(201)})


def test_empty_tags_map_rejected(client):
    _, arn = new_session(client)
    with raises_code("ValidationException", "tags"):
        client.create_session(tags={})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={})


def test_untag_key_list_limits(client):
    _, arn = new_session(client, tags={"a": "b"})
    with raises_code("ValidationException", "tagKeys"):
        client.untag_resource(resourceArn=arn, tagKeys=[])
    with raises_code("ValidationException", "tagKeys"):
        client.untag_resource(resourceArn=arn, tagKeys=[f"k{i}" for i in range(201)])
    with raises_code("ValidationException", "tagKeys"):
        client.untag_resource(resourceArn=arn, tagKeys=["k" * 129])
    with raises_code("ValidationException", "tagKeys"):
        client.untag_resource(resourceArn=arn, tagKeys=["bad*key"])
    client.untag_resource(resourceArn=arn, tagKeys=[f"k{i}" for i in range(199)] + ["a"])
    assert tags_of(client, arn) == {}


def test_tag_key_length_1_to_128(client):
    _, arn = new_session(client, tags={"k" * 128: "v", "a": "v"})
    assert tags_of(client, arn) == {"k" * 128: "v", "a": "v"}
    for bad in ({"k" * 129: "v"}, {"": "v"}):
        with raises_code("ValidationException", "tags"):
            client.create_session(tags=bad)
        with raises_code("ValidationException", "tags"):
            client.tag_resource(resourceArn=arn, tags=bad)


def test_tag_value_length_0_to_256(client):
    _, arn = new_session(client, tags={"long": "v" * 256, "empty": ""})
    assert tags_of(client, arn) == {"long": "v" * 256, "empty": ""}
    with raises_code("ValidationException", "tags"):
        client.create_session(tags={"k": "v" * 257})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={"k": "v" * 257})


ALLOWED = "aZ09 \t._:/=+@-"


def test_tag_pattern_allowed_characters(client):
    _, arn = new_session(client, tags={ALLOWED: ALLOWED})
    assert tags_of(client, arn) == {ALLOWED: ALLOWED}


@pytest.mark.parametrize("char", ["*", "!", "#", "é", "%", "&", "?", "\\", ",", ";", "~", "日"])
def test_tag_pattern_rejects(client, char):
    _, arn = new_session(client)
    with raises_code("ValidationException", "tags"):
        client.create_session(tags={f"key{char}": "v"})
    with raises_code("ValidationException", "tags"):
        client.create_session(tags={"key": f"v{char}"})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={f"key{char}": "v"})
    with raises_code("ValidationException", "tags"):
        client.tag_resource(resourceArn=arn, tags={"key": f"v{char}"})
    assert tags_of(client, arn) == {}
