"""The operator's correction through the JSON API, with real Redis and a real worker: refusals
that store nothing, the audit on the timeline, and exactly one event to a callback buyer."""

from __future__ import annotations

import json
import time

import pytest
from conftest import admin_headers, bearer, wait_for

UPS_1 = "1Z5R89390357567127"
UPS_2 = "1Z879E930346834440"
FEDEX = "449044304137821"
REASON = "The seller typed the label's number wrong."


@pytest.fixture
def shipped(client, pair, make_order):
    """A buyer and a seller (no platform) and an order the seller shipped in one fulfillment."""

    def make(buyer_fields: dict | None = None) -> dict:
        buyer, seller = pair(buyer_fields)
        order = make_order(buyer, seller)
        answer = client.post(
            f"/api/v1/orders/{order['id']}/fulfillments",
            json={
                "line_items": [
                    {"line_item_id": li["id"], "quantity": li["quantity"]}
                    for li in order["line_items"]
                ],
                "carrier": "UPS",
                "tracking_numbers": [UPS_1],
            },
            headers=bearer(seller["api_key"]),
        )
        assert answer.status_code == 201, answer.get_json()
        body = answer.get_json()
        assert body["order"]["status"] == "shipped"
        return {"buyer": buyer, "seller": seller, **body}

    return make


def correct(client, order_id: str, fulfillment_id: str, headers=None, **body):
    payload = {"carrier": "UPS", "tracking_numbers": [UPS_2], "reason": REASON, **body}
    return client.post(
        f"/api/v1/orders/{order_id}/fulfillments/{fulfillment_id}/corrections",
        json=payload,
        headers=admin_headers() if headers is None else headers,
    )


def stored(redis, order_id: str) -> tuple[bytes, list[bytes], int]:
    """The order's document, its timeline and the queued jobs: what a refusal must not touch."""
    from gateway.store import key

    jobs = sum(redis.llen(k) for k in redis.keys("rq:queue:*"))
    return redis.get(key("order", order_id)), redis.lrange(key("timeline", order_id), 0, -1), jobs


def test_every_fulfillment_has_corrections_empty_until_corrected(client, shipped):
    world = shipped()
    assert world["fulfillment"]["corrections"] == []
    order = client.get(f"/api/v1/orders/{world['order']['id']}", headers=admin_headers())
    assert order.get_json()["fulfillments"][0]["corrections"] == []


def test_a_correction_of_a_shipped_order_answers_201_and_is_audited(client, shipped, redis):
    world = shipped()
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]

    answer = correct(client, order_id, fid, carrier="FedEx", tracking_numbers=[FEDEX])

    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    fulfillment = body["fulfillment"]
    assert fulfillment["id"] == fid
    assert (fulfillment["carrier"], fulfillment["tracking_numbers"]) == ("FedEx", [FEDEX])
    assert fulfillment["tracking_urls"] == [
        f"https://www.fedex.com/apps/fedextrack/?tracknumbers={FEDEX}"
    ]
    (record,) = fulfillment["corrections"]
    assert record["by"] == "api"
    assert record["reason"] == REASON
    assert record["at"].endswith("Z")
    assert record["before"] == {
        "carrier": "UPS",
        "tracking_numbers": [UPS_1],
        "tracking_urls": [f"https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums={UPS_1}"],
    }
    assert fulfillment["delivery"]["state"] == "pending"
    assert body["order"]["status"] == "shipped"
    assert body["order"]["fulfillments"][0]["corrections"] == fulfillment["corrections"]

    # Both parties see it, through the API and the timeline: who, when, why, what it was.
    seen = client.get(f"/api/v1/orders/{order_id}", headers=bearer(world["buyer"]["api_key"]))
    assert seen.get_json()["fulfillments"][0]["corrections"][0]["reason"] == REASON
    from gateway.store import key

    timeline = [json.loads(e) for e in redis.lrange(key("timeline", order_id), 0, -1)]
    (entry,) = [e for e in timeline if e["type"] == "fulfillment.corrected"]
    assert entry["by"] == "api" and entry["reason"] == REASON
    assert entry["before"]["tracking_numbers"] == [UPS_1]
    assert UPS_1 in entry["message"] and FEDEX in entry["message"] and REASON in entry["message"]


def test_a_partner_key_is_refused_403_and_nothing_is_stored(client, shipped, redis):
    world = shipped()
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]
    before = stored(redis, order_id)
    for partner in (world["seller"], world["buyer"]):
        answer = correct(client, order_id, fid, headers=bearer(partner["api_key"]))
        assert answer.status_code == 403
        assert answer.get_json()["error"]["code"] == "forbidden"
    assert correct(client, order_id, fid, headers={}).status_code == 401
    assert stored(redis, order_id) == before


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        (
            {"tracking_numbers": ["1Z999AA10123456784"]},
            422,
            "validation_failed",
            "tracking_numbers.0",
        ),
        (
            {"tracking_numbers": ["1Z5R89390357567128"]},
            422,
            "validation_failed",
            "tracking_numbers.0",
        ),
        ({"carrier": "FedEx"}, 422, "validation_failed", "tracking_numbers.0"),
        ({"tracking_numbers": [UPS_2, UPS_2]}, 422, "validation_failed", "tracking_numbers.1"),
        ({"tracking_numbers": []}, 422, "validation_failed", "tracking_numbers"),
        ({"tracking_urls": ["ftp://x.example/1"]}, 422, "validation_failed", "tracking_urls.0"),
        ({"reason": ""}, 422, "validation_failed", "reason"),
        ({"reason": "   "}, 422, "validation_failed", "reason"),
        ({"reason": "x" * 501}, 422, "validation_failed", "reason"),
        ({"reason": None}, 422, "validation_failed", "reason"),
        ({"line_items": []}, 422, "validation_failed", "line_items"),
        ({"tracking_numbers": [UPS_1]}, 422, "nothing_to_correct", "tracking_numbers"),
        ({"tracking_numbers": [" 1z5r89390357567127 "]}, 422, "nothing_to_correct", None),
    ],
)
def test_refusals_store_nothing(client, shipped, redis, change, status, code, field):
    world = shipped()
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]
    before = stored(redis, order_id)

    answer = correct(client, order_id, fid, **change)

    assert answer.status_code == status, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == code
    if field:
        assert field in error["details"], error
    assert stored(redis, order_id) == before


def test_unknown_order_or_fulfillment_is_404(client, shipped, redis):
    world = shipped()
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]
    before = stored(redis, order_id)
    assert correct(client, "ord_nope", fid).status_code == 404
    assert correct(client, order_id, "ful_nope").status_code == 404
    assert stored(redis, order_id) == before


def test_a_cancelled_fulfillment_is_409_and_nothing_is_stored(client, shipped, redis):
    from gateway.model import Order
    from gateway.store import key

    world = shipped()
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]
    doc = json.loads(redis.get(key("order", order_id)))
    doc["fulfillments"][0]["status"] = "cancelled"  # as the seller's store would cancel it
    redis.set(key("order", order_id), json.dumps(Order.from_doc(doc).to_doc()))
    before = stored(redis, order_id)

    answer = correct(client, order_id, fid)

    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "fulfillment_cancelled"
    assert stored(redis, order_id) == before


def test_the_correction_is_in_openapi(client):
    doc = client.get("/openapi.json").get_json()
    path = "/api/v1/orders/{order_id}/fulfillments/{fulfillment_id}/corrections"
    operation = doc["paths"][path]["post"]
    assert operation["security"] == [{"operator": []}]
    assert {"201", "403", "404", "409", "422"} <= set(operation["responses"])
    schemas = doc["components"]["schemas"]
    assert "corrections" in schemas["Fulfillment"]["properties"]
    assert set(schemas["Correction"]["properties"]) == {"at", "by", "reason", "before"}
    assert set(schemas["CorrectionIn"]["required"]) == {"carrier", "tracking_numbers", "reason"}


def test_a_callback_buyer_gets_exactly_one_update_per_correction(
    client, shipped, worker, callback_receiver
):
    world = shipped({"callback_url": callback_receiver.url})
    order_id, fid = world["order"]["id"], world["fulfillment"]["id"]

    def types() -> list[str]:
        return [e["type"] for e in callback_receiver.events()]

    wait_for(lambda: "order.shipped" in types(), what="the created event and the shipped notice")
    assert types().count("fulfillment.created") == 1

    assert correct(client, order_id, fid, tracking_numbers=[UPS_2]).status_code == 201
    wait_for(lambda: "fulfillment.updated" in types(), what="the correction's update")
    assert (
        correct(client, order_id, fid, carrier="FedEx", tracking_numbers=[FEDEX]).status_code == 201
    )
    wait_for(lambda: types().count("fulfillment.updated") == 2, what="the second correction")
    time.sleep(1.5)  # anything more would arrive by now: the worker is idle

    assert types() == [
        "fulfillment.created",
        "order.shipped",
        "fulfillment.updated",
        "fulfillment.updated",
    ]
    updates = [e for e in callback_receiver.events() if e["type"] == "fulfillment.updated"]
    assert updates[0]["data"]["fulfillment"]["tracking_numbers"] == [UPS_2]
    assert updates[1]["data"]["fulfillment"]["tracking_numbers"] == [FEDEX]
    assert updates[1]["data"]["fulfillment"]["corrections"][1]["before"]["tracking_numbers"] == [
        UPS_2
    ]
    ids = [r["headers"]["webhook-id"] for r in callback_receiver.requests]
    assert len(ids) == len(set(ids)) == 4  # one event each, none sent twice
    order = client.get(f"/api/v1/orders/{order_id}", headers=admin_headers()).get_json()
    assert order["fulfillments"][0]["delivery"]["state"] == "delivered"
