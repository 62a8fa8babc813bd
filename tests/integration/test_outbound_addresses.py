"""Where outbound calls may go (API.md, Conventions): no loopback, private or link-local address
unless ALLOW_PRIVATE_HOSTS names it, checked when a partner is created (422) and again at each
connection; https:// only in production. Names are resolved by a stub: no packet leaves
127.0.0.1."""

from __future__ import annotations

import socket

import pytest
import requests
from conftest import admin_headers, bearer

from gateway import create_app, outbound
from gateway.platforms.base import http
from gateway.settings import Settings

SECRET = "s" * 32
LONG_TOKEN = "t" * 32


class Names(dict):
    """A stub resolver's table, host name -> addresses; `asked` lists the names looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []


@pytest.fixture
def names(monkeypatch) -> Names:
    """A stub resolver: what each host name resolves to (fill it in); others don't resolve."""
    table = Names()

    def resolve(host: str, port: int) -> list[str]:
        table.asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, host)
        return table[host]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return table


def _client(redis, **overrides):
    """A client of an app built with these settings over the test environment."""
    return create_app(Settings.from_env(flask={"TESTING": True}, **overrides)).test_client()


def _buyer(client, callback_url: str, headers=None):
    body = {"name": "Corner", "email": "ops@example.com", "platform": "none"}
    return client.post(
        "/api/v1/partners",
        json={**body, "callback_url": callback_url},
        headers=headers or admin_headers(),
    )


def _woo(client, store_url: str, headers=None):
    connection = {"consumer_key": SECRET, "consumer_secret": SECRET, "webhook_secret": SECRET}
    body = {"name": "Shop", "email": "ops@example.com", "platform": "woocommerce"}
    return client.post(
        "/api/v1/partners",
        json={**body, "connection": {**connection, "store_url": store_url}},
        headers=headers or admin_headers(),
    )


def _refused(answer, field: str) -> str:
    assert answer.status_code == 422, answer.get_json()
    details = answer.get_json()["error"]["details"]
    assert list(details) == [field]
    return details[field][0]


# ---- when a partner is created ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9101/events",
        "http://localhost:9101/events",
        "http://[::1]:9101/events",
        "http://10.1.2.3/events",
        "http://192.168.0.10/events",
        "http://172.16.5.4/events",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/events",
        "http://[fd00::1]/events",
        "http://0.0.0.0/events",
        "http://100.64.0.1/events",
    ],
)
def test_private_addresses_are_refused_without_the_setting(redis, names, url):
    client = _client(redis, allow_private_hosts="")
    names["localhost"] = ["127.0.0.1", "::1"]
    assert "loopback, private or link-local" in _refused(_buyer(client, url), "callback_url")
    assert redis.keys("gw:*") == []


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("hooks.example.com", ["10.0.0.7"]),
        ("metadata.example.com", ["169.254.169.254"]),
        ("split.example.com", ["93.184.215.14", "192.168.1.1"]),  # one private answer is enough
        ("v6.example.com", ["fe80::1%eth0"]),
        ("mapped.example.com", ["::ffff:10.0.0.1"]),  # IPv4-mapped: 10.0.0.1
    ],
)
def test_a_name_resolving_to_a_private_address_is_refused(client, redis, names, name, addresses):
    names[name] = addresses
    message = _refused(_woo(client, f"https://{name}/shop"), "connection.store_url")
    assert f"{name} resolves to" in message
    message = _refused(_buyer(client, f"https://{name}/events"), "callback_url")
    assert redis.keys("gw:*") == []


def test_api_base_urls_are_checked_too(client, redis, names):
    names["shopify-sim.example.com"] = ["10.9.8.7"]
    connection = {
        "shop_domain": "acme.myshopify.com",
        "access_token": SECRET,
        "webhook_secret": SECRET,
        "api_base_url": "https://shopify-sim.example.com",
    }
    answer = client.post(
        "/api/v1/partners",
        json={
            "name": "A",
            "email": "a@example.com",
            "platform": "shopify",
            "connection": connection,
        },
        headers=admin_headers(),
    )
    _refused(answer, "connection.api_base_url")


def test_public_and_allowed_addresses_pass(redis, names):
    names["hooks.example.com"] = ["93.184.215.14"]
    names["sim.internal"] = ["10.20.30.40"]
    client = _client(redis, allow_private_hosts="127.0.0.0/8, ::1, localhost, sim.internal")
    assert _buyer(client, "https://hooks.example.com/events").status_code == 201
    assert _buyer(client, "https://not-yet.example.com/events").status_code == 201  # no answer
    assert _buyer(client, "http://127.0.0.1:9101/events").status_code == 201
    assert _buyer(client, "http://[::1]:9101/events").status_code == 201
    assert _woo(client, "http://sim.internal:8080/stores/a").status_code == 201
    assert _buyer(client, "http://10.0.0.1/events").status_code == 422  # not in the setting


def test_a_cidr_allows_its_network_only(redis, names):
    client = _client(redis, allow_private_hosts="10.1.0.0/16")
    assert _buyer(client, "http://10.1.2.3/events").status_code == 201
    assert _buyer(client, "http://10.2.0.1/events").status_code == 422


# ---- https:// in production -------------------------------------------------------------------


@pytest.fixture
def production(redis):
    """A production app (https PUBLIC_URL, long secrets) and its operator's headers."""
    client = _client(
        redis,
        public_url="https://gateway.example.com",
        secret_key=SECRET,
        admin_token=LONG_TOKEN,
        allow_private_hosts="127.0.0.0/8",
    )
    return client, bearer(LONG_TOKEN)


def test_production_refuses_http_store_api_and_callback_urls(production, redis):
    client, headers = production
    assert "https://" in _refused(
        _buyer(client, "http://hooks.example.com/e", headers), "callback_url"
    )
    assert "https://" in _refused(
        _woo(client, "http://shop.example.com", headers), "connection.store_url"
    )
    connection = {
        "shop_domain": "acme.myshopify.com",
        "access_token": SECRET,
        "webhook_secret": SECRET,
        "api_base_url": "http://127.0.0.1:9101",
    }
    answer = client.post(
        "/api/v1/partners",
        json={
            "name": "A",
            "email": "a@example.com",
            "platform": "shopify",
            "connection": connection,
        },
        headers=headers,
    )
    assert "https://" in _refused(answer, "connection.api_base_url")
    assert redis.keys("gw:*") == []
    assert _buyer(client, "https://hooks.example.com/e", headers).status_code == 201


def test_development_takes_http_for_the_simulators(client):
    assert _buyer(client, "http://127.0.0.1:9101/events").status_code == 201


# ---- when a connection is made ----------------------------------------------------------------


def test_each_connection_is_checked_against_the_address_it_goes_to(
    monkeypatch, names, callback_receiver
):
    port = callback_receiver.url.split(":")[2].split("/")[0]
    names["receiver.example"] = ["127.0.0.1"]
    monkeypatch.setenv("ALLOW_PRIVATE_HOSTS", "127.0.0.0/8")
    answer = http.post(f"http://receiver.example:{port}/events", data=b"{}", timeout=3)
    assert answer.status_code == 200
    assert callback_receiver.requests[0]["headers"]["host"] == f"receiver.example:{port}"

    names["other.example"] = ["127.0.0.1"]  # a new name: a new pool, a new connection
    monkeypatch.setenv("ALLOW_PRIVATE_HOSTS", "")
    with pytest.raises(requests.ConnectionError, match="loopback, private or link-local"):
        http.post(f"http://other.example:{port}/events", data=b"{}", timeout=3)
    assert len(callback_receiver.requests) == 1


def test_a_callback_name_that_later_resolves_inside_is_not_followed(
    client, pair, make_order, names, redis
):
    """Accepted while the name did not resolve; by the time a fulfillment is forwarded it
    points at the cloud's metadata service: the call is refused before any packet."""
    from gateway.jobs.forwarding import forward_fulfillment

    buyer, seller = pair({"callback_url": "https://buyer-events.example/hook"})
    order = make_order(buyer, seller, lines=[{"sku": "MUG-BLUE", "quantity": 1}])
    created = client.post(
        f"/api/v1/orders/{order['id']}/fulfillments",
        headers=bearer(seller["api_key"]),
        json={
            "line_items": [{"sku": "AC-100", "quantity": 1}],
            "carrier": "UPS",
            "tracking_numbers": ["1Z5R89390357567127"],
        },
    ).get_json()
    names["buyer-events.example"] = ["169.254.169.254"]

    assert forward_fulfillment(order["id"], created["fulfillment"]["id"]) == "retrying"

    assert names.asked[-1] == "buyer-events.example"
    delivery = client.get(f"/api/v1/orders/{order['id']}", headers=bearer(buyer["api_key"]))
    (fulfillment,) = delivery.get_json()["fulfillments"]
    assert fulfillment["delivery"]["state"] == "pending"
    assert "ConnectionError" in fulfillment["delivery"]["last_error"]
