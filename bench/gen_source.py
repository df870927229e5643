"""Generate large, realistic Structured Text for compiler benchmarks.

``generate(n_lines, seed)`` returns about ``n_lines`` lines of valid ST that
look like hand-written battery-site protection code: FUNCTIONs and
FUNCTION_BLOCKs with a handful of typed declarations one per line, IF/ELSIF
chains, CASE on integers, FOR loops over arrays, TON timers, arithmetic and
comparisons, a comment every few lines, blank lines between POUs, and one
PROGRAM at the end that declares an instance of every FB and calls it
(followed by a CONFIGURATION with one 10 ms task).

The output is deterministic for a seed (one ``random.Random(seed)``; no set
is ever iterated). It is built so that a strict checker accepts it:
  * every declared variable is used (inputs read, outputs written, locals
    written and read, timers called and their Q read) and every name read is
    declared in its POU;
  * types agree: REAL with REAL, INT with INT, booleans from comparisons and
    BOOL variables; INT_TO_REAL / DINT_TO_REAL where an integer feeds REAL
    arithmetic; no narrowing anywhere; REAL literals always have a '.';
  * no runtime faults: every '/' and MOD has a non-zero literal divisor,
    array indices stay in bounds, integer counters are reset every call and
    filters are stable, so values stay bounded for any number of scans.
Only these ST features appear: FUNCTION, FUNCTION_BLOCK,
PROGRAM, CONFIGURATION, VAR / VAR_INPUT / VAR_OUTPUT, ARRAY with integer
bounds, FOR / IF / ELSIF / CASE, MIN MAX LIMIT ABS INT_TO_REAL DINT_TO_REAL,
TON, and (* comments *).

Run ``python bench/gen_source.py`` to print ``generate(10000)``.
"""
from __future__ import annotations

import random

REAL, INT, BOOL, TON = "REAL", "INT", "BOOL", "TON"
ARRAY_LEN = 8                      # every array that crosses a call has 1..8 bounds
ARRAY8 = f"ARRAY[1..{ARRAY_LEN}] OF REAL"
MAX_INPUTS_FB = 6                  # inputs per FB before sections must reuse sources

# ------------------------------------------------------------------ vocabulary

FB_PREFIXES = ["Cell", "Module", "Rack", "String", "Pack", "Inverter", "Breaker", "Feeder",
               "Hvac", "Pcs", "DcBus", "AcBus", "Fan", "Pump", "Contactor", "Insulation",
               "Meter", "Transformer", "Charger", "Grid"]
FB_ROLES = ["Guard", "Monitor", "Limiter", "Protect", "Supervisor", "Filter", "Check",
            "Derate", "Watch", "Alarm"]

REAL_IN = ["voltage", "current", "tempC", "socPct", "powerKw", "freqHz", "busV", "flowLpm",
           "pressureBar", "humidity", "loadPct", "measured", "feedback", "ambientC"]
LIMIT_HI_IN = ["limitHi", "threshold", "maxTemp", "tripLevel", "warnLevel", "maxVolt"]
LIMIT_LO_IN = ["limitLo", "minVolt", "minTemp", "lowLevel", "floorLevel"]
RATED_IN = ["ratedKw", "nominalKw", "maxPowerKw"]
LIMIT_IN = LIMIT_HI_IN + LIMIT_LO_IN + RATED_IN     # bound to literals by the program
INT_IN = ["mode", "stage", "selector", "profile", "opState"]
BOOL_IN = ["enable", "permit", "remoteOn", "ackReset", "breakerClosed", "contactorOn", "gridOk"]
ARRAY_IN = ["samples", "cellVolts", "temps", "readings", "window"]

# Names by role, so a block reads like its purpose ("peak", "highAlarm", ...).
NAMES = {
    "flag_hi": ["over", "exceeded", "aboveLimit", "highSeen"],
    "flag_lo": ["under", "belowLimit", "lowSeen", "sagging"],
    "alarm_hi": ["highAlarm", "overTrip", "alarmHi", "trip"],
    "alarm_lo": ["lowAlarm", "underTrip", "alarmLo", "lowTrip"],
    "sum": ["sum", "acc", "runningSum"],
    "max": ["peak", "highest", "maxValue"],
    "min": ["lowest", "minValue", "bottom"],
    "avg": ["avgValue", "mean", "average"],
    "hits": ["hits", "tally", "nFound"],
    "count": ["count", "outOfBand", "nHigh", "nActive"],
    "trend": ["trendAvg", "smoothed", "windowAvg"],
    "gain": ["gain", "modeGain", "response"],
    "filtered": ["filtered", "lpValue", "smoothValue"],
    "delta": ["delta", "change", "stepSize"],
    "prev": ["prev", "lastValue", "previous"],
    "steep": ["steep", "fastChange", "jump"],
    "code": ["code", "status", "severity"],
    "factor": ["derate", "factor", "derateFactor"],
    "allowed": ["allowedKw", "powerLimit", "maxKw"],
    "err": ["err", "deviation", "offsetErr"],
    "integral": ["integral", "accum", "iTerm"],
    "ready": ["ready", "released", "stable"],
    "score": ["score", "priority", "weight"],
    "corrected": ["corrected", "adjusted", "compensated"],
    "fn_real": ["conditioned", "shaped", "normalised"],
    "fn_int": ["grade", "classOut", "bandOut"],
}
LOOP_LOC = ["i", "k", "j", "n"]
TON_LOC = ["tripDelay", "onDelay", "holdTmr", "confirmTmr", "startTmr", "debounce"]
HIST_LOC = ["hist", "buffer", "trend"]

COMMENTS = {
    "hyst_hi": ["high alarm with a release band", "over-limit detection with hysteresis",
                "latch the high condition until the value falls back"],
    "hyst_lo": ["low alarm with a release band", "under-limit detection with hysteresis",
                "latch the low condition until the value recovers"],
    "stats": ["mean and extreme over the sample window", "window statistics",
              "scan the readings for the average and the extreme"],
    "count": ["count readings beyond the threshold", "how many channels are out of band",
              "number of samples above the limit"],
    "history": ["shift the history buffer, newest sample last", "keep a short trend window",
                "rolling history of the input"],
    "case": ["gain for the operating mode", "select the response for this stage",
             "mode dependent scaling"],
    "filter": ["first-order low-pass filter", "smooth the measurement",
               "exponential filter against sensor noise"],
    "rate": ["rate of change since the previous call", "detect fast excursions",
             "step detection between calls"],
    "func": ["condition the signal", "apply the shared helper", "normalise before use"],
    "status": ["status code for the HMI, worst first", "summarise the conditions",
               "severity for the event log"],
    "derate": ["linear derate towards the limit", "power allowed at this value",
               "derate curve, clamped to 0..1"],
    "integrate": ["bounded integral of the error", "accumulate the deviation, clamped",
                  "windup-limited integrator"],
    "ready": ["ready once the permit has been stable", "start-up confirmation delay",
              "wait for stable conditions before release"],
    "score": ["weighted score of the active conditions", "combine the flags into one number",
              "priority score for dispatch"],
    "mix": ["correct the reading for the operating point", "offset by the selected stage",
            "stage dependent correction"],
}


def _real(x: float, digits: int = 2) -> str:
    text = f"{x:.{digits}f}"
    return text if "." in text else text + ".0"


def _lower_first(name: str) -> str:
    return name[0].lower() + name[1:]


# ------------------------------------------------------------------ one POU being written

class _Pou:
    def __init__(self, rng: random.Random, name: str):
        self.rng = rng
        self.name = name
        self.inputs: list[tuple[str, str]] = []
        self.outputs: list[tuple[str, str]] = []
        self.locals: list[tuple[str, str]] = []
        self.body: list[str] = []
        self.taken = {name.lower()}
        self.reals: list[str] = []       # REAL values that may be read
        self.ints: list[str] = []
        self.bools: list[str] = []
        self.arrays: list[tuple[str, int]] = []
        self.loop_vars: list[str] = []

    # names -------------------------------------------------------------
    def fresh(self, pool: list[str]) -> str:
        free = [n for n in pool if n.lower() not in self.taken]
        if free:
            name = self.rng.choice(free)
        else:
            base = self.rng.choice(pool)
            k = 2
            while f"{base}{k}".lower() in self.taken:
                k += 1
            name = f"{base}{k}"
        self.taken.add(name.lower())
        return name

    def add_input(self, pool, type_text):
        name = self.fresh(pool)
        self.inputs.append((name, type_text))
        return name

    def add_output(self, pool, type_text):
        name = self.fresh(pool)
        self.outputs.append((name, type_text))
        return name

    def add_local(self, pool, type_text):
        name = self.fresh(pool)
        self.locals.append((name, type_text))
        return name

    # sources: reuse a readable value or take a new input -----------------
    def _room(self) -> bool:
        return len(self.inputs) < MAX_INPUTS_FB

    def real_src(self) -> str:
        if self.reals and (not self._room() or self.rng.random() < 0.55):
            return self.rng.choice(self.reals)
        name = self.add_input(REAL_IN, REAL)
        self.reals.append(name)
        return name

    def limit_src(self, pool: list[str], lo: float, hi: float) -> str:
        """A threshold: a tunable input or a literal, as real code mixes both."""
        if self._room() and self.rng.random() < 0.35:
            return self.add_input(pool, REAL)
        return _real(self.rng.uniform(lo, hi))

    def int_src(self) -> str:
        if self.ints and (not self._room() or self.rng.random() < 0.5):
            return self.rng.choice(self.ints)
        name = self.add_input(INT_IN, INT)
        self.ints.append(name)
        return name

    def bool_src(self, avoid: tuple[str, ...] = ()) -> str:
        usable = [b for b in self.bools if b not in avoid]
        if usable and (not self._room() or self.rng.random() < 0.6):
            return self.rng.choice(usable)
        name = self.add_input(BOOL_IN, BOOL)
        self.bools.append(name)
        return name

    def array_src(self, length: int | None = None) -> tuple[str, int]:
        fits = [a for a in self.arrays if length is None or a[1] == length]
        if fits and self.rng.random() < 0.7:
            return self.rng.choice(fits)
        name = self.add_input(ARRAY_IN, ARRAY8)
        self.arrays.append((name, ARRAY_LEN))
        return name, ARRAY_LEN

    def loop_var(self) -> str:
        if self.loop_vars and self.rng.random() < 0.8:
            return self.rng.choice(self.loop_vars)
        name = self.add_local(LOOP_LOC, INT)
        self.loop_vars.append(name)
        return name

    # text ------------------------------------------------------------------
    def line(self, depth: int, text: str) -> None:
        self.body.append("  " * depth + text)

    def comment(self, key: str) -> None:
        self.line(0, f"(* {self.rng.choice(COMMENTS[key])} *)")

    def timer_call(self, tmr: str, cond: str, pt: str) -> None:
        if len(cond) > 24:
            self.line(0, f"{tmr}(IN := {cond},")
            self.line(0, " " * len(tmr) + f" PT := {pt});")
        else:
            self.line(0, f"{tmr}(IN := {cond}, PT := {pt});")


def _time_literal(rng: random.Random) -> str:
    ms = rng.choice([100, 200, 250, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000])
    return f"T#{ms // 1000}s" if ms % 1000 == 0 else f"T#{ms}ms"


# ------------------------------------------------------------------ FB sections

def _sec_hyst(p: _Pou, high: bool) -> None:
    r = p.rng
    src = p.real_src()
    lim = p.limit_src(LIMIT_HI_IN if high else LIMIT_LO_IN, 2.5, 60.0)
    band = _real(r.choice([0.02, 0.05, 0.1, 0.5, 1.0, 2.0]))
    flag = p.add_local(NAMES["flag_hi" if high else "flag_lo"], BOOL)
    tmr = p.add_local(TON_LOC, TON)
    en = p.bool_src()
    out = p.add_output(NAMES["alarm_hi" if high else "alarm_lo"], BOOL)
    if lim[0].isdigit():
        release = _real(float(lim) - float(band) if high else float(lim) + float(band))
    else:
        release = f"{lim} {'-' if high else '+'} {band}"
    on_cmp, off_cmp = (">", "<") if high else ("<", ">")
    p.comment("hyst_hi" if high else "hyst_lo")
    p.line(0, f"IF {src} {on_cmp} {lim} THEN")
    p.line(1, f"{flag} := TRUE;")
    p.line(0, f"ELSIF {src} {off_cmp} {release} THEN")
    p.line(1, f"{flag} := FALSE;")
    p.line(0, "END_IF;")
    p.timer_call(tmr, f"{flag} AND {en}", _time_literal(r))
    p.line(0, f"{out} := {tmr}.Q;")
    p.bools.append(out)


def _sec_stats(p: _Pou) -> None:
    arr, n = p.array_src()
    i = p.loop_var()
    fn = p.rng.choice(["MAX", "MIN"])
    acc = p.add_local(NAMES["sum"], REAL)
    ext = p.add_output(NAMES["max" if fn == "MAX" else "min"], REAL)
    avg = p.add_output(NAMES["avg"], REAL)
    p.comment("stats")
    p.line(0, f"{acc} := 0.0;")
    p.line(0, f"{ext} := {arr}[1];")
    p.line(0, f"FOR {i} := 1 TO {n} DO")
    p.line(1, f"{acc} := {acc} + {arr}[{i}];")
    p.line(1, f"{ext} := {fn}({ext}, {arr}[{i}]);")
    p.line(0, "END_FOR;")
    p.line(0, f"{avg} := {acc} / {n}.0;")
    p.reals += [ext, avg]


def _sec_count(p: _Pou) -> None:
    arr, n = p.array_src()
    i = p.loop_var()
    thr = p.real_src() if p.rng.random() < 0.3 else _real(p.rng.uniform(1.0, 50.0))
    hits = p.add_local(NAMES["hits"], INT)
    out = p.add_output(NAMES["count"], INT)
    cmp = p.rng.choice([">", "<", ">="])
    p.comment("count")
    p.line(0, f"{hits} := 0;")
    p.line(0, f"FOR {i} := 1 TO {n} DO")
    p.line(1, f"IF {arr}[{i}] {cmp} {thr} THEN")
    p.line(2, f"{hits} := {hits} + 1;")
    p.line(1, "END_IF;")
    p.line(0, "END_FOR;")
    p.line(0, f"{out} := {hits};")
    p.ints.append(out)


def _sec_history(p: _Pou) -> None:
    r = p.rng
    src = p.real_src()
    n = r.choice([4, 6, 8, 8, 10, 12])
    hist = p.add_local(HIST_LOC, f"ARRAY[1..{n}] OF REAL")
    k = p.loop_var()
    out = p.add_output(NAMES["trend"], REAL)
    p.comment("history")
    p.line(0, f"FOR {k} := 1 TO {n - 1} DO")
    p.line(1, f"{hist}[{k}] := {hist}[{k} + 1];")
    p.line(0, "END_FOR;")
    p.line(0, f"{hist}[{n}] := {src};")
    p.line(0, f"{out} := ({hist}[1] + {hist}[{n}]) * 0.5;")
    p.reals.append(out)
    p.arrays.append((hist, n))


def _sec_case(p: _Pou) -> None:
    r = p.rng
    sel = p.int_src()
    src = p.real_src()
    out = p.add_output(NAMES["gain"], REAL)
    labels = r.choice([["0", "1", "2"], ["0", "1", "2, 3"], ["1", "2", "3..5"],
                       ["0", "1, 2", "3", "4..6"]])
    p.comment("case")
    p.line(0, f"CASE {sel} OF")
    kinds = [r.randrange(3) for _ in labels]
    if all(k == 0 for k in kinds):
        kinds[r.randrange(len(kinds))] = r.choice([1, 2])  # the source must be read
    for lab, kind in zip(labels, kinds):
        p.line(1, f"{lab}:")
        if kind == 0:
            p.line(2, f"{out} := {_real(r.uniform(0.0, 2.0))};")
        elif kind == 1:
            p.line(2, f"{out} := {_real(r.uniform(0.1, 1.5))} * {src};")
        else:
            p.line(2, f"{out} := {src} - {_real(r.uniform(0.1, 5.0))};")
    p.line(1, "ELSE")
    p.line(2, f"{out} := 0.0;")
    p.line(0, "END_CASE;")
    p.reals.append(out)


def _sec_filter(p: _Pou) -> None:
    src = p.real_src()
    out = p.add_output(NAMES["filtered"], REAL)
    alpha = _real(p.rng.choice([0.05, 0.1, 0.2, 0.25, 0.5]))
    p.comment("filter")
    p.line(0, f"{out} := {out} + {alpha} * ({src} - {out});")
    p.reals.append(out)


def _sec_rate(p: _Pou) -> None:
    r = p.rng
    src = p.real_src()
    delta = p.add_local(NAMES["delta"], REAL)
    prev = p.add_local(NAMES["prev"], REAL)
    out = p.add_output(NAMES["steep"], BOOL)
    lim = _real(r.uniform(0.1, 10.0))
    p.comment("rate")
    p.line(0, f"{delta} := {src} - {prev};")
    p.line(0, f"{prev} := {src};")
    if r.random() < 0.5:
        p.line(0, f"{out} := ABS({delta}) > {lim};")
    else:
        p.line(0, f"IF ABS({delta}) > {lim} THEN")
        p.line(1, f"{out} := TRUE;")
        p.line(0, "ELSE")
        p.line(1, f"{out} := FALSE;")
        p.line(0, "END_IF;")
    p.bools.append(out)
    p.reals.append(delta)


def _sec_status(p: _Pou) -> None:
    r = p.rng
    b1 = p.bool_src()
    src = p.real_src()
    out = p.add_output(NAMES["code"], INT)
    p.comment("status")
    p.line(0, f"IF {b1} THEN")
    p.line(1, f"{out} := 3;")
    p.line(0, f"ELSIF {src} > {_real(r.uniform(1.0, 50.0))} THEN")
    p.line(1, f"{out} := 2;")
    if r.random() < 0.5:
        p.line(0, f"ELSIF {src} < {_real(r.uniform(-5.0, 1.0))} THEN")
        p.line(1, f"{out} := 1;")
    p.line(0, "ELSE")
    p.line(1, f"{out} := 0;")
    p.line(0, "END_IF;")
    p.ints.append(out)


def _sec_derate(p: _Pou) -> None:
    r = p.rng
    src = p.real_src()
    hi = _real(r.uniform(30.0, 60.0), 1)
    span = _real(r.choice([2.0, 5.0, 10.0, 15.0]), 1)
    factor = p.add_output(NAMES["factor"], REAL)
    allowed = p.add_output(NAMES["allowed"], REAL)
    rated = p.limit_src(RATED_IN, 50.0, 500.0)
    p.comment("derate")
    p.line(0, f"{factor} := LIMIT(0.0, ({hi} - {src}) / {span}, 1.0);")
    p.line(0, f"{allowed} := {rated} * {factor};")
    p.reals += [factor, allowed]


def _sec_integrate(p: _Pou) -> None:
    r = p.rng
    src = p.real_src()
    ref = p.real_src()
    if ref == src:
        ref = p.real_src()
    err = p.add_local(NAMES["err"], REAL)
    out = p.add_output(NAMES["integral"], REAL)
    cap = _real(r.choice([10.0, 50.0, 100.0]), 1)
    ki = _real(r.choice([0.01, 0.02, 0.05, 0.1]))
    p.comment("integrate")
    p.line(0, f"{err} := {ref} - {src};")
    p.line(0, f"{out} := {out} + {ki} * {err};")
    p.line(0, f"{out} := LIMIT(-{cap}, {out}, {cap});")
    p.reals += [out, err]


def _sec_ready(p: _Pou) -> None:
    r = p.rng
    en = p.bool_src()
    tmr = p.add_local(TON_LOC, TON)
    out = p.add_output(NAMES["ready"], BOOL)
    others = [b for b in p.bools if b != en]
    cond = f"{en} AND NOT {r.choice(others)}" if others else en
    p.comment("ready")
    p.timer_call(tmr, cond, _time_literal(r))
    p.line(0, f"{out} := {tmr}.Q;")
    p.bools.append(out)


def _sec_score(p: _Pou) -> None:
    r = p.rng
    out = p.add_output(NAMES["score"], INT)
    p.comment("score")
    p.line(0, f"{out} := 0;")
    seen: list[str] = []
    for weight in r.sample([1, 2, 4, 8], r.choice([2, 3])):
        flag = p.bool_src(avoid=tuple(seen))
        seen.append(flag)
        p.line(0, f"IF {flag} THEN")
        p.line(1, f"{out} := {out} + {weight};")
        p.line(0, "END_IF;")
    p.line(0, f"{out} := {out} + {p.int_src()} MOD {r.choice([2, 3, 4])};")
    p.ints.append(out)


def _sec_mix(p: _Pou) -> None:
    r = p.rng
    src = p.real_src()
    n = p.int_src()
    out = p.add_output(NAMES["corrected"], REAL)
    p.comment("mix")
    p.line(0, f"{out} := {src} * {_real(r.uniform(0.5, 1.5))};")
    p.line(0, f"{out} := {out} + {_real(r.uniform(0.01, 0.5))} * INT_TO_REAL({n});")
    p.reals.append(out)


def _sec_func(p: _Pou, fn: "_Func") -> None:
    r = p.rng
    args = []
    for kind in fn.params:
        if kind == REAL:
            args.append(p.real_src() if not args or r.random() < 0.4 else _real(r.uniform(0.5, 10.0)))
        elif kind == INT:
            args.append(p.int_src() if not args or r.random() < 0.5 else str(r.randint(1, 9)))
        else:
            args.append(p.array_src(ARRAY_LEN)[0])
    if fn.ret == REAL:
        out = p.add_output(NAMES["fn_real"], REAL)
        p.reals.append(out)
    else:
        out = p.add_output(NAMES["fn_int"], INT)
        p.ints.append(out)
    p.comment("func")
    p.line(0, f"{out} := {fn.name}({', '.join(args)});")


_SECTIONS = [
    (lambda p: _sec_hyst(p, True), 5), (lambda p: _sec_hyst(p, False), 3),
    (_sec_stats, 3), (_sec_count, 2), (_sec_history, 2), (_sec_case, 3), (_sec_filter, 2),
    (_sec_rate, 2), (_sec_status, 3), (_sec_derate, 2), (_sec_integrate, 2), (_sec_ready, 2),
    (_sec_score, 2), (_sec_mix, 2),
]


# ------------------------------------------------------------------ functions

class _Func:
    def __init__(self, name: str, ret: str, params: list[str], text: list[str]):
        self.name = name
        self.ret = ret
        self.params = params
        self.text = text
        self.called = False


def _func_text(name, ret, head_comment, inputs, local_vars, body):
    out = [f"(* {head_comment} *)", f"FUNCTION {name} : {ret}", "VAR_INPUT"]
    out += [f"  {n} : {t};" for n, t in inputs]
    out.append("END_VAR")
    if local_vars:
        out.append("VAR")
        out += [f"  {n} : {t};" for n, t in local_vars]
        out.append("END_VAR")
    return out + body + ["END_FUNCTION"]


def _make_function(rng: random.Random, index: int) -> _Func:
    kind = rng.choice(["clamp", "deadband", "lerp", "poly", "approach", "bands", "satadd",
                       "mean", "stage_scale"])
    R = lambda lo, hi: _real(rng.uniform(lo, hi))  # noqa: E731
    if kind == "clamp":
        name = f"Clamp{index}"
        body = ["(* lower bound first, then the upper one *)",
                "t := MAX(x, lo);", f"{name} := MIN(t, hi);"]
        return _Func(name, REAL, [REAL, REAL, REAL], _func_text(
            name, REAL, "clamp a measurement into its valid range",
            [("x", REAL), ("lo", REAL), ("hi", REAL)], [("t", REAL)], body))
    if kind == "deadband":
        name = f"Deadband{index}"
        body = ["IF x > band THEN", f"  {name} := x - band;",
                "ELSIF x < -band THEN", f"  {name} := x + band;",
                "ELSE", "  (* inside the band: no correction *)", f"  {name} := 0.0;", "END_IF;"]
        return _Func(name, REAL, [REAL, REAL], _func_text(
            name, REAL, "deadband around zero, continuous at the edges",
            [("x", REAL), ("band", REAL)], [], body))
    if kind == "lerp":
        name = f"Blend{index}"
        body = ["wc := LIMIT(0.0, w, 1.0);", "(* w = 0 gives a, w = 1 gives b *)",
                f"{name} := a + (b - a) * wc;"]
        return _Func(name, REAL, [REAL, REAL, REAL], _func_text(
            name, REAL, "blend two values with a clamped weight",
            [("a", REAL), ("b", REAL), ("w", REAL)], [("wc", REAL)], body))
    if kind == "poly":
        name = f"Linearise{index}"
        body = ["(* Horner form of the calibration polynomial *)",
                f"acc := {R(0.001, 0.01)} * x;", f"acc := (acc + {R(0.5, 1.5)}) * x;",
                f"{name} := acc + {R(-1.0, 1.0)};"]
        return _Func(name, REAL, [REAL], _func_text(
            name, REAL, "sensor linearisation", [("x", REAL)], [("acc", REAL)], body))
    if kind == "approach":
        name = f"Approach{index}"
        body = ["delta := target - cur;", "(* move at most stepMax per call *)",
                f"{name} := cur + LIMIT(-stepMax, delta, stepMax);"]
        return _Func(name, REAL, [REAL, REAL, REAL], _func_text(
            name, REAL, "rate-limited approach to a target",
            [("cur", REAL), ("target", REAL), ("stepMax", REAL)], [("delta", REAL)], body))
    if kind == "bands":
        name = f"BandOf{index}"
        t1 = rng.uniform(0.5, 5.0)
        t2 = t1 + rng.uniform(1.0, 10.0)
        t3 = t2 + rng.uniform(1.0, 20.0)
        body = [f"IF x > {_real(t3)} THEN", f"  {name} := 3;",
                f"ELSIF x > {_real(t2)} THEN", f"  {name} := 2;",
                f"ELSIF x > {_real(t1)} THEN", f"  {name} := 1;",
                "ELSE", f"  {name} := 0;", "END_IF;"]
        return _Func(name, INT, [REAL], _func_text(
            name, INT, "classify a value into severity bands 0..3", [("x", REAL)], [], body))
    if kind == "satadd":
        name = f"SatAdd{index}"
        lim = rng.choice([10, 20, 50, 100])
        body = ["s := a + b;", "(* saturate instead of running away *)",
                f"IF s > {lim} THEN", f"  {name} := {lim};",
                "ELSIF s < 0 THEN", f"  {name} := 0;",
                "ELSE", f"  {name} := s;", "END_IF;"]
        return _Func(name, INT, [INT, INT], _func_text(
            name, INT, f"saturating add, result in 0..{lim}",
            [("a", INT), ("b", INT)], [("s", INT)], body))
    if kind == "mean":
        name = f"Mean{index}"
        body = ["acc := 0.0;", f"FOR i := 1 TO {ARRAY_LEN} DO", "  acc := acc + v[i];",
                "END_FOR;", f"{name} := acc / {ARRAY_LEN}.0;"]
        return _Func(name, REAL, [ARRAY8], _func_text(
            name, REAL, "average of an eight-sample window",
            [("v", ARRAY8)], [("i", INT), ("acc", REAL)], body))
    name = f"StageScale{index}"
    body = ["(* each stage adds a fixed fraction *)",
            f"{name} := x * (1.0 + {R(0.05, 0.2)} * INT_TO_REAL(stage));"]
    return _Func(name, REAL, [REAL, INT], _func_text(
        name, REAL, "scale a value by the active stage",
        [("x", REAL), ("stage", INT)], [], body))


# ------------------------------------------------------------------ function blocks

def _fb_text(p: _Pou, title: str) -> list[str]:
    out = [f"(* {title} *)", f"FUNCTION_BLOCK {p.name}"]
    for kw, decls in (("VAR_INPUT", p.inputs), ("VAR_OUTPUT", p.outputs), ("VAR", p.locals)):
        if decls:
            out.append(kw)
            out += [f"  {n} : {t};" for n, t in decls]
            out.append("END_VAR")
    return out + p.body + ["END_FUNCTION_BLOCK"]


def _make_fb(rng: random.Random, name: str, funcs: list[_Func], first: bool) -> _Pou:
    p = _Pou(rng, name)
    if first:
        # The first FB takes every kind of program signal and gives every kind
        # of output, so every program variable is guaranteed a use.
        _sec_stats(p)
        _sec_case(p)
        _sec_hyst(p, True)
        _sec_count(p)
    else:
        fns, weights = zip(*_SECTIONS)
        for _ in range(rng.randint(4, 8)):
            rng.choices(fns, weights)[0](p)
        uncalled = [f for f in funcs if not f.called]
        for fn in (uncalled[:2] if uncalled else rng.sample(funcs, min(len(funcs), 1))):
            if rng.random() < 0.8:
                _sec_func(p, fn)
                fn.called = True
    return p


# ------------------------------------------------------------------ program

_BIND = {
    REAL: ["x", "y", "x * 0.5", "y + 0.1", "x - 1.0"],
    INT: ["sel", "sel", "tick MOD 5"],
    BOOL: ["run", "run", "NOT run", "x > 2.5"],
    ARRAY8: ["buf"],
}
_SIGNALS = {REAL: ["x", "y"], INT: ["sel"], BOOL: ["run"], ARRAY8: ["buf"]}


def _program_calls(rng: random.Random, fb: _Pou, first: bool) -> list[str]:
    inst = "fb" + fb.name
    binds = []
    pending = {k: list(v) for k, v in _SIGNALS.items()} if first else {}
    limit_names = {n.lower() for n in LIMIT_IN}
    for name, t in fb.inputs:
        if name.rstrip("0123456789").lower() in limit_names:
            value = _real(rng.uniform(3.0, 60.0)) if t == REAL else None
        else:
            value = None
        if value is None:
            value = pending[t].pop(0) if pending.get(t) else rng.choice(_BIND[t])
        binds.append(f"{name} := {value}")
    lines = []
    if len(binds) <= 2:
        lines.append(f"{inst}({', '.join(binds)});")
    else:
        pad = " " * (len(inst) + 1)
        lines.append(f"{inst}({binds[0]},")
        lines += [f"{pad}{b}," for b in binds[1:-1]]
        lines.append(f"{pad}{binds[-1]});")
    for name, t in fb.outputs:
        if t == REAL:
            lines.append(f"total := total + {inst}.{name};")
        elif t == INT:
            lines.append(f"codes := codes + {inst}.{name};")
        else:
            lines += [f"IF {inst}.{name} THEN", "  alarms := alarms + 1;", "END_IF;"]
    return lines


def _program_text(fbs: list[_Pou], calls: list[list[str]], leftovers: list[str]) -> list[str]:
    out = ["(* Site program: synthetic signals, then every protection block once per scan *)",
           "PROGRAM BenchMain", "VAR",
           "  scan : DINT;", "  tick : INT;", "  sel : INT;", "  run : BOOL;",
           "  x : REAL;", "  y : REAL;", f"  buf : {ARRAY8};", "  i : INT;",
           "  total : REAL;", "  alarms : INT;", "  codes : INT;"]
    out += [f"  fb{fb.name} : {fb.name};" for fb in fbs]
    out += ["END_VAR",
            "(* synthetic plant signals for this scan *)",
            "scan := scan + 1;",
            "tick := tick + 1;",
            "IF tick > 999 THEN",
            "  tick := 0;",
            "END_IF;",
            "sel := tick MOD 4;",
            "run := tick > 20;",
            "x := DINT_TO_REAL(scan MOD 500) / 100.0;",
            "y := 3.0 + 0.5 * INT_TO_REAL(tick MOD 50) / 50.0;",
            f"FOR i := 1 TO {ARRAY_LEN} DO",
            "  buf[i] := x + 0.01 * y * INT_TO_REAL(i);",
            "END_FOR;",
            "(* results are summed per scan *)",
            "total := 0.0;",
            "alarms := 0;",
            "codes := 0;"]
    for k, block in enumerate(calls):
        if k % 4 == 0:
            out.append(f"(* protection group {k // 4 + 1} *)")
        out += block
    if leftovers:
        out.append("(* helpers not used by any block *)")
        out += leftovers
    out += ["END_PROGRAM", "",
            "CONFIGURATION Bench",
            "  RESOURCE Cpu ON PLC",
            "    TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);",
            "    PROGRAM Main WITH Fast : BenchMain;",
            "  END_RESOURCE",
            "END_CONFIGURATION"]
    return out


def generate(n_lines: int, seed: int = 1) -> str:
    """About n_lines lines of valid, realistic ST; the same text for the same seed."""
    rng = random.Random(seed)
    pous: list[list[str]] = []
    funcs: list[_Func] = []
    fbs: list[_Pou] = []
    calls: list[list[str]] = []
    used_names: set[str] = set()
    program_overhead = 45
    lines = program_overhead
    index = 0
    while lines < n_lines or not fbs:
        index += 1
        if funcs and rng.random() < 0.75 or len(funcs) >= 3 * (len(fbs) + 1):
            while True:
                name = rng.choice(FB_PREFIXES) + rng.choice(FB_ROLES) + str(index)
                if name.lower() not in used_names:
                    break
            used_names.add(name.lower())
            fb = _make_fb(rng, name, funcs, first=not fbs)
            title = f"{name}: protection for one {rng.choice(['rack', 'string', 'feeder', 'unit', 'bay'])}"
            text = _fb_text(fb, title)
            fbs.append(fb)
            block = _program_calls(rng, fb, first=len(fbs) == 1)
            calls.append(block)
            lines += len(text) + 2 + len(block) + 1
        else:
            fn = _make_function(rng, index)
            used_names.add(fn.name.lower())
            funcs.append(fn)
            text = fn.text
            lines += len(text) + 1
        pous.append(text)
    leftovers = []
    for fn in funcs:
        if fn.called:
            continue
        args = {REAL: "x", INT: "sel", ARRAY8: "buf"}
        call = f"{fn.name}({', '.join(args[t] for t in fn.params)})"
        leftovers.append(f"total := total + {call};" if fn.ret == REAL else f"codes := codes + {call};")
    pous.append(_program_text(fbs, calls, leftovers))
    return "\n\n".join("\n".join(block) for block in pous) + "\n"


if __name__ == "__main__":
    print(generate(10000), end="")
