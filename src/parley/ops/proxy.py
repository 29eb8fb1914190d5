"""The client's real address behind a reverse proxy (nginx), for per-address limits.

Behind nginx every connection comes from 127.0.0.1, so the per-address limits
(connections, message rate, password attempts) would lump all clients
together.  nginx appends the address it saw to ``X-Forwarded-For``; the
client's address is the rightmost entry that is not one of our own proxies.
Entries further left are whatever the client sent and are never trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed, as addresses or CIDR ranges."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if not address or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def client_address(self, remote: str | None, forwarded_for: str | None) -> str | None:
        """``remote``, or when it is a trusted proxy, the client it forwarded for.

        Call as ``proxies.client_address(request.remote,
        request.headers.get("X-Forwarded-For"))``.
        """
        if not forwarded_for or not self.trusts(remote):
            return remote
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            if not hop:
                continue
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop.strip("[]")))
                except ValueError:
                    return remote  # garbage where an address should be: do not guess
        return remote
