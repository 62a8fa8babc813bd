"""The README's demo command runs to the end and shows what it promises."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_demo_walks_an_order_to_shipped():
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo", "--exit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # Both shops connected by the install flow, and the gateway's own webhooks registered.
    assert out.count("the gateway answers 200: Shopify store connected") == 2
    assert "corner-store.myshopify.com: the gateway registered orders/create (active)" in out
    assert "fulfillments/create (active)" in out
    assert "seller's shop order #1001" in out
    assert "the order is unshipped" in out  # after the first part
    assert "buyer's shop: UPS 1Z5R89390357567127 (2 x MUG-BLUE)" in out
    assert "buyer's shop: FedEx 449044304137821 (1 x MUG-RED)" in out
    assert "the order is shipped; its page: http://127.0.0.1:" in out
