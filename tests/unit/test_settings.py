"""Development or production (API.md, Conventions): production refuses to start without its
secrets, in each of the Procfile's processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT
from cryptography.fernet import Fernet

from gateway import create_app
from gateway.settings import Settings, UnsafeSettingsError

PRODUCTION = "https://gateway.example.com"
STRONG = "k" * 32
KEYS = {"ENCRYPTION_KEYS": Fernet.generate_key().decode()}  # production's own (secrets at rest)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "http://localhost:8000", "http://127.0.0.2", "http://[::1]:8000"],
)
def test_http_on_a_loopback_host_is_development(url):
    assert Settings(public_url=url).development


@pytest.mark.parametrize(
    "url",
    [PRODUCTION, "https://127.0.0.1:8000", "http://gateway.internal:8000", "http://10.0.0.5"],
)
def test_anything_else_is_production(url):
    settings = Settings(public_url=url, secret_key=STRONG, admin_token=STRONG, **_keys())
    assert not settings.development


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"GATEWAY_ADMIN_TOKEN": STRONG}, "SECRET_KEY"),  # no silent default key
        ({"SECRET_KEY": "short", "GATEWAY_ADMIN_TOKEN": STRONG}, "SECRET_KEY"),
        ({"SECRET_KEY": STRONG}, "GATEWAY_ADMIN_TOKEN"),
        ({"SECRET_KEY": STRONG, "GATEWAY_ADMIN_TOKEN": "k" * 31}, "GATEWAY_ADMIN_TOKEN"),
        ({"SECRET_KEY": STRONG, "GATEWAY_ADMIN_TOKEN": STRONG, "METRICS_TOKEN": "m"}, "METRICS"),
    ],
)
@pytest.mark.parametrize("public_url", [PRODUCTION, "http://gateway.internal:8000"])
def test_production_refuses_to_start_without_long_secrets(environ, named, public_url):
    with pytest.raises(UnsafeSettingsError) as refused:
        create_app(Settings.from_env({"PUBLIC_URL": public_url, **KEYS, **environ}))
    assert named in str(refused.value)
    assert "short" not in str(refused.value) and STRONG not in str(refused.value)


def test_production_starts_with_long_secrets():
    environ = {
        "PUBLIC_URL": PRODUCTION,
        "SECRET_KEY": STRONG,
        "GATEWAY_ADMIN_TOKEN": STRONG,
        **KEYS,
    }
    assert create_app(Settings.from_env(environ)).config["SESSION_COOKIE_SECURE"]


def test_development_keeps_its_default_key_with_a_warning(caplog):
    create_app(Settings.from_env({"PUBLIC_URL": "http://127.0.0.1:8000"}))
    assert "SECRET_KEY is the development default" in caplog.text


def _keys() -> dict[str, str]:
    return {"encryption_keys": KEYS["ENCRYPTION_KEYS"]}


def _production_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "GATEWAY_ADMIN_TOKEN")}
    return {
        **env,
        **KEYS,
        "PUBLIC_URL": PRODUCTION,
        "REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.parametrize(
    "command",
    [
        ["worker", "--burst", "--worker-class", "gateway.worker.GatewayWorker"],
        ["cron"],
    ],
    ids=["worker", "cron"],
)
def test_the_worker_and_cron_refuse_to_start_too(redis_url, redis, command):
    """The Procfile's worker and cron, with production's PUBLIC_URL and no secrets."""
    url = ["--url", redis_url]
    target = ["gateway"] if command[0] == "worker" else ["gateway.jobs.schedule"]
    process = subprocess.run(
        [sys.executable, "-m", "rq.cli", *command, *url, *target],
        cwd=ROOT,
        env=_production_env(redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert "SECRET_KEY" in process.stderr and "GATEWAY_ADMIN_TOKEN" in process.stderr
    assert redis.keys("rq:worker*") == [] and redis.keys("rq:cron*") == []
