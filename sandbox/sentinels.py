"""A Redis primary, its replicas and three Sentinels on loopback, all the one redis-server binary,
for the failover test and the WAIT bench: kill the primary and a replica takes over."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from redis import Redis
from redis.exceptions import ResponseError

from sandbox.local import free_port, redis_server_binary, wait_for

MASTER = "gateway"  # the name the Sentinels monitor the primary under (REDIS_SENTINEL_MASTER)
# Sentinel's own periods, shortened where the server has `SENTINEL DEBUG` (Redis 7): it looks at
# each server (INFO) every 10 s and says hello every 2 s; a busy machine that holds a Sentinel
# back 2 s makes it distrust its clock and do nothing for 30 s ("tilt").
SENTINEL_PERIODS = {"info-period": 500, "publish-period": 500, "tilt-trigger": 10000}


class RedisWithSentinels:
    """A primary, `replicas` replicas and three Sentinels (quorum 2), AOF on, in `folder`."""

    def __init__(
        self, folder: Path, replicas: int = 1, down_after_ms: int = 1000, failover_ms: int = 4000
    ) -> None:
        """Configure; nothing runs until `start`."""
        self.folder = folder
        self.replicas = replicas
        self.down_after_ms = down_after_ms
        self.failover_ms = failover_ms
        self.servers: dict[int, subprocess.Popen] = {}  # the data servers, by port
        self.sentinels: dict[int, subprocess.Popen] = {}

    def start(self) -> None:
        """Start the servers, wait for the replicas to be in sync, then start the Sentinels and
        wait until each knows the replicas and the other two."""
        primary = free_port()
        self.start_server(primary)
        for _ in range(self.replicas):
            self.start_server(free_port(), replica_of=primary)
        self.wait_for_replicas(primary, self.replicas)
        for n in range(3):
            self._start_sentinel(n, primary)
        for port in self.sentinels:
            sentinel = _client(port)
            with contextlib.suppress(ResponseError):  # Redis 6: the default periods, slower
                sentinel.execute_command("SENTINEL DEBUG", *_flat(SENTINEL_PERIODS))
            wait_for(
                "the Sentinels to know each other and the replicas",
                lambda s=sentinel: (
                    (state := s.sentinel_master(MASTER))["num-other-sentinels"] == 2
                    and state["num-slaves"] == self.replicas
                ),
                timeout=30,
            )

    def start_server(self, port: int, replica_of: int | None = None) -> None:
        """A data server on `port`, its files under folder/<port> (again after a kill)."""
        folder = self.folder / str(port)
        folder.mkdir(exist_ok=True)
        command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--dir", str(folder), "--save", "", "--appendonly", "yes"]
        # Any server may be a primary that a replica syncs from: send it at once, over the socket.
        command += ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        if replica_of:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
        with open(self.folder / f"redis-{port}.log", "ab") as log:
            self.servers[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for("redis-server", _client(port).ping, timeout=10, interval=0.05)

    def _start_sentinel(self, n: int, primary: int) -> None:
        port = free_port()
        config = self.folder / f"sentinel-{n}.conf"  # Sentinel rewrites it: its state
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} {self.failover_ms}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        with open(self.folder / f"sentinel-{n}.log", "ab") as log:
            self.sentinels[port] = subprocess.Popen(
                [redis_server_binary(), str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for("redis-sentinel", _client(port).ping, timeout=10, interval=0.05)

    def settings(self) -> dict[str, str]:
        """The gateway's settings for this primary: found through the Sentinels."""
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER,
            "REDIS_URL": "redis://primary/0",  # its host is not used; its db is
        }

    def primary(self) -> int:
        """The primary's port, as the Sentinels all say (TimeoutError while they disagree)."""

        def agreed() -> int | None:
            said = {
                _client(port).sentinel_get_master_addr_by_name(MASTER) for port in self.sentinels
            }
            return int(said.pop()[1]) if len(said) == 1 else None

        return wait_for("the Sentinels to agree on the primary", agreed, timeout=10)

    def kill(self, port: int) -> None:
        """SIGKILL a data server: no shutdown, no last write to its files."""
        self.servers[port].kill()
        self.servers[port].wait(10)

    def wait_for_replicas(self, primary: int, count: int, timeout: float = 60) -> None:
        """Until `primary` is a primary with `count` replicas in sync (online)."""

        def in_sync() -> bool:
            info = _client(primary).info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit()]
            online = [r for r in online if isinstance(r, dict) and r.get("state") == "online"]
            return info["role"] == "master" and len(online) >= count

        wait_for("the replicas to be in sync", in_sync, timeout=timeout)

    def stop(self) -> None:
        """Stop the Sentinels, then the servers."""
        for process in [*self.sentinels.values(), *self.servers.values()]:
            process.terminate()
        for process in [*self.sentinels.values(), *self.servers.values()]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _client(port: int) -> Redis:
    return Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)


def _flat(pairs: dict[str, int]) -> list[str | int]:
    return [item for pair in pairs.items() for item in pair]
