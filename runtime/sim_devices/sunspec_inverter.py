"""A battery PCS speaking SunSpec over Modbus TCP, driven by a plant.Battery.

Holding registers from `base` (40000): 'SunS', then models 1 (common), 802
(battery base), 803 (lithium-ion bank: its fixed block and one string group,
read as zeros), 124 (basic storage controls), end. Scale factors are fixed
(see `_SF`); the values follow the battery at every `publish()`.

The power setpoint. A controller commands the PCS through model 124 as a
storage controller would, and the simulator takes those limits as the
setpoint (the way PCSs with "forced charge/discharge" read them):

    P_W = WChaMax * (OutWRte% if StorCtl_Mod has DISCHARGE (bit 1) else 0
                     - InWRte% if StorCtl_Mod has CHARGE (bit 0) else 0) / 100

P > 0 discharges (plant.py's sign). WChaMax is the rate both percentages
refer to (model 124 has no separate discharge maximum). The PCS never runs
the battery past its BMS limits (charge/discharge current limit at the
present voltage). With InOutWRte_RvrtTms > 0 the setpoint falls back to 0
when no write to model 124 came for that long (plant time): the controller's
watchdog.

Fault injection: `silent` (connections stay up, requests are read and never
answered), `close_port()` / `open_port()` (the port stops listening and every
connection is closed), `exception_code` (every request answered with that
Modbus exception), `not_implemented` (names like "802.SoC" read as the
SunSpec "not implemented" value).
"""
from __future__ import annotations

import asyncio

from ..io.modbus_server import ILLEGAL_ADDRESS, TcpRegisterServer
from ..io.sunspec import LI_BANK_STRING_LENGTH, MODELS, ImageBuilder, parse_ref
from .plant import Battery

# scale factors the simulator publishes (model, point) -> exponent
_SF = {
    (802, "AHRtg_SF"): 0, (802, "WHRtg_SF"): 1, (802, "WChaDisChaMax_SF"): 0, (802, "DisChaRte_SF"): -1,
    (802, "SoC_SF"): -1, (802, "DoD_SF"): -1, (802, "SoH_SF"): -1, (802, "V_SF"): -2, (802, "CellV_SF"): -3,
    (802, "A_SF"): -1, (802, "AMax_SF"): -1, (802, "W_SF"): 0,
    (803, "CellV_SF"): -3, (803, "ModTmp_SF"): -1, (803, "A_SF"): -1, (803, "SoH_SF"): -1,
    (803, "SoC_SF"): -1, (803, "V_SF"): -2,
    (124, "WChaMax_SF"): 0, (124, "WChaDisChaGra_SF"): 0, (124, "VAChaMax_SF"): 0, (124, "MinRsvPct_SF"): -1,
    (124, "ChaState_SF"): -1, (124, "StorAval_SF"): 0, (124, "InBatV_SF"): -2, (124, "InOutWRte_SF"): -2,
}
CHARGE, DISCHARGE = 1, 2          # StorCtl_Mod bits
_CHA_ST = {"empty": 2, "discharging": 3, "charging": 4, "full": 5, "holding": 6}


def _scaled(x: float, sf: int) -> int:
    return round(x / 10 ** sf) if sf >= 0 else round(x * 10 ** -sf)


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


class SunSpecSim:
    """A SunSpec register image served over Modbus TCP, with fault switches:
    `silent`, `close_port()` / `open_port()`, `exception_code`,
    `not_implemented` (see the module doc). Subclasses lay out the image and
    react to writes in `written`."""

    def __init__(self, image: ImageBuilder, host: str, port: int):
        self.image = image
        self.server = TcpRegisterServer(self, host, port)
        self.exception_code: int | None = None
        self.not_implemented: set[str] = set()
        self.reads: list[tuple[str, int, int]] = []      # every read request: (table, address, count)
        self.writes: list[tuple[int, list]] = []

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def silent(self) -> bool:
        return self.server.silent

    @silent.setter
    def silent(self, on: bool) -> None:
        self.server.silent = on

    async def start(self) -> int:
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def close_port(self) -> None:
        await self.server.stop()

    async def open_port(self) -> None:
        """Listen again on the same port."""
        await self.server.start()

    async def read(self, table: str, address: int, count: int, peer: str):
        self.reads.append((table, address, count))
        if self.exception_code is not None:
            return self.exception_code
        words = self.image.words
        if table != "holding" or any(a not in words for a in range(address, address + count)):
            return ILLEGAL_ADDRESS
        return [words[a] for a in range(address, address + count)]

    async def write(self, table: str, address: int, values: list, peer: str):
        if self.exception_code is not None:
            return self.exception_code
        img = self.image
        if table != "holding" or not all(img.writable(a) for a in range(address, address + len(values))):
            return ILLEGAL_ADDRESS
        self.writes.append((address, list(values)))
        for k, v in enumerate(values):
            img.words[address + k] = int(v) & 0xFFFF
        self.written(address, len(values))
        return None

    def written(self, address: int, count: int) -> None:
        """A controller wrote registers address..address+count-1."""

    def mark_not_implemented(self) -> None:
        for ref in self.not_implemented:
            r = parse_ref(ref)
            self.image.set_not_implemented(r.model, r.point, r.index)


class InverterSim(SunSpecSim):
    """See the module doc. `start()` in a running loop; `step(dt_s)` moves the plant."""

    def __init__(self, battery: Battery, *, host: str = "127.0.0.1", port: int = 0, base: int = 40000,
                 wcha_max_w: int = 7000, soh_pct: float = 98.5, serial: str = "SIM-PCS-0001"):
        self.battery = battery
        self.soh_pct = soh_pct
        img = ImageBuilder(base)
        super().__init__(img, host, port)
        for mid, extra in ((1, 0), (802, 0), (803, LI_BANK_STRING_LENGTH), (124, 0)):
            img.add(mid, extra)
        img.finish()
        img.set_string(1, "Mn", "gridplc")
        img.set_string(1, "Md", "sim-pcs")
        img.set_string(1, "Vr", "1.0")
        img.set_string(1, "SN", serial)
        img.set(1, "DA", 1)
        for (mid, name), sf in _SF.items():
            img.set(mid, name, sf)
        img.set(124, "WChaMax", wcha_max_w)
        img.set(124, "WChaGra", 100)
        img.set(124, "WDisChaGra", 100)
        img.set(124, "StorCtl_Mod", 0)
        img.set(124, "OutWRte", 0)
        img.set(124, "InWRte", 0)
        img.set(124, "InOutWRte_RvrtTms", 0)
        img.set(124, "MinRsvPct", 0)
        img.set(802, "SoCRsvMax", 1000)
        img.set(802, "SoCRsvMin", 0)
        img.set(802, "CtrlHb", 0)
        img.set(802, "AlmRst", 0)
        img.set(802, "SetOp", 1)
        img.set(802, "SetInvState", 3)
        self._since_setpoint_s = 0.0
        self._hb_s = 0.0
        self._addr_124 = {img.address_of(124, p) for p in MODELS[124].points}
        self.publish()

    def written(self, address: int, count: int) -> None:
        if any(a in self._addr_124 for a in range(address, address + count)):
            self._since_setpoint_s = 0.0
        self.apply()

    # ------------------------------------------------------------ the plant
    def setpoint_w(self) -> float:
        """The power the controller asks for (model 124, see the module doc)."""
        img = self.image
        rvrt = img.get(124, "InOutWRte_RvrtTms")
        if rvrt and self._since_setpoint_s > rvrt:
            return 0.0
        w_max = img.get(124, "WChaMax") * 10 ** img.get(124, "WChaMax_SF")
        pct_sf = 10 ** img.get(124, "InOutWRte_SF")
        mode = img.get(124, "StorCtl_Mod")
        pct = (img.get(124, "OutWRte") * pct_sf if mode & DISCHARGE else 0.0) - \
              (img.get(124, "InWRte") * pct_sf if mode & CHARGE else 0.0)
        return w_max * pct / 100.0

    def apply(self) -> None:
        """Setpoint registers -> battery.power_w, within the BMS's limits."""
        b = self.battery
        p = self.setpoint_w()
        with b.lock:
            v = max(1.0, b.voltage_v)
            p = min(p, b.discharge_current_limit_a() * v)
            p = max(p, -b.charge_current_limit_a() * v)
            b.power_w = p

    def step(self, dt_s: float) -> None:
        """Apply the setpoint, advance the battery by dt_s, publish."""
        self._since_setpoint_s += dt_s
        self._hb_s += dt_s
        self.apply()
        self.battery.step(dt_s)
        self.publish()

    def publish(self) -> None:
        """Battery -> registers."""
        b, img = self.battery, self.image
        with b.lock:
            soc, i, p = b.soc, b.current_a, b.power_w
            cells = b.cell_voltages()
            temps = b.cell_temps()
            v = sum(cells)
            cha_a, dis_a = b.charge_current_limit_a(), b.discharge_current_limit_a()
            prm = b.params
        nominal_v = prm.cells_series * 3.2

        def put(mid: int, name: str, x: float, lo: int = 0, hi: int = 0xFFFE) -> None:
            img.set(mid, name, _clamp(_scaled(x, _SF.get((mid, MODELS[mid].points[name].sf), 0)), lo, hi))

        st = "empty" if soc <= 0.0 else "full" if soc >= 1.0 else \
            "discharging" if i > 0.05 else "charging" if i < -0.05 else "holding"
        put(802, "AHRtg", prm.capacity_ah)
        put(802, "WHRtg", prm.capacity_ah * nominal_v)
        put(802, "WChaRteMax", prm.max_charge_a * nominal_v)
        put(802, "WDisChaRteMax", prm.max_discharge_a * nominal_v)
        put(802, "DisChaRte", 0.1)
        put(802, "SoCMax", 100.0)
        put(802, "SoCMin", 0.0)
        put(802, "SoC", soc * 100.0)
        put(802, "DoD", (1.0 - soc) * 100.0)
        put(802, "SoH", self.soh_pct)
        img.set(802, "NCyc", 0)
        img.set(802, "ChaSt", _CHA_ST[st])
        img.set(802, "LocRemCtl", 0)
        img.set(802, "Hb", int(self._hb_s) & 0xFFFF)
        img.set(802, "Typ", 4)               # LITHIUM_ION
        img.set(802, "State", 3)             # CONNECTED
        img.set(802, "Evt1", 0)
        img.set(802, "Evt2", 0)
        img.set(802, "EvtVnd1", 0)
        img.set(802, "EvtVnd2", 0)
        put(802, "V", v)
        put(802, "VMax", prm.charge_voltage_limit_v)
        put(802, "VMin", prm.discharge_voltage_limit_v)
        put(802, "CellVMax", max(cells))
        put(802, "CellVMin", min(cells))
        put(802, "CellVAvg", v / len(cells))
        for name in ("CellVMaxStr", "CellVMaxMod", "CellVMinStr", "CellVMinMod"):
            img.set(802, name, 1)
        put(802, "A", i, -0x7FFF, 0x7FFF)
        put(802, "AChaMax", cha_a)
        put(802, "ADisChaMax", dis_a)
        put(802, "W", p, -0x7FFF, 0x7FFF)
        img.set(802, "ReqInvState", 0)
        img.set(802, "ReqW", 0)
        img.set(803, "NStr", 1)
        img.set(803, "NStrCon", 1)
        put(803, "ModTmpMax", max(temps), -0x7FFF, 0x7FFF)
        put(803, "ModTmpMin", min(temps), -0x7FFF, 0x7FFF)
        put(803, "ModTmpAvg", sum(temps) / len(temps), -0x7FFF, 0x7FFF)
        for name in ("ModTmpMaxStr", "ModTmpMaxMod", "ModTmpMinStr", "ModTmpMinMod", "StrVMaxStr", "StrVMinStr",
                     "StrAMaxStr", "StrAMinStr"):
            img.set(803, name, 1)
        for name in ("StrVMax", "StrVMin", "StrVAvg"):
            put(803, name, v)
        for name in ("StrAMax", "StrAMin", "StrAAvg"):
            put(803, name, i, -0x7FFF, 0x7FFF)
        img.set(803, "NCellBal", 0)
        put(124, "ChaState", soc * 100.0)
        put(124, "StorAval", max(0.0, soc - img.get(124, "MinRsvPct") / 1000.0) * prm.capacity_ah)
        put(124, "InBatV", v)
        img.set(124, "ChaSt", _CHA_ST[st])
        self.mark_not_implemented()

    async def run_plant(self, period_s: float = 0.1) -> None:
        """Step the battery in wall time until cancelled (demo use)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(period_s)
            now = loop.time()
            self.step(now - last)
            last = now
