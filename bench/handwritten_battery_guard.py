"""Hand-written CPython baseline for programs/examples/battery_guard.st.

An idiomatic Python translation of the same logic, written without the
compiler: plain classes with __slots__, Python floats and ints, builtin
max/min, lists. It keeps the ST's loops, call order, timers (TON/TOF), counter
(CTU), edge (R_TRIG), the per-scan data generation, the copy of each string's
cells into ``row`` and the FB receiving ``cellV`` by value, so the compiled
program can be checked and timed against it.

Mapping to the ST variables:
  * REAL is float32 in ST and float64 here (expect last-bit differences; the
    generated voltages stay 0.25 mV away from every threshold, so the
    decisions are the same).
  * Lists are 0-based:
      ST strings[s], stats[s]  (s = 1..16)   -> BatteryGuard.strings[s - 1], .stats[s - 1]
      ST cells[s, c] (c = 1..24)             -> BatteryGuard.cells[s - 1][c - 1]
      ST row[c], StringMonitor.cellV[c]      -> .row[c - 1], .cellV[c - 1]
  * The ST variable ``scan`` is ``BatteryGuard.scan_count`` (``scan`` is the method).
  * FOR counters (``s``, ``c``) and the FB scratch ``vSum`` are locals.
  * Timers take the scan time as an argument (``now_ms``, int milliseconds).
Every other ST variable is an attribute with the ST spelling: on BatteryGuard
``enable``, ``resetCmd``, ``base``, ``sag``, ``request``, ``target``,
``setpoint``, ``rampStep``, ``stringI``, ``packMin``, ``packMax``, ``packAvg``,
``measuredPower``, ``healthyCount``, ``minStrings``, ``chargeLimit``,
``dischargeLimit``, ``faultCond``, ``mode``, ``startDelay``, ``faultHold``,
``faultEdge``, ``faultCount``, ``faultEvents``; on StringMonitor ``cellV``,
``current``, ``enable``, ``resetCmd``, ``vMin``, ``vMax``, ``vAvg``,
``powerKw``, ``ovTrip``, ``uvTrip``, ``tripCount``, ``healthy``, ``ovAlarm``,
``uvAlarm``, ``ovDelay``, ``uvDelay``, ``tripEdge``, ``trips``. BatteryMode
members equal the ST enum's ordinal values (0..3).

Run alone: ``python bench/handwritten_battery_guard.py`` runs 3000 scans at
10 ms steps (the task interval) and prints the time per scan.
"""
from __future__ import annotations

import time
from enum import IntEnum

# The standard blocks (TON, TOF, CTU, R_TRIG) are shared with the other baseline.
try:  # run as a script (bench/ is on sys.path)
    from handwritten_site_protect import CTU, R_TRIG, TOF, TON
except ImportError:  # imported as bench.handwritten_battery_guard from the repo root
    from bench.handwritten_site_protect import CTU, R_TRIG, TOF, TON

CELLS = 24
STRINGS = 16


class BatteryMode(IntEnum):
    IDLE = 0
    CHARGING = 1
    DISCHARGING = 2
    FAULT = 3


class StringStats:
    __slots__ = ("vMin", "vMax", "vAvg")

    def __init__(self):
        self.vMin = 0.0
        self.vMax = 0.0
        self.vAvg = 0.0


def ramp(x: float, x0: float, x1: float) -> float:
    """ST FUNCTION Ramp: 0.0 at x0 to 1.0 at x1, clamped."""
    return min(max((x - x0) / (x1 - x0), 0.0), 1.0)


class StringMonitor:
    """ST FUNCTION_BLOCK StringMonitor: one string of 24 cells."""
    __slots__ = ("cellV", "current", "enable", "resetCmd",
                 "vMin", "vMax", "vAvg", "powerKw", "ovTrip", "uvTrip", "tripCount", "healthy",
                 "ovAlarm", "uvAlarm", "ovDelay", "uvDelay", "tripEdge", "trips")

    def __init__(self):
        self.cellV = [0.0] * CELLS
        self.current = 0.0
        self.enable = False
        self.resetCmd = False
        self.vMin = 0.0
        self.vMax = 0.0
        self.vAvg = 0.0
        self.powerKw = 0.0
        self.ovTrip = False
        self.uvTrip = False
        self.tripCount = 0
        self.healthy = False
        self.ovAlarm = False
        self.uvAlarm = False
        self.ovDelay = TON()
        self.uvDelay = TON()
        self.tripEdge = R_TRIG()
        self.trips = CTU()

    def __call__(self, cellV: list[float], current: float, enable: bool, resetCmd: bool,
                 now_ms: int) -> None:
        self.cellV = cellV = cellV[:]  # VAR_INPUT by value
        self.current = current
        self.enable = enable
        self.resetCmd = resetCmd

        # cell statistics
        v_min = v_max = v_sum = cellV[0]
        for c in range(1, CELLS):
            v = cellV[c]
            v_min = min(v_min, v)
            v_max = max(v_max, v)
            v_sum += v
        self.vMin = v_min
        self.vMax = v_max
        self.vAvg = v_avg = v_sum / 24.0
        self.powerKw = v_avg * 24.0 * current / 1000.0

        # alarms with hysteresis
        if v_max > 3.65:
            self.ovAlarm = True
        elif v_max < 3.55:
            self.ovAlarm = False
        if v_min < 2.80:
            self.uvAlarm = True
        elif v_min > 2.95:
            self.uvAlarm = False

        ov_delay = self.ovDelay
        uv_delay = self.uvDelay
        ov_delay(self.ovAlarm and enable, 200, now_ms)
        uv_delay(self.uvAlarm and enable, 500, now_ms)
        self.ovTrip = ov_trip = ov_delay.Q
        self.uvTrip = uv_trip = uv_delay.Q

        # two trips lock the string out until the operator resets it
        trip_edge = self.tripEdge
        trips = self.trips
        trip_edge(ov_trip or uv_trip)
        trips(trip_edge.Q, resetCmd, 2)
        self.tripCount = trips.CV
        self.healthy = enable and not ov_trip and not uv_trip and not trips.Q


class BatteryGuard:
    """ST PROGRAM BatteryGuard: 16 strings, site limits, mode machine, setpoint."""
    __slots__ = ("strings", "cells", "row", "stats", "scan_count", "enable", "resetCmd",
                 "base", "sag", "request", "target", "setpoint", "rampStep", "stringI",
                 "packMin", "packMax", "packAvg", "measuredPower", "healthyCount", "minStrings",
                 "chargeLimit", "dischargeLimit", "faultCond", "mode",
                 "startDelay", "faultHold", "faultEdge", "faultCount", "faultEvents")

    def __init__(self):
        self.strings = [StringMonitor() for _ in range(STRINGS)]
        self.cells = [[0.0] * CELLS for _ in range(STRINGS)]
        self.row = [0.0] * CELLS
        self.stats = [StringStats() for _ in range(STRINGS)]
        self.scan_count = 0
        self.enable = False
        self.resetCmd = False
        self.base = 0.0
        self.sag = 0.0
        self.request = 0.0
        self.target = 0.0
        self.setpoint = 0.0
        self.rampStep = 20.0
        self.stringI = 0.0
        self.packMin = 0.0
        self.packMax = 0.0
        self.packAvg = 0.0
        self.measuredPower = 0.0
        self.healthyCount = 0
        self.minStrings = 12
        self.chargeLimit = 0.0
        self.dischargeLimit = 0.0
        self.faultCond = False
        self.mode = BatteryMode.IDLE
        self.startDelay = TON()
        self.faultHold = TOF()
        self.faultEdge = R_TRIG()
        self.faultCount = CTU()
        self.faultEvents = 0

    def scan(self, now_ms: int) -> None:
        # synthetic plant: scan counter drives voltages and the power request
        self.scan_count = scan = self.scan_count + 1
        self.enable = enable = scan > 5
        self.resetCmd = reset_cmd = scan % 2000 == 0
        self.base = base = 3.30125 + 0.0005 * float(scan % 800)
        self.request = request = 900.0 * float(scan % 600 - 300) / 300.0

        # string current from last scan's setpoint, shared by the healthy strings
        if self.healthyCount > 0:
            string_i = self.setpoint * 1000.0 / (float(self.healthyCount) * 24.0 * 3.3)
        else:
            string_i = 0.0
        self.stringI = string_i

        healthy_count = 0
        pack_min = 5.0
        pack_max = 0.0
        pack_avg = 0.0
        measured_power = 0.0
        row = self.row
        sags = scan % 1100 >= 900
        for s in range(1, STRINGS + 1):
            sag = 0.55 if s == 9 and sags else 0.0
            bias = 0.002 * float(s % 4)
            cells = self.cells[s - 1]
            for c in range(1, CELLS + 1):
                v = base + bias + 0.001 * float((s * 7 + c * 3) % 11) - 0.005 - sag
                cells[c - 1] = v
                row[c - 1] = v
            string = self.strings[s - 1]
            string(row, string_i, enable, reset_cmd, now_ms)
            st = self.stats[s - 1]
            st.vMin = string.vMin
            st.vMax = string.vMax
            st.vAvg = string.vAvg
            pack_min = min(pack_min, st.vMin)
            pack_max = max(pack_max, st.vMax)
            pack_avg += st.vAvg
            measured_power += string.powerKw
            if string.healthy:
                healthy_count += 1
        self.sag = sag
        self.healthyCount = healthy_count
        self.packMin = pack_min
        self.packMax = pack_max
        self.packAvg = pack_avg / 16.0
        self.measuredPower = measured_power

        # 62.5 kW per healthy string, derated near the voltage limits
        self.chargeLimit = charge_limit = 62.5 * float(healthy_count) * ramp(pack_max, 3.60, 3.45)
        self.dischargeLimit = discharge_limit = (
            62.5 * float(healthy_count) * ramp(pack_min, 2.90, 3.10))

        # site fault: too few healthy strings or a pack voltage out of range
        self.faultCond = fault_cond = enable and (
            healthy_count < self.minStrings or pack_max > 3.75 or pack_min < 2.70)
        fault_hold = self.faultHold
        fault_hold(fault_cond, 2_000, now_ms)
        self.faultEdge(fault_cond)
        self.faultCount(self.faultEdge.Q, reset_cmd, 3)
        self.faultEvents = self.faultCount.CV
        mode = self.mode
        start_delay = self.startDelay
        start_delay(mode == BatteryMode.IDLE and healthy_count >= self.minStrings
                    and abs(request) > 50.0, 500, now_ms)

        target = self.target
        if mode == BatteryMode.IDLE:
            target = 0.0
            if start_delay.Q:
                mode = BatteryMode.DISCHARGING if request > 0.0 else BatteryMode.CHARGING
        elif mode == BatteryMode.CHARGING:
            target = min(max(request, -charge_limit), 0.0)  # LIMIT(-chargeLimit, request, 0)
            if request >= 0.0:
                mode = BatteryMode.IDLE
        elif mode == BatteryMode.DISCHARGING:
            target = min(max(request, 0.0), discharge_limit)  # LIMIT(0, request, dischargeLimit)
            if request <= 0.0:
                mode = BatteryMode.IDLE
        elif mode == BatteryMode.FAULT:
            target = 0.0
            if not fault_hold.Q:
                mode = BatteryMode.IDLE
        # three site faults between operator resets lock the site out
        if fault_cond or self.faultEvents >= 3:
            mode = BatteryMode.FAULT
        self.target = target
        self.mode = mode

        # ramp-limited setpoint; a fault drops it at once
        if mode == BatteryMode.FAULT:
            self.setpoint = 0.0
        else:
            sp = self.setpoint
            step = self.rampStep
            self.setpoint = min(max(target, sp - step), sp + step)


SCAN_PERIOD_MS = 10  # TASK Fast(INTERVAL := T#10ms)


def main(scans: int = 3000) -> None:
    site = BatteryGuard()
    start = time.perf_counter()
    for k in range(scans):
        site.scan(k * SCAN_PERIOD_MS)
    elapsed_s = time.perf_counter() - start
    print(f"handwritten battery_guard: {scans} scans, {elapsed_s * 1e6 / scans:.1f} us/scan")
    print(f"  scan_count={site.scan_count} mode={site.mode.name} healthyCount={site.healthyCount} "
          f"setpoint={site.setpoint:.3f} packMin={site.packMin:.5f} packMax={site.packMax:.5f} "
          f"faultEvents={site.faultEvents} tripCount={[m.tripCount for m in site.strings]}")


if __name__ == "__main__":
    main()
