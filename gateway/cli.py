"""Operator commands: `flask --app wsgi partners create ...`, `partnerships create ...`,
`secrets rotate`, `orders revoke-links ...`, `operators add EMAIL`."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from gateway import platforms
from gateway.api import load
from gateway.api.partners import create_partner, save_partnership
from gateway.api.schemas import PartnerIn, PartnershipIn
from gateway.errors import ApiError
from gateway.pages.signin import EMAIL_SHAPE

partners = AppGroup("partners", help="Manage partners.")
partnerships = AppGroup("partnerships", help="Manage buyer-seller partnerships.")
partner_secrets = AppGroup("secrets", help="Partners' secrets, encrypted at rest.")
orders = AppGroup("orders", help="Manage orders.")
operators = AppGroup("operators", help="People who may sign in to the console (/admin).")


def _fail(error: ApiError) -> None:
    details = "".join(f"\n  {field}: {' '.join(texts)}" for field, texts in error.details.items())
    raise click.ClickException(f"{error.message}{details}")


@partners.command("create")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option(
    "--platform",
    type=click.Choice(platforms.names()),
    default=platforms.NO_PLATFORM,
)
@click.option("--connection", default="{}", help="JSON object of the platform's connection fields.")
@click.option("--callback-url", default=None, help="Buyers with no platform: where events go.")
def create_partner_command(name, email, platform, connection, callback_url):
    """Create a partner and print its id, API key and event signing secret (shown once)."""
    try:
        data = load(
            PartnerIn(),
            {
                "name": name,
                "email": email,
                "platform": platform,
                "connection": json.loads(connection),
                "callback_url": callback_url,
            },
        )
        created = create_partner(data)
    except ApiError as error:
        _fail(error)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"--connection is not JSON: {error}") from None
    click.echo(f"partner id:           {created['id']}")
    click.echo(f"api key:              {created['api_key']}")
    click.echo(f"event signing secret: {created['event_signing_secret']}")


@partnerships.command("create")
@click.option("--buyer", "buyer_id", required=True)
@click.option("--seller", "seller_id", required=True)
@click.option("--sku", "skus", multiple=True, help="BUYER_SKU=SELLER_SKU; repeat as needed.")
def create_partnership_command(buyer_id, seller_id, skus):
    """Connect a buyer to a seller, with its SKU map."""
    pairs = []
    for pair in skus:
        buyer_sku, sep, seller_sku = pair.partition("=")
        if not sep:
            raise click.ClickException(f"--sku {pair!r}: write BUYER_SKU=SELLER_SKU")
        pairs.append({"buyer_sku": buyer_sku, "seller_sku": seller_sku})
    try:
        data = load(PartnershipIn(), {"buyer_id": buyer_id, "seller_id": seller_id, "skus": pairs})
        _, created = save_partnership(data)
    except ApiError as error:
        _fail(error)
    click.echo(
        f"partnership {buyer_id} -> {seller_id} {'created' if created else 'replaced'} "
        f"({len(pairs)} SKUs)"
    )


@orders.command("revoke-links")
@click.argument("order_id")
def revoke_links_command(order_id):
    """End every link to the order's page, for both roles, and the sessions they opened."""
    from gateway import links
    from gateway.runtime import store

    if not links.revoke(store(), order_id, "by the operator, from the command line"):
        raise click.ClickException(f"no order {order_id}")
    click.echo(f"revoked every link to order {order_id}; new ones can be asked for")


@operators.command("add")
@click.argument("email")
def add_operator_command(email):
    """Let EMAIL sign in to the console (as OPERATOR_EMAILS does), kept in Redis."""
    from gateway.runtime import store
    from gateway.store.people import normal_email

    if not EMAIL_SHAPE.fullmatch(email.strip()):
        raise click.ClickException(f"{email!r} is not an email address")
    added = store().add_operator(email)
    click.echo(f"{normal_email(email)} {'may now sign in' if added else 'was an operator already'}")


@operators.command("remove")
@click.argument("email")
def remove_operator_command(email):
    """No longer let EMAIL sign in to the console (OPERATOR_EMAILS is the environment's)."""
    from gateway.runtime import store
    from gateway.store.people import normal_email

    if not store().remove_operator(email):
        raise click.ClickException(f"{normal_email(email)} was not added as an operator")
    click.echo(f"{normal_email(email)} removed; its open sessions lose the console at once")


@operators.command("list")
def list_operators_command():
    """The operators: OPERATOR_EMAILS, then those added with `operators add`."""
    from gateway.runtime import settings, store

    for email in sorted(settings().operators):
        click.echo(f"{email} (OPERATOR_EMAILS)")
    for email in store().operators():
        click.echo(email)


@click.command("reconcile")
@with_appcontext
def reconcile_command():
    """Run one reconciliation cycle now, here, printing progress per store connection."""
    from gateway.jobs.reconcile import reconcile_store, run_cycle
    from gateway.platforms.base import PlatformError
    from gateway.runtime import store

    current = store()

    def run_here(partner_id: str, cycle: str) -> None:
        partner = current.partner(partner_id)
        label = f"{partner['name']} ({partner['platform']}, {partner_id})"
        try:
            done = reconcile_store(partner_id, cycle)
        except PlatformError as error:  # reported; the next connection goes on
            click.echo(f"{label}: failed: {error}")
            return
        summary = ", ".join(f"{k} {v}" for k, v in done.items()) or "nothing to do"
        click.echo(f"{label}: {summary}")

    done = run_cycle(current, run_here, "command line")
    if done is None:
        raise click.ClickException("a reconciliation cycle is running; try again when it ends")
    click.echo(f"{done['requeued']} stuck deliveries enqueued again")


@partner_secrets.command("rotate")
def rotate_secrets_command():
    """Encrypt every partner's secrets again with the first ENCRYPTION_KEYS key (plain ones from
    before encryption too); then the other keys can be dropped."""
    from gateway.runtime import store

    current = store()
    done, unreadable = 0, []
    for partner_id in current.partner_ids():
        try:
            done += current.reseal_partner(partner_id)
        except RuntimeError:  # under none of the keys: say which, and go on with the others
            unreadable.append(partner_id)
    click.echo(f"{done} partners' secrets encrypted with the first key")
    if unreadable:
        raise click.ClickException(
            f"under no key of ENCRYPTION_KEYS, left as they are: {', '.join(unreadable)}"
        )


def init_app(app: Flask) -> None:
    """Add the commands to `flask`."""
    app.cli.add_command(partners)
    app.cli.add_command(partnerships)
    app.cli.add_command(partner_secrets)
    app.cli.add_command(orders)
    app.cli.add_command(operators)
    app.cli.add_command(reconcile_command)
