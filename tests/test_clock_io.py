"""The site clock as an input (`transport = "clock"`): calendar fields of the
wall clock in a chosen zone, checked in the map, published like any point,
and read by a live program through the I/O process."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from runtime.io.clock_driver import ClockDriver, clock_synchronized, clock_values
from runtime.io.config import Device, Point
from runtime.io.image import InputStage, IoPort, OutputImage
from runtime.io.iomap import IoMapError, load_iomap
from runtime.io.quality import BAD, GOOD
from runtime.live import LiveRuntime
from runtime.site import load_site

# 2026-03-29 00:59:59 UTC is 01:59:59 CET; one second later Berlin is on CEST (03:00:00)
BEFORE_DST_NS = int(datetime(2026, 3, 29, 0, 59, 59, tzinfo=timezone.utc).timestamp()) * 1_000_000_000


def test_fields_in_a_zone_follow_daylight_saving():
    from zoneinfo import ZoneInfo
    berlin = ZoneInfo("Europe/Berlin")
    a = clock_values(BEFORE_DST_NS, berlin)
    b = clock_values(BEFORE_DST_NS + 1_000_000_000, berlin)
    assert (a["hour"], a["minute"], a["second"], a["seconds_of_day"], a["utc_offset"]) == (1, 59, 59, 7199, 3600)
    assert (b["hour"], b["seconds_of_day"], b["utc_offset"]) == (3, 10800, 7200)
    assert (a["year"], a["month"], a["day"], a["day_of_week"], a["day_of_year"]) == (2026, 3, 29, 7, 88)
    u = clock_values(BEFORE_DST_NS, timezone.utc)
    assert u["seconds_of_day"] == 3599 and u["unix_seconds"] == BEFORE_DST_NS // 1_000_000_000


def test_the_driver_publishes_every_point_with_the_engine_clock_as_timestamp():
    stage = InputStage()
    port = IoPort(stage, OutputImage(), lambda: 42)
    dev = Device("clk", "clock", zone="UTC")
    pts = [Point("Main.sod", "clk", "input", clock="seconds_of_day"), Point("Main.dow", "clk", "input", clock="day_of_week")]
    drv = ClockDriver(dev, pts, port, wall_ns=lambda: BEFORE_DST_NS, synchronized=lambda: True)
    drv.publish_once()
    got = {p: (u.value, u.quality, u.ts_ns) for p, u in stage.drain().items()}
    assert got == {"Main.sod": (3599, GOOD, 42), "Main.dow": (7, GOOD, 42)}
    assert drv.stats()["published"] == 1


def test_an_unsynchronised_clock_is_published_bad_unless_the_map_says_not_to_care():
    for require, sync, want in ((True, False, BAD), (True, True, GOOD), (True, None, GOOD), (False, False, GOOD)):
        stage = InputStage()
        dev = Device("clk", "clock", zone="UTC", require_sync=require)
        drv = ClockDriver(dev, [Point("Main.sod", "clk", "input", clock="seconds_of_day")],
                          IoPort(stage, OutputImage(), lambda: 1), wall_ns=lambda: BEFORE_DST_NS,
                          synchronized=lambda: sync)
        drv.publish_once()
        u = stage.drain()["Main.sod"]
        assert (u.value, u.quality) == (3599, want), (require, sync)
    assert clock_synchronized() in (True, False, None)      # the real kernel call answers


MAP = """
[devices.clk]
transport = "clock"
zone = "{zone}"
period = "50ms"
require_sync = false

[[points]]
var = "Main.sod"
device = "clk"
clock = "{field}"
{extra}
"""


def test_a_bad_clock_map_names_file_line_and_key(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text(MAP.format(zone="Mars/Olympus", field="fortnight", extra='direction = "output"'))
    with pytest.raises(IoMapError) as e:
        load_iomap(str(p))
    msgs = e.value.problems
    assert any(m.startswith(f"{p}:4: devices.clk.zone: unknown time zone 'Mars/Olympus'") for m in msgs), msgs
    assert any(m.startswith(f"{p}:11: points[0].clock: 'fortnight': one of seconds_of_day") for m in msgs), msgs
    assert any(f"{p}:" in m and "points[0].direction: a clock point is an input" in m for m in msgs), msgs


PROGRAM = """
PROGRAM Main
VAR
    sod : {type};
    seen : DINT;
END_VAR
seen := sod;
END_PROGRAM
"""


def _site(tmp_path, type_="DINT", field="seconds_of_day"):
    (tmp_path / "prog.st").write_text(PROGRAM.format(type=type_))
    (tmp_path / "map.toml").write_text(MAP.format(zone="UTC", field=field, extra=""))
    p = tmp_path / "site.toml"
    p.write_text('[site]\nsources = ["prog.st"]\ninterval = "10ms"\nstate_dir = "state"\nio_maps = ["map.toml"]\n')
    return p


def test_a_variable_too_small_for_the_field_is_refused(tmp_path, capsys):
    from runtime.cli import main
    _site(tmp_path, type_="INT", field="unix_seconds")
    assert main(["check", str(tmp_path / "prog.st"), str(tmp_path / "map.toml")]) == 1
    err = capsys.readouterr()
    assert "clock field unix_seconds spans 0..1.09951e+12; INT holds -32768..32767" in err.out + err.err


def test_a_live_program_reads_the_site_clock(tmp_path):
    rt = LiveRuntime(load_site(str(_site(tmp_path))))
    rt.start()
    try:
        assert rt.io.process is not None            # the clock runs in the I/O process like every driver
        deadline = time.monotonic() + 10
        while rt.engine.quality("Main.sod")[0] != GOOD and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        seen = rt.engine.tag("Main.seen").get()
        now = clock_values(time.time_ns(), timezone.utc)["seconds_of_day"]
        assert (now - seen) % 86400 <= 3, (seen, now)
        assert rt.engine.quality("Main.sod")[0] == GOOD
    finally:
        rt.stop()
