"""Redis across a failover: every process finds the primary through Sentinel (REDIS_SENTINELS),
and the web answers a write only once replicas hold it too (REDIS_WAIT_REPLICAS, WAIT).

README, "Failover", states what that guarantees and what it costs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from gateway.settings import Settings

# Workers and `rq cron` keep trying a command for about this long before they give up on Redis
# (RQ's loops end on an error that gets through): longer than a failover takes, which is the
# Sentinels' down-after-milliseconds plus a second or two to elect one and promote a replica.
RIDE_OUT_SECONDS = 60
SENTINEL_TIMEOUT = 2  # seconds; a Sentinel that doesn't answer in time is skipped for the next


class NotReplicatedError(RedisError):
    """A transaction the primary committed but too few replicas acknowledged in time. Its answer
    must not promise it (the web answers 503); a retry with the same key is safe."""


class PrimaryConnection(SentinelManagedConnection):
    """redis-py's connection to the primary a Sentinel names, closed when a read is interrupted
    (a signal, a job's timeout), as every other redis-py connection is. redis-py 8.1 leaves this
    one open by default, its reply unread, and the next command gets that reply instead of its
    own (redis/redis-py#4292; seen here as "Wrong number of response items" when a worker was
    stopped in its BLPOP)."""

    def read_response(self, disable_decoding=False, *, disconnect_on_error=True, **options):
        return super().read_response(
            disable_decoding, disconnect_on_error=disconnect_on_error, **options
        )


class PrimarySSLConnection(PrimaryConnection, SSLConnection):
    """PrimaryConnection over TLS (rediss:// in REDIS_URL)."""


class ReplicatedPipeline(Pipeline):
    """A pipeline whose transactions WAIT for `replicas` replicas after their EXEC."""

    replicas = 0
    timeout_ms = 0

    def _execute_transaction(self, connection, commands, raise_on_error):
        # redis-py runs MULTI..EXEC here (a private step, the same since redis-py 2; the failover
        # tests notice if it goes), on the connection that holds the transaction. WAIT counts
        # the replicas that have this connection's writes, so it must follow on the same one.
        results = super()._execute_transaction(connection, commands, raise_on_error)
        try:
            connection.send_command("WAIT", self.replicas, self.timeout_ms)
            acknowledged = connection.read_response()
        except (RedisConnectionError, RedisTimeoutError) as error:
            # Not a connection error, which redis-py would retry: the EXEC is done, and running
            # it again would apply the transaction twice.
            connection.disconnect()
            raise NotReplicatedError(f"the primary went away during WAIT: {error}") from error
        if acknowledged < self.replicas:
            raise NotReplicatedError(
                f"{acknowledged} of {self.replicas} replica(s) acknowledged within "
                f"{self.timeout_ms} ms"
            )
        return results


class ReplicatedRedis(Redis):
    """A client whose transactions (pipelines) wait for replicas: see ReplicatedPipeline."""

    replicas = 0
    timeout_ms = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A pipeline that waits for the replicas after each transaction."""
        pipe = ReplicatedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.replicas, pipe.timeout_ms = self.replicas, self.timeout_ms
        return pipe


def sentinel_addresses(config: Settings) -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; empty when it is not set."""
    addresses = []
    for item in filter(None, (part.strip() for part in config.redis_sentinels.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeError("REDIS_SENTINELS: write host:port,host:port,...")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def primary_credentials(config: Settings) -> dict[str, Any]:
    """What REDIS_URL says besides where Redis is: user, password, db, TLS (rediss://)."""
    url = urlsplit(config.redis_url)
    return {
        "username": unquote(url.username) if url.username else None,
        "password": unquote(url.password) if url.password else None,
        "db": int(url.path.strip("/") or 0),
        "ssl": url.scheme == "rediss",
    }


def primary_connection_class(config: Settings) -> type[PrimaryConnection]:
    """The class of the connections to the primary that the Sentinels name."""
    return PrimarySSLConnection if primary_credentials(config)["ssl"] else PrimaryConnection


def sentinels(config: Settings, **options: Any) -> Sentinel:
    """The Sentinels of REDIS_SENTINELS; `options` go to the connections to the primary."""
    return Sentinel(
        sentinel_addresses(config),
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "password": config.redis_sentinel_password or None,
        },
        **primary_credentials(config),
        connection_class=primary_connection_class(config),
        **options,
    )


def redis_client(config: Settings, **options: Any) -> Redis:
    """A client of the primary: REDIS_URL's, or the one the Sentinels name, found again after a
    failover (redis-py asks them on a connection error or a READONLY answer). With
    REDIS_WAIT_REPLICAS, its transactions wait for that many replicas. `options`: redis-py's
    connection options (timeouts)."""
    redis_class = ReplicatedRedis if config.redis_wait_replicas > 0 else Redis
    if config.redis_sentinels:
        client = sentinels(config, **options).master_for(
            config.redis_sentinel_master, redis_class=redis_class
        )
    else:
        client = redis_class.from_url(config.redis_url, **options)
    if isinstance(client, ReplicatedRedis):
        client.replicas = config.redis_wait_replicas
        client.timeout_ms = config.redis_wait_timeout_ms
    return client


def ride_out_retry() -> Retry:
    """redis-py's retry of a command through about RIDE_OUT_SECONDS of connection errors."""
    backoff = ExponentialBackoff(cap=1.0, base=0.05)  # 0.05 s, doubling, then every second
    return Retry(backoff, retries=RIDE_OUT_SECONDS + 5)


def rq_settings(config: Settings) -> dict[str, Any]:
    """The settings `rq worker` and `rq cron` take their Redis from (gateway.rq_config):
    REDIS_URL, or RQ's SENTINEL dict for the same primary as the web's."""
    if not config.redis_sentinels:
        return {"REDIS_URL": config.redis_url}
    credentials = primary_credentials(config)
    return {
        "SENTINEL": {
            "INSTANCES": sentinel_addresses(config),
            "MASTER_NAME": config.redis_sentinel_master,
            "USERNAME": credentials["username"],
            "PASSWORD": credentials["password"],
            "DB": credentials["db"],
            "SSL": credentials["ssl"],
            # Above the worker's longest BLPOP (RQ raises a worker's to it if lower).
            "SOCKET_TIMEOUT": 30,
            "CONNECTION_KWARGS": {
                "connection_class": primary_connection_class(config),
                "socket_connect_timeout": 2,
                "retry": ride_out_retry(),
            },
            "SENTINEL_KWARGS": {
                "socket_timeout": SENTINEL_TIMEOUT,
                "socket_connect_timeout": SENTINEL_TIMEOUT,
                "password": config.redis_sentinel_password or None,
            },
        }
    }
