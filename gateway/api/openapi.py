"""The OpenAPI 3 document of the JSON API, built from the same marshmallow schemas it uses."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway import platforms
from gateway.api import schemas as s

ERRORS = {
    "400": "Malformed body",
    "401": "No or bad credentials",
    "403": "Not allowed",
    "404": "Unknown, or not the caller's",
    "409": "Conflicts with the order's state",
    "413": "Body over 1 MiB",
    "415": "Body not JSON",
    "422": "Validation failed",
    "429": "Over the partner key's rate limit; Retry-After says when to try again",
    "503": "Store or queue unavailable",
}

# Who may call each operation (API.md): the operator's token, a partner's API key, or either.
OPERATOR, PARTNER = "operator", "partner"
SECURITY = {
    ("/api/v1/partners", "post"): (OPERATOR,),
    ("/api/v1/partners/{partner_id}", "get"): (OPERATOR, PARTNER),
    ("/api/v1/partners/{partner_id}/connect", "post"): (OPERATOR, PARTNER),
    ("/api/v1/partnerships", "post"): (OPERATOR,),
    ("/api/v1/orders", "post"): (PARTNER,),
    ("/api/v1/orders", "get"): (PARTNER,),
    ("/api/v1/orders/{order_id}", "get"): (OPERATOR, PARTNER),
    ("/api/v1/orders/{order_id}/fulfillments", "post"): (PARTNER,),
    ("/api/v1/orders/{order_id}/fulfillments/{fulfillment_id}/corrections", "post"): (OPERATOR,),
    ("/api/v1/orders/{order_id}/links", "post"): (OPERATOR, PARTNER),
    ("/api/v1/orders/{order_id}/resync", "post"): (OPERATOR, PARTNER),
    ("/api/v1/orders/{order_id}/links/revoke", "post"): (OPERATOR,),
    ("/api/v1/reconcile", "post"): (OPERATOR,),
}

# Each operation's id (SECURITY's keys, in order), and the OpenAPI links from the operations that
# create something to those that use its id (API.md): (creator, its answer) -> link name ->
# (the operation it leads to, its parameters from the answer).
OPERATION_IDS = dict(
    zip(
        SECURITY,
        (
            "createPartner",
            "getPartner",
            "createConnectLink",
            "savePartnership",
            "createOrder",
            "listOrders",
            "getOrder",
            "createFulfillment",
            "correctFulfillment",
            "createOrderLink",
            "resyncOrder",
            "revokeOrderLinks",
            "runReconciliation",
        ),
        strict=True,
    )
)
PARTNER_ID = {"partner_id": "$response.body#/id"}
ORDER_ID = {"order_id": "$response.body#/id"}
FULFILLMENT_IDS = {
    "order_id": "$response.body#/order/id",
    "fulfillment_id": "$response.body#/fulfillment/id",
}
LINKS = {
    (("/api/v1/partners", "post"), "201"): {
        "GetPartner": ("getPartner", PARTNER_ID),
        "CreateConnectLink": ("createConnectLink", PARTNER_ID),
    },
    (("/api/v1/orders", "post"), "201"): {
        "GetOrder": ("getOrder", ORDER_ID),
        "CreateFulfillment": ("createFulfillment", ORDER_ID),
        "CreateOrderLink": ("createOrderLink", ORDER_ID),
        "ResyncOrder": ("resyncOrder", ORDER_ID),
        "RevokeOrderLinks": ("revokeOrderLinks", ORDER_ID),
    },
    (("/api/v1/orders/{order_id}/fulfillments", "post"), "201"): {
        "GetOrder": ("getOrder", {"order_id": "$response.body#/order/id"}),
        "CorrectFulfillment": ("correctFulfillment", FULFILLMENT_IDS),
    },
}


def _op(
    summary: str,
    body: str | None,
    answers: dict[str, str | None],
    errors: tuple[str, ...],
    parameters: list[dict[str, Any]] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {}}
    errors = (*errors, "429")  # any partner key is counted, even where only the operator may act
    if body:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    for status, schema in answers.items():
        answer: dict[str, Any] = {"description": summary}
        if schema:
            answer["content"] = {"application/json": {"schema": schema}}
        operation["responses"][status] = answer
    for status in errors:
        operation["responses"][status] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": "Error"}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path_id(name: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    """The spec as a dict, for the platforms registered now."""
    return _document(tuple(platforms.names()))


@cache
def _document(platform_names: tuple[str, ...]) -> dict[str, Any]:
    spec = APISpec(
        title="Fulfillment sync gateway",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    spec.components.security_scheme(
        OPERATOR, {"type": "http", "scheme": "bearer", "description": "GATEWAY_ADMIN_TOKEN"}
    )
    spec.components.security_scheme(
        PARTNER, {"type": "http", "scheme": "bearer", "description": "A partner's API key"}
    )
    spec.components.security_scheme(
        "metrics", {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"}
    )
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                }
            },
        },
    )
    spec.components.schema(
        "ReconcileStarted",
        {
            "type": "object",
            "properties": {
                "job_id": {"type": "string", "nullable": True},
                "status": {"type": "string", "enum": ["queued", "already_running"]},
            },
        },
    )
    for name, schema in [  # nested schemas before the ones that nest them: one name each
        ("Delivery", s.DeliveryOut),
        ("FulfillmentLine", s.FulfillmentLineOut),
        ("Tracking", s.TrackingOut),
        ("Correction", s.CorrectionOut),
        ("LineItem", s.LineItemOut),
        ("Address", s.AddressIn),
        ("OrderLineIn", s.OrderLineIn),
        ("FulfillmentLineIn", s.FulfillmentLineIn),
        ("SkuPair", s.SkuPair),
        ("Fulfillment", s.FulfillmentOut),
        ("PartnerIn", s.PartnerIn),
        ("Partner", s.PartnerOut),
        ("PartnerCreated", s.PartnerCreated),
        ("PartnershipIn", s.PartnershipIn),
        ("Partnership", s.PartnershipOut),
        ("OrderIn", s.OrderIn),
        ("Order", s.OrderOut),
        ("OrderPage", s.OrderPage),
        ("FulfillmentIn", s.FulfillmentIn),
        ("FulfillmentCreated", s.FulfillmentCreated),
        ("CorrectionIn", s.CorrectionIn),
        ("LinkIn", s.LinkIn),
        ("Link", s.LinkOut),
    ]:
        spec.components.schema(name, schema=schema)
    for platform in platforms.every():
        spec.components.schema(f"{platform.name}_connection", schema=platform.connection_schema)
    installs = [p for p in platforms.every() if p.install_schema is not None]
    for platform in installs:
        spec.components.schema(f"{platform.name}_install", schema=platform.install_schema)
    spec.components.schema(
        "ConnectIn",
        {
            "description": "What the link names of the store, per the partner's platform.",
            **(
                {"oneOf": [{"$ref": f"#/components/schemas/{p.name}_install"} for p in installs]}
                if installs
                else {"type": "object"}
            ),
        },
    )
    spec.components.schema(
        "ConnectLink",
        {
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "<PUBLIC_URL>/connect/<token>"},
                "expires_at": {"type": "string"},
            },
        },
    )

    write = ("400", "401", "403", "413", "415", "422", "503")
    order_id = [_path_id("order_id")]
    spec.path(
        "/api/v1/partners",
        operations={
            "post": _op(
                "Create a partner (operator); 409 store_taken when another has its store",
                "PartnerIn",
                {"201": "PartnerCreated"},
                (*write, "409"),
            )
        },
    )
    spec.path(
        "/api/v1/partners/{partner_id}",
        operations={
            "get": _op(
                "A partner",
                None,
                {"200": "Partner"},
                ("401", "404", "503"),
                [_path_id("partner_id")],
            )
        },
    )
    spec.path(
        "/api/v1/partners/{partner_id}/connect",
        operations={
            "post": _op(
                "A single-use link (a day) for the store's owner to connect its store; 403 "
                "operator_only for a partner naming api_base_url/login_base_url, 409 no_store "
                "for a platform without a store",
                "ConnectIn",
                {"201": "ConnectLink"},
                (*write, "404", "409"),
                [_path_id("partner_id")],
                body_required=False,
            )
        },
    )
    spec.path(
        "/api/v1/partnerships",
        operations={
            "post": _op(
                "Create or replace a partnership (operator)",
                "PartnershipIn",
                {"201": "Partnership", "200": "Partnership"},
                write,
            )
        },
    )
    list_params = [
        {
            "in": "query",
            "name": "status",
            "schema": {"type": "string", "enum": ["unshipped", "shipped"]},
        },
        {
            "in": "query",
            "name": "limit",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
        },
        {"in": "query", "name": "cursor", "schema": {"type": "string"}},
    ]
    spec.path(
        "/api/v1/orders",
        operations={
            "post": _op(
                "Send an order to a seller (buyer); the same buyer_order_ref again returns it",
                "OrderIn",
                {"201": "Order", "200": "Order"},
                write,
            ),
            "get": _op(
                "The caller's orders",
                None,
                {"200": "OrderPage"},
                ("401", "403", "422", "503"),
                list_params,
            ),
        },
    )
    spec.path(
        "/api/v1/orders/{order_id}",
        operations={
            "get": _op("An order", None, {"200": "Order"}, ("401", "404", "503"), order_id)
        },
    )
    idempotency = {
        "in": "header",
        "name": "Idempotency-Key",
        "schema": {"type": "string", "maxLength": 255},
    }
    spec.path(
        "/api/v1/orders/{order_id}/fulfillments",
        operations={
            "post": _op(
                "Record a fulfillment (a seller whose platform takes them from our form)",
                "FulfillmentIn",
                {"201": "FulfillmentCreated"},
                (*write, "404", "409"),
                [*order_id, idempotency],
            )
        },
    )
    spec.path(
        "/api/v1/orders/{order_id}/fulfillments/{fulfillment_id}/corrections",
        operations={
            "post": _op(
                "Correct a fulfillment's tracking (operator), also after Shipped: checked as at "
                "creation, kept in its corrections, sent to the buyer as an update; 409 "
                "fulfillment_cancelled, 422 nothing_to_correct when nothing would change",
                "CorrectionIn",
                {"201": "FulfillmentCreated"},
                (*write, "404", "409"),
                [*order_id, _path_id("fulfillment_id")],
            )
        },
    )
    spec.path(
        "/api/v1/orders/{order_id}/links",
        operations={
            "post": _op(
                "A fresh signed link to the order page (the operator names the role)",
                "LinkIn",
                {"201": "Link"},
                (*write, "404"),
                order_id,
                body_required=False,
            )
        },
    )
    spec.path(
        "/api/v1/orders/{order_id}/links/revoke",
        operations={
            "post": _op(
                "End every link to the order page, both roles', and the sessions they opened "
                "(operator)",
                None,
                {"204": None},
                ("401", "403", "404", "503"),
                order_id,
            )
        },
    )
    spec.path(
        "/api/v1/orders/{order_id}/resync",
        operations={
            "post": _op(
                "Read the seller store's fulfillments now and retry failed deliveries; another "
                "within RESYNC_COOLDOWN seconds is coalesced into it (status: coalesced)",
                None,
                {"202": None},
                ("401", "404", "503"),
                order_id,
            )
        },
    )
    spec.path(
        "/api/v1/reconcile",
        operations={
            "post": _op(
                "Run one reconciliation cycle now (operator)",
                None,
                {"202": "ReconcileStarted"},
                ("401", "403", "503"),
            )
        },
    )
    for platform in platforms.every():
        if not platform.topics:
            continue
        spec.path(
            f"/webhooks/{platform.name}",
            operations={
                "post": {
                    "summary": f"{platform.label} webhooks ({platform.webhook_auth})",
                    "description": f"Topics acted on: {', '.join(platform.topics)}.",
                    "responses": {
                        "200": {
                            "description": "accepted, duplicate or ignored",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "status": {
                                                "type": "string",
                                                "enum": ["accepted", "duplicate", "ignored"],
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **{
                            status: {
                                "description": ERRORS[status],
                                "content": {"application/json": {"schema": "Error"}},
                            }
                            for status in ("400", "401", "413", "503")
                        },
                    },
                }
            },
        )
    spec.path(
        "/metrics",
        operations={
            "get": {
                "summary": "Prometheus text (the operator's key or METRICS_TOKEN)",
                "security": [{OPERATOR: []}, {"metrics": []}],
                "responses": {
                    "200": {"description": "ok"},
                    "401": {
                        "description": ERRORS["401"],
                        "content": {"application/json": {"schema": "Error"}},
                    },
                    "503": {"description": ERRORS["503"]},
                },
            }
        },
    )
    spec.path(
        "/healthz",
        operations={
            "get": {
                "summary": "Health",
                "responses": {"200": {"description": "ok"}, "503": {"description": "Redis down"}},
            }
        },
    )
    document = spec.to_dict()
    for (path, method), who in SECURITY.items():
        document["paths"][path][method]["security"] = [{name: []} for name in who]
        document["paths"][path][method]["operationId"] = OPERATION_IDS[(path, method)]
    for (operation, status), links in LINKS.items():
        answer = document["paths"][operation[0]][operation[1]]["responses"][status]
        answer["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
        }
    schemas = document["components"]["schemas"]
    partner_in = schemas["PartnerIn"]["properties"]
    partner_in["platform"]["enum"] = list(platform_names)
    partner_in["connection"]["oneOf"] = [
        {"$ref": f"#/components/schemas/{name}_connection"} for name in platform_names
    ]
    schemas["Fulfillment"]["properties"]["source"]["enum"] = [
        "manual",
        *(p.name for p in platforms.every() if p.fulfillments_from_store),
    ]
    return document
