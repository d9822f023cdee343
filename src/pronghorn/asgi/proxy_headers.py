"""Pure proxy-header logic: (headers, peer, trusted networks) -> client, scheme.

Only a peer inside ``--forwarded-allow-ips`` may speak for the client. ``X-Forwarded-For`` is read
right to left and the first address that is not itself a trusted proxy is the client, so a
client cannot forge its address by prepending entries.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final

from pronghorn.errors import ConfigError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: X-Forwarded-Proto values understood, and the scope scheme each means.
_SCHEMES: Final = {"http": "http", "ws": "http", "https": "https", "wss": "https"}

#: Hosts whose verdict is remembered. Parsing an address with ``ipaddress`` is some 40k
#: instructions, and behind a proxy every request asks about the same few hosts; a larger
#: population than this starts the memo over.
VERDICTS_REMEMBERED: Final = 4096


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    trust_all: bool
    networks: tuple[_Network, ...]
    #: Non-IP peers (UNIX socket paths or names) listed literally.
    literals: frozenset[str]
    _verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

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
        verdicts = self._verdicts
        verdict = verdicts.get(host)
        if verdict is None:
            verdict = self._decide(host)
            if len(verdicts) >= VERDICTS_REMEMBERED:
                verdicts.clear()
            verdicts[host] = verdict
        return verdict

    def _decide(self, host: str) -> bool:
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def peer_is_trusted(client: tuple[str, int] | None, trusted: TrustedProxies) -> bool:
    """Whether this peer may speak for the client (computed once per connection)."""
    if client is None:
        return trusted.trust_all  # a UNIX socket peer has no address: only '*' trusts it
    return client[0] in trusted


def apply_proxy_headers(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None,
    scheme: str,
    trusted: TrustedProxies,
    *,
    peer_trusted: bool | None = None,
) -> tuple[tuple[str, int] | None, str]:
    """The client address and scheme the request really came from."""
    if peer_trusted is None:
        peer_trusted = peer_is_trusted(client, trusted)
    if not peer_trusted:
        return client, scheme
    # Made when first needed: most requests carry neither header (a proxy may send none).
    protos: list[bytes] | None = None
    hops: list[bytes] | None = None
    for name, value in headers:
        if name == b"x-forwarded-for":
            if hops is None:
                hops = []
            hops.append(value)
        elif name == b"x-forwarded-proto":
            if protos is None:
                protos = []
            protos.append(value)
    if protos:
        # Only the last value counts, and it is in the last header: nothing to join.
        proto = protos[-1].decode("latin-1").rpartition(",")[2].strip().lower()
        scheme = _SCHEMES.get(proto, scheme)
    if hops:
        chosen: str | None = None
        forwarded = hops[0] if len(hops) == 1 else b",".join(hops)
        for hop in reversed(forwarded.decode("latin-1").split(",")):
            hop = hop.strip()
            if not hop:
                continue
            chosen = hop
            if hop not in trusted:
                break
        if chosen is not None:
            client = (_strip_port(chosen), 0)
    return client, scheme


def _strip_port(hop: str) -> str:
    if ":" not in hop:  # an IPv4 address or a name, as proxies send them
        return hop
    if hop.startswith("["):  # [v6]:port
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop
