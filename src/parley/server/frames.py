"""WebSocket frames built by hand, once per fan-out.

Server-to-client frames are never masked (RFC 6455 §5.1), so one frame's
bytes serve every recipient: the fan-out writes the same ``bytes`` object to
each transport instead of re-framing per client.
"""

from __future__ import annotations

import struct

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying ``payload`` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return _SHORT.pack(_FIN_TEXT, n) + payload
    if n < 65536:
        return _MEDIUM.pack(_FIN_TEXT, 126, n) + payload
    return _LONG.pack(_FIN_TEXT, 127, n) + payload
