"""Where the gateway's outbound calls may go (API.md, Conventions): public addresses only, save
the hosts, IPs and networks ALLOW_PRIVATE_HOSTS names (the local simulators); and in production,
https:// only. URLs are checked when a partner is created, and every connection the shared HTTP
session opens is checked again, against the address it actually connects to: a name that
resolved elsewhere when it was checked is not followed to a private address later.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from gateway.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SessionType = TypeVar("SessionType", bound=requests.Session)


class RefusedAddress(ValueError):  # noqa: N818 (a refusal, said to a person as it is)
    """An outbound URL the gateway will not call: why, for the person who gave it."""


@dataclass(frozen=True)
class Allowed:
    """ALLOW_PRIVATE_HOSTS, parsed: host names, and IPs or networks."""

    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    def admits(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """True when the setting names the host or holds the address."""
        return host in self.hosts or any(address in network for network in self.networks)


@functools.cache
def allowed(setting: str) -> Allowed:
    """The comma-separated setting as hosts and networks (an IP is a network of one)."""
    hosts, networks = set(), []
    for entry in (part.strip().lower() for part in setting.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return Allowed(frozenset(hosts), tuple(networks))


def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (tests stub this: no packet leaves them)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    return mapped or ip


def checked_addresses(host: str, port: int, setting: str) -> list[str]:
    """The addresses to connect to for `host`; RefusedAddress when any of them is loopback,
    private, link-local or otherwise not public and the setting does not allow it;
    socket.gaierror when the name does not resolve."""
    host = host.lower().rstrip(".")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = resolve(host, port)
    rules = allowed(setting)
    for address in addresses:
        ip = _ip(address)
        if not (ip.is_global and not ip.is_multicast) and not rules.admits(host, ip):
            named = "is" if address == host else f"resolves to {address}, which is"
            raise RefusedAddress(
                f"{host} {named} a loopback, private or link-local address; the gateway calls "
                "public addresses only (ALLOW_PRIVATE_HOSTS names exceptions)."
            )
    return addresses


def refuse_insecure(url: str, config: Settings) -> None:
    """RefusedAddress for http:// outside development: credentials and personal data would
    travel in clear."""
    if urlsplit(url).scheme != "https" and not config.development:
        raise RefusedAddress("Use https:// (http:// is for development only).")


def refuse_private(url: str, config: Settings) -> None:
    """RefusedAddress when the URL's host is, or resolves to, an address we don't call. A name
    that does not resolve (yet) passes: every connection to it is checked again."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        checked_addresses(parts.hostname or "", port, config.allow_private_hosts)
    except OSError:  # socket.gaierror: no such name now
        return


# ---- the check at each connection ---------------------------------------------------------------


def unsafe_urls(urls: dict[str, str | None], config: Settings) -> dict[str, list[str]]:
    """Why each of these URLs (by field name) would be refused: http:// in production, or a
    private address; the fields that pass are left out."""
    errors: dict[str, list[str]] = {}
    for name, url in urls.items():
        try:
            if url:
                refuse_insecure(url, config)
                refuse_private(url, config)
        except RefusedAddress as refused:
            errors[name] = [str(refused)]
    return errors


class _Checked:
    """A urllib3 connection that connects only to addresses `checked_addresses` lets through,
    the very ones it checked (no second lookup for a name to change its answer in between)."""

    host: str
    port: int
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        setting = Settings.from_env().allow_private_hosts  # the process's own settings
        try:
            addresses = checked_addresses(self._dns_host, self.port, setting)
        except RefusedAddress as refused:
            raise NewConnectionError(self, f"Refused: {refused}") from None
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        name = self._dns_host
        failure = NewConnectionError(self, f"{name} resolves to no address")
        for address in addresses:
            self._dns_host = address  # TLS still checks the certificate against self.host
            try:
                return super()._new_conn()
            except ConnectTimeoutError as error:  # NewConnectionError too: try the next one
                failure = error
            finally:
                self._dns_host = name
        raise failure


class CheckedHTTPConnection(_Checked, HTTPConnection):
    """http:// connections, checked."""


class CheckedHTTPSConnection(_Checked, HTTPSConnection):
    """https:// connections, checked."""


class CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = CheckedHTTPConnection


class CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """requests' adapter whose pools open checked connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager, with our pool classes."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": CheckedHTTPPool,
            "https": CheckedHTTPSPool,
        }


def check_connections(session: SessionType) -> SessionType:
    """The session, each of whose connections is now checked (see the module's docstring)."""
    session.mount("http://", CheckedAdapter())
    session.mount("https://", CheckedAdapter())
    return session
