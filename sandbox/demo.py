"""A walk through Shopify in both directions: `./scripts/demo`.

Starts a Redis, the gateway (gunicorn + an RQ worker) and two simulated Shopify shops; each
shop's owner connects it through the install flow (a connect link, the shop's grant page,
Install), after which the gateway registers its own webhooks; places an order in the buyer's
shop, fulfils it in two parts in the seller's shop, and prints each step with the order page's
URL.
"""

from __future__ import annotations

import argparse
import html
import re
import sys

import requests

from sandbox.local import LocalGateway, wait_for
from sandbox.shopify import ShopifySimulator

UPS = "1Z5R89390357567127"
FEDEX = "449044304137821"


def step(text: str) -> None:
    """Print one step of the walk."""
    print(f"\n==> {text}", flush=True)


def install_by_browser(url: str) -> list[str]:
    """What the owner's browser does: open the connect link, press Install on the shop's grant
    page, come back to the gateway; one line per hop."""
    browser = requests.Session()
    hops = []
    sent = browser.get(url, allow_redirects=False, timeout=10)
    grant = sent.headers["Location"]
    hops.append(f"the link sends the browser to the shop's grant page: {grant.split('?')[0]}")
    page = browser.get(grant, timeout=10)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    installed = browser.post(
        grant.split("?")[0], data={**fields, "action": "install"}, allow_redirects=False, timeout=10
    )
    callback = installed.headers["Location"]
    hops.append(f"Install: Shopify sends it back to {callback.split('?')[0]}")
    done = browser.get(callback, timeout=10)
    title = re.search(r"<h1>(.*?)</h1>", done.text)
    hops.append(
        f"the gateway answers {done.status_code}: {html.unescape(title.group(1)) if title else ''}"
    )
    if done.status_code != 200:
        raise TimeoutError(f"the install did not complete: {done.text[:300]}")
    return hops


def main() -> None:
    """Run the walk."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop when done (no Ctrl-C wait)")
    args = parser.parse_args()

    # The gateway's app on Shopify, as the simulator knows it (its Partner Dashboard, for real).
    app = {"SHOPIFY_CLIENT_ID": "demo-app-client-id", "SHOPIFY_CLIENT_SECRET": "demo-app-secret"}
    gateway = LocalGateway(prefix="gateway-demo-", env=app)
    sim = ShopifySimulator()
    try:
        step("Starting Redis, the gateway and its worker")
        gateway.start()
        print(f"gateway on {gateway.url}; logs in {gateway.folder}")
        base = sim.start()
        sim.configure_app(
            client_id=app["SHOPIFY_CLIENT_ID"],
            client_secret=app["SHOPIFY_CLIENT_SECRET"],
            redirect_urls=[f"{gateway.url}/connect/shopify/callback"],
            compliance_url=f"{gateway.url}/webhooks/shopify",
        )
        buyer_shop = sim.add_shop("corner-store.myshopify.com")
        seller_shop = sim.add_shop("acme-supply.myshopify.com")
        print(f"two simulated Shopify shops on {base}: corner-store (buyer), acme-supply (seller)")

        step("The operator adds both partners, not connected yet, and their SKU map")
        buyer, seller = gateway.partners(
            {"name": "Corner Store", "email": "buyer@corner.example", "platform": "shopify"},
            {"name": "Acme Supply", "email": "ops@acme.example", "platform": "shopify"},
        )
        print(f"buyer {buyer['id']}, seller {seller['id']}; MUG-BLUE -> AC-100, MUG-RED -> AC-200")

        for partner, shop in ((buyer, buyer_shop), (seller, seller_shop)):
            step(f"{partner['name']}'s owner connects {shop.domain} with a connect link")
            link = gateway.api(
                "POST",
                f"/api/v1/partners/{partner['id']}/connect",
                json={"shop_domain": shop.domain, "api_base_url": shop.base_url},
            )
            print(f"connect link (single-use, until {link['expires_at']}): {link['url']}")
            for hop in install_by_browser(link["url"]):
                print(f"  {hop}")
        for partner, shop in ((buyer, buyer_shop), (seller, seller_shop)):
            hooks = wait_for(
                f"the gateway's webhooks in {shop.domain}",
                lambda partner=partner: gateway.api("GET", f"/api/v1/partners/{partner['id']}")[
                    "webhooks"
                ],
            )
            topics = ", ".join(f"{h['topic']} ({h['state']})" for h in hooks)
            print(f"{shop.domain}: the gateway registered {topics}")

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
