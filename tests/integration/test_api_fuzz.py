"""Property-based fuzzing of the HTTP API from its own /openapi.json (schemathesis, in-process
through the WSGI app, real Redis): every generated request, valid and invalid, is sent as each
caller the operation's `security` allows (the operator's token, a buyer's or a seller's key) and
once as a caller it does not allow; no answer may be a 5xx, and every answer must be one the
operation documents, in its documented shape (errors as {"error": {"code", "message",
"details"}}). Then the same with the store down: 503, documented. Deterministic (one seed),
bounded by `EXAMPLES` per operation; about 20 s."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import schemathesis
from conftest import ADMIN_TOKEN
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import create_app
from gateway.settings import Settings
from sandbox.local import free_port

EXAMPLES = 50  # generated cases per operation, each sent as 1 to 3 callers; schemathesis adds
# its own examples, boundary (coverage) cases and method probes to these
ALL = list(HealthCheck)
UPS = "1Z5R89390357567127"
JSON_PATHS = ("/api/", "/webhooks/")  # errors there are JSON; /healthz reports, /metrics is text

# The document as /openapi.json serves it (the app needs no Redis for it).
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(Settings()))
schema.config.generation.update(deterministic=True, database="none")  # one seed, no files
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
DOCUMENTED = [status_code_conformance, content_type_conformance, response_schema_conformance]
SENT: Counter = Counter()  # (operation, caller) -> requests, over the whole module


@pytest.fixture
def world(pair, make_order) -> dict:
    """A buyer and a seller with a partnership, and one order between them."""
    buyer, seller = pair()
    return {"buyer": buyer, "seller": seller, "order": make_order(buyer, seller)}


def callers(case) -> list[str]:
    """Who sends this case: each caller the operation allows, and one it does not."""
    allowed: list[str] = []
    for requirement in case.operation.definition.raw.get("security", []):
        allowed += ["buyer", "seller"] if "partner" in requirement else ["operator"]
    if not allowed:  # webhooks, /metrics, /healthz: no key
        return ["anyone"]
    return allowed + [c for c in ("operator", "seller") if c not in allowed][:1]


def steer(case, world: dict, rng: random.Random) -> None:
    """Point half the valid cases at real ids and SKUs, so the deep paths run too (invalid ones
    stay as generated: they must be refused)."""
    order = world["order"]
    params = case.path_parameters or {}
    if "order_id" in params and rng.random() < 0.7:
        params["order_id"] = order["id"]
    if "partner_id" in params and rng.random() < 0.7:
        params["partner_id"] = rng.choice([world["buyer"]["id"], world["seller"]["id"]])
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    body = case.body
    if not isinstance(body, dict) or rng.random() < 0.5:
        return
    for role in ("buyer", "seller"):
        if f"{role}_id" in body:
            body[f"{role}_id"] = world[role]["id"]
    lines = body.get("line_items")
    if isinstance(lines, list):
        for line in lines:
            if not isinstance(line, dict):
                continue
            if "line_item_id" in line:
                line["line_item_id"] = rng.choice(order["line_items"])["id"]
            if "sku" in line:
                line["sku"] = rng.choice(["MUG-BLUE", "MUG-RED", "AC-100", "AC-200"])
    if "tracking_numbers" in body:
        body["carrier"], body["tracking_numbers"] = "UPS", [UPS]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=ALL)
def test_every_answer_is_documented_and_none_is_a_5xx(case, app, world):
    case.operation.schema.app = case.operation.app = app  # in-process, the checks' probes too
    rng = random.Random(repr((case.operation.label, case.body, case.path_parameters)))
    steer(case, world, rng)
    keys = {
        "operator": ADMIN_TOKEN,
        "buyer": world["buyer"]["api_key"],
        "seller": world["seller"]["api_key"],
    }
    for caller in callers(case):
        headers = {"Authorization": f"Bearer {keys[caller]}"} if caller in keys else {}
        response = case.call(headers=headers)
        SENT[(case.operation.label, caller)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        if response.status_code >= 400 and case.path.startswith(JSON_PATHS):
            error = response.json().get("error", {})
            assert {"code", "message", "details"} <= set(error), response.text


@pytest.fixture
def store_down(gateway_env):
    """The app with its Redis gone (a port nobody listens on)."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    return create_app(Settings.from_env(redis_url=down, flask={"TESTING": True}))


@schema.parametrize()
@settings(max_examples=5, deadline=None, database=None, suppress_health_check=ALL)
def test_with_the_store_down_every_answer_is_documented(case, store_down):
    """503 (or a refusal that needs no store) in the documented shape, never a 500."""
    case.operation.schema.app = case.operation.app = store_down
    for caller in callers(case):
        key = ADMIN_TOKEN if caller == "operator" else "gk_unknown-partner-key"
        headers = {} if caller == "anyone" else {"Authorization": f"Bearer {key}"}
        response = case.call(headers=headers)
        SENT[(case.operation.label, f"{caller}, store down")] += 1
        assert response.status_code < 500 or response.status_code == 503, response.text
        case.validate_response(response, checks=DOCUMENTED, headers=headers)
        if response.status_code >= 400 and case.path.startswith(JSON_PATHS):
            error = response.json().get("error", {})
            assert {"code", "message", "details"} <= set(error), response.text


def test_the_fuzzing_sent_enough_requests():
    """At least 1,000 requests with the store up (when the tests above ran in this session)."""
    up = sum(n for (_, caller), n in SENT.items() if "store down" not in caller)
    if not up:
        pytest.skip("the fuzzing test did not run in this session")
    print(f"\nfuzzing: {up} requests with the store up, {sum(SENT.values()) - up} with it down")
    assert up >= 1000
