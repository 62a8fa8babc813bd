"""Hostile input (issue 11): bodies nested to break a walk, control characters, store ids,
short secrets, and outbound URLs that lead inside. Each refusal is a 4xx in the documented shape
and stores nothing."""

from __future__ import annotations

import pytest
from conftest import admin_headers, bearer

from gateway.api import MAX_JSON_DEPTH


def nested(depth: int) -> str:
    """A JSON value `depth` objects deep."""
    return '{"a":' * depth + "1" + "}" * depth


def _status_by_depth(client, path: str, wrap, headers) -> dict[int, int]:
    # The recursion limit is hit at a depth that depends on the stack of the request: sweep it.
    return {
        depth: client.post(
            path, data=wrap(nested(depth)), content_type="application/json", headers=headers
        ).status_code
        for depth in range(900, 1000)
    }


@pytest.mark.parametrize(
    ("path", "wrap", "who"),
    [
        ("/webhooks/bigcommerce", lambda deep: '{"producer":' + deep + "}", None),
        ("/api/v1/partners", lambda deep: deep, "operator"),
        ("/api/v1/partners", lambda deep: '{"name":"a","connection":' + deep + "}", "operator"),
        ("/api/v1/orders", lambda deep: '{"shipping_address":' + deep + "}", "buyer"),
    ],
    ids=["webhook", "api", "api-field", "api-partner"],
)
def test_deep_nesting_is_400_never_500(client, pair, redis, path, wrap, who):
    headers = {}
    if who == "operator":
        headers = admin_headers()
    elif who == "buyer":
        headers = bearer(pair()[0]["api_key"])
    statuses = _status_by_depth(client, path, wrap, headers)
    assert set(statuses.values()) == {400}, statuses
    answer = client.post(
        path,
        data=wrap(nested(MAX_JSON_DEPTH + 1)),
        content_type="application/json",
        headers=headers,
    )
    assert answer.get_json()["error"]["code"] == "nesting_too_deep"
    assert "64" in answer.get_json()["error"]["message"]
    assert redis.keys("gw:delivery:*") == [] and redis.llen("rq:queue:gateway") <= 1


def test_nesting_up_to_the_limit_reaches_validation(client, redis):
    body = '{"name":"a","email":"a@example.com","platform":"none","connection":'
    answer = client.post(
        "/api/v1/partners",
        data=body + nested(MAX_JSON_DEPTH - 2) + "}",  # the body, connection, then 62 more
        content_type="application/json",
        headers=admin_headers(),
    )
    assert answer.status_code == 422
    assert list(answer.get_json()["error"]["details"]) == ["connection.a"]
