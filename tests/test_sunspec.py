"""SunSpec discovery and naming (runtime/io/sunspec.py), the PCS and meter
simulators, and the Modbus driver against them over real sockets."""
import math
import time

import pytest

from runtime.io.config import Device, Point
from runtime.io.modbus_client import ModbusDriver
from runtime.io.modbus_codec import Field, decode, raw_to_words
from runtime.io.quality import BAD, GOOD, STALE
from runtime.io.sunspec import (MODELS, ImageBuilder, SunSpecError, SunSpecMap, check_ref, discover, parse_ref,
                                resolve)
from runtime.sim_devices.meter import MeterSim
from runtime.sim_devices.plant import Battery, Site
from runtime.sim_devices.sunspec_inverter import InverterSim, SunSpecSim
from tests.test_modbus_client import PERIOD_NS, TIMEOUT_NS, Rig, driving, run


def ss_device(port, **kw):
    kw.setdefault("period_ns", PERIOD_NS)
    kw.setdefault("timeout_ns", TIMEOUT_NS)
    kw.setdefault("backoff_max_ns", 400_000_000)
    return Device("pcs", "modbus", host="127.0.0.1", port=port, sunspec=True, **kw)


def ss_in(var, name):
    return Point(var, "pcs", "input", sunspec=name)


def ss_out(var, name):
    return Point(var, "pcs", "output", sunspec=name)


# ---------------------------------------------------------------- the tables
def test_model_tables_follow_the_published_models():
    assert {m: MODELS[m].length for m in MODELS} == {1: 66, 124: 24, 203: 105, 802: 62, 803: 26}
    p = MODELS[802].points
    assert (p["SoC"].offset, p["SoC"].sf, p["SoH"].offset, p["V"].offset, p["A"].type) == (11, "SoC_SF", 13, 34, "int16")
    assert (p["SoC_SF"].offset, p["W_SF"].offset, p["NCyc"].size) == (56, 63, 2)
    s = MODELS[124].points
    assert (s["WChaMax"].offset, s["StorCtl_Mod"].offset, s["OutWRte"].offset, s["InWRte"].offset) == (2, 5, 12, 13)
    assert (s["InOutWRte_SF"].offset, s["InWRte"].access, s["ChaState"].access) == (25, "RW", "R")
    m = MODELS[203].points
    assert (m["W"].offset, m["W_SF"].offset, m["TotWhImp"].offset, m["Evt"].offset) == (18, 22, 46, 105)
    assert (MODELS[1].points["SN"].offset, MODELS[1].points["DA"].offset) == (50, 66)
    assert MODELS[803].points["ModTmpMax"].offset == 4


def test_names_checked_with_a_clear_reason():
    assert parse_ref("802:2.SoC").index == 2 and parse_ref("124.InWRte").model == 124
    assert check_ref("802.SoC") is None
    assert "did you mean SoC" in check_ref("802.Soc")
    assert "not one gridplc knows" in check_ref("160.DCW")
    assert "not a number" in check_ref("1.SN")
    with pytest.raises(ValueError, match="model.point"):
        parse_ref("SoC")


def _reader(image: ImageBuilder):
    async def read(address, count):
        if any(a not in image.words for a in range(address, address + count)):
            return None
        return [image.words[a] for a in range(address, address + count)]
    return read


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovery_at_each_base(base):
    img = ImageBuilder(base)
    for mid in (1, 802, 124):
        img.add(mid)
    img.finish()
    smap = run(discover(_reader(img)))
    assert smap.base == base
    assert [(m.id, m.address, m.length) for m in smap.models] == [
        (1, base + 2, 66), (802, base + 70, 62), (124, base + 134, 24)]


def test_discovery_failures():
    img = ImageBuilder(40000)
    img.add(1)                                         # no end marker after it
    with pytest.raises(SunSpecError, match="model header at 40070"):
        run(discover(_reader(img)))
    with pytest.raises(SunSpecError, match="no SunSpec marker"):
        run(discover(_reader(ImageBuilder(100))))


def test_resolve_repeated_models_and_short_models():
    img = ImageBuilder()
    img.add(1)
    img.add(802)
    img.add(802)
    img.finish()
    smap = run(discover(_reader(img)))
    first, second = resolve(smap, "802.SoC"), resolve(smap, "802:2.SoC")
    assert second.address - first.address == 64
    assert first.sf_address == img.address_of(802, "SoC_SF")
    assert "no model 802 instance 3" in resolve(smap, "802:3.SoC")
    assert "no model 124" in resolve(smap, "124.InWRte")
    short = SunSpecMap(40000, [smap.models[0], type(smap.models[1])(802, 1, 40070, 20)])
    assert "lies beyond it" in resolve(short, "802.SoH")


@pytest.mark.parametrize("name,typ", [("802.A", "int16"), ("802.SoC", "uint16"), ("802.ChaSt", "enum16"),
                                      ("802.NCyc", "uint32"), ("802.Evt1", "bitfield32"), ("203.TotWhImp", "acc32")])
def test_not_implemented_values_by_type(name, typ):
    img = ImageBuilder()
    for mid in (1, 802, 203):
        img.add(mid)
    img.finish()
    smap = run(discover(_reader(img)))
    f = resolve(smap, name)
    assert MODELS[parse_ref(name).model].points[parse_ref(name).point].type == typ
    words = [img.words[f.address + k] for k in range(f.count)]      # a fresh image is all "not implemented"
    assert decode(f, words, f.address) == (None, "not implemented")
    ok = raw_to_words(1, f.type)
    assert decode(f, ok, f.address)[1] is None


# ---------------------------------------------------------------- the PCS simulator, alone
def test_inverter_setpoint_follows_model_124_and_bms_limits():
    sim = InverterSim(Battery(soc=0.5), wcha_max_w=7000)
    img = sim.image
    img.set(124, "OutWRte", 5000)                       # 50.00 %
    assert sim.setpoint_w() == 0.0                      # no DISCHARGE bit: no power
    img.set(124, "StorCtl_Mod", 2)
    assert sim.setpoint_w() == pytest.approx(3500.0)
    img.set(124, "StorCtl_Mod", 3)
    img.set(124, "InWRte", 10000)
    assert sim.setpoint_w() == pytest.approx(-3500.0)
    full = InverterSim(Battery(soc=0.99))
    full.image.set(124, "StorCtl_Mod", 1)
    full.image.set(124, "InWRte", 10000)
    full.apply()
    b = full.battery
    assert -b.power_w == pytest.approx(b.charge_current_limit_a() * b.voltage_v)   # tapered by the BMS
    assert -b.power_w < 7000 * 0.2


def test_inverter_reverts_without_a_controller():
    sim = InverterSim(Battery())

    async def main():
        a = sim.image.address_of(124, "StorCtl_Mod")
        assert await sim.write("holding", a, [2], "test") is None
        await sim.write("holding", sim.image.address_of(124, "OutWRte"), [4000], "test")
        await sim.write("holding", sim.image.address_of(124, "InOutWRte_RvrtTms"), [30], "test")
        assert await sim.write("holding", sim.image.address_of(802, "SoC"), [1], "test") == 2   # read-only
    run(main())
    sim.step(20.0)
    assert sim.battery.power_w == pytest.approx(2800.0)
    sim.step(20.0)
    assert sim.battery.power_w == 0.0


# ---------------------------------------------------------------- the driver against the simulators
def test_closed_loop_setpoint_moves_soc():
    battery = Battery(soc=0.5)
    sim = InverterSim(battery, wcha_max_w=7000)
    pts = [ss_in("M.soc", "802.SoC"), ss_in("M.soh", "802.SoH"), ss_in("M.v", "802.V"), ss_in("M.a", "802.A"),
           ss_in("M.t", "803.ModTmpMax"), ss_in("M.wmax", "124.WChaMax"), ss_in("M.chaMaxA", "802.AChaMax"),
           ss_out("M.mode", "124.StorCtl_Mod"), ss_out("M.outPct", "124.OutWRte"), ss_out("M.inPct", "124.InWRte")]

    async def main():
        rig = Rig()
        port = await sim.start()
        drv = ModbusDriver(ss_device(port), pts, rig.port)
        for k, v in (("M.mode", 0), ("M.outPct", 0.0), ("M.inPct", 0.0)):
            rig.outputs.values[k] = v
        async with driving(drv):
            await rig.until(lambda: rig.q("M.soc") == GOOD and rig.q("M.t") == GOOD, "first values")
            assert rig.v("M.soc") == 50.0 and rig.v("M.soh") == 98.5 and rig.v("M.wmax") == 7000
            assert rig.v("M.v") == pytest.approx(battery.voltage_v, abs=0.01) and rig.v("M.t") == 25.0
            assert rig.v("M.chaMaxA") == pytest.approx(140.0)
            rig.set_output("M.outPct", 50.0)              # 50 % of WChaMax, discharging
            rig.set_output("M.mode", 2)
            await rig.until(lambda: battery.power_w == pytest.approx(3500.0), "the setpoint reaches the PCS")
            assert sim.image.get(124, "OutWRte") == 5000     # written with InOutWRte_SF = -2
            for _ in range(30):
                sim.step(60.0)
            await rig.until(lambda: rig.v("M.soc") is not None and rig.v("M.soc") < 45.0, "SoC falls")
            assert rig.v("M.a") > 60.0                      # discharging current, > 0
            soc_low = rig.v("M.soc")
            rig.set_output("M.inPct", 25.0)
            rig.set_output("M.mode", 1)                     # charge at 25 %
            await rig.until(lambda: battery.power_w == pytest.approx(-1750.0), "charging setpoint")
            for _ in range(30):
                sim.step(60.0)
            await rig.until(lambda: rig.v("M.soc") > soc_low, "SoC rises")
            assert drv.stats()["sunspec"]["models"] == ["1@40002", "802@40070", "803@40134", "124@40194"]
        await sim.stop()
    run(main())


def test_not_implemented_and_bad_scale_factor_are_bad():
    sim = InverterSim(Battery())
    sim.not_implemented = {"802.SoH", "802.V_SF", "124.InBatV"}
    sim.publish()
    pts = [ss_in("M.soc", "802.SoC"), ss_in("M.soh", "802.SoH"), ss_in("M.v", "802.V"),
           ss_in("M.vin", "124.InBatV"), ss_in("M.missing", "802:2.SoC"), ss_out("M.soc_w", "802.SoC")]

    async def main():
        rig = Rig()
        port = await sim.start()
        drv = ModbusDriver(ss_device(port), pts, rig.port)
        rig.outputs.values["M.soc_w"] = 10.0
        async with driving(drv):
            await rig.until(lambda: rig.q("M.soc") == GOOD and len(rig.latest) == 5, "first poll")
            for p in ("M.soh", "M.v", "M.vin", "M.missing"):
                assert (rig.q(p), rig.v(p)) == (BAD, None), p
            errors = drv.stats()["point_errors"]
            assert "no model 802 instance 2" in errors["M.missing"]
            assert "read-only" in errors["M.soc_w"]
            sim.not_implemented = set()
            sim.image.set(802, "V_SF", -2)
            sim.publish()
            await rig.until(lambda: rig.q("M.soh") == GOOD and rig.q("M.v") == GOOD, "values once implemented")
            assert sim.writes == []
        await sim.stop()
    run(main())


@pytest.mark.parametrize("base", [0, 50000])
def test_driver_discovers_other_bases(base):
    sim = InverterSim(Battery(soc=0.25), base=base)

    async def main():
        rig = Rig()
        port = await sim.start()
        async with driving(ModbusDriver(ss_device(port), [ss_in("M.soc", "802.SoC")], rig.port)):
            await rig.until(lambda: rig.v("M.soc") == 25.0, "SoC via the chain at the other base")
        assert ("holding", 40000, 2) in sim.reads or base == 40000
        await sim.stop()
    run(main())


def test_device_without_marker_is_bad_and_retried():
    sim = SunSpecSim(ImageBuilder(100), "127.0.0.1", 0)       # the marker is at 100: not a SunSpec base

    async def main():
        rig = Rig()
        port = await sim.start()
        drv = ModbusDriver(ss_device(port), [ss_in("M.soc", "802.SoC")], rig.port)
        async with driving(drv):
            await rig.until(lambda: drv.stats()["connects"] >= 2 and rig.q("M.soc") == BAD, "BAD, retried")
            s = drv.stats()
        assert "no SunSpec marker" in s["point_errors"]["M.soc"] and s["sunspec"] is None
        await sim.stop()
    run(main())


def test_sim_killed_mid_run_goes_stale_then_recovers():
    battery = Battery(soc=0.6)
    sim = InverterSim(battery)

    async def main():
        rig = Rig()
        port = await sim.start()
        drv = ModbusDriver(ss_device(port), [ss_in("M.soc", "802.SoC"), ss_in("M.t", "803.ModTmpAvg")], rig.port)
        async with driving(drv):
            await rig.until(lambda: rig.v("M.soc") == 60.0, "first value")
            await sim.close_port()
            t0 = time.monotonic()
            await rig.until(lambda: rig.q("M.soc") == STALE and rig.q("M.t") == STALE, "STALE")
            assert time.monotonic() - t0 < TIMEOUT_NS / 1e9 + 1.0
            battery.soc = 0.55
            sim.publish()
            await sim.open_port()
            await rig.until(lambda: rig.v("M.soc") == 55.0 and rig.q("M.soc") == GOOD, "recovery", timeout_s=5)
            s = drv.stats()
            assert s["reconnects"] >= 1 and s["state"] == "connected"
        await sim.stop()
    run(main())


def test_sim_exception_responses_make_points_bad():
    sim = InverterSim(Battery())

    async def main():
        rig = Rig()
        port = await sim.start()
        drv = ModbusDriver(ss_device(port), [ss_in("M.soc", "802.SoC")], rig.port)
        async with driving(drv):
            await rig.until(lambda: rig.q("M.soc") == GOOD, "first value")
            sim.exception_code = 6
            await rig.until(lambda: rig.q("M.soc") == BAD, "BAD on exception 06")
            assert drv.stats()["exceptions"].get("06", 0) >= 1
            sim.exception_code = None
            await rig.until(lambda: rig.q("M.soc") == GOOD, "recovery")
        await sim.stop()
    run(main())


def test_meter_reads_the_site():
    site = Site(battery=Battery(power_w=1000.0), load_w=4000.0, pv_w=1500.0)
    meter = MeterSim(site)
    meter.not_implemented = {"203.TotVAhImp"}
    meter.publish()
    pts = [Point("M.w", "pcs", "input", sunspec="203.W"), Point("M.hz", "pcs", "input", sunspec="203.Hz"),
           Point("M.v", "pcs", "input", sunspec="203.PhVphA"), Point("M.imp", "pcs", "input", sunspec="203.TotWhImp"),
           Point("M.vah", "pcs", "input", sunspec="203.TotVAhImp")]

    async def main():
        rig = Rig()
        port = await meter.start()
        async with driving(ModbusDriver(ss_device(port), pts, rig.port)):
            await rig.until(lambda: rig.q("M.w") == GOOD and len(rig.latest) == 5, "meter values")
            assert (rig.v("M.w"), rig.v("M.hz"), rig.v("M.v")) == (1500, 50.0, 230.0)
            assert rig.q("M.vah") == BAD
            start = rig.v("M.imp")
            for _ in range(36):
                meter.step(100.0)                       # an hour at 1.5 kW import
            await rig.until(lambda: rig.v("M.imp") == start + 1500, "energy counted")
            site.pv_w = 6000.0
            meter.publish()
            await rig.until(lambda: rig.v("M.w") == -3000, "export is negative")
        await meter.stop()
    run(main())


def test_float32_not_implemented_is_nan():
    f = Field("holding", 0, "FLOAT32", not_implemented=math.nan)
    assert decode(f, raw_to_words(math.nan, "FLOAT32"), 0) == (None, "not implemented")
    assert decode(f, raw_to_words(0.5, "FLOAT32"), 0) == (0.5, None)


def test_program_closes_the_loop_through_the_io_thread():
    """ST program <- IoManager's thread <- Modbus <- simulated PCS, and back."""
    import asyncio

    from runtime.io.config import IoMap
    from runtime.io.manager import IoManager
    from tests.stutil import build

    engine = build("""
PROGRAM Main
VAR
  soc : REAL;
  mode : UINT;
  outPct : REAL;
END_VAR
IF soc > 40.0 THEN
  mode := 2; outPct := 50.0;
ELSE
  mode := 0; outPct := 0.0;
END_IF;
END_PROGRAM
""")
    battery = Battery(soc=0.45)
    sim = InverterSim(battery)

    async def main():
        port = await sim.start()
        m = IoMap("test")
        m.devices["pcs"] = ss_device(port)
        m.points = [ss_in("Main.soc", "802.SoC"), ss_out("Main.mode", "124.StorCtl_Mod"),
                    ss_out("Main.outPct", "124.OutWRte")]
        engine.declare_input("Main.soc", TIMEOUT_NS * 4)
        engine.declare_output("Main.mode", "0")
        engine.declare_output("Main.outPct", "0.0")
        io = IoManager(engine, [m], time.monotonic_ns)
        io.start()
        try:
            async def scans_until(pred, what, timeout_s=5.0):
                end = time.monotonic() + timeout_s
                while not pred():
                    assert time.monotonic() < end, f"timed out waiting for {what}"
                    engine.scan(time.monotonic_ns(), engine.tasks)     # every task, at the wall clock
                    await asyncio.sleep(0.01)
            await scans_until(lambda: engine.tag("Main.soc").get() == 45.0, "SoC in the program")
            assert engine.quality("Main.soc")[0] == GOOD
            await scans_until(lambda: battery.power_w == 3500.0, "the program's setpoint at the PCS")
            for _ in range(20):
                sim.step(60.0)                       # 20 min at 3.5 kW: below 40 %
            await scans_until(lambda: battery.power_w == 0.0, "the program stops the discharge")
            assert engine.tag("Main.soc").get() < 40.0
            await sim.close_port()
            await scans_until(lambda: engine.quality("Main.soc")[0] == STALE, "STALE in the program")
        finally:
            io.stop()
            await sim.stop()
            engine.close()
    run(main())
