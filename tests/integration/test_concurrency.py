"""Many sellers' clicks at once never push a line over its quantity (rule 1)."""

from __future__ import annotations

import threading

import requests
from conftest import bearer
from rq import Queue

UPS = "1Z5R89390357567127"


def test_twenty_threads_never_overfill_a_line(live_server, pair, make_order, redis):
    buyer, seller = pair()
    order = make_order(buyer, seller, lines=[{"sku": "MUG-BLUE", "quantity": 5}])
    line_id = order["line_items"][0]["id"]
    url = f"{live_server}/api/v1/orders/{order['id']}/fulfillments"
    start = threading.Barrier(20)
    answers: list[int] = []
    lock = threading.Lock()

    def submit() -> None:
        body = {
            "line_items": [{"line_item_id": line_id, "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": [UPS],
        }
        start.wait()
        status = requests.post(
            url, json=body, headers=bearer(seller["api_key"]), timeout=30
        ).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert answers.count(201) == 5
    # The losers see either "more than remains" or "already shipped"; never a 500.
    assert set(answers) <= {201, 409, 422}
    stored = requests.get(
        f"{live_server}/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]), timeout=10
    ).json()
    assert stored["line_items"][0]["fulfilled_quantity"] == 5
    assert len(stored["fulfillments"]) == 5
    assert stored["status"] == "shipped"
    # One forward per fulfillment, one shipped notice (on the buyer's callbacks queue), one
    # routing job: nothing more enqueued.
    assert Queue("gateway", connection=redis).count == 1
    assert Queue("callbacks", connection=redis).count == 5 + 1
