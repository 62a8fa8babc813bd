"""The BigCommerce simulator's single-click app flows (auth.mdx, callbacks.mdx): the control
panel's install, the login service's token exchange, the load and uninstall callbacks, and the
hooks of an installed app (no Redis needed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from sandbox.bigcommerce import BigCommerceSimulator, BigCommerceStore

APP_SECRET = "app-secret-0123456789abcdef0123456789"


class App:
    """A local app server: records each GET (callbacks) and POST (webhooks), answers 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                app.requests.append(
                    {
                        "method": self.command,
                        "path": urlsplit(self.path).path,
                        "query": parse_qs(urlsplit(self.path).query),
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                self.send_response(app.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self._record()

            def do_POST(self) -> None:
                self._record()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait_for(self, path: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in self.requests if r["path"] == path]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests to {path}, got {self.requests}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def sim() -> Iterator[BigCommerceSimulator]:
    with BigCommerceSimulator() as simulator:
        yield simulator


@pytest.fixture
def app_server() -> Iterator[App]:
    server = App()
    yield server
    server.stop()


@pytest.fixture
def store(sim: BigCommerceSimulator) -> BigCommerceStore:
    return sim.add_store("abc123", token="store-api-account", client_secret="store-secret")


@pytest.fixture
def profile(sim: BigCommerceSimulator, app_server: App):
    return sim.register_app(
        f"{app_server.base}/auth",
        f"{app_server.base}/load",
        f"{app_server.base}/uninstall",
        client_id="gateway-app",
        client_secret=APP_SECRET,
    )


def callback_query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def exchange(
    sim: BigCommerceSimulator, profile, query: dict[str, str], as_form: bool = False, **changes
) -> requests.Response:
    """The token request for a callback's code, as JSON (or as a form)."""
    body = {
        "client_id": profile.client_id,
        "client_secret": profile.client_secret,
        "code": query["code"],
        "scope": query["scope"],
        "grant_type": "authorization_code",
        "redirect_uri": profile.auth_callback,
        "context": query["context"],
        **changes,
    }
    sent = {"data": body} if as_form else {"json": body}
    return requests.post(f"{sim.base_url}/oauth2/token", **sent, timeout=5)


def test_install_sends_the_browser_to_the_auth_callback_and_the_code_buys_one_token(
    sim, store, profile
):
    url = store.install_url(profile.client_id)
    assert url.startswith(profile.auth_callback + "?")
    query = callback_query(url)
    assert query["context"] == "stores/abc123" and query["scope"] == profile.scope
    assert query["account_uuid"] == profile.account_uuid and query["code"]

    answer = exchange(sim, profile, query)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "scope", "user", "owner", "context", "account_uuid"}
    assert body["context"] == "stores/abc123" and body["scope"] == profile.scope
    assert set(body["owner"]) == {"id", "username", "email"}
    assert store.is_installed(profile.client_id)

    orders = requests.get(
        f"{sim.base_url}/stores/abc123/v2/orders",
        headers={"X-Auth-Token": body["access_token"]},
        timeout=5,
    )
    assert orders.status_code == 204, "the token works on the store's API"
    assert exchange(sim, profile, query).status_code == 400, "a code is single-use"


@pytest.mark.parametrize(
    "changes, status",
    [
        ({"client_secret": "wrong"}, 401),
        ({"client_id": "someone-else"}, 401),
        ({"redirect_uri": "https://elsewhere.example/auth"}, 400),
        ({"context": "stores/other1"}, 400),
        ({"grant_type": "password"}, 400),
        ({"code": "made-up"}, 400),
    ],
)
def test_the_token_exchange_refuses_a_wrong_request(sim, store, profile, changes, status):
    query = callback_query(store.install_url(profile.client_id))
    answer = exchange(sim, profile, query, **changes)
    assert answer.status_code == status
    assert "error" in answer.json()
    assert not store.is_installed(profile.client_id)


def test_an_expired_code_is_refused_and_a_form_body_is_read(sim, store, profile):
    sim.code_seconds = 0.05
    query = callback_query(store.install_url(profile.client_id))
    time.sleep(0.1)
    assert exchange(sim, profile, query).status_code == 400
    sim.code_seconds = 600
    query = callback_query(store.install_url(profile.client_id))
    assert exchange(sim, profile, query, as_form=True).status_code == 200


def test_load_and_uninstall_carry_a_jwt_signed_with_the_client_secret(
    sim, store, profile, app_server
):
    query = callback_query(store.install_url(profile.client_id))
    token = exchange(sim, profile, query).json()["access_token"]
    load = callback_query(store.load_url(profile.client_id))
    claims = jwt.decode(
        load["signed_payload_jwt"], APP_SECRET, algorithms=["HS256"], audience="gateway-app"
    )
    assert claims["iss"] == "bc" and claims["sub"] == "stores/abc123"
    assert claims["nbf"] == claims["iat"] and claims["exp"] - claims["nbf"] == 24 * 3600
    assert {"jti", "user", "owner", "url", "channel_id"} <= set(claims)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            load["signed_payload_jwt"], "o" * 32, algorithms=["HS256"], audience="gateway-app"
        )

    headers = {"X-Auth-Token": token}
    hook = requests.post(
        f"{sim.base_url}/stores/abc123/v3/hooks",
        json={"scope": "store/order/created", "destination": f"{app_server.base}/webhooks"},
        headers=headers,
        timeout=5,
    ).json()["data"]
    assert hook["client_id"] == "gateway-app"

    assert store.uninstall_app(profile.client_id) == 200
    called = app_server.wait_for("/uninstall")[0]
    assert called["headers"]["Accept"] == "application/json"
    claims = jwt.decode(
        called["query"]["signed_payload_jwt"][0],
        APP_SECRET,
        algorithms=["HS256"],
        audience="gateway-app",
    )
    assert claims["sub"] == "stores/abc123"
    assert not store.is_installed(profile.client_id)
    refused = requests.get(f"{sim.base_url}/stores/abc123/v2/orders", headers=headers, timeout=5)
    assert refused.status_code == 401, "uninstall revokes the token"
    assert store.webhooks() == [], "and removes the app's hooks"
    store.place_order(products=[{"sku": "A", "quantity": 1}])
    assert sim.wait_for_webhooks()
    assert not [r for r in app_server.requests if r["path"] == "/webhooks"]


def test_the_control_panel_over_http(sim, store, profile, app_server):
    base = f"{sim.base_url}/_sim/stores/abc123/apps/{profile.client_id}"
    install = requests.get(f"{base}/install", allow_redirects=False, timeout=5)
    assert install.status_code == 302
    assert install.headers["Location"].startswith(profile.auth_callback + "?code=") or (
        "code=" in install.headers["Location"]
    )
    followed = requests.get(f"{base}/install", timeout=5)  # the browser lands on the app
    assert followed.status_code == 200
    landed = app_server.wait_for("/auth", 1)[0]
    assert landed["query"]["context"] == ["stores/abc123"]
    assert exchange(sim, profile, {k: v[0] for k, v in landed["query"].items()}).ok
    load = requests.get(f"{base}/load", allow_redirects=False, timeout=5)
    assert load.headers["Location"].startswith(profile.load_callback + "?signed_payload_jwt=")
    gone = requests.post(f"{base}/uninstall", json={}, timeout=5)
    assert gone.json() == {"callback_status": 200}
    info = requests.get(f"{sim.base_url}/_sim/stores", timeout=5).json()[0]
    assert info["installed_apps"] == [] and info["login_base_url"] == sim.base_url
    unknown = requests.get(f"{sim.base_url}/_sim/stores/abc123/apps/nope/install", timeout=5)
    assert unknown.status_code == 404

    made = requests.post(
        f"{sim.base_url}/_sim/apps",
        json={"auth_callback": "https://app.example/auth", "client_id": "c2"},
        timeout=5,
    )
    assert made.status_code == 201 and made.json()["client_id"] == "c2"


def test_hooks_belong_to_the_token_that_made_them(sim, store, profile, app_server):
    query = callback_query(store.install_url(profile.client_id))
    token = exchange(sim, profile, query).json()["access_token"]
    mine = {"X-Auth-Token": token}
    created = requests.post(
        f"{sim.base_url}/stores/abc123/v3/hooks",
        json={
            "scope": "store/order/created",
            "destination": f"{app_server.base}/webhooks",
            "headers": {"X-Gateway-Secret": "g"},
        },
        headers=mine,
        timeout=5,
    ).json()["data"]
    store.add_webhook("store/order/created", f"{app_server.base}/other")  # the store's account
    listed = requests.get(f"{sim.base_url}/stores/abc123/v3/hooks", headers=mine, timeout=5)
    assert [h["id"] for h in listed.json()["data"]] == [created["id"]]
    theirs = requests.get(
        f"{sim.base_url}/stores/abc123/v3/hooks/{created['id']}",
        headers={"X-Auth-Token": "store-api-account"},
        timeout=5,
    )
    assert theirs.status_code == 404

    store.place_order(products=[{"sku": "A", "quantity": 1}])
    delivered = app_server.wait_for("/webhooks")[0]
    assert delivered["headers"]["X-Gateway-Secret"] == "g", "custom headers ride along"
    assert json.loads(delivered["body"])["producer"] == "stores/abc123"
    assert "webhook-signature" in delivered["headers"]

    store.deactivate_hook(created["id"])
    again = requests.get(
        f"{sim.base_url}/stores/abc123/v3/hooks/{created['id']}", headers=mine, timeout=5
    )
    assert again.json()["data"]["is_active"] is False
    store.place_order(products=[{"sku": "B", "quantity": 1}])
    assert sim.wait_for_webhooks()
    assert len([r for r in app_server.requests if r["path"] == "/webhooks"]) == 1
    store.delete_hook(created["id"])
    gone = requests.get(f"{sim.base_url}/stores/abc123/v3/hooks", headers=mine, timeout=5)
    assert gone.json()["data"] == []
