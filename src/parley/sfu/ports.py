"""Parsing the SFU's media socket settings (``--media-port``, ``--media-public-ip``).

Kept free of aiortc imports: the command line uses it before anything media-related
is loaded.  Errors are :class:`BadMediaSetting`, a ``ValueError`` that argparse also
reports verbatim (it is an ``ArgumentTypeError``), so ``parley serve --media-port 5-3``
answers ``argument --media-port: 5-3: the first port is above the last``.
"""

from __future__ import annotations

import argparse
import ipaddress

__all__ = ["BadMediaSetting", "format_ports", "parse_port_range", "parse_public_ip"]

EXAMPLE = "e.g. 40000 or 40000-40099"


class BadMediaSetting(argparse.ArgumentTypeError, ValueError):
    """A malformed ``--media-port`` / ``--media-public-ip`` value."""


def _port(text: str, whole: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise BadMediaSetting(f"{whole!r} is not a UDP port or port range ({EXAMPLE})")
    port = int(text)
    if not 1 <= port <= 65535:
        raise BadMediaSetting(f"{whole}: port {port} is outside 1-65535")
    return port


def parse_port_range(text: str) -> tuple[int, int]:
    """``"40000"`` -> ``(40000, 40000)``; ``"40000-40099"`` -> ``(40000, 40099)``."""
    whole = text.strip()
    first, sep, last = whole.partition("-")
    low = _port(first, whole)
    high = _port(last, whole) if sep else low
    if low > high:
        raise BadMediaSetting(f"{whole}: the first port is above the last ({EXAMPLE})")
    return low, high


def parse_public_ip(text: str) -> str:
    """A literal IPv4/IPv6 address (no host names: it goes into ICE candidates as is)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise BadMediaSetting(
            f"{text!r} is not an IP address (the public address of this host, e.g. 203.0.113.7)"
        ) from None
    if address.is_unspecified or address.is_multicast:
        raise BadMediaSetting(f"{text}: not a unicast address")
    return address.compressed


def format_ports(ports: tuple[int, int]) -> str:
    low, high = ports
    return str(low) if low == high else f"{low}-{high}"
