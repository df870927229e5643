"""The site clock as field I/O: calendar values of the wall clock, published
like any input (`transport = "clock"` in an I/O map).

The wall clock is read here, outside the scan, and reaches the program
through the input image like a meter reading: latched once per scan, with a
source timestamp, journalled, replayed. Offline runs drive these variables
from the scenario instead, so they stay deterministic.

    [devices.site_clock]
    transport = "clock"
    zone = "Europe/Berlin"        # IANA name; omitted: the system's local time
    period = "100ms"
    require_sync = true           # the default: BAD while the kernel says the clock is unsynchronised

A clock nobody set (a controller without a battery-backed RTC after a power
cut, NTP not yet through) would run a time-of-use schedule at the wrong
hours: while the kernel reports TIME_ERROR (adjtimex), the values still go
out but with BAD quality, so `IO_OK` is FALSE and the program can fall back.

    [[points]]
    var = "Dispatch.clockSecOfDay"
    device = "site_clock"
    clock = "seconds_of_day"
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from datetime import datetime, timezone

from .config import Device, Point
from .image import IoPort, Update
from .quality import BAD, GOOD

TIME_ERROR = 5                         # adjtimex: the clock is not synchronised
_libc = None


def clock_synchronized() -> bool | None:
    """What the kernel says of the system clock (a read-only ntp_adjtime);
    None where it cannot tell."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(512)     # struct timex, modes = 0: read only
        state = _libc.ntp_adjtime(buf)
    except (OSError, AttributeError, TypeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR

# field -> (lowest, highest) value, for the map's type check
CLOCK_FIELDS = {
    "seconds_of_day": (0, 86399),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
    "day_of_week": (1, 7),             # ISO: Monday 1 .. Sunday 7
    "day": (1, 31),
    "month": (1, 12),
    "year": (1970, 9999),
    "day_of_year": (1, 366),
    "utc_offset": (-50400, 50400),     # seconds east of UTC, daylight saving included
    "unix_seconds": (0, (1 << 40) - 1),
}


def zone_of(name: str | None):
    """tzinfo for an IANA name (raises ValueError if unknown); None: the system's local zone."""
    if name is None:
        return None
    if name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r} ({type(e).__name__})") from None


def clock_values(wall_ns: int, zone) -> dict[str, int]:
    """Every field at wall time wall_ns (ns since the epoch, UTC) in zone."""
    secs = wall_ns // 1_000_000_000
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    dt = dt.astimezone(zone) if zone is not None else dt.astimezone()
    off = dt.utcoffset()
    return {
        "seconds_of_day": dt.hour * 3600 + dt.minute * 60 + dt.second,
        "hour": dt.hour, "minute": dt.minute, "second": dt.second,
        "day_of_week": dt.isoweekday(), "day": dt.day, "month": dt.month, "year": dt.year,
        "day_of_year": dt.timetuple().tm_yday,
        "utc_offset": int(off.total_seconds()) if off is not None else 0,
        "unix_seconds": secs,
    }


class ClockDriver:
    def __init__(self, device: Device, points: list[Point], port: IoPort, wall_ns=time.time_ns,
                 synchronized=clock_synchronized):
        self.device = device
        self.points = [p for p in points if p.direction == "input"]
        self.port = port
        self.zone = zone_of(device.zone)
        self._wall_ns = wall_ns
        self._synchronized = synchronized
        self._sync: bool | None = None
        self._published = 0
        self._state = "starting"

    def publish_once(self) -> None:
        values = clock_values(self._wall_ns(), self.zone)
        ts = self.port.clock_ns()
        self._sync = self._synchronized() if self.device.require_sync else None
        q = BAD if self._sync is False else GOOD
        self.port.publish([Update(p.var, values[p.clock], q, ts) for p in self.points])
        self._published += 1

    async def run(self) -> None:
        period = self.device.period_ns / 1e9
        self._state = "running"
        try:
            while True:
                self.publish_once()
                await asyncio.sleep(period)
        finally:
            self._state = "stopped"

    def stats(self) -> dict:
        return {"state": self._state, "transport": "clock", "zone": self.device.zone or "local",
                "published": self._published, "require_sync": self.device.require_sync,
                "synchronized": self._sync}
