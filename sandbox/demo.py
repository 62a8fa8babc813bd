"""A walk through Shopify in both directions: `./scripts/demo`.

Starts a Redis, the gateway (gunicorn + an RQ worker) and two simulated Shopify shops, connects
them, places an order in the buyer's shop, fulfils it in two parts in the seller's shop, and
prints each step with the order page's URL.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.local import LocalGateway, wait_for
from sandbox.shopify import ShopifySimulator

UPS = "1Z5R89390357567127"
FEDEX = "449044304137821"


def step(text: str) -> None:
    """Print one step of the walk."""
    print(f"\n==> {text}", flush=True)


def main() -> None:
    """Run the walk."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop when done (no Ctrl-C wait)")
    args = parser.parse_args()

    gateway = LocalGateway(prefix="gateway-demo-")
    sim = ShopifySimulator()
    try:
        step("Starting Redis, the gateway and its worker")
        gateway.start()
        print(f"gateway on {gateway.url}; logs in {gateway.folder}")
        base = sim.start()
        buyer_shop = sim.add_shop(
            "corner-store.myshopify.com", "shpat_corner_token", "corner-webhook-secret"
        )
        seller_shop = sim.add_shop(
            "acme-supply.myshopify.com", "shpat_acme_token", "acme-webhook-secret"
        )
        print(f"two simulated Shopify shops on {base}: corner-store (buyer), acme-supply (seller)")

        step("Connecting both shops to the gateway (operator API)")
        buyer = gateway.api(
            "POST",
            "/api/v1/partners",
            json={
                "name": "Corner Store",
                "email": "buyer@corner.example",
                "platform": "shopify",
                "connection": {
                    "shop_domain": "corner-store.myshopify.com",
                    "access_token": "shpat_corner_token",
                    "webhook_secret": "corner-webhook-secret",
                    "api_base_url": base,
                },
            },
        )
        seller = gateway.api(
            "POST",
            "/api/v1/partners",
            json={
                "name": "Acme Supply",
                "email": "ops@acme.example",
                "platform": "shopify",
                "connection": {
                    "shop_domain": "acme-supply.myshopify.com",
                    "access_token": "shpat_acme_token",
                    "webhook_secret": "acme-webhook-secret",
                    "api_base_url": base,
                },
            },
        )
        gateway.api(
            "POST",
            "/api/v1/partnerships",
            json={
                "buyer_id": buyer["id"],
                "seller_id": seller["id"],
                "skus": [
                    {"buyer_sku": "MUG-BLUE", "seller_sku": "AC-100"},
                    {"buyer_sku": "MUG-RED", "seller_sku": "AC-200"},
                ],
            },
        )
        hook = f"{gateway.url}/webhooks/shopify"
        buyer_shop.add_webhook("orders/create", hook)
        for topic in ("fulfillments/create", "fulfillments/update"):
            seller_shop.add_webhook(topic, hook)
        print(f"buyer {buyer['id']}, seller {seller['id']}; MUG-BLUE -> AC-100, MUG-RED -> AC-200")

        step("A customer places an order in the buyer's shop")
        placed = buyer_shop.place_order(
            line_items=[
                {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"},
                {"sku": "MUG-RED", "quantity": 1, "title": "Red mug", "price": "12.00"},
            ],
            shipping_address={
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address1": "1 Main St",
                "city": "Springfield",
                "province_code": "IL",
                "zip": "62701",
                "country_code": "US",
            },
            email="ada@example.com",
        )
        print(f"buyer's shop order {placed['name']} ({placed['legacy_id']})")
        orders = wait_for(
            "the gateway to take the order",
            lambda: gateway.api("GET", "/api/v1/orders", key=buyer["api_key"])["orders"],
        )
        order = orders[0]
        link = gateway.api("POST", f"/api/v1/orders/{order['id']}/links", key=buyer["api_key"])
        print(f"stored as {order['id']}; order page (buyer's view): {link['url']}")

        step("The gateway creates it in the seller's shop")
        seller_ref = wait_for(
            "the order in the seller's shop",
            lambda: gateway.api("GET", f"/api/v1/orders/{order['id']}", key=buyer["api_key"])[
                "seller_order_ref"
            ],
        )
        (seller_order,) = seller_shop.orders()
        print(
            f"seller's shop order {seller_order['name']} ({seller_ref}): "
            + ", ".join(f"{li['quantity']} x {li['sku']}" for li in seller_order["line_items"])
        )

        step(f"The seller ships the blue mugs (UPS {UPS}) in their shop")
        seller_shop.fulfill(seller_order["id"], lines=[("AC-100", 2)], company="UPS", numbers=[UPS])
        wait_for("the buyer's shop to show it", lambda: buyer_shop.fulfillments(placed["id"]))
        current = gateway.api("GET", f"/api/v1/orders/{order['id']}", key=buyer["api_key"])
        print(
            f"buyer's shop has {len(buyer_shop.fulfillments(placed['id']))} fulfillment(s); "
            f"the order is {current['status']}"
        )

        step(f"The seller ships the red mug (FedEx {FEDEX})")
        seller_shop.fulfill(
            seller_order["id"], lines=[("AC-200", 1)], company="FedEx", numbers=[FEDEX]
        )
        wait_for(
            "the order to turn shipped",
            lambda: (
                gateway.api("GET", f"/api/v1/orders/{order['id']}", key=buyer["api_key"])["status"]
                == "shipped"
            ),
        )
        wait_for(
            "both fulfillments in the buyer's shop",
            lambda: len(buyer_shop.fulfillments(placed["id"])) == 2,
        )
        for fulfillment in buyer_shop.fulfillments(placed["id"]):
            items = ", ".join(f"{li['quantity']} x {li['sku']}" for li in fulfillment["line_items"])
            numbers = ", ".join(fulfillment["tracking_numbers"])
            print(f"buyer's shop: {fulfillment['tracking_company']} {numbers} ({items})")
        print(f"the order is shipped; its page: {link['url']}")
        if not args.exit and sys.stdin.isatty():
            input("\nEverything is still running: open the page above. Press Enter to stop. ")
    except TimeoutError as exc:
        sys.exit(str(exc))
    finally:
        sim.stop()
        gateway.stop()


if __name__ == "__main__":
    main()
