"""Sign-in by email link, sessions, the console's refusals, the portal's lists and the
reconciliation's cycle records (API.md "Sign-in, console and portal"), through the Flask test
client on a real Redis; the email job runs in-process and sends through the real SMTP server."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from conftest import admin_headers
from flask.testing import FlaskCliRunner
from rq.job import Job

from gateway.jobs import SEND_SIGNIN_LINK
from gateway.model import SHIPPED, Order
from gateway.store import Change, key, key_hash
from gateway.store.reconciliation import CYCLES_KEPT

OPERATOR = "Boss@Example.com"
CONTACT = "seller-desk@example.com"
ADMIN_URLS = [
    ("get", "/admin"),
    ("get", "/admin/"),
    ("get", "/admin/orders"),
    ("get", "/admin/partners"),
    ("get", "/admin/partners/ptr_x"),
    ("get", "/admin/reconcile"),
    ("get", "/admin/jobs"),
    ("get", "/admin/nothing-here"),
    ("post", "/admin/reconcile"),
    ("post", "/admin/partners/ptr_x/connect-link"),
    ("post", "/admin/jobs/gateway/abc/retry"),
    ("post", "/admin/jobs/gateway/abc/delete"),
    ("post", "/admin/orders/ord_x/resync"),
    ("post", "/admin/partners"),  # a method no view takes: 404 too, not 405
    ("put", "/admin/jobs"),
    ("get", "/admin/jobs/gateway/abc/retry"),
]


@pytest.fixture
def app(redis):
    """The app with an operator in OPERATOR_EMAILS and small sign-in limits."""
    from gateway import create_app
    from gateway.settings import Settings

    config = Settings.from_env(
        operator_emails=f" {OPERATOR} , other-op@example.com",
        rate_limit_signin_address="3/minute",
        rate_limit_signin_client="6/minute",
        flask={"TESTING": True},
    )
    return create_app(config)


def csrf_of(client, path: str = "/signin") -> str:
    """The CSRF token of a page's form (it lives in the client's session)."""
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def ask_link(client, email: str, ip: str = "10.0.0.1"):
    return client.post(
        "/signin",
        data={"email": email, "csrf_token": csrf_of(client)},
        environ_base={"REMOTE_ADDR": ip},
    )


def signin_jobs(app) -> list[Job]:
    queue = app.extensions["gateway.store"].queue
    return [job for job in queue.get_jobs() if job.func_name == SEND_SIGNIN_LINK]


def send_emails(app) -> None:
    """Run the queued sign-in emails here (a worker would)."""
    for job in signin_jobs(app):
        job.perform()
        app.extensions["gateway.store"].queue.remove(job)


def link_in(mailbox, to: str) -> str:
    """The path of the sign-in link last emailed to the address."""
    sent = [m for m in mailbox.messages if to.lower() in [r.lower() for r in m["to"]]]
    assert sent, f"no email to {to}"
    url = re.search(r"http://127\.0\.0\.1:8000(/signin/[\w-]+)", sent[-1]["data"]).group(1)
    return url


def sign_in(app, client, mailbox, email: str) -> None:
    """The whole flow: ask, read the email, open the link, confirm."""
    assert ask_link(client, email).status_code == 200
    send_emails(app)
    path = link_in(mailbox, email)
    token = csrf_of(client, path)
    answer = client.post(path, data={"csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def same_page(text: str, email: str) -> str:
    """An answer without what differs by design: the nonce, and the address it repeats."""
    return re.sub(r'nonce="[^"]+"', "", text).replace(email, "ADDRESS")


def test_the_answer_is_the_same_for_known_unknown_and_limited_addresses(
    app, client, mailbox, make_partner
):
    make_partner("none", email=CONTACT)
    answers = {
        email: ask_link(client, email).get_data(as_text=True)
        for email in (OPERATOR, CONTACT, "nobody@example.com")
    }
    for _ in range(3):  # the operator's address is now over its limit (3 a minute)
        limited = ask_link(client, OPERATOR.lower(), ip="10.0.0.2")
    assert limited.status_code == 200
    pages = {same_page(text, email) for email, text in answers.items()}
    pages.add(same_page(limited.get_data(as_text=True), OPERATOR.lower()))
    assert len(pages) == 1, pages
    assert "Check your email" in pages.pop()
    # Emails went to the operator (3 times: the 4th ask was limited) and the contact only.
    assert sorted(job.args[0].lower() for job in signin_jobs(app)) == [
        OPERATOR.lower(),
        OPERATOR.lower(),
        OPERATOR.lower(),
        CONTACT,
    ]


def test_a_link_is_single_use_kept_as_a_hash_and_lives_15_minutes(app, client, mailbox, redis):
    ask_link(client, OPERATOR)
    send_emails(app)
    path = link_in(mailbox, OPERATOR)
    token = path.rsplit("/", 1)[1]
    assert redis.get(key("signin", token)) is None  # only its hash is kept
    assert 890 <= redis.ttl(key("signin", key_hash(token))) <= 900
    # Opening it (a mail scanner would) signs nobody in and leaves it usable.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200 and "boss@example.com" in page.get_data(as_text=True)
    assert client.get("/admin/").status_code == 404
    answer = client.post(path, data={"csrf_token": csrf_of(client, path)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    # Used: another browser gets nothing from it.
    other = app.test_client()
    assert other.get(path).status_code == 403
    assert other.post(path, data={"csrf_token": csrf_of(other)}).status_code == 403
    assert other.get("/admin/").status_code == 404


def test_an_expired_link_signs_nobody_in(app, client, mailbox, redis):
    ask_link(client, OPERATOR)
    send_emails(app)
    path = link_in(mailbox, OPERATOR)
    token = csrf_of(client, path)
    redis.delete(key("signin", key_hash(path.rsplit("/", 1)[1])))  # as its 15 minutes do
    answer = client.post(path, data={"csrf_token": token})
    assert answer.status_code == 403
    assert "used already or has expired" in answer.get_data(as_text=True)
    assert client.get("/admin/").status_code == 404


def test_the_limit_per_client_counts_every_address(app, client, mailbox):
    for n in range(8):
        assert ask_link(client, f"op{n}@example.com", ip="10.9.9.9").status_code == 200
    ask_link(client, OPERATOR, ip="10.9.9.9")  # the 9th form from that client: no email
    assert signin_jobs(app) == []
    ask_link(client, OPERATOR, ip="10.9.9.8")
    assert len(signin_jobs(app)) == 1


def test_a_bad_address_is_told_beside_the_field(client):
    answer = client.post("/signin", data={"email": "not an address", "csrf_token": csrf_of(client)})
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert 'id="error-email"' in text and 'value="not an address"' in text


def test_the_session_is_server_side_httponly_12_hours_and_ends_at_signout(
    app, client, mailbox, redis
):
    sign_in(app, client, mailbox, OPERATOR)
    cookie = client.get_cookie("session")
    assert cookie.http_only and not cookie.secure  # Secure when PUBLIC_URL is https://
    [session_key] = redis.keys(key("session", "*"))
    assert 12 * 3600 - 10 <= redis.ttl(session_key) <= 12 * 3600
    assert client.get("/admin/").status_code == 200
    # Sign-out without the form's token is refused, and the session goes on.
    assert client.post("/signout").status_code == 400
    assert client.get("/admin/").status_code == 200
    answer = client.post("/signout", data={"csrf_token": csrf_of(client, "/admin/")})
    assert answer.status_code == 303
    assert redis.keys(key("session", "*")) == []
    assert client.get("/admin/").status_code == 404


def test_an_expired_session_is_signed_out(app, client, mailbox, redis):
    sign_in(app, client, mailbox, OPERATOR)
    assert client.get("/admin/").status_code == 200
    for session_key in redis.keys(key("session", "*")):
        redis.delete(session_key)  # as its 12 hours do
    assert client.get("/admin/").status_code == 404
    assert client.get("/portal/orders").status_code == 303


@pytest.mark.parametrize("who", ["signed out", "partner contact", "operator key"])
def test_every_url_under_admin_is_404_but_to_a_signed_in_operator(
    app, client, mailbox, make_partner, who
):
    headers = {}
    if who == "partner contact":
        make_partner("none", email=CONTACT)
        sign_in(app, client, mailbox, CONTACT)
        assert client.get("/portal/orders").status_code == 200
    elif who == "operator key":
        headers = admin_headers()
    for method, url in ADMIN_URLS:
        answer = getattr(client, method)(url, headers=headers)  # POSTs without CSRF: 404 first
        assert answer.status_code == 404, (who, method, url, answer.status_code)


def test_a_signed_in_operator_is_refused_a_post_without_its_csrf_token(app, client, mailbox):
    sign_in(app, client, mailbox, OPERATOR)
    assert client.post("/admin/reconcile").status_code == 400
    assert client.post("/admin/reconcile", data={"csrf_token": "forged"}).status_code == 400
    assert client.post("/signin", data={"email": OPERATOR}).status_code == 400
    answer = client.post("/admin/reconcile", data={"csrf_token": csrf_of(client, "/admin/")})
    assert answer.status_code == 303


def test_operators_added_from_the_command_line_sign_in_and_removed_lose_the_console(
    app, client, mailbox
):
    runner = FlaskCliRunner(app)
    result = runner.invoke(args=["operators", "add", "Night-Shift@Example.com"])
    assert result.exit_code == 0, result.output
    assert "night-shift@example.com" in runner.invoke(args=["operators", "list"]).output
    sign_in(app, client, mailbox, "night-shift@example.com")
    assert client.get("/admin/").status_code == 200
    assert runner.invoke(args=["operators", "remove", "night-shift@example.com"]).exit_code == 0
    assert client.get("/admin/").status_code == 404
    assert runner.invoke(args=["operators", "add", "no address"]).exit_code != 0


def test_partners_are_found_by_contact_email_and_the_index_is_rebuilt_when_missing(
    app, make_partner, redis
):
    first = make_partner("none", email="Desk@Example.com")
    second = make_partner("none", email="desk@example.com")
    make_partner("none", email="else@example.com")
    store = app.extensions["gateway.store"]
    both = sorted([first["id"], second["id"]])
    assert store.partners_by_email(" DESK@example.com") == both
    for index in [*redis.keys(key("partners-by-email", "*")), key("partner-email-index")]:
        redis.delete(index)  # a store from before the index existed
    assert store.partners_by_email("desk@example.com") == both
    assert redis.exists(key("partner-email-index"))


def test_a_signed_in_contact_opens_its_orders_without_a_link_and_no_one_elses(
    app, client, mailbox, pair, make_order
):
    buyer, seller = pair(buyer_fields={"email": "buyer-desk@example.com"})
    other_buyer, other_seller = pair()
    mine = make_order(buyer, seller, ref="A-1")
    theirs = make_order(other_buyer, other_seller, ref="B-1")
    sign_in(app, client, mailbox, "buyer-desk@example.com")
    page = client.get(f"/orders/{mine['id']}")
    assert page.status_code == 200 and "Viewing as the buyer" in page.get_data(as_text=True)
    assert client.get(f"/orders/{theirs['id']}").status_code == 403
    listed = client.get("/portal/orders").get_data(as_text=True)
    assert f'/orders/{mine["id"]}"' in listed and theirs["id"] not in listed


# ---- the portal and the reconciliation's cycles ----------------------------------------------


def ship(store, order_id: str) -> None:
    store.change_order(order_id, lambda o: Change(order=replace(o, status=SHIPPED)))


def test_pages_merge_every_partner_of_the_contact_newest_first(app, pair, make_order):
    store = app.extensions["gateway.store"]
    buyer, seller = pair()
    other_buyer, other_seller = pair()
    orders = [make_order(buyer, seller, ref=f"A-{n}") for n in range(3)]
    orders += [make_order(other_buyer, other_seller, ref=f"B-{n}") for n in range(2)]
    newest_first = [o["id"] for o in sorted(orders, key=lambda o: o["created_at"], reverse=True)]
    ids = (seller["id"], other_seller["id"])
    seen, cursor = [], None
    for _ in range(3):
        page, cursor = store.newest_orders(ids, lambda _: True, 2, cursor)
        seen += [o.id for o in page]
        if cursor is None:
            break
    assert seen == newest_first and cursor is None
    page, _ = store.newest_orders((seller["id"],), lambda o: o.buyer_order_ref == "A-0", 10, None)
    assert [o.buyer_order_ref for o in page] == ["A-0"]


def test_a_seller_sees_what_waits_for_it_and_a_buyer_everything(
    app, client, mailbox, pair, make_order
):
    store = app.extensions["gateway.store"]
    buyer, seller = pair(buyer_fields={"email": "same-desk@example.com"})
    orders = {ref: make_order(buyer, seller, ref=ref) for ref in ("open", "done", "unpaid")}
    ship(store, orders["done"]["id"])

    def waiting(order: Order) -> Change:
        return Change(order=replace(order, routing=replace(order.routing, state="waiting")))

    store.change_order(orders["unpaid"]["id"], waiting)
    # The seller's contact:
    store.change_partner(seller["id"], lambda p, _: {**p, "email": "seller-desk@example.com"})
    store.redis.delete("gw:partner-email-index")
    sign_in(app, client, mailbox, "seller-desk@example.com")
    text = client.get("/portal/orders").get_data(as_text=True)
    assert orders["open"]["id"] in text
    assert orders["done"]["id"] not in text and orders["unpaid"]["id"] not in text
    shipped = client.get("/portal/orders?status=shipped").get_data(as_text=True)
    assert orders["done"]["id"] in shipped and orders["open"]["id"] not in shipped
    every = client.get("/portal/orders?status=all").get_data(as_text=True)
    assert all(o["id"] in every for o in orders.values())
    wrong = client.get("/portal/orders?status=lost")
    assert wrong.status_code == 422 and 'id="error-status"' in wrong.get_data(as_text=True)

    buyer_client = app.test_client()
    sign_in(app, buyer_client, mailbox, "same-desk@example.com")
    text = buyer_client.get("/portal/orders").get_data(as_text=True)
    assert all(o["id"] in text for o in orders.values())


def test_the_connect_button_is_the_contacts_own_and_needs_its_csrf_token(
    app, client, mailbox, make_partner
):
    mine = make_partner("none", email="desk@example.com")
    other = make_partner("none", email="else@example.com")
    sign_in(app, client, mailbox, "desk@example.com")
    token = csrf_of(client, "/portal/connection")
    assert client.post(f"/portal/connection/{mine['id']}").status_code == 400
    # Another partner's, or one with no store to connect: 404.
    for partner in (other, mine):
        answer = client.post(f"/portal/connection/{partner['id']}", data={"csrf_token": token})
        assert answer.status_code == 404
    signed_out = app.test_client()
    answer = signed_out.post(f"/portal/connection/{mine['id']}")
    assert answer.status_code == 303 and answer.headers["Location"] == "/signin"


def test_cycles_are_recorded_once_per_store_and_the_last_20_kept(app, redis):
    store = app.extensions["gateway.store"]
    cycle = store.start_cycle("manual", 2, 1)
    store.cycle_part_done(cycle, "ptr_a", 3, 2, False)
    store.cycle_part_done(cycle, "ptr_a", 5, 5, False)  # a retried job: counted once
    [shown] = store.cycles()
    assert "finished_at" not in shown and shown["done"] == "1"
    store.cycle_part_done(cycle, "ptr_b", 1, 0, True)
    [shown] = store.cycles()
    assert (shown["calls"], shown["changed"], shown["failed"]) == ("4", "2", "1")
    assert shown["finished_at"] and float(shown["duration"]) >= 0 and "lag" in shown
    for _ in range(CYCLES_KEPT + 3):
        store.start_cycle("scheduled", 0, 0)  # no connection: finished at once
    cycles = store.cycles()
    assert len(cycles) == CYCLES_KEPT and all(c["finished_at"] for c in cycles)


def test_the_api_and_the_console_run_the_same_cycle(app, client, mailbox, redis):
    from gateway.jobs.reconcile import LOCK

    answer = client.post("/api/v1/reconcile", headers=admin_headers())
    assert answer.get_json()["status"] == "queued"
    [job] = app.extensions["gateway.store"].queue.get_jobs()
    assert job.func_name == "gateway.jobs.reconcile.reconcile" and job.args == ["manual"]
    job.perform()
    [shown] = app.extensions["gateway.store"].cycles()
    assert shown["kind"] == "manual" and shown["finished_at"]
    sign_in(app, client, mailbox, "boss@example.com")
    redis.set(f"gw:lock:{LOCK}", "someone")  # a cycle is running
    page = client.post(
        "/admin/reconcile", data={"csrf_token": csrf_of(client, "/admin/")}, follow_redirects=True
    )
    assert "A cycle is running already" in page.get_data(as_text=True)
    assert "A cycle is running now." in page.get_data(as_text=True)
