"""The site meter at the grid connection, speaking SunSpec over Modbus TCP.

Holding registers from `base` (40000): 'SunS', model 1 (common), model 203
(three-phase wye meter), end. It reads a plant.Site: real power W is the
grid import, load - pv - battery, so W > 0 imports from the grid and W < 0
exports (the meter's own "delivered to the site is positive" convention),
split evenly over three phases at `phase_v` and `hz`; reactive power is 0.
`step(dt_s)` integrates the energy counters TotWhImp / TotWhExp (acc32,
starting at `start_wh`: an accumulator reading 0 means "not implemented" in
SunSpec) and publishes; it does not step the site, whose owner does that.
The fault switches are SunSpecSim's (sunspec_inverter.py): `silent`,
`close_port()`, `open_port()`, `exception_code`, `not_implemented`.
"""
from __future__ import annotations

import asyncio

from ..io.sunspec import MODELS, ImageBuilder
from .plant import Site
from .sunspec_inverter import SunSpecSim

_SF = {"A_SF": -1, "V_SF": -1, "Hz_SF": -2, "W_SF": 0, "VA_SF": 0, "VAR_SF": 0, "PF_SF": -1, "TotWh_SF": 0}


def _raw(x: float, sf: int, lo: int, hi: int) -> int:
    v = round(x / 10 ** sf) if sf >= 0 else round(x * 10 ** -sf)
    return max(lo, min(hi, v))


class MeterSim(SunSpecSim):
    """See the module doc."""

    def __init__(self, site: Site, *, host: str = "127.0.0.1", port: int = 0, base: int = 40000,
                 phase_v: float = 230.0, hz: float = 50.0, start_wh: float = 100_000.0,
                 serial: str = "SIM-METER-0001"):
        self.site = site
        self.phase_v = phase_v
        self.hz = hz
        self.imported_wh = start_wh
        self.exported_wh = start_wh
        img = ImageBuilder(base)
        super().__init__(img, host, port)
        img.add(1)
        img.add(203)
        img.finish()
        img.set_string(1, "Mn", "gridplc")
        img.set_string(1, "Md", "sim-meter")
        img.set_string(1, "Vr", "1.0")
        img.set_string(1, "SN", serial)
        img.set(1, "DA", 1)
        for name, sf in _SF.items():
            img.set(203, name, sf)
        self.publish()

    def step(self, dt_s: float) -> None:
        w = self.site.grid_import_w
        if w >= 0:
            self.imported_wh += w * dt_s / 3600.0
        else:
            self.exported_wh -= w * dt_s / 3600.0
        self.publish()

    def publish(self) -> None:
        img = self.image
        w = self.site.grid_import_w
        v_ll = self.phase_v * 3 ** 0.5
        amps = abs(w) / (3 * self.phase_v) if self.phase_v else 0.0
        i16 = (-0x7FFF, 0x7FFF)

        def put(name: str, x: float) -> None:
            sf = _SF[MODELS[203].points[name].sf]
            img.set(203, name, _raw(x, sf, *i16))
        put("A", amps * 3)
        for p in "ABC":
            put(f"Aph{p}", amps)
            put(f"PhVph{p}", self.phase_v)
            put(f"Wph{p}", w / 3)
            put(f"VAph{p}", abs(w) / 3)
            put(f"VARph{p}", 0.0)
            put(f"PFph{p}", 100.0)
        put("PhV", self.phase_v)
        put("PPV", v_ll)
        for pair in ("AB", "BC", "CA"):
            put(f"PhVph{pair}", v_ll)
        put("Hz", self.hz)
        put("W", w)
        put("VA", abs(w))
        put("VAR", 0.0)
        put("PF", 100.0)
        img.set(203, "TotWhImp", max(1, round(self.imported_wh)) & 0xFFFFFFFF)
        img.set(203, "TotWhExp", max(1, round(self.exported_wh)) & 0xFFFFFFFF)
        img.set(203, "Evt", 0)
        self.mark_not_implemented()

    async def run(self, period_s: float = 0.1) -> None:
        """Integrate and publish in wall time until cancelled (demo use)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(period_s)
            now = loop.time()
            self.step(now - last)
            last = now
