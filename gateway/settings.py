"""Every setting of the gateway, read from the environment, with local defaults."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # local use only: anyone can forge links with it
# A published Fernet key (base64 of "dev-only-encryption-key-change!!"), for local use only:
# what it encrypts anyone can read.
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hhbmdlISE="
MIN_SECRET_LENGTH = 32  # SECRET_KEY and GATEWAY_ADMIN_TOKEN outside development


class UnsafeSettingsError(RuntimeError):
    """Settings a gateway outside development must not start with."""


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """The gateway's configuration; `from_env` is the only place that reads the environment."""

    # Redis: the system of record and RQ's queues.
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    # Redis Sentinels, host:port comma-separated: when set, every process asks them for the
    # primary (and again after a failover), taking only the user, password and db from REDIS_URL.
    redis_sentinels: str = ""
    # The name the Sentinels monitor the gateway's primary under.
    redis_sentinel_master: str = "gateway"
    # The Sentinels' own password (their requirepass), if they have one.
    redis_sentinel_password: str = field(default="", repr=False)
    # Replicas that must hold a web request's transaction before it is answered (WAIT); 0: none.
    redis_wait_replicas: int = 0
    # Milliseconds the web waits for those replicas; past it, the answer is 503 (retry it).
    redis_wait_timeout_ms: int = 1000
    # Signs order-page links, sessions and CSRF tokens; required (32+ characters) in production.
    secret_key: str = field(default=DEV_SECRET_KEY, repr=False)
    # Fernet keys for partners' secrets in Redis, comma-separated: the first encrypts, all decrypt.
    encryption_keys: str = field(default=DEV_ENCRYPTION_KEY, repr=False)
    # Bearer token of the operator (admin API); required (32+ characters) in production.
    admin_token: str = field(default="", repr=False)
    # Bearer token a metrics scraper may read /metrics with (the operator's works too); optional.
    metrics_token: str = field(default="", repr=False)
    # Base URL used in emailed links; http:// on a loopback host means development.
    public_url: str = "http://127.0.0.1:8000"
    # SMTP: smtp://user:pass@host:port, smtp+starttls://..., smtps://...; empty -> outbox files.
    mail_url: str = field(default="", repr=False)
    # Sender of the seller emails.
    mail_from: str = "Fulfillment Gateway <gateway@localhost>"
    # Where messages go as .eml files when no MAIL_URL is set.
    outbox_dir: str = str(ROOT / "data" / "outbox")
    # How long a buyer's order-page link (and the session it opens) stays valid, in days.
    link_ttl_days: int = 30
    # How long a seller's order-page link stays valid, in days: it can record fulfillments.
    seller_link_ttl_days: int = 7
    # Seconds between the attempts to deliver an event or fulfillment to a buyer (one per retry).
    delivery_retry_schedule: tuple[int, ...] = (10, 30, 120, 600, 1800, 3600, 7200, 14400)
    # Seconds between the attempts to send a seller email.
    mail_retry_schedule: tuple[int, ...] = (10, 60, 300, 1800)
    # Orders per page when the reconciliation lists what changed in a store.
    reconcile_page_size: int = 10
    # Seconds the reconciliation looks back past its cursor, for clocks that disagree.
    reconcile_overlap: int = 300
    # Timeout, in seconds, for one call to a buyer's callback URL or a platform API.
    http_timeout: float = 10.0
    # Comma-separated hosts, IPs or CIDRs outbound calls may reach although private or loopback.
    allow_private_hosts: str = ""
    # Largest request body accepted, in bytes.
    max_body_bytes: int = 1024 * 1024
    # How long an Idempotency-Key answer is kept, in seconds.
    idempotency_ttl: int = 24 * 3600
    # Requests one partner key may make to the JSON API ("50/second;2000/minute"; empty: none).
    rate_limit_partner: str = "50/second;2000/minute"
    # Order-page form posts one person (a link's holder, per order) may make; empty: no limit.
    rate_limit_person: str = "5/second;60/minute"
    # Addresses that may sign in to the console (/admin), comma-separated, any case; more are
    # added with `flask operators add EMAIL`.
    operator_emails: str = ""
    # Sign-in emails one address may be sent ("3/minute;10/hour"; empty: no limit).
    rate_limit_signin_address: str = "3/minute;10/hour"
    # Sign-in forms one client (IP address) may send; empty: no limit.
    rate_limit_signin_client: str = "10/minute;100/hour"
    # Seconds after a resync of an order during which another resync of it is coalesced.
    resync_cooldown: int = 60
    # Entries an order's timeline keeps: its first (the order's creation) and the newest.
    timeline_max_entries: int = 500
    # Extra Flask config (tests); not read from the environment.
    flask: Mapping[str, object] = field(default_factory=dict, repr=False)
    # Each platform's own settings (<PLATFORM>_* variables), named and read by its module
    # in gateway/platforms through `platform_setting`; the README lists them.
    platform_settings: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Refuse settings that are unsafe outside development, in every process."""
        problems = self.unsafe_outside_development()
        if problems:
            raise UnsafeSettingsError(
                f"refusing to start: PUBLIC_URL {self.public_url} is not development "
                f"(http:// on a loopback host), so {'; '.join(problems)}"
            )

    @property
    def development(self) -> bool:
        """PUBLIC_URL is http:// on a loopback host (./scripts/run, the tests); else production."""
        url = urlsplit(self.public_url)
        if url.scheme != "http" or not url.hostname:
            return False
        try:
            return ipaddress.ip_address(url.hostname).is_loopback
        except ValueError:
            return url.hostname == "localhost"

    def unsafe_outside_development(self) -> list[str]:
        """What production would be refused for (nothing in development)."""
        if self.development:
            return []
        problems = []
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < MIN_SECRET_LENGTH:
            problems.append(f"set SECRET_KEY to a random value of {MIN_SECRET_LENGTH}+ characters")
        if len(self.admin_token) < MIN_SECRET_LENGTH:
            problems.append(
                f"set GATEWAY_ADMIN_TOKEN to a random value of {MIN_SECRET_LENGTH}+ characters"
            )
        if self.encryption_keys.split(",")[0].strip() == DEV_ENCRYPTION_KEY:
            problems.append(
                "set ENCRYPTION_KEYS: the development key would leave partners' secrets readable"
            )
        if self.metrics_token and len(self.metrics_token) < MIN_SECRET_LENGTH:
            problems.append(f"set METRICS_TOKEN to {MIN_SECRET_LENGTH}+ characters, or unset it")
        return problems

    @property
    def operators(self) -> frozenset[str]:
        """OPERATOR_EMAILS as a set of lower-case addresses."""
        return frozenset(e.strip().lower() for e in self.operator_emails.split(",") if e.strip())

    def platform_setting(self, name: str, default: str) -> str:
        """A platform's own setting, by its environment name."""
        return self.platform_settings.get(name, default)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables (GATEWAY_ADMIN_TOKEN for admin_token, else the
        upper-case field name), then apply keyword overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = "GATEWAY_ADMIN_TOKEN" if f.name == "admin_token" else f.name.upper()
            if f.name in ("flask", "platform_settings") or name not in env:
                continue
            raw = env[name]
            default = f.default if f.default is not MISSING else None
            if isinstance(default, tuple):
                values[f.name] = _ints(raw)
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values["platform_settings"] = {k: v for k, v in env.items() if k.isupper()}
        values.update(overrides)
        return cls(**values)
