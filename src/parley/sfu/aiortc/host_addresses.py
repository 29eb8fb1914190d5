"""Which local addresses the SFU's ICE connections gather host candidates on.

aioice looks them up itself (``aioice.ice.get_host_addresses``: every interface up but
loopback); these functions replace that module function, process-wide:
:func:`restrict_host_addresses` for ``--media-ip``, :func:`include_loopback` for
``parley serve`` without it.
"""

from __future__ import annotations

import aioice.ice

__all__ = ["LOOPBACK", "include_loopback", "restrict_host_addresses"]

_original_get_host_addresses = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: list[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (process-wide); None restores."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


#: The loopback address :func:`include_loopback` adds to aioice's host addresses.
LOOPBACK = "127.0.0.1"


def include_loopback() -> None:
    """Gather ICE host candidates on 127.0.0.1 too, besides aioice's own (process-wide).

    aioice leaves loopback out, so on a machine with no other interface up (a laptop
    offline, a container or network namespace with only ``lo``) the SFU would offer no
    candidate at all, and browsers on that machine (``parley serve``, two tabs on
    ``http://127.0.0.1:8000``) could not reach it.  The price is one more socket and
    candidate per ICE connection; remote browsers' checks towards it simply fail.  The
    other addresses are still looked up at each gathering, as aioice does.
    ``restrict_host_addresses(None)`` undoes it.
    """

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = list(_original_get_host_addresses(use_ipv4, use_ipv6))
        if use_ipv4 and LOOPBACK not in addresses:
            addresses.append(LOOPBACK)
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses
