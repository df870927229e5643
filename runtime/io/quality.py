"""Input quality: what a program, the OPC UA server and the journal agree on.

The numbers are what `IO_QUALITY(x)` returns in ST, so they are part of the
language contract: never renumber them.
"""
from __future__ import annotations

GOOD = 0        # fresh value from the device
STALE = 1       # no update within the point's timeout: last value kept, not trusted
BAD = 2         # the device answered but the value is unusable (decode error, SunSpec
                # "not implemented", out of its valid range, device reports Bad)
WAITING = 3     # nothing received yet since start (or since the device came back)

NAMES = {GOOD: "good", STALE: "stale", BAD: "bad", WAITING: "waiting"}
BY_NAME = {v: k for k, v in NAMES.items()}
