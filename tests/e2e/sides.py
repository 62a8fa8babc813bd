"""One buyer side and one seller side per platform, so every pairing runs the same story."""

from __future__ import annotations

import json
import re

from conftest import ADDRESS, bearer

SKUS = {"MUG-BLUE": "AC-100", "MUG-RED": "AC-200"}
SIM_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address1": "1 Main St",
    "city": "Springfield",
    "province_code": "IL",
    "zip": "62701",
    "country_code": "US",
}
BC_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street_1": "1 Main St",
    "city": "Springfield",
    "state": "Illinois",
    "zip": "62701",
    "country": "United States",
    "country_iso2": "US",
}
WOO_ADDRESS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address_1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postcode": "62701",
    "country": "US",
    "email": "ada@example.com",
}


class Side:
    """A partner on one platform: its store in a simulator (if any) and its gateway record.

    One subclass per platform, in SIDES; the pairings run every registered platform, so a new
    platform's module needs its side here.
    """

    def __init__(self, env, platform: str, role: str) -> None:
        self.env, self.platform, self.role = env, platform, role
        self.name = f"{role}{platform}"
        self.partner: dict = {}
        self.store = None

    def connect(self) -> dict:
        """Create the store in its simulator, the partner in the gateway, and the webhooks."""
        connection = self.open_store(f"{self.env.live_server}/webhooks/{self.platform}")
        self.partner = self.env.connect(self.platform, connection, self.name, **self.extra())
        return self.partner

    def open_store(self, hook: str | None = None) -> dict:
        """Create the store in its simulator, its webhooks sent to `hook` (none without one);
        the store connection a partner on the platform has."""
        raise NotImplementedError

    def extra(self) -> dict:
        """What else the partner is created with."""
        return {}

    # ---- the store's own view (through its simulator) -----------------------------------------

    def lines_in_store(self, ref: str) -> dict[str, tuple[str, int]]:
        """The lines of the store's order `ref`: the store's line id -> (SKU, quantity)."""
        raise NotImplementedError

    def address_in_store(self, ref: str) -> tuple[str, str, str, str]:
        """(name, street, city, zip) the store's order `ref` ships to."""
        raise NotImplementedError

    def touch(self, ref: str) -> None:
        """The merchant changes the store's order `ref`, at its simulator's time."""
        raise NotImplementedError

    # ---- buyer ---------------------------------------------------------------------------------

    def place_order(self, seller: dict) -> str:
        """A customer orders two blue mugs and a red one; the buyer's order ref."""
        raise NotImplementedError

    def tracking_seen(self, ref: str) -> set[str]:
        """Every tracking number the buyer can see on its order."""
        raise NotImplementedError

    def sees_shipped(self, ref: str) -> bool:
        """Whether the buyer's side shows the order as shipped / complete."""
        raise NotImplementedError

    # ---- seller --------------------------------------------------------------------------------

    def fulfill(
        self, order: dict, seller_sku: str, quantity: int, carrier: str, number: str
    ) -> None:
        """The seller ships part of the order, where sellers on its platform record that: in
        our API by default (sellers whose platform takes fulfillments from our form)."""
        line = next(li for li in order["line_items"] if li["seller_sku"] == seller_sku)
        answer = self.env.client.post(
            f"/api/v1/orders/{order['id']}/fulfillments",
            headers=bearer(self.partner["api_key"]),
            json={
                "line_items": [{"line_item_id": line["id"], "quantity": quantity}],
                "carrier": carrier,
                "tracking_numbers": [number],
            },
        )
        assert answer.status_code == 201, json.dumps(answer.get_json())

    def has_order(self, order: dict) -> bool:
        """Whether the order reached the seller (in its store, or as the emailed link)."""
        return bool(order["seller_order_ref"])


class ShopifySide(Side):
    def open_store(self, hook: str | None = None) -> dict:
        domain = f"{self.name}.myshopify.com"
        self.store = self.env.shopify.add_shop(domain, f"shpat_{self.name}", f"{self.name}-secret")
        topics = (
            ["orders/create"]
            if self.role == "buyer"
            else ["orders/create", "fulfillments/create", "fulfillments/update"]
        )
        for topic in topics if hook else ():
            self.store.add_webhook(topic, hook)
        return {
            "shop_domain": domain,
            "access_token": f"shpat_{self.name}",
            "webhook_secret": f"{self.name}-secret",
            "api_base_url": self.env.shopify.base_url,
        }

    def lines_in_store(self, ref: str) -> dict[str, tuple[str, int]]:
        order = self.store.order(f"gid://shopify/Order/{ref}")
        return {li["id"]: (li["sku"], li["quantity"]) for li in order["line_items"]}

    def address_in_store(self, ref: str) -> tuple[str, str, str, str]:
        a = self.store.order(f"gid://shopify/Order/{ref}")["shipping_address"]
        return a["name"], a["address1"], a["city"], a["zip"]

    def touch(self, ref: str) -> None:
        self.store.touch(f"gid://shopify/Order/{ref}")

    def place_order(self, seller: dict) -> str:
        placed = self.store.place_order(
            line_items=[
                {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug", "price": "12.00"},
                {"sku": "MUG-RED", "quantity": 1, "title": "Red mug", "price": "12.00"},
            ],
            shipping_address=SIM_ADDRESS,
            email="ada@example.com",
        )
        return placed["legacy_id"]

    def tracking_seen(self, ref: str) -> set[str]:
        return {
            n
            for f in self.store.fulfillments(f"gid://shopify/Order/{ref}")
            for n in f["tracking_numbers"]
        }

    def sees_shipped(self, ref: str) -> bool:
        order = self.store.order(f"gid://shopify/Order/{ref}")
        return all(li["unfulfilled_quantity"] == 0 for li in order["line_items"])

    def fulfill(
        self, order: dict, seller_sku: str, quantity: int, carrier: str, number: str
    ) -> None:
        gid = f"gid://shopify/Order/{order['seller_order_ref']}"
        self.store.fulfill(gid, lines=[(seller_sku, quantity)], company=carrier, numbers=[number])


class BigCommerceSide(Side):
    def open_store(self, hook: str | None = None) -> dict:
        self.store = self.env.bigcommerce.add_store(
            self.name, f"tok{self.name}", f"{self.name}-secret"
        )
        scopes = (
            ["store/order/created", "store/order/statusUpdated"]
            if self.role == "buyer"
            else ["store/shipment/created", "store/shipment/updated"]
        )
        for scope in scopes if hook else ():  # the store signs them (Standard Webhooks)
            self.store.add_webhook(scope, hook)
        return {
            "store_hash": self.name,
            "access_token": f"tok{self.name}",
            "webhook_secret": f"{self.name}-secret",
            "api_base_url": self.env.bigcommerce.base_url,
        }

    def lines_in_store(self, ref: str) -> dict[str, tuple[str, int]]:
        return {str(p["id"]): (p["sku"], p["quantity"]) for p in self.store.products(int(ref))}

    def address_in_store(self, ref: str) -> tuple[str, str, str, str]:
        a = self.store.shipping_addresses(int(ref))[0]
        return f"{a['first_name']} {a['last_name']}", a["street_1"], a["city"], a["zip"]

    def touch(self, ref: str) -> None:
        self.store.set_status(int(ref), 9)  # Awaiting Shipment

    def place_order(self, seller: dict) -> str:
        placed = self.store.place_order(
            products=[
                {"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2, "price": 12.0},
                {"sku": "MUG-RED", "name": "Red mug", "quantity": 1, "price": 12.0},
            ],
            shipping_address=BC_ADDRESS,
            email="ada@example.com",
        )
        return str(placed["id"])

    def tracking_seen(self, ref: str) -> set[str]:
        seen = set()
        for shipment in self.store.shipments(int(ref)):
            seen.add(shipment["tracking_number"])
            seen.update(re.findall(r"[0-9A-Z]{12,}", shipment.get("comments") or ""))
        return seen

    def sees_shipped(self, ref: str) -> bool:
        return self.store.order(int(ref))["status_id"] == 2

    def fulfill(
        self, order: dict, seller_sku: str, quantity: int, carrier: str, number: str
    ) -> None:
        ref = int(order["seller_order_ref"])
        product = next(p for p in self.store.products(ref) if p["sku"] == seller_sku)
        provider = {"UPS": "ups", "FedEx": "fedex"}[carrier]
        self.store.ship(
            ref,
            items=[(product["id"], quantity)],
            tracking_number=number,
            shipping_provider=provider,
        )


class WooCommerceSide(Side):
    def open_store(self, hook: str | None = None) -> dict:
        # Buyer stores with a tracking plugin get tracking items, others notes: env.woo_tracking
        # names the plugin ("shipment-tracking", "ast"; True is the official extension).
        plugin = self.env.woo_tracking if self.role == "buyer" else None
        self.store = self.env.woocommerce.add_store(
            self.name,
            f"ck_{self.name}",
            f"cs_{self.name}",
            f"{self.name}-secret",
            tracking_plugin="shipment-tracking" if plugin is True else plugin or None,
        )
        if self.role == "buyer" and hook:
            # order.updated says an order placed unpaid was paid (or cancelled).
            for topic in ("order.created", "order.updated"):
                self.store.add_webhook(topic, hook, secret=f"{self.name}-secret")
        elif self.role == "seller":
            for sku in SKUS.values():
                self.store.add_product(sku, f"Product {sku}", 4.0)
        return {
            "store_url": self.store.url,
            "consumer_key": f"ck_{self.name}",
            "consumer_secret": f"cs_{self.name}",
            "webhook_secret": f"{self.name}-secret",
        }

    def lines_in_store(self, ref: str) -> dict[str, tuple[str, int]]:
        order = self.store.order(int(ref))
        return {str(li["id"]): (li["sku"], li["quantity"]) for li in order["line_items"]}

    def address_in_store(self, ref: str) -> tuple[str, str, str, str]:
        a = self.store.order(int(ref))["shipping"]
        return f"{a['first_name']} {a['last_name']}", a["address_1"], a["city"], a["postcode"]

    def touch(self, ref: str) -> None:
        self.store.set_status(int(ref), "on-hold")

    def place_order(self, seller: dict) -> str:
        placed = self.store.place_order(
            line_items=[
                {"sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2},
                {"sku": "MUG-RED", "name": "Red mug", "quantity": 1},
            ],
            shipping=WOO_ADDRESS,
            billing=WOO_ADDRESS,
        )
        return str(placed["id"])

    def tracking_seen(self, ref: str) -> set[str]:
        if self.store.has_shipment_tracking:
            return {t["tracking_number"] for t in self.store.trackings(int(ref))}
        text = " ".join(n["note"] for n in self.store.notes(int(ref)))
        return set(re.findall(r"[0-9A-Z]{12,}", text))

    def sees_shipped(self, ref: str) -> bool:
        return self.store.order(int(ref))["status"] == "completed"


class NoPlatformSide(Side):
    def open_store(self, hook: str | None = None) -> dict:
        return {}

    def extra(self) -> dict:
        return {"callback_url": self.env.callbacks.url} if self.role == "buyer" else {}

    def place_order(self, seller: dict) -> str:
        answer = self.env.client.post(
            "/api/v1/orders",
            headers=bearer(self.partner["api_key"]),
            json={
                "seller_id": seller["id"],
                "buyer_order_ref": "1001",
                "line_items": [
                    {"sku": "MUG-BLUE", "quantity": 2, "title": "Blue mug"},
                    {"sku": "MUG-RED", "quantity": 1, "title": "Red mug"},
                ],
                "shipping_address": ADDRESS,
                "customer_email": "ada@example.com",
            },
        )
        assert answer.status_code == 201, answer.get_json()
        return "1001"

    def tracking_seen(self, ref: str) -> set[str]:
        return {
            n
            for e in self.env.callbacks.events()
            if e["type"].startswith("fulfillment.")
            for n in e["data"]["fulfillment"]["tracking_numbers"]
        }

    def sees_shipped(self, ref: str) -> bool:
        return any(e["type"] == "order.shipped" for e in self.env.callbacks.events())

    def has_order(self, order: dict) -> bool:
        return True  # the emailed link is the order reaching it


SIDES: dict[str, type[Side]] = {
    "shopify": ShopifySide,
    "bigcommerce": BigCommerceSide,
    "woocommerce": WooCommerceSide,
    "none": NoPlatformSide,
}


def side(env, platform: str, role: str) -> Side:
    """The side of a partner on this platform."""
    return SIDES[platform](env, platform, role)
