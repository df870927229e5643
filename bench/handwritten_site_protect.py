"""Hand-written CPython baseline for /work/shared/bench/site_protect.st.

This is what a careful Python programmer would write for the same logic, with
no help from the compiler: plain classes with __slots__, Python floats and
ints, builtin max/min, lists. It is a line-for-line faithful translation of the
ST (same loops, same state machine, same timer/counter/edge calls in the same
order, same per-scan data generation, the struct copy into ``mods`` and the
rack FB receiving its ``modules`` input by value), so the compiled program can
be checked against it and timed against it.

Differences from the compiled program that are expected and harmless:
  * REAL is float32 in ST and float64 here, so floats differ in the last bits.
  * ST arrays keep their bounds; here every list is 0-based:
      ST racks[r]  (r = 1..8)    -> SiteMain.racks[r - 1]
      ST rackI[r]  (r = 1..8)    -> SiteMain.rackI[r - 1]
      ST data[r, m] (r = 1..8, m = 0..47) -> SiteMain.data[r - 1][m]
      ST mods[m]   (m = 0..47)   -> SiteMain.mods[m]      (same index)
      ST modules[m] (m = 0..47)  -> RackGuard.modules[m]  (same index)
  * The ST variable ``scan`` is ``SiteMain.scan_count`` (``scan`` is the method).
  * FOR loop counters (``r``, ``m``) and the FB scratch variables
    (``vHi``, ``vLo``, ``tHi``, ``tLo``) are locals here, not attributes:
    they carry no state between scans in this program.
  * Timers take the scan time as an argument (``now_ms``, int milliseconds);
    nothing reads the wall clock.

Every other ST variable is an attribute with the ST spelling (``racks``,
``data``, ``rackI``, ``siteLimit``, ``demand``, ``available``, ``dispatch``,
``online``, ``mods``; on RackGuard: ``modules``, ``current``, ``enable``,
``state``, ``allowedPower``, ``vSpread``, ``ocEvents``, ``precharge``,
``hotHold``, ``ocCount``, ``ocEdge``, ``tripDelay``; the standard blocks use
the IEC names ``IN``, ``PT``, ``Q``, ``ET``, ``CU``, ``RESET``, ``PV``, ``CV``,
``CLK``). RackState members equal the ST enum's ordinal values (0..4).

Name clashes in the ST, read here as intended: identifiers are
case-insensitive, so the enum members PRECHARGE and ONLINE share their spelling
with the variables ``precharge : TON`` (RackGuard) and ``online : INT``
(SiteMain). This translation takes the CASE label ``PRECHARGE:`` and the
comparison ``racks[r].state = ONLINE`` as the enum members.

Run alone: ``python bench/handwritten_site_protect.py`` runs 3000 scans at
100 ms steps (the task interval) and prints the time per scan.
"""
from __future__ import annotations

import time
from enum import IntEnum

CTU_CV_MAX = 32767  # INT counter value limit


class RackState(IntEnum):
    OFFLINE = 0
    PRECHARGE = 1
    ONLINE = 2
    DERATED = 3
    TRIPPED = 4


class ModuleData:
    __slots__ = ("vMax", "vMin", "tMax", "tMin")

    def __init__(self, vMax: float = 0.0, vMin: float = 0.0, tMax: float = 0.0, tMin: float = 0.0):
        self.vMax = vMax
        self.vMin = vMin
        self.tMax = tMax
        self.tMin = tMin

    def copy(self) -> ModuleData:
        return ModuleData(self.vMax, self.vMin, self.tMax, self.tMin)


# ------------------------------------------------------------------ standard blocks

class TON:
    """On-delay: Q goes TRUE once IN has been TRUE for PT; IN FALSE resets."""
    __slots__ = ("IN", "PT", "Q", "ET", "_start_ms")

    def __init__(self):
        self.IN = False
        self.PT = 0
        self.Q = False
        self.ET = 0
        self._start_ms = 0

    def __call__(self, IN: bool, PT: int, now_ms: int) -> None:
        if IN:
            if not self.IN:  # rising edge: start timing
                self._start_ms = now_ms
            elapsed = now_ms - self._start_ms
            if elapsed >= PT:
                self.Q = True
                self.ET = PT
            else:
                self.Q = False
                self.ET = elapsed
        else:
            self.Q = False
            self.ET = 0
        self.IN = IN
        self.PT = PT


class TOF:
    """Off-delay: Q is TRUE while IN is TRUE and for PT after IN falls."""
    __slots__ = ("IN", "PT", "Q", "ET", "_start_ms")

    def __init__(self):
        self.IN = False
        self.PT = 0
        self.Q = False
        self.ET = 0
        self._start_ms = 0

    def __call__(self, IN: bool, PT: int, now_ms: int) -> None:
        if IN:
            self.Q = True
            self.ET = 0
        else:
            if self.IN:  # falling edge: start timing
                self._start_ms = now_ms
            if self.Q:
                elapsed = now_ms - self._start_ms
                if elapsed >= PT:
                    self.Q = False
                    self.ET = PT
                else:
                    self.ET = elapsed
        self.IN = IN
        self.PT = PT


class CTU:
    """Up counter: CV += 1 on a rising CU (up to 32767); RESET clears; Q := CV >= PV."""
    __slots__ = ("CU", "RESET", "PV", "Q", "CV")

    def __init__(self):
        self.CU = False
        self.RESET = False
        self.PV = 0
        self.Q = False
        self.CV = 0

    def __call__(self, CU: bool, RESET: bool, PV: int) -> None:
        if RESET:
            self.CV = 0
        elif CU and not self.CU and self.CV < CTU_CV_MAX:
            self.CV += 1
        self.CU = CU
        self.RESET = RESET
        self.PV = PV
        self.Q = self.CV >= PV


class R_TRIG:
    """Rising edge: Q := CLK AND NOT previous CLK."""
    __slots__ = ("CLK", "Q", "_mem")

    def __init__(self):
        self.CLK = False
        self.Q = False
        self._mem = False

    def __call__(self, CLK: bool) -> None:
        self.CLK = CLK
        self.Q = CLK and not self._mem
        self._mem = CLK


# ------------------------------------------------------------------ program logic

def spread(hi: float, lo: float) -> float:
    """ST FUNCTION Spread."""
    return hi - lo


class RackGuard:
    """ST FUNCTION_BLOCK RackGuard: module-level protection and the rack state machine."""
    __slots__ = ("modules", "current", "enable",
                 "state", "allowedPower", "vSpread", "ocEvents",
                 "precharge", "hotHold", "ocCount", "ocEdge", "tripDelay")

    def __init__(self):
        self.modules = [ModuleData() for _ in range(48)]
        self.current = 0.0
        self.enable = False
        self.state = RackState.OFFLINE
        self.allowedPower = 0.0
        self.vSpread = 0.0
        self.ocEvents = 0
        self.precharge = TON()
        self.hotHold = TOF()
        self.ocCount = CTU()
        self.ocEdge = R_TRIG()
        self.tripDelay = TON()

    def __call__(self, modules: list[ModuleData], current: float, enable: bool, now_ms: int) -> None:
        # VAR_INPUT is passed by value. The caller replaces (never mutates) the
        # elements of its list, so a shallow copy of the list is a true copy.
        self.modules = modules = modules[:]
        self.current = current
        self.enable = enable

        first = modules[0]
        v_hi = first.vMax
        v_lo = first.vMin
        t_hi = first.tMax
        t_lo = first.tMin
        for m in range(1, 48):
            mod = modules[m]
            v_hi = max(v_hi, mod.vMax)
            v_lo = min(v_lo, mod.vMin)
            t_hi = max(t_hi, mod.tMax)
            t_lo = min(t_lo, mod.tMin)
        self.vSpread = v_spread = spread(v_hi, v_lo)

        oc_edge = self.ocEdge
        oc_count = self.ocCount
        hot_hold = self.hotHold
        trip_delay = self.tripDelay
        oc_edge(abs(current) > 150.0)
        oc_count(oc_edge.Q, not enable, 5)
        self.ocEvents = oc_count.CV
        hot_hold(t_hi > 45.0, 30_000, now_ms)
        trip_delay(v_hi > 3.65 or v_lo < 2.6 or t_hi > 55.0 or oc_count.Q, 200, now_ms)

        state = self.state
        if state == RackState.OFFLINE:
            self.allowedPower = 0.0
            if enable:
                state = RackState.PRECHARGE
        elif state == RackState.PRECHARGE:
            precharge = self.precharge
            precharge(True, 2_000, now_ms)
            if precharge.Q:
                precharge(False, precharge.PT, now_ms)  # ST: precharge(IN := FALSE), PT kept
                state = RackState.ONLINE
        elif state == RackState.ONLINE:
            self.allowedPower = 250.0
            if hot_hold.Q or v_spread > 0.08:
                state = RackState.DERATED
        elif state == RackState.DERATED:
            self.allowedPower = 250.0 * min(max((55.0 - t_hi) / 10.0, 0.0), 1.0)  # LIMIT(0, x, 1)
            if not hot_hold.Q and v_spread < 0.05:
                state = RackState.ONLINE
        elif state == RackState.TRIPPED:
            self.allowedPower = 0.0

        if trip_delay.Q:
            state = RackState.TRIPPED
        if not enable:
            state = RackState.OFFLINE
        self.state = state


class SiteMain:
    """ST PROGRAM SiteMain: 8 racks x 48 modules and the site dispatcher."""
    __slots__ = ("racks", "data", "rackI", "scan_count", "siteLimit", "demand",
                 "available", "dispatch", "online", "mods")

    def __init__(self):
        self.racks = [RackGuard() for _ in range(8)]
        self.data = [[ModuleData() for _ in range(48)] for _ in range(8)]
        self.rackI = [0.0] * 8
        self.scan_count = 0
        self.siteLimit = 1500.0
        self.demand = 0.0
        self.available = 0.0
        self.dispatch = 0.0
        self.online = 0
        self.mods = [ModuleData() for _ in range(48)]

    def scan(self, now_ms: int) -> None:
        self.scan_count += 1
        self.demand = demand = 1200.0 + 400.0 * float(self.scan_count % 100) / 100.0
        available = 0.0
        online = 0
        mods = self.mods
        rack_i = self.rackI
        for r in range(1, 9):
            row = self.data[r - 1]
            for m in range(48):
                d = row[m]
                d.vMax = 3.30 + 0.001 * float(m % 7)
                d.vMin = 3.28 - 0.001 * float(m % 5)
                d.tMax = 30.0 + 0.1 * float(r + m % 9)
                d.tMin = 24.0
                mods[m] = d.copy()
            rack = self.racks[r - 1]
            rack(mods, rack_i[r - 1], True, now_ms)
            available += rack.allowedPower
            if rack.state == RackState.ONLINE or rack.state == RackState.DERATED:
                online += 1
        self.available = available
        self.online = online
        self.dispatch = dispatch = min(min(demand, self.siteLimit), available)
        for r in range(8):
            if online > 0:
                rack_i[r] = dispatch / float(online) / 0.8
            else:
                rack_i[r] = 0.0


SCAN_PERIOD_MS = 100  # TASK Fast(INTERVAL := T#100ms)


def main(scans: int = 3000) -> None:
    site = SiteMain()
    start = time.perf_counter()
    for k in range(scans):
        site.scan(k * SCAN_PERIOD_MS)
    elapsed_s = time.perf_counter() - start
    print(f"handwritten site_protect: {scans} scans, {elapsed_s * 1e6 / scans:.1f} us/scan")
    print(f"  scan_count={site.scan_count} online={site.online} available={site.available:.1f} "
          f"dispatch={site.dispatch:.3f} states={[r.state.name for r in site.racks]} "
          f"ocEvents={[r.ocEvents for r in site.racks]}")


if __name__ == "__main__":
    main()
