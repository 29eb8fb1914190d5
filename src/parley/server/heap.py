"""The garbage collector after startup: what was built to start never needs scanning again.

A full collection walks every object the collector tracks, and while a big room fills
up Python runs one each time the long-lived objects grew by a quarter: seven times
while 10,000 people join, at up to 0.2 s each (docs/benchmarks.md section 13).  The
modules, classes and functions loaded at startup (about 130,000 objects, most of the
heap until thousands of people are connected) live as long as the process, so they
are moved out of the collector's sight once the server is up (``gc.freeze``); what
startup left as garbage is collected first.

The youngest generation is then collected every ``YOUNG_THRESHOLD`` allocations rather
than CPython's 700: every participant's objects (about 15 tracked per socket) outlive
a young collection, so while a big room fills, collections ran hundreds of times and
promoted whole cohorts into the generations that full collections walk (about 0.5 s of the
CPU of 10,000 joins, docs/benchmarks.md 13.2).  A young generation of 10,000 objects is
about a megabyte; cycles still die young.
"""

from __future__ import annotations

import gc

#: Allocations (of objects the collector tracks) between two young collections.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect startup's garbage, exempt everything still alive from later scans, and
    collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
