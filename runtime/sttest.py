"""ST unit tests: `gridplc test [PATH...]`.

Discovery. PATHs are .st files or directories (searched recursively for
*.st, in name order); the default is the current directory. All the files
form one project, so tests use the blocks of the library files beside them.
A test is a PROGRAM or FUNCTION_BLOCK whose name starts with TEST_ (any
case) or that carries `{attribute 'test'}`; it takes no VAR_INPUT or
VAR_IN_OUT. Tests run in file order, then source order.

Writing tests. Only tests may call these statements (E0093 elsewhere, so
production code can never move time):

    ASSERT_TRUE(cond [, msg])            ASSERT_FALSE(cond [, msg])
    ASSERT_EQ(expected, actual [, msg])  any elementary type: numbers, BOOL,
                                         STRING, TIME, enumerations
    ASSERT_NEAR(expected, actual, tolerance [, msg])   numbers
    ADVANCE(T#500ms)                     the test's clock moves at once: timers
                                         called afterwards see the new time
    ADVANCE_SCANS(n)                     n scan intervals: {attribute 'scan' :=
                                         '50ms'} on the test (default 100ms)

    {attribute 'scan' := '50ms'}
    PROGRAM TEST_TripAfterDelay
    VAR guard : OverTempGuard; i : INT; END_VAR
    FOR i := 1 TO 3 DO guard(t := 60.0); ADVANCE_SCANS(1); END_FOR;
    ASSERT_FALSE(guard.trip, 'not before 200 ms');
    guard(t := 60.0);
    ASSERT_TRUE(guard.trip);
    END_PROGRAM

Running. Each test gets a fresh instance and fresh globals, its clock at 0,
and its body is called once; the test drives the blocks under test itself.
The first failing assertion stops the test (FAILED, with file:line:col, the
assertion as written, its message, expected and actual values). A runtime
fault (division by zero, an index out of bounds, a loop running past
--timeout) stops it as ERROR, with its location.

Report: one line per test (`file::TEST_Name PASSED|FAILED|ERROR`), the
failures, and `N passed, M failed in X.XXs`; `-q` leaves out the PASSED
lines, `-k TEXT` runs the tests whose id contains TEXT (any case), `--junit
FILE` writes JUnit XML. Exit 0 when all passed, 1 when any failed, 2 for
compile errors (printed like `gridplc check`), no tests found or a bad
command line.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from plc_lang.codegen import GENERATED_FILENAME, CompiledProgram
from plc_lang.rt_support import AssertionFailed, Context
from plc_lang.testing import is_test, scan_interval_ns
from plc_lang.types import (BoolType, EnumType, IntType, LiteralIntType, LiteralRealType, RealType,
                            StringType, TimeType, strip_subrange)
from plc_lang.values import PlcFault, WatchdogExpired, f32

from .engine import describe_exception
from .watchdog import Watchdog


class NothingToTest(Exception):
    """Nothing to test: no files, no tests, a path that does not exist."""


@dataclass
class UnitTest:
    file: str
    name: str
    line: int
    pou_key: str
    scan_ns: int

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Outcome:
    case: UnitTest
    status: str                     # "passed", "failed", "error"
    seconds: float
    headline: str = ""              # file:line:col: what happened
    details: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- discovery
def find_files(paths: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for p in paths or ["."]:
        if os.path.isdir(p):
            found = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(".st")]
        elif os.path.isfile(p):
            found = [p]
        else:
            raise NothingToTest(f"no such file or directory: {p}")
        for f in found:
            f = os.path.normpath(f)
            if f not in seen:
                seen.add(f)
                out.append(f)
    if not out:
        raise NothingToTest(f"no .st files in {', '.join(paths or ['.'])}")
    return out


def collect(program: CompiledProgram, files: list[str]) -> list[UnitTest]:
    order = {f: i for i, f in enumerate(files)}
    cases = []
    for key, info in program.project.pous.items():
        if is_test(info.decl):
            sp = info.decl.span
            cases.append(UnitTest(sp.file, info.name, sp.line, key, scan_interval_ns(info.decl)[0]))
    cases.sort(key=lambda c: (order.get(c.file, len(order)), c.line, c.name))
    return cases


def select(cases: list[UnitTest], keyword: str | None) -> list[UnitTest]:
    if not keyword:
        return cases
    k = keyword.lower()
    return [c for c in cases if k in c.id.lower()]


# ---------------------------------------------------------------- running
class Runner:
    """Runs tests of one compiled project, one after the other."""

    def __init__(self, program: CompiledProgram, timeout_s: float = 10.0):
        self.program = program
        self.ns = program.load()
        self.timeout_s = timeout_s
        self._wd = Watchdog(self.ns["wd__"], timeout_s)

    def close(self) -> None:
        self._wd.close()

    def run(self, case: UnitTest) -> Outcome:
        ns = self.ns
        ctx = Context()
        ns["g__"] = ns["Globals__"](ctx)
        t0 = time.perf_counter()
        try:
            obj = ns[self.program.class_names[case.pou_key]](ctx)
            self._wd.arm(self.timeout_s)
            try:
                obj.body__()
            finally:
                self._wd.disarm()
        except AssertionFailed as f:
            return self._failed(case, f, time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - every ST fault ends this test only
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return self._error(case, exc, time.perf_counter() - t0)
        return Outcome(case, "passed", time.perf_counter() - t0)

    def _failed(self, case: UnitTest, f: AssertionFailed, seconds: float) -> Outcome:
        site = self.program.asserts[f.site]
        head = f"{site.span}: {site.text} failed" + (f": {f.message}" if f.message else "")
        fmt = [format_value(v, t) for v, t in zip(f.values, site.types)]
        if site.func in ("ASSERT_TRUE", "ASSERT_FALSE"):
            details = [f"expected: {'TRUE' if site.func == 'ASSERT_TRUE' else 'FALSE'}", f"actual:   {fmt[0]}"]
        elif site.func == "ASSERT_EQ":
            details = [f"expected: {fmt[0]}", f"actual:   {fmt[1]}"]
        else:
            a, b = f.values[0], f.values[1]
            diff = abs(a - b) if a == a and b == b else float("nan")
            details = [f"expected: {fmt[0]} +/- {fmt[2]}", f"actual:   {fmt[1]} (off by {diff:.6g})"]
        return Outcome(case, "failed", seconds, head, details)

    def _error(self, case: UnitTest, exc: BaseException, seconds: float) -> Outcome:
        where = exc.where if isinstance(exc, PlcFault) else None
        if isinstance(exc, WatchdogExpired):
            what = f"the test ran longer than {self.timeout_s:g} s (stopped in a loop)"
        else:
            what = describe_exception(exc)
        chain = self._st_frames(exc)
        if where is None and chain:
            where = chain[-1]
        callers = [f"called from {c}" for c in reversed(chain[:-1])]
        return Outcome(case, "error", seconds, f"{where or case.file}: fault: {what}", callers)

    def _st_frames(self, exc: BaseException) -> list[str]:
        """The ST locations of the generated-code frames, outermost first."""
        out = []
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == GENERATED_FILENAME:
                span = self.program.span_for_line(tb.tb_lineno)
                if span is not None:
                    out.append(str(span))
            tb = tb.tb_next
        return out


# ---------------------------------------------------------------- values
def format_value(v, t) -> str:
    """A value as ST writes it: TRUE, 42, 3.65, T#1s500ms, 'text', Mode#RUN."""
    ts = strip_subrange(t) if t is not None else None
    if isinstance(ts, BoolType) or isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(ts, RealType) and ts.bits == 32:
        return _short_f32(v)
    if isinstance(ts, (RealType, LiteralRealType)) or isinstance(v, float):
        return repr(float(v))
    if isinstance(ts, TimeType):
        return ("T#" if ts.unit_ns == 1_000_000 else "LTIME#") + _duration(v * ts.unit_ns)
    if isinstance(ts, EnumType):
        return f"{ts.name}#{ts.name_of(v)}"
    if isinstance(ts, StringType) or isinstance(v, str):
        q = '"' if isinstance(ts, StringType) and ts.wide else "'"
        return q + str(v).replace("$", "$$").replace(q, "$" + q) + q
    if isinstance(ts, (IntType, LiteralIntType)):
        return str(v)
    return repr(v)


def _short_f32(v: float) -> str:
    """The shortest decimal that reads back as the same binary32."""
    if v != v or v in (float("inf"), float("-inf")):
        return repr(v)
    for digits in range(1, 10):
        s = f"{v:.{digits}g}"
        if f32(float(s)) == v:
            return s if any(c in s for c in ".en") else s + ".0"
    return repr(v)


def _duration(ns: int) -> str:
    if ns == 0:
        return "0ms"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    parts = []
    for unit, size in (("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
                       ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1)):
        n, ns = divmod(ns, size)
        if n:
            parts.append(f"{n}{unit}")
    return sign + "".join(parts)


# ---------------------------------------------------------------- reports
def print_report(outcomes: list[Outcome], seconds: float, quiet: bool, out=None) -> None:
    out = out or sys.stdout
    if not quiet:
        for o in outcomes:
            print(f"{o.case.id} {o.status.upper()}", file=out)
    bad = [o for o in outcomes if o.status != "passed"]
    if bad:
        print("", file=out)
        print(_rule(" FAILURES "), file=out)
        for o in bad:
            print(_rule(f" {o.case.id} ", "_"), file=out)
            print(o.headline, file=out)
            for d in o.details:
                print(f"    {d}", file=out)
    print(summary_line(outcomes, seconds), file=out)


def summary_line(outcomes: list[Outcome], seconds: float) -> str:
    n = {s: sum(o.status == s for o in outcomes) for s in ("passed", "failed", "error")}
    text = f"{n['passed']} passed, {n['failed']} failed"
    if n["error"]:
        text += f", {n['error']} error{'s' if n['error'] != 1 else ''}"
    return f"{text} in {seconds:.2f}s"


def _rule(title: str, ch: str = "=", width: int = 80) -> str:
    side = max(3, (width - len(title)) // 2)
    return f"{ch * side}{title}{ch * side}"


def write_junit(path: str, outcomes: list[Outcome], seconds: float) -> None:
    from xml.sax.saxutils import escape, quoteattr
    cases = []
    for o in outcomes:
        attrs = (f"classname={quoteattr(o.case.file)} name={quoteattr(o.case.name)} "
                 f"file={quoteattr(o.case.file)} line=\"{o.case.line}\" time=\"{o.seconds:.3f}\"")
        if o.status == "passed":
            cases.append(f"  <testcase {attrs}/>")
        else:
            tag = "failure" if o.status == "failed" else "error"
            text = escape("\n".join([o.headline] + o.details))
            cases.append(f"  <testcase {attrs}><{tag} message={quoteattr(o.headline)}>{text}</{tag}></testcase>")
    failures = sum(o.status == "failed" for o in outcomes)
    errors = sum(o.status == "error" for o in outcomes)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n<testsuite name="gridplc test" '
                 f'tests="{len(outcomes)}" failures="{failures}" errors="{errors}" time="{seconds:.3f}">\n'
                 + "\n".join(cases) + "\n</testsuite>\n</testsuites>\n")
