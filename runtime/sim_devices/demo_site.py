"""The demo site's devices in one process: a two-string LFP battery behind a
PCS, a site meter, the BMS on CAN, the site's breaker and load-shed relays.

    python -m runtime.sim_devices.demo_site [--can-port N] [--pcs-port N] [--meter-port N] [--speed X]

Everything speaks the real protocols on 127.0.0.1:
- CAN: a socketcand hub (runtime/io/socketcand_hub.py) carries the BMS's
  frames (bms_can.dbc, 1 s cycle) and the controller's 0x305 keep-alive.
- Modbus TCP, the PCS + battery (SunSpec): models 1, 802+803 per string,
  124; coils 0..5 are the site's digital outputs (string 1 and 2
  contactors, PCS enable, grid forming, grid breaker, non-critical load
  shed); discrete input 0 is the grid relay (grid present), 1..2 the
  contactors' feedback; holding 100-101 the PCS's AC power (INT32 W).
- Modbus TCP, the site meter (SunSpec 203): grid import W.

It prints one JSON line when it is listening ({"ready": true, ports...})
and reads JSON lines on stdin for live events, e.g.
{"set": "ambient_c", "value": 45} or {"set": "grid_ok", "value": false},
{"set": "hot_cell_extra_c", "string": 2, "value": 12}.
Plant time follows the wall clock times --speed (profiles only move faster;
the control loop still runs in real time).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import threading

from ..io.modbus_server import ILLEGAL_ADDRESS
from ..io.sunspec import LI_BANK_STRING_LENGTH, MODELS, ImageBuilder
from .plant import Battery, BatteryParams
from .sunspec_inverter import _SF, SunSpecSim, _clamp, _scaled

COILS = ("str1Contactor", "str2Contactor", "pcsEnable", "gridForming", "gridBreaker", "shedNonCritical")
STEP_S = 0.1
AC_POWER_REG = 100


class TwoStringPlant:
    """Two battery strings in parallel behind one PCS, a load, PV, the grid."""

    def __init__(self):
        self.strings = [Battery(BatteryParams(), soc=0.62), Battery(BatteryParams(), soc=0.58)]
        self.strings[1].cell_offsets_v = [0.0] * 15 + [0.004]
        self.coils = {c: False for c in COILS}
        self.coils["shedNonCritical"] = True
        self.grid_ok = True
        self.t_s = 0.0
        self.pcs_w = 0.0            # requested AC power, > 0 discharging
        self.lock = threading.Lock()

    def closed(self) -> list[Battery]:
        return [b for k, b in enumerate(self.strings) if self.coils[f"str{k + 1}Contactor"]]

    @property
    def load_w(self) -> float:
        # a compressed daily shape: a peak every 4 plant minutes, so peak shaving shows in a short demo
        base = 4000.0 + 2500.0 * math.sin(2 * math.pi * self.t_s / 240.0) ** 2
        return base * (0.6 if self.coils["shedNonCritical"] else 1.0)

    @property
    def pv_w(self) -> float:
        return max(0.0, 3000.0 * math.sin(2 * math.pi * self.t_s / 600.0))

    def battery_w(self) -> float:
        strings = self.closed()
        return sum(b.power_w for b in strings)

    @property
    def grid_import_w(self) -> float:
        if not self.grid_ok or not self.coils["gridBreaker"]:
            return 0.0
        return self.load_w - self.pv_w - self.battery_w()

    def step(self, dt_s: float, plant_dt_s: float) -> None:
        with self.lock:
            self.t_s += plant_dt_s
            strings = self.closed()
            islanded = not (self.grid_ok and self.coils["gridBreaker"])
            if islanded and self.coils["gridForming"] and self.coils["pcsEnable"]:
                p = self.load_w - self.pv_w       # the PCS carries the island
            elif islanded or not self.coils["pcsEnable"]:
                p = 0.0
            else:
                p = self.pcs_w
            for b in self.strings:
                share = p / len(strings) if b in strings else 0.0
                with b.lock:
                    v = max(1.0, b.voltage_v)
                    share = min(share, b.discharge_current_limit_a() * v)
                    share = max(share, -b.charge_current_limit_a() * v)
                    b.power_w = share
                b.step(dt_s)


class PackView:
    """What the BMS on CAN reports: the strings as one pack (sum of currents,
    worst cell, hottest module, the smaller limits)."""

    def __init__(self, plant: TwoStringPlant):
        self.plant = plant
        self.lock = threading.Lock()
        self.params = BatteryParams(max_charge_a=280.0, max_discharge_a=280.0)

    @property
    def soc(self) -> float:
        s = self.plant.strings
        return sum(b.soc for b in s) / len(s)

    @property
    def current_a(self) -> float:
        return sum(b.current_a for b in self.plant.closed())

    def cell_voltages(self) -> list[float]:
        # parallel strings share the pack voltage: the mean cell, with the
        # worst high and worst low cell of either string kept
        per = [b.cell_voltages() for b in self.plant.strings]
        out = [sum(c) / len(c) for c in zip(*per)]
        hi = max((v, k) for c in per for k, v in enumerate(c))
        lo = min((v, k) for c in per for k, v in enumerate(c))
        out[hi[1]], out[lo[1]] = hi[0], lo[0]
        return out

    def cell_temps(self) -> list[float]:
        return max((b.cell_temps() for b in self.plant.strings), key=max)

    def charge_current_limit_a(self) -> float:
        return sum(b.charge_current_limit_a() for b in self.plant.closed())

    def discharge_current_limit_a(self) -> float:
        return sum(b.discharge_current_limit_a() for b in self.plant.closed())


class BatteryPcsSim(SunSpecSim):
    """SunSpec 1, (802, 803) per string, 124; coils and discrete inputs for the site relays."""

    def __init__(self, plant: TwoStringPlant, *, host: str = "127.0.0.1", port: int = 0, wcha_max_w: int = 10000):
        self.plant = plant
        img = ImageBuilder(40000)
        super().__init__(img, host, port)
        img.add(1)
        for _ in plant.strings:
            img.add(802)
            img.add(803, LI_BANK_STRING_LENGTH)
        img.add(124)
        img.finish()
        img.set_string(1, "Mn", "gridplc")
        img.set_string(1, "Md", "demo-bess")
        img.set_string(1, "SN", "DEMO-0001")
        for k in range(1, len(plant.strings) + 1):
            for (mid, name), sf in _SF.items():
                if mid in (802, 803):
                    img.set(mid, name, sf, k)
        for (mid, name), sf in _SF.items():
            if mid == 124:
                img.set(mid, name, sf)
        img.set(124, "WChaMax", wcha_max_w)
        self.hb = 0
        self.publish()

    async def read(self, table: str, address: int, count: int, peer: str):
        if table == "coil":
            if address + count > len(COILS):
                return ILLEGAL_ADDRESS
            return [self.plant.coils[c] for c in COILS[address:address + count]]
        if table == "discrete":
            vals = [self.plant.grid_ok, self.plant.coils["str1Contactor"], self.plant.coils["str2Contactor"]]
            return vals[address:address + count] if address + count <= len(vals) else ILLEGAL_ADDRESS
        return await super().read(table, address, count, peer)

    async def write(self, table: str, address: int, values: list, peer: str):
        if table == "coil":
            if address + len(values) > len(COILS):
                return ILLEGAL_ADDRESS
            with self.plant.lock:
                for k, v in enumerate(values):
                    self.plant.coils[COILS[address + k]] = bool(v)
            return None
        return await super().write(table, address, values, peer)

    def written(self, address: int, count: int) -> None:
        img = self.image
        w_max = img.get(124, "WChaMax") * 10 ** img.get(124, "WChaMax_SF")
        pct_sf = 10 ** img.get(124, "InOutWRte_SF")
        mode = img.get(124, "StorCtl_Mod")
        pct = (img.get(124, "OutWRte") * pct_sf if mode & 2 else 0.0) - (img.get(124, "InWRte") * pct_sf if mode & 1 else 0.0)
        self.plant.pcs_w = w_max * pct / 100.0

    def publish(self) -> None:
        img = self.image
        # the PCS's measured AC power (W, + discharging) in a vendor register pair, holding 100-101, INT32
        p = round(self.plant.battery_w()) & 0xFFFFFFFF
        img.words[AC_POWER_REG], img.words[AC_POWER_REG + 1] = p >> 16, p & 0xFFFF
        self.hb = (self.hb + 1) & 0xFFFF
        for k, b in enumerate(self.plant.strings, 1):
            with b.lock:
                cells, temps, i, soc = b.cell_voltages(), b.cell_temps(), b.current_a, b.soc

            def put(mid, name, x, lo=0, hi=0xFFFE):
                img.set(mid, name, _clamp(_scaled(x, _SF.get((mid, MODELS[mid].points[name].sf), 0)), lo, hi), k)
            put(802, "SoC", soc * 100.0)
            put(802, "SoH", 98.5)
            put(802, "V", sum(cells))
            put(802, "CellVMax", max(cells))
            put(802, "CellVMin", min(cells))
            put(802, "CellVAvg", sum(cells) / len(cells))
            put(802, "A", -i, -0x7FFF, 0x7FFF)           # the BESS convention: + charging
            img.set(802, "Hb", self.hb, k)
            put(803, "ModTmpMax", max(temps), -0x7FFF, 0x7FFF)
            put(803, "ModTmpMin", min(temps), -0x7FFF, 0x7FFF)


class MeterView:
    """The meter reads the plant's grid import."""

    def __init__(self, plant: TwoStringPlant):
        self.plant = plant

    @property
    def grid_import_w(self) -> float:
        return self.plant.grid_import_w


def _event(plant: TwoStringPlant, ev: dict) -> None:
    what, value = ev.get("set"), ev.get("value")
    with plant.lock:
        if what == "grid_ok":
            plant.grid_ok = bool(value)
        elif what == "ambient_c":
            for b in plant.strings:
                b.params.ambient_c = float(value)
        elif what in ("temp_c", "hot_cell_extra_c", "soc"):
            b = plant.strings[int(ev.get("string", 1)) - 1]
            if what == "hot_cell_extra_c":
                b.hot_cell = 3
            setattr(b, what, float(value))


async def serve(can_port: int, pcs_port: int, meter_port: int, speed: float, ready) -> None:
    import can

    from ..io.socketcand_hub import SocketcandHub
    from .bms import BmsSimulator
    from .meter import MeterSim
    plant = TwoStringPlant()
    hub = SocketcandHub(port=can_port)
    can_port = await hub.start()
    pcs = BatteryPcsSim(plant, port=pcs_port)
    meter = MeterSim(MeterView(plant), port=meter_port)
    pcs_port, meter_port = await pcs.start(), await meter.start()
    loop = asyncio.get_running_loop()
    bus = await loop.run_in_executor(None, lambda: can.Bus(interface="socketcand", host="127.0.0.1",
                                                           port=can_port, channel="can0", tcp_tune=True))
    dbc = os.path.join(os.path.dirname(__file__), "..", "..", "io_maps", "dbc", "bms_can.dbc")
    bms = BmsSimulator(bus, PackView(plant), os.path.normpath(dbc), require_keepalive=True)
    bms.start()
    ready({"ready": True, "can_port": can_port, "pcs_port": pcs_port, "meter_port": meter_port})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    t_next = loop.time()
    stdin_task = asyncio.ensure_future(reader.readline())
    try:
        while True:
            t_next += STEP_S
            plant.step(STEP_S, STEP_S * speed)
            pcs.publish()
            meter.step(STEP_S)
            done, _ = await asyncio.wait({stdin_task}, timeout=max(0.0, t_next - loop.time()))
            if stdin_task in done:
                line = stdin_task.result()
                if not line:
                    return              # the demo closed our stdin: stop
                try:
                    _event(plant, json.loads(line))
                except (ValueError, TypeError, AttributeError, IndexError):
                    pass
                stdin_task = asyncio.ensure_future(reader.readline())
    finally:
        bms.stop()
        bus.shutdown()
        await pcs.stop()
        await meter.stop()
        await hub.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.sim_devices.demo_site")
    ap.add_argument("--can-port", type=int, default=0)
    ap.add_argument("--pcs-port", type=int, default=0)
    ap.add_argument("--meter-port", type=int, default=0)
    ap.add_argument("--speed", type=float, default=1.0)
    a = ap.parse_args(argv)

    def ready(info):
        print(json.dumps(info), flush=True)
    try:
        asyncio.run(serve(a.can_port, a.pcs_port, a.meter_port, a.speed, ready))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(json.dumps({"ready": False, "error": str(e)}), flush=True)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
