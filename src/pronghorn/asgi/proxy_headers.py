"""Pure proxy-header logic: (headers, peer, trusted networks) -> client, scheme.

Only a peer inside ``--forwarded-allow-ips`` may speak for the client. ``X-Forwarded-For`` is read
right to left and the first address that is not itself a trusted proxy is the client, so a
client cannot forge its address by prepending entries.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pronghorn.errors import ConfigError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    trust_all: bool
    networks: tuple[_Network, ...]
    #: Non-IP peers (UNIX socket paths or names) listed literally.
    literals: frozenset[str]

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        if "*" in items:
            return cls(True, (), frozenset())
        networks: list[_Network] = []
        literals: set[str] = set()
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if "/" in item or item.replace(".", "").isdigit():
                    raise ConfigError(
                        f"--forwarded-allow-ips: {item!r} is not an IP or CIDR"
                    ) from None
                literals.add(item)
        return cls(False, tuple(networks), frozenset(literals))

    def __contains__(self, host: object) -> bool:
        if self.trust_all:
            return True
        if not isinstance(host, str):
            return False
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The last value of ``name``, joining repeated fields as the RFC allows."""
    values = [value for key, value in headers if key == name]
    if not values:
        return None
    return b",".join(values)


def apply_proxy_headers(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    scheme: str,
    trusted: TrustedProxies,
) -> tuple[tuple[str, int] | None, str]:
    """The client address and scheme the request really came from."""
    peer = client[0] if client else None
    if peer is None and not trusted.trust_all:
        return client, scheme
    if peer is not None and peer not in trusted:
        return client, scheme
    proto = _header(headers, b"x-forwarded-proto")
    if proto is not None:
        value = proto.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        if value in ("http", "https", "ws", "wss"):
            scheme = "https" if value in ("https", "wss") else "http"
    forwarded_for = _header(headers, b"x-forwarded-for")
    if forwarded_for is not None:
        hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",")]
        chosen: str | None = None
        for hop in reversed(hops):
            if not hop:
                continue
            chosen = hop
            if hop not in trusted:
                break
        if chosen is not None:
            client = (_strip_port(chosen), 0)
    return client, scheme


def _strip_port(hop: str) -> str:
    if hop.startswith("["):  # [v6]:port
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop
