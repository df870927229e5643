"""Standard function blocks: timers, edges, bistables, counters.

Each class has the same shape as a compiled FUNCTION_BLOCK: attributes for its
variables and a `body__` method for one call. Timers read the scan's latched
time from the context (`ctx.now_ms`), never the wall clock, and re-read PT on
every call (DESIGN.md).

Both spellings of parameter names compile: IEC (`R`, `LD`, `S1`, `R1`) and
CODESYS (`RESET`, `LOAD`, `SET1`, `RESET1`); the attributes use the IEC names.
"""
from __future__ import annotations

# name -> [(variable, section, type name, aliases)]
INTERFACES: dict[str, list[tuple[str, str, str, tuple[str, ...]]]] = {
    "TON": [("IN", "VAR_INPUT", "BOOL", ()), ("PT", "VAR_INPUT", "TIME", ()),
            ("Q", "VAR_OUTPUT", "BOOL", ()), ("ET", "VAR_OUTPUT", "TIME", ())],
    "TOF": [("IN", "VAR_INPUT", "BOOL", ()), ("PT", "VAR_INPUT", "TIME", ()),
            ("Q", "VAR_OUTPUT", "BOOL", ()), ("ET", "VAR_OUTPUT", "TIME", ())],
    "TP": [("IN", "VAR_INPUT", "BOOL", ()), ("PT", "VAR_INPUT", "TIME", ()),
           ("Q", "VAR_OUTPUT", "BOOL", ()), ("ET", "VAR_OUTPUT", "TIME", ())],
    "R_TRIG": [("CLK", "VAR_INPUT", "BOOL", ()), ("Q", "VAR_OUTPUT", "BOOL", ())],
    "F_TRIG": [("CLK", "VAR_INPUT", "BOOL", ()), ("Q", "VAR_OUTPUT", "BOOL", ())],
    "SR": [("S1", "VAR_INPUT", "BOOL", ("SET1",)), ("R", "VAR_INPUT", "BOOL", ("RESET",)),
           ("Q1", "VAR_OUTPUT", "BOOL", ())],
    "RS": [("S", "VAR_INPUT", "BOOL", ("SET",)), ("R1", "VAR_INPUT", "BOOL", ("RESET1",)),
           ("Q1", "VAR_OUTPUT", "BOOL", ())],
    "CTU": [("CU", "VAR_INPUT", "BOOL", ()), ("R", "VAR_INPUT", "BOOL", ("RESET",)),
            ("PV", "VAR_INPUT", "INT", ()), ("Q", "VAR_OUTPUT", "BOOL", ()),
            ("CV", "VAR_OUTPUT", "INT", ())],
    "CTD": [("CD", "VAR_INPUT", "BOOL", ()), ("LD", "VAR_INPUT", "BOOL", ("LOAD",)),
            ("PV", "VAR_INPUT", "INT", ()), ("Q", "VAR_OUTPUT", "BOOL", ()),
            ("CV", "VAR_OUTPUT", "INT", ())],
    "CTUD": [("CU", "VAR_INPUT", "BOOL", ()), ("CD", "VAR_INPUT", "BOOL", ()),
             ("R", "VAR_INPUT", "BOOL", ("RESET",)), ("LD", "VAR_INPUT", "BOOL", ("LOAD",)),
             ("PV", "VAR_INPUT", "INT", ()), ("QU", "VAR_OUTPUT", "BOOL", ()),
             ("QD", "VAR_OUTPUT", "BOOL", ()), ("CV", "VAR_OUTPUT", "INT", ())],
}

_INT_MAX = 32767
_INT_MIN = -32768


class _Timer:
    __slots__ = ("ctx__", "IN", "PT", "Q", "ET", "m_in__", "start__")

    def __init__(self, ctx):
        self.ctx__ = ctx
        self.IN = False
        self.PT = 0
        self.Q = False
        self.ET = 0
        self.m_in__ = False
        self.start__ = 0


class TON(_Timer):
    """On-delay: Q rises once IN has been TRUE for PT; IN FALSE resets."""
    __slots__ = ()

    def body__(self):
        if self.IN:
            now = self.ctx__.now_ms
            if not self.m_in__:
                self.start__ = now
                self.m_in__ = True
            et = now - self.start__
            pt = self.PT
            if et >= pt:
                self.Q = True
                self.ET = pt
            else:
                self.Q = False
                self.ET = et
        else:
            self.m_in__ = False
            self.Q = False
            self.ET = 0


class TOF(_Timer):
    """Off-delay: Q follows IN up at once and falls PT after IN falls."""
    __slots__ = ()

    def body__(self):
        if self.IN:
            self.m_in__ = True
            self.Q = True
            self.ET = 0
            return
        now = self.ctx__.now_ms
        if self.m_in__:
            self.m_in__ = False
            self.start__ = now
        if self.Q:
            et = now - self.start__
            pt = self.PT
            if et >= pt:
                self.Q = False
                self.ET = pt
            else:
                self.ET = et


class TP(_Timer):
    """Pulse: a rising IN starts a pulse of length PT that cannot be retriggered."""
    __slots__ = ()

    def body__(self):
        now = self.ctx__.now_ms
        rising = self.IN and not self.m_in__
        self.m_in__ = self.IN
        if not self.Q and rising and self.ET == 0:
            self.start__ = now
            self.Q = True
        if self.Q:
            et = now - self.start__
            pt = self.PT
            if et >= pt:
                self.Q = False
                self.ET = pt
            else:
                self.ET = et
        if not self.Q and not self.IN:
            self.ET = 0


class R_TRIG:
    __slots__ = ("CLK", "Q", "m__")

    def __init__(self, ctx=None):
        self.CLK = False
        self.Q = False
        self.m__ = False

    def body__(self):
        clk = self.CLK
        self.Q = clk and not self.m__
        self.m__ = clk


class F_TRIG:
    """Falling edge. Q is TRUE only after CLK has been seen TRUE, so a first
    call with CLK FALSE does not report an edge (the IEC reference text
    would; CODESYS and every engineer expect it not to)."""
    __slots__ = ("CLK", "Q", "m__")

    def __init__(self, ctx=None):
        self.CLK = False
        self.Q = False
        self.m__ = False

    def body__(self):
        clk = self.CLK
        self.Q = (not clk) and self.m__
        self.m__ = clk


class SR:
    """Set-dominant bistable."""
    __slots__ = ("S1", "R", "Q1")

    def __init__(self, ctx=None):
        self.S1 = False
        self.R = False
        self.Q1 = False

    def body__(self):
        self.Q1 = self.S1 or (not self.R and self.Q1)


class RS:
    """Reset-dominant bistable."""
    __slots__ = ("S", "R1", "Q1")

    def __init__(self, ctx=None):
        self.S = False
        self.R1 = False
        self.Q1 = False

    def body__(self):
        self.Q1 = not self.R1 and (self.S or self.Q1)


class CTU:
    __slots__ = ("CU", "R", "PV", "Q", "CV", "m__")

    def __init__(self, ctx=None):
        self.CU = False
        self.R = False
        self.PV = 0
        self.Q = False
        self.CV = 0
        self.m__ = False

    def body__(self):
        cu = self.CU
        if self.R:
            self.CV = 0
        elif cu and not self.m__ and self.CV < _INT_MAX:
            self.CV += 1
        self.m__ = cu
        self.Q = self.CV >= self.PV


class CTD:
    __slots__ = ("CD", "LD", "PV", "Q", "CV", "m__")

    def __init__(self, ctx=None):
        self.CD = False
        self.LD = False
        self.PV = 0
        self.Q = False
        self.CV = 0
        self.m__ = False

    def body__(self):
        cd = self.CD
        if self.LD:
            self.CV = self.PV
        elif cd and not self.m__ and self.CV > _INT_MIN:
            self.CV -= 1
        self.m__ = cd
        self.Q = self.CV <= 0


class CTUD:
    __slots__ = ("CU", "CD", "R", "LD", "PV", "QU", "QD", "CV", "mu__", "md__")

    def __init__(self, ctx=None):
        self.CU = False
        self.CD = False
        self.R = False
        self.LD = False
        self.PV = 0
        self.QU = False
        self.QD = False
        self.CV = 0
        self.mu__ = False
        self.md__ = False

    def body__(self):
        cu, cd = self.CU, self.CD
        if self.R:
            self.CV = 0
        elif self.LD:
            self.CV = self.PV
        else:
            if cu and not self.mu__ and self.CV < _INT_MAX:
                self.CV += 1
            if cd and not self.md__ and self.CV > _INT_MIN:
                self.CV -= 1
        self.mu__ = cu
        self.md__ = cd
        self.QU = self.CV >= self.PV
        self.QD = self.CV <= 0


CLASSES = {"TON": TON, "TOF": TOF, "TP": TP, "R_TRIG": R_TRIG, "F_TRIG": F_TRIG, "SR": SR,
           "RS": RS, "CTU": CTU, "CTD": CTD, "CTUD": CTUD}
