"""The garbage collector after startup: what was built to start never needs scanning again.

A full collection walks every object the collector tracks, and while a big room fills
up Python runs one each time the long-lived objects grew by a quarter: seven times
while 10,000 people join, at up to 0.2 s each (docs/benchmarks.md section 13).  The
modules, classes and functions loaded at startup (about 130,000 objects, most of the
heap until thousands of people are connected) live as long as the process, so they
are moved out of the collector's sight once the server is up (``gc.freeze``); what
startup left as garbage is collected first.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect startup's garbage, then exempt everything still alive from later scans."""
    gc.collect()
    gc.freeze()
