"""Webhooks: the event log, delivered to HTTP receivers, signed, at least once."""

from __future__ import annotations

from .delivery import Delivery, EventSource
from .signing import SIGNATURE_HEADER, sign, verify

__all__ = ["SIGNATURE_HEADER", "Delivery", "EventSource", "sign", "verify"]
