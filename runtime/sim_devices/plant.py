"""A battery plant good enough to close the loop: SOC integrates power,
cell temperatures follow current and ambient, cell voltages follow SOC.

Deterministic: `step(dt_s)` advances it; nothing here reads a clock, so a
simulator decides whether plant time is wall time (demo) or virtual (tests).
Sign convention (as the PCS sees it): power > 0 discharges the battery.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field


# LFP open-circuit voltage per cell against SOC (0..1): flat middle, steep ends.
_OCV = ((0.00, 2.50), (0.05, 3.00), (0.10, 3.20), (0.30, 3.27), (0.60, 3.30),
        (0.90, 3.34), (0.97, 3.45), (1.00, 3.60))


def ocv(soc: float) -> float:
    soc = min(1.0, max(0.0, soc))
    for (s0, v0), (s1, v1) in zip(_OCV, _OCV[1:]):
        if soc <= s1:
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return _OCV[-1][1]


@dataclass
class BatteryParams:
    cells_series: int = 16               # a 48 V module string, as the BMS CAN profile assumes
    capacity_ah: float = 280.0
    cell_r_ohm: float = 0.0004           # per cell, DC
    thermal_mass_j_per_k: float = 90_000.0   # per module, lumped
    cooling_w_per_k: float = 25.0
    ambient_c: float = 25.0
    max_charge_a: float = 140.0
    max_discharge_a: float = 140.0
    charge_voltage_limit_v: float = 56.8    # 16 x 3.55
    discharge_voltage_limit_v: float = 44.8  # 16 x 2.8


@dataclass
class Battery:
    params: BatteryParams = field(default_factory=BatteryParams)
    soc: float = 0.5                     # 0..1
    temp_c: float = 25.0
    current_a: float = 0.0               # > 0 discharging
    power_w: float = 0.0                 # requested by the PCS, > 0 discharging
    cell_offsets_v: list[float] = field(default_factory=list)   # per-cell imbalance
    hot_cell: int | None = None          # index of a cell that heats faster (localized heating)
    hot_cell_extra_c: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self):
        if not self.cell_offsets_v:
            self.cell_offsets_v = [0.0] * self.params.cells_series

    # ------------------------------------------------------------ readings
    def cell_voltages(self) -> list[float]:
        drop = self.current_a * self.params.cell_r_ohm
        base = ocv(self.soc) - drop
        return [base + o for o in self.cell_offsets_v]

    @property
    def voltage_v(self) -> float:
        return sum(self.cell_voltages())

    def cell_temps(self) -> list[float]:
        temps = [self.temp_c] * self.params.cells_series
        if self.hot_cell is not None:
            temps[self.hot_cell] += self.hot_cell_extra_c
        return temps

    def charge_current_limit_a(self) -> float:
        """The BMS's charge limit: tapers above 90 % SOC and outside 10-45 °C."""
        p = self.params
        lim = p.max_charge_a
        if self.soc > 0.9:
            lim *= max(0.0, (1.0 - self.soc) / 0.1)
        if self.temp_c < 10.0:
            lim *= max(0.0, self.temp_c / 10.0)
        elif self.temp_c > 45.0:
            lim *= max(0.0, (55.0 - self.temp_c) / 10.0)
        return lim

    def discharge_current_limit_a(self) -> float:
        p = self.params
        lim = p.max_discharge_a
        if self.soc < 0.1:
            lim *= max(0.0, self.soc / 0.1)
        if self.temp_c > 50.0:
            lim *= max(0.0, (60.0 - self.temp_c) / 10.0)
        return lim

    # ------------------------------------------------------------ dynamics
    def step(self, dt_s: float) -> None:
        p = self.params
        with self.lock:
            v = max(1.0, self.voltage_v)
            i = self.power_w / v
            # the cells stop a current the BMS would never allow (an empty or full battery)
            if (i > 0 and self.soc <= 0.0) or (i < 0 and self.soc >= 1.0):
                i = 0.0
            self.current_a = i
            self.soc = min(1.0, max(0.0, self.soc - i * dt_s / 3600.0 / p.capacity_ah))
            heat = i * i * p.cell_r_ohm * p.cells_series
            cool = (self.temp_c - p.ambient_c) * p.cooling_w_per_k
            self.temp_c += (heat - cool) * dt_s / p.thermal_mass_j_per_k
            if self.hot_cell is not None:
                # a bad joint: its own heating, relaxing towards the pack temperature
                self.hot_cell_extra_c += (abs(i) * 0.002 - self.hot_cell_extra_c * 0.001) * dt_s


@dataclass
class Site:
    """Load and PV around the battery: the meter reads import = load - pv - battery."""
    battery: Battery = field(default_factory=Battery)
    load_w: float = 3000.0
    pv_w: float = 0.0
    grid_ok: bool = True
    t_s: float = 0.0
    load_profile: object = None          # callable t_s -> W, or None for constant
    pv_profile: object = None

    def step(self, dt_s: float) -> None:
        self.t_s += dt_s
        if self.load_profile is not None:
            self.load_w = float(self.load_profile(self.t_s))
        if self.pv_profile is not None:
            self.pv_w = float(self.pv_profile(self.t_s))
        self.battery.step(dt_s)

    @property
    def grid_import_w(self) -> float:
        return self.load_w - self.pv_w - self.battery.power_w if self.grid_ok else 0.0


def daily_load(t_s: float, base_w: float = 2500.0, peak_w: float = 9000.0) -> float:
    """A household-commercial load shape: evening peak around 19:00."""
    h = (t_s / 3600.0) % 24.0
    return base_w + (peak_w - base_w) * math.exp(-((h - 19.0) ** 2) / 4.0)


def daily_pv(t_s: float, peak_w: float = 6000.0) -> float:
    h = (t_s / 3600.0) % 24.0
    return peak_w * max(0.0, math.sin(math.pi * (h - 6.0) / 12.0)) if 6.0 <= h <= 18.0 else 0.0
