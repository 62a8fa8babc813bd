"""Every outbound call (platforms, callbacks) goes through one session: no redirects followed
(credentials stay home), answers capped in size and in total time, refusals kept short."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
import responses

from gateway.platforms import base
from gateway.platforms.base import PlatformError, http, refuse_status

SHOP = "https://acme.myshopify.com/admin/api/2026-10/graphql.json"
EVIL = "https://collector.example/steal"


@responses.activate
def test_a_redirect_is_not_followed_so_the_token_stays_home():
    responses.post(SHOP, status=302, headers={"Location": EVIL})
    responses.post(EVIL, json={"data": {}})

    answer = http.post(SHOP, json={}, headers={"X-Shopify-Access-Token": "shpat_x"}, timeout=5)

    assert answer.status_code == 302
    assert [call.request.url for call in responses.calls] == [SHOP]
    with pytest.raises(PlatformError, match="redirect, not followed"):
        refuse_status("Shopify", answer)


@responses.activate
def test_an_answer_over_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(base, "MAX_ANSWER_BYTES", 1000)
    responses.get(EVIL, body=b"x" * 5000)

    with pytest.raises(requests.ConnectionError, match="over 1000 bytes"):
        http.get(EVIL, timeout=5)


@pytest.fixture
def slow_drip():
    """A loopback server that answers 200 and then sends one byte every 0.2 s for 10 s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
            for _ in range(50):
                if stop.is_set():
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    listener.close()


def test_a_slow_drip_answer_is_cut_at_its_deadline(slow_drip):
    started = time.monotonic()
    # Each byte arrives well within the 0.5 s timeout; the whole answer would take 10 s.
    with pytest.raises(requests.Timeout):
        http.get(slow_drip, timeout=0.5)
    assert time.monotonic() - started < 3


@responses.activate
def test_a_refusal_keeps_a_status_and_a_short_reason_not_the_body():
    page = "<html><body>" + "internal detail " * 100 + "</body></html>"
    responses.post(SHOP, body=page, status=400)
    responses.post(
        EVIL, json={"errors": "x", "message": "Invalid parameter(s): line_items"}, status=400
    )

    with pytest.raises(PlatformError) as html:
        refuse_status("Shopify", http.post(SHOP, timeout=5))
    with pytest.raises(PlatformError) as json_error:
        refuse_status("WooCommerce", http.post(EVIL, timeout=5))

    assert str(html.value) == "Shopify refused the call (HTTP 400): Bad Request"
    assert str(json_error.value).endswith("(HTTP 400): Invalid parameter(s): line_items")
