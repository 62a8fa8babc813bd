"""REDIS_SENTINELS and REDIS_WAIT_REPLICAS: what each process is given (README, "Failover")."""

from __future__ import annotations

import pytest
from redis import Redis

from gateway.failover import (
    PrimaryConnection,
    PrimarySSLConnection,
    ReplicatedPipeline,
    ReplicatedRedis,
    redis_client,
    rq_settings,
    sentinel_addresses,
)
from gateway.settings import Settings

SENTINELS = "10.0.0.1:26379, sentinel-b.internal:26380,[::1]:26381"


def test_without_sentinels_every_process_uses_redis_url_as_before():
    config = Settings(redis_url="redis://gateway:secret@10.0.0.9:6379/2")
    assert rq_settings(config) == {"REDIS_URL": "redis://gateway:secret@10.0.0.9:6379/2"}
    client = redis_client(config)
    assert type(client) is Redis
    assert client.connection_pool.connection_kwargs["host"] == "10.0.0.9"


def test_sentinels_are_read_as_host_port_pairs():
    config = Settings(redis_sentinels=SENTINELS)
    assert sentinel_addresses(config) == [
        ("10.0.0.1", 26379),
        ("sentinel-b.internal", 26380),
        ("::1", 26381),
    ]


@pytest.mark.parametrize("sentinels", ["10.0.0.1", "10.0.0.1:port", ":26379"])
def test_a_sentinel_without_its_port_is_refused(sentinels):
    with pytest.raises(RuntimeError, match="REDIS_SENTINELS"):
        sentinel_addresses(Settings(redis_sentinels=sentinels))


def test_with_sentinels_the_web_asks_them_for_the_primary_with_redis_urls_credentials():
    config = Settings(
        redis_url="rediss://gateway:p%40ss@ignored:1/3",
        redis_sentinels=SENTINELS,
        redis_sentinel_master="gw-primary",
        redis_sentinel_password="sentinel-secret",
    )
    client = redis_client(config, socket_timeout=5)
    pool = client.connection_pool
    assert pool.service_name == "gw-primary"
    assert pool.connection_class is PrimarySSLConnection  # rediss://: TLS to the primary
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("gateway", "p@ss", 3)
    assert kwargs["socket_timeout"] == 5
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["password"] == "sentinel-secret"


def test_with_sentinels_rq_gets_its_sentinel_setting_for_the_same_primary():
    config = Settings(redis_url="redis://gateway:secret@ignored/1", redis_sentinels=SENTINELS)
    sentinel = rq_settings(config)["SENTINEL"]
    assert sentinel["INSTANCES"] == sentinel_addresses(config)
    assert sentinel["MASTER_NAME"] == "gateway"
    assert (sentinel["USERNAME"], sentinel["PASSWORD"], sentinel["DB"]) == ("gateway", "secret", 1)
    assert sentinel["CONNECTION_KWARGS"]["connection_class"] is PrimaryConnection
    # Workers and cron ride out a failover rather than stop at the first refused connection.
    assert sentinel["CONNECTION_KWARGS"]["retry"].get_retries() >= 60


def test_waiting_for_replicas_is_off_by_default_and_on_by_setting():
    assert type(redis_client(Settings())) is Redis
    client = redis_client(Settings(redis_wait_replicas=1, redis_wait_timeout_ms=250))
    assert isinstance(client, ReplicatedRedis)
    pipe = client.pipeline()
    assert isinstance(pipe, ReplicatedPipeline)
    assert (pipe.replicas, pipe.timeout_ms) == (1, 250)


def test_settings_come_from_the_environment():
    config = Settings.from_env(
        {
            "REDIS_SENTINELS": SENTINELS,
            "REDIS_SENTINEL_MASTER": "gw",
            "REDIS_WAIT_REPLICAS": "1",
            "REDIS_WAIT_TIMEOUT_MS": "400",
        }
    )
    assert (config.redis_sentinel_master, config.redis_wait_replicas) == ("gw", 1)
    assert config.redis_wait_timeout_ms == 400
