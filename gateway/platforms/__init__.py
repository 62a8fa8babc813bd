"""Platform adapters: one module per platform behind the interface in base.py."""

from __future__ import annotations

from typing import Any

from gateway.platforms.base import Adapter, PlatformError
from gateway.settings import Settings
from gateway.store import Store


def adapter_for(partner: dict[str, Any], store: Store, config: Settings) -> Adapter:
    """The adapter of the partner's store connection."""
    platform = partner["platform"]
    if platform == "shopify":
        from gateway.platforms.shopify import ShopifyAdapter

        return ShopifyAdapter(partner["connection"], store, config)
    if platform == "bigcommerce":
        from gateway.platforms.bigcommerce import BigCommerceAdapter

        return BigCommerceAdapter(partner["connection"], store, config)
    if platform == "woocommerce":
        from gateway.platforms.woocommerce import WooCommerceAdapter

        return WooCommerceAdapter(partner["connection"], store, config)
    raise PlatformError("a partner with no platform has no store to call", permanent=True)
