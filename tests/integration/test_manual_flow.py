"""End to end with real Redis, a real RQ worker, real SMTP and a real callback receiver."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import re

from conftest import bearer, wait_for

UPS_1 = "1Z5R89390357567127"
FEDEX_GROUND = "449044304137821"


def _verify_standard_webhook(secret: str, headers: dict, body: str) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.partition(",")[2])
        for sig in headers["webhook-signature"].split()
    )


def test_order_email_two_fulfillments_callbacks_shipped_then_refused(
    client, pair, make_order, worker, mailbox, callback_receiver
):
    buyer, seller = pair({"callback_url": callback_receiver.url})
    order = make_order(buyer, seller)

    # The seller is emailed a signed link to the order page through real SMTP.
    wait_for(lambda: mailbox.messages, what="the seller's email")
    message = mailbox.messages[0]
    assert message["to"] == [seller["email"]]
    text = email.message_from_string(message["data"], policy=email.policy.default)
    link = re.search(r"http://\S+/orders/(\S+)\?t=(\S+)", text.get_body().get_content())
    assert link and link.group(1) == order["id"]
    page = client.get(f"/orders/{order['id']}?t={link.group(2)}", follow_redirects=True)
    assert page.status_code == 200 and b"Create Fulfillment" in page.data

    lines = {li["seller_sku"]: li["id"] for li in order["line_items"]}
    seller_key = bearer(seller["api_key"])
    first = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"line_item_id": lines["AC-100"], "quantity": 2}],
            "carrier": "UPS",
            "tracking_numbers": [UPS_1],
        },
        headers=seller_key,
    )
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["order"]["status"] == "unshipped"
    assert first.get_json()["fulfillment"]["tracking_urls"] == [
        f"https://wwwapps.ups.com/WebTracking/track?track=yes&trackNums={UPS_1}"
    ]
    second = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"sku": "AC-200", "quantity": 1}],
            "carrier": "FedEx",
            "tracking_numbers": [FEDEX_GROUND],
        },
        headers=seller_key,
    )
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["order"]["status"] == "shipped"

    # The buyer's callback receives both fulfillments and the shipped order, signed.
    wait_for(lambda: len(callback_receiver.events()) >= 3, what="three callbacks")
    types = sorted(e["type"] for e in callback_receiver.events())
    assert types == ["fulfillment.created", "fulfillment.created", "order.shipped"]
    for received in callback_receiver.requests:
        assert _verify_standard_webhook(
            buyer["event_signing_secret"], received["headers"], received["body"]
        )

    def delivered() -> bool:
        current = client.get(
            f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"])
        ).get_json()
        return all(f["delivery"]["state"] == "delivered" for f in current["fulfillments"])

    wait_for(delivered, what="both deliveries marked delivered")

    third = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        json={
            "line_items": [{"sku": "AC-200", "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": [UPS_1],
        },
        headers=seller_key,
    )
    assert third.status_code == 409
    assert third.get_json()["error"]["code"] == "order_shipped"
