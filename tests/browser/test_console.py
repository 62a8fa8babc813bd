"""The console and the partner portal in real headless Chromium: sign-in through the emailed
link (real SMTP), the partners' health and a connect link, a reconciliation run now, a failed
job retried and deleted, a partner seeing only its own orders and (re)connecting its store.

The site runs on a real threaded HTTP server whose PUBLIC_URL is its own address, so the links
it emails open on it. Stores are of the made-up platform of tests/integration/test_connections.py
(no real platform has an install flow yet), which a worker process could not import: those tests
run RQ's worker in this process, in burst mode; the jobs test runs a real worker process. The
README's screenshots are taken here.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_string
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ROOT, admin_headers, wait_for
from flask import Flask
from playwright.sync_api import Page, expect
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from werkzeug.serving import make_server

from gateway import platforms
from gateway.jobs import CALLBACKS_QUEUE, CONNECTIONS_QUEUE, QUEUE, SEND_SIGNIN_LINK, SERIALIZER
from sandbox.local import free_port

OPERATOR = "ops-lead@example.com"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _made_up_platform():
    path = ROOT / "tests" / "integration" / "test_connections.py"
    spec = importlib.util.spec_from_file_location("i13_connections_platform", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Bazaar()


@pytest.fixture
def bazaar(monkeypatch):
    """The made-up platform with an install flow, known to this process."""
    monkeypatch.setitem(platforms.REGISTRY, "bazaar", _made_up_platform())


def work(redis) -> None:
    """Run every queued job here, as a worker would (burst: until the queues are empty)."""
    queues = [
        Queue(name, connection=redis, serializer=SERIALIZER)
        for name in (CONNECTIONS_QUEUE, QUEUE, CALLBACKS_QUEUE)
    ]
    SimpleWorker(queues, connection=redis, serializer=SERIALIZER).work(burst=True)


@dataclass
class Site:
    url: str
    app: Flask


@pytest.fixture
def site(redis, gateway_env) -> Iterator[Site]:
    """The app on a live server whose PUBLIC_URL is its own address, with an operator."""
    from gateway import create_app
    from gateway.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        Settings.from_env(public_url=url, operator_emails=OPERATOR, flask={"TESTING": True})
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(url, app)
    server.shutdown()
    thread.join(5)


def policy_violations(page: Page) -> list[str]:
    """Console messages that report a Content-Security-Policy violation, as they come."""
    found: list[str] = []
    page.on(
        "console",
        lambda m: found.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return found


def emailed_link(mailbox, to: str, path: str, redis=None) -> str:
    """The link to `path`... in the last email to the address; with `redis`, the queued
    emails are sent here first (else a worker process sends them)."""
    pattern = re.compile(rf"http://127\.0\.0\.1:\d+{path}[\w.-]+")

    def found():
        if redis is not None:
            work(redis)
        texts = [body_of(m["data"]) for m in mailbox.messages if to in m["to"]]
        return [pattern.search(t).group(0) for t in texts if pattern.search(t)]

    return wait_for(found, 20, f"an email to {to}")[-1]


def body_of(data: str) -> str:
    """An email's text, decoded (a long line is sent quoted-printable, broken in two)."""
    return message_from_string(data, policy=default).get_content()


def sign_in(page: Page, site: Site, mailbox, email: str, redis=None) -> None:
    """Ask for a link, open it from the email, press the one button."""
    page.goto(f"{site.url}/signin")
    page.get_by_label("Email address").fill(email)
    page.click("#send-link")
    expect(page.locator("h1")).to_have_text("Check your email")
    expect(page.locator("#sent")).to_contain_text(email)
    link = emailed_link(mailbox, email, "/signin/", redis)
    page.goto(link)
    expect(page.locator("#email")).to_have_text(email)
    page.click("#confirm")
    expect(page.locator("#signed-in-as")).to_have_text(email)


def store_partner(client, name: str, email: str) -> dict:
    """A partner of the made-up platform, its store not connected yet."""
    body = {"name": name, "email": email, "platform": "bazaar", "connection": None}
    answer = client.post("/api/v1/partners", json=body, headers=admin_headers())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def install(site: Site, partner: dict, store_id: str) -> None:
    """The owner opens a connect link naming its store, approves on Bazaar, comes back."""
    client = site.app.test_client()
    answer = client.post(
        f"/api/v1/partners/{partner['id']}/connect",
        json={"store_id": store_id},
        headers=admin_headers(),
    )
    sent = client.get(answer.get_json()["url"].removeprefix(site.url))
    state = parse_qs(urlsplit(sent.headers["Location"]).query)["state"][0]
    assert client.get(f"/connect/bazaar/callback?state={state}&code=c0de").status_code == 200


def test_an_operator_signs_in_by_email_and_runs_the_console(
    site, page: Page, mailbox, bazaar, client, pair, make_order, redis
):
    violations = policy_violations(page)
    buyer, seller = pair(buyer_fields={"name": "Acme Outdoor", "email": "buyer@acme.example"})
    make_order(buyer, seller, ref="1001")
    _set_contact(site, seller["id"], "Blue Ridge Ceramics", "desk@blueridge.example")
    shop = store_partner(client, "Mugs & Co", "owner@mugs.example")
    corner = store_partner(client, "Corner Shop", "hello@corner.example")
    partnership = {"buyer_id": buyer["id"], "seller_id": corner["id"], "skus": []}
    assert client.post("/api/v1/partnerships", json=partnership, headers=admin_headers())
    install(site, corner, "corner-shop")
    work(redis)  # its webhooks registered
    redis.hset("gw:last-webhook", corner["id"], "2026-12-04T09:41:07.512Z")

    page.set_viewport_size({"width": 1200, "height": 800})
    sign_in(page, site, mailbox, OPERATOR, redis)
    assert page.url == f"{site.url}/admin/"

    # Partners, with each connection's health.
    page.click("nav >> text=Partners")
    row = page.locator(f'#partners tr[data-partner="{shop["id"]}"]')
    expect(row).to_contain_text("not connected")
    expect(page.locator(f'#partners tr[data-partner="{corner["id"]}"]')).to_contain_text(
        "shipment.made: active"
    )
    expect(page.locator("#partners tbody tr")).to_have_count(4)
    page.screenshot(path=str(SCREENSHOTS / "console.png"), full_page=True)

    # A fresh connect link: shown, and emailed to the partner's contact.
    row.locator("a").click()
    expect(page.locator("h1")).to_have_text("Mugs & Co")
    page.click("#make-connect-link")
    shown = page.locator("#connect-link-url").inner_text()
    assert shown.startswith(f"{site.url}/connect/")
    assert emailed_link(mailbox, "owner@mugs.example", "/connect/", redis) == shown
    page.goto(shown)  # the owner's page
    expect(page.locator("h1")).to_have_text("Connect your Bazaar store")

    # A reconciliation cycle run now, then shown among the last cycles.
    page.goto(f"{site.url}/admin/reconcile")
    expect(page.locator("#no-cycles")).to_be_visible()
    page.click("#run-now")
    expect(page.locator(".flash.ok")).to_contain_text("A cycle was queued")
    work(redis)  # the cycle, then its job for the one store connection
    page.reload()
    cycle = page.locator("#cycles tbody tr")
    expect(cycle).to_have_count(1)
    expect(cycle.locator(".kind")).to_have_text("manual")
    expect(cycle.locator(".duration")).to_have_text(re.compile(r"^\d+\.\d s$"))
    expect(cycle.locator(".calls")).to_have_text("0")  # nothing to ask the stores
    expect(cycle).to_contain_text("2")  # store connections

    # Signed out: the console is gone (404), and the Bearer key opens nothing there either.
    page.click("#signout")
    expect(page.locator(".flash.ok")).to_have_text("You are signed out.")
    assert page.goto(f"{site.url}/admin/partners").status == 404
    page.set_extra_http_headers(admin_headers())
    assert page.goto(f"{site.url}/admin/reconcile").status == 404
    assert violations == []


def test_a_failed_job_is_retried_and_deleted_from_the_console(
    site, page: Page, mailbox, worker, redis
):
    violations = policy_violations(page)
    sign_in(page, site, mailbox, OPERATOR)  # the worker process sends the email
    queue = Queue(QUEUE, connection=redis, serializer=SERIALIZER)
    job = queue.enqueue(SEND_SIGNIN_LINK, "x@example.com", "not-sealed", 15)
    failed = FailedJobRegistry(queue=queue)
    wait_for(lambda: job.id in failed.get_job_ids(), 20, "the job to fail")

    page.click("nav >> text=Jobs")
    expect(page.locator(f'#queues tr[data-queue="{QUEUE}"] .failed')).to_have_text("1")
    expect(page.locator("#workers tbody tr")).to_have_count(1)
    failed_row = page.locator(f'tr[data-job="{job.id}"]')
    expect(failed_row.locator(".error")).to_contain_text("InvalidToken")
    expect(failed_row).not_to_contain_text("Traceback")
    failed_row.locator("button.retry").click()
    expect(page.locator(".flash.ok")).to_contain_text("queued again")
    wait_for(
        lambda: len(Job.fetch(job.id, connection=redis, serializer=SERIALIZER).results()) == 2,
        20,
        "the retried job to run again",
    )
    wait_for(lambda: job.id in failed.get_job_ids(), 20, "the job to fail again")
    page.reload()
    page.locator(f'tr[data-job="{job.id}"] button.delete').click()
    expect(page.locator(".flash.ok")).to_contain_text("was deleted")
    expect(page.locator("#no-failed")).to_be_visible()
    assert failed.count == 0
    assert violations == []


def _set_contact(site: Site, partner_id: str, name: str, email: str) -> None:
    """Give a partner its own name and contact address (the fixtures share one); the index of
    partners by email is then rebuilt from the partners, as for a store made before it existed."""
    store = site.app.extensions["gateway.store"]
    store.change_partner(partner_id, lambda p, _pipe: {**p, "name": name, "email": email})
    store.redis.delete("gw:partner-email-index", *store.redis.keys("gw:partners-by-email:*"))


def test_a_partner_sees_only_its_own_orders_and_opens_them_without_a_link(
    site, page: Page, mailbox, pair, make_order, redis
):
    violations = policy_violations(page)
    buyer, seller = pair(buyer_fields={"name": "Acme Outdoor"})
    other_buyer, other_seller = pair()
    mine = [make_order(buyer, seller, ref=f"A-{n}") for n in range(1, 4)]
    theirs = make_order(other_buyer, other_seller, ref="B-1")
    contact = "desk@seller.example"
    _set_contact(site, seller["id"], "Blue Ridge Ceramics", contact)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    sign_in(page, site, mailbox, contact, redis)
    assert page.url == f"{site.url}/portal/orders"
    rows = page.locator("#orders tbody tr")
    expect(rows).to_have_count(3)
    assert [r.get_attribute("data-order") for r in rows.all()] == [o["id"] for o in mine[::-1]]
    expect(page.locator("#orders")).not_to_contain_text("B-1")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SCREENSHOTS / "portal.png"), full_page=True)

    # Shipped only: none yet.
    page.select_option("#status", "shipped")
    page.click("#filters button")
    expect(page.locator("#no-orders")).to_be_visible()

    # An order opens with the seller's role, no token anywhere.
    page.goto(f"{site.url}/portal/orders")
    link = page.locator(f'#orders tr[data-order="{mine[0]["id"]}"] a')
    assert link.get_attribute("href") == f"/orders/{mine[0]['id']}"
    link.click()
    expect(page.locator("p.hint").first).to_have_text("Viewing as the seller")
    expect(page.locator("#create-fulfillment")).to_be_visible()
    assert page.goto(f"{site.url}/orders/{theirs['id']}").status == 403
    assert page.goto(f"{site.url}/admin/").status == 404  # not the console
    assert violations == []


def test_a_store_owner_connects_its_store_from_the_portal(
    site, page: Page, mailbox, bazaar, client, redis
):
    shop = store_partner(client, "Mugs & Co", "owner@mugs.example")
    sign_in(page, site, mailbox, "owner@mugs.example", redis)
    page.click("nav >> text=Store connection")
    expect(page.locator(f"#status-{shop['id']}")).to_have_text("not connected")
    page.click(f"#connect-{shop['id']}")
    assert re.fullmatch(rf"{re.escape(site.url)}/connect/[\w.-]+", page.url), page.url
    expect(page.locator("h1")).to_have_text("Connect your Bazaar store")
    expect(page.get_by_label("Store id")).to_be_visible()


def test_a_signed_out_visitor_is_sent_from_the_portal_to_sign_in(site, page: Page):
    page.goto(f"{site.url}/portal/orders")
    assert page.url == f"{site.url}/signin"
    expect(page.get_by_label("Email address")).to_be_visible()


def test_the_readme_shows_the_screenshots_the_tests_take():
    readme = (ROOT / "README.md").read_text()
    for name in ("console.png", "portal.png"):
        assert f"docs/screenshots/{name}" in readme
        assert Path(SCREENSHOTS / name).exists()
