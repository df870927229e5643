"""Pass 5: emit Python source for a checked project, compile it once.

One class per FUNCTION_BLOCK / PROGRAM (`P_<name>`, a `body__` method per
call), one function per FUNCTION (`F_<name>`), one class per STRUCT
(`S_<name>`). Generated names contain `__` or a prefix, so they cannot collide
with ST identifiers. Each emitted line remembers the ST span it came from so
a Python exception in generated code maps back to `file.st:line:col`.

Where the semantics cost time, the cost is paid only where it can matter:
- integers wrap at stores and before operations that observe high bits
  (/, MOD, comparisons, shifts, conversions); + - * and bitwise operations
  commute with wrapping, and an interval analysis skips wraps it can prove
  unnecessary. A deferred wrap is at the width of the operation that made
  the value (`Code.own`: INT + INT wraps at 16 bits even when a DINT
  consumes it), then at the consumer's if that is narrower;
- REAL rounds to binary32 at stores, except values that are already binary32
  (copies, MIN/MAX, literals folded at compile time);
- array indexes are checked against the declared bounds unless the index is
  a constant or a FOR variable whose constant range lies inside them;
- scalar variables of a block are held in Python locals during its body and
  written back on exit (also on a fault, in `finally`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ast as A
from .instrument import Count, Recorder, call_text, expr_line, may_escape, may_fault
from .model import CallInfo, CheckedProject, PouInfo, VarInfo
from .testing import is_test, scan_interval_ns
from .types import (BOOL, ArrayType, BoolType, DateType, EnumType, FBType, IntType, LiteralIntType, LiteralRealType,
                    RealType, StringType, StructType, SubrangeType, TimeType, Type, default_value,
                    strip_subrange)

GENERATED_FILENAME = "<gridplc>"
LOOP_UNCHECKED_TRIPS_MAX = 1024   # FOR loops up to this many trips with no inner loop skip the watchdog check


@dataclass
class Code:
    src: str
    clean: bool = True             # REAL: already binary32; int: already within its type
    simple: bool = False           # safe to repeat (a name, a literal)
    rng: tuple[int, int] | None = None   # known integer interval
    own: IntType | None = None     # int not clean: the type whose width it must still be wrapped at


@dataclass
class CompiledProgram:
    source: str
    code: object
    line_spans: list                # python line (1-based) -> Span | None
    sites: list                     # index-check site id -> (Span, lo, hi)
    project: CheckedProject
    class_names: dict[str, str] = field(default_factory=dict)   # POU key -> Python class/function name
    asserts: list = field(default_factory=list)                 # assertion site id -> AssertSite
    coverage: object = None         # instrument.CoverageMap when compiled with coverage=True

    def load(self) -> dict:
        """A fresh namespace: its own globals, watchdog flag and classes, so
        two engines in one process never share state."""
        from . import rt_support
        ns: dict = {"__name__": "gridplc_program", "__builtins__": __builtins__}
        ns.update({k: v for k, v in vars(rt_support).items() if k.endswith("__") and not k.startswith("__")})
        sites = self.sites

        def oob__(value, site):
            span, lo, hi = sites[site]
            raise rt_support.IndexOutOfBounds(f"index {value} is outside the array bounds {lo}..{hi}", str(span))

        def wd_expired__(site):
            ns["wd__"][0] = False
            span = sites[site][0]
            raise rt_support.WatchdogExpired("watchdog: the scan ran too long (stopped in a loop)", str(span))

        def range_fault__(value, site):
            span, lo, hi = sites[site]
            raise rt_support.PlcFault(f"value {value} is outside the subrange {lo}..{hi}", str(span))

        def mux_error__(k, n, site):
            raise rt_support.PlcFault(f"MUX selector {k} is outside 0..{n - 1}", str(sites[site][0]))

        ns["oob__"] = oob__
        ns["wd_expired__"] = wd_expired__
        ns["mux_error__"] = mux_error__
        ns["range_fault__"] = range_fault__
        ns["wd__"] = [False]
        if self.coverage is not None:
            ns["cov__"] = self.coverage.counts      # shared: every load adds to the same hits
        exec(self.code, ns)
        return ns

    def span_for_line(self, line: int):
        if 0 < line < len(self.line_spans):
            for ln in range(line, 0, -1):
                sp = self.line_spans[ln]
                if sp is not None:
                    return sp
        return None


@dataclass
class AssertSite:
    """An ASSERT_* statement of a test: what a failure report shows."""
    span: object
    func: str                       # ASSERT_EQ
    text: str                       # the call as written
    types: list                     # types of the values passed to assert_failed__


class _Out:
    def __init__(self):
        self.lines: list[str] = []
        self.spans: list = [None]        # 1-based
        self.indent = 0
        self.span = None

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)
        self.spans.append(self.span)


_STD_FB_PY = {"TON", "TOF", "TP", "R_TRIG", "F_TRIG", "SR", "RS", "CTU", "CTD", "CTUD"}


class Unsupported(Exception):
    """A valid construct the code generator cannot emit yet (E0091)."""

    def __init__(self, span, what):
        super().__init__(what)
        self.span = span
        self.what = what


def generate(project: CheckedProject, coverage: bool = False) -> CompiledProgram:
    g = _Gen(project, coverage)
    g.emit_all()
    src = "\n".join(g.out.lines) + "\n"
    try:
        code = compile(src, GENERATED_FILENAME, "exec")
    except (SyntaxError, RecursionError, MemoryError) as e:
        # CPython's own limits (about 100 nested blocks, deep expressions)
        line = getattr(e, "lineno", None)
        span = g.out.spans[line] if line and line < len(g.out.spans) else None
        raise Unsupported(span, "statements or expressions nested this deeply "
                          f"(the Python compiler stops: {type(e).__name__})") from None
    return CompiledProgram(src, code, g.out.spans, g.sites, project, g.class_names, g.asserts,
                           g.cov.map if g.cov is not None else None)


class _Gen:
    def __init__(self, p: CheckedProject, coverage: bool = False):
        self.p = p
        self.out = _Out()
        self.cov = None
        if coverage:
            from .rt_support import HAVE_F32_EXT
            self.cov = Recorder(p.sources, HAVE_F32_EXT)
        self.sites: list = []
        self.asserts: list[AssertSite] = []
        self.class_names: dict[str, str] = {}

    def site(self, span, lo=0, hi=0) -> int:
        self.sites.append((span, lo, hi))
        return len(self.sites) - 1

    def assert_site(self, s: A.CallStmt, func: str, types: list) -> int:
        self.asserts.append(AssertSite(s.span, func, call_text(self.p.sources, s), types))
        return len(self.asserts) - 1

    # ------------------------------------------------------------ module
    def emit_all(self) -> None:
        o = self.out
        files = ", ".join(sorted(self.p.sources))
        o.line(f"# generated by gridplc from {files}")
        o.line(f"# source sha256 {self.p.source_hash}")
        o.line("")
        for key, t in self.p.types.items():
            if isinstance(t, StructType):
                self.emit_struct(t)
        self.emit_globals()
        for key, info in self.p.pous.items():
            self.class_names[key] = _pyclass(info)
        for key, info in self.p.pous.items():
            if info.kind == "FUNCTION":
                self.emit_function(info)
        for key, info in self.p.pous.items():
            if info.kind != "FUNCTION":
                self.emit_block(info)

    def emit_struct(self, t: StructType) -> None:
        o = self.out
        name = _struct_name(t)
        fields = list(t.fields.values())
        o.line(f"class {name}:")
        o.indent += 1
        o.line(f"__slots__ = ({''.join(repr(f.name) + ', ' for f in fields)})")
        o.line("")
        o.line("def __init__(self, ctx__=None):")
        o.indent += 1
        for f in fields:
            o.line(f"self.{f.name} = {self.init_expr(f.type, f.init)}")
        if not fields:
            o.line("pass")
        o.indent -= 1
        o.line("")
        o.line("def copy__(self, o):")
        o.indent += 1
        for f in fields:
            o.line(self.copy_stmt(f"self.{f.name}", f"o.{f.name}", f.type))
        if not fields:
            o.line("pass")
        o.indent -= 2
        o.line("")
        o.line("")

    def emit_globals(self) -> None:
        o = self.out
        gl = list(self.p.globals.values())
        o.line("class Globals__:")
        o.indent += 1
        o.line(f"__slots__ = ('ctx__', {''.join(repr(v.pyname) + ', ' for v in gl)})")
        o.line("")
        o.line("def __init__(self, ctx__):")
        o.indent += 1
        o.line("self.ctx__ = ctx__")       # functions reach the context (IO_OK of a global) through g__
        for v in gl:
            o.line(f"self.{v.pyname} = {self.init_expr(v.type, v.init)}")
        o.indent -= 2
        o.line("")
        o.line("")

    # ------------------------------------------------------------ values
    def init_expr(self, t: Type, init) -> str:
        """Python expression building a fresh value of type t."""
        t0 = t
        t = strip_subrange(t) if not isinstance(t, SubrangeType) else t
        if isinstance(t, ArrayType):
            n = t.size
            elem = t.elem
            if _is_scalar(elem):
                vals = init if isinstance(init, list) else []
                d = _lit(default_value(elem))
                if not vals or all(v is None for v in vals):
                    return f"[{d}] * {n}"
                items = [_lit(v) if v is not None else d for v in vals] + [d] * (n - len(vals))
                return "[" + ", ".join(items) + "]"
            vals = init if isinstance(init, list) else []
            if vals:
                items = [self.init_expr(elem, vals[i] if i < len(vals) else None) for i in range(n)]
                return "[" + ", ".join(items) + "]"
            return f"[{self.init_expr(elem, None)} for _ in range({n})]"
        if isinstance(t, StructType):
            base = f"{_struct_name(t)}()"
            if isinstance(init, dict) and init:
                sets = ", ".join(f"{t.fields[k].name!r}: {self.init_expr(t.fields[k].type, v)}" for k, v in init.items())
                return f"struct_init__({base}, {{{sets}}})"
            return base
        if isinstance(t, FBType):
            cls = _pyclass(t.pou)
            if isinstance(init, dict) and init:
                sets = ", ".join(f"{t.pou.vars[k].pyname!r}: {self.init_expr(t.pou.vars[k].type, v)}" for k, v in init.items())
                return f"struct_init__({cls}(ctx__), {{{sets}}})"
            return f"{cls}(ctx__)"
        if init is None:
            return _lit(default_value(t0))
        return _lit(init)

    def copy_stmt(self, dst: str, src: str, t: Type) -> str:
        t = strip_subrange(t)
        if isinstance(t, ArrayType) and _is_scalar(t.elem):
            return f"{dst}[:] = {src}"
        if not _is_scalar(t):
            return _copy_expr(dst, src, t)
        return f"{dst} = {src}"

    # ------------------------------------------------------------ functions
    def emit_function(self, info: PouInfo) -> None:
        o = self.out
        pg = _PouGen(self, info)
        params = info.params()
        outs = [v for v in info.vars.values() if v.section == "VAR_OUTPUT" or
                (v.section == "VAR_IN_OUT" and _is_scalar(v.type))]
        info_outs = outs
        o.span = info.decl.span
        args = ", ".join(v.pyname for v in params)
        o.line(f"def {_pyclass(info)}({args}{', ' if args and outs else ''}{'outs__' if outs else ''}):")
        o.indent += 1
        for v in info.vars.values():
            if v.section in ("VAR_INPUT", "VAR_IN_OUT"):
                if v.section == "VAR_INPUT" and not _is_scalar(v.type):
                    # passed by value: the function works on its own copy
                    o.line(f"{v.pyname}__in = {v.pyname}")
                    o.line(f"{v.pyname} = {self.init_expr(v.type, None)}")
                    o.line(self.copy_stmt(v.pyname, f"{v.pyname}__in", v.type))
                continue
            if v.section == "VAR_EXTERNAL":
                continue
            if _needs_ctx(v.type):
                o.line("ctx__ = None")
            o.line(f"{v.pyname} = {self.init_expr(v.type, v.init)}")
        pg.locals = {v.key: v.pyname for v in info.vars.values() if v.section != "VAR_EXTERNAL"}
        if info_outs:
            o.line("try:")
            o.indent += 1
            pg.block(info.decl.body)
            o.line("pass")
            o.indent -= 1
            o.line("finally:")
            o.indent += 1
            for i, v in enumerate(info_outs):
                o.line(f"outs__[{i}] = {v.pyname}")
            o.indent -= 1
        else:
            pg.block(info.decl.body)
        res = info.vars.get(info.name.upper())
        o.line(f"return {res.pyname if res is not None and res.section == 'RESULT' else 'None'}")
        o.indent -= 1
        o.line("")
        o.line("")

    # ------------------------------------------------------------ FBs and programs
    def emit_block(self, info: PouInfo) -> None:
        o = self.out
        cls = _pyclass(info)
        own = [v for v in info.vars.values() if v.section not in ("VAR_EXTERNAL", "VAR_TEMP")]
        o.span = info.decl.span
        o.line(f"class {cls}:")
        o.indent += 1
        o.line(f"__slots__ = ('ctx__', {''.join(repr(v.pyname) + ', ' for v in own)})")
        o.line("")
        o.line("def __init__(self, ctx__):")
        o.indent += 1
        o.line("self.ctx__ = ctx__")
        for v in own:
            if v.section == "VAR_IN_OUT":
                o.line(f"self.{v.pyname} = {self.init_expr(v.type, None) if _is_scalar(v.type) else 'None'}")
            else:
                o.line(f"self.{v.pyname} = {self.init_expr(v.type, v.init)}")
        o.indent -= 1
        o.line("")
        o.line("def body__(self):")
        o.indent += 1
        pg = _PouGen(self, info)
        used = pg.used_vars()
        assigned = pg.assigned_vars()
        cached = []
        for v in own:
            if v.key not in used:
                continue
            pg.locals[v.key] = v.pyname
            o.line(f"{v.pyname} = self.{v.pyname}")
            if _is_scalar(v.type) and v.key in assigned:
                cached.append(v)
        for v in info.vars.values():
            if v.section == "VAR_TEMP":
                pg.locals[v.key] = v.pyname
                if _needs_ctx(v.type):
                    o.line("ctx__ = self.ctx__")
                o.line(f"{v.pyname} = {self.init_expr(v.type, v.init)}")
        if cached:
            o.line("try:")
            o.indent += 1
            pg.block(info.decl.body)
            o.line("pass")
            o.indent -= 1
            o.line("finally:")
            o.indent += 1
            for v in cached:
                o.line(f"self.{v.pyname} = {v.pyname}")
            o.indent -= 1
        else:
            pg.block(info.decl.body)
            o.line("pass")
        o.indent -= 2
        o.line("")
        o.line("")


def _needs_ctx(t) -> bool:
    t = strip_subrange(t)
    while isinstance(t, ArrayType):
        t = t.elem
    return isinstance(t, FBType)


def _is_scalar(t) -> bool:
    t = strip_subrange(t)
    return not isinstance(t, (ArrayType, StructType, FBType))


def _pyclass(info: PouInfo) -> str:
    if info.std:
        return info.name + "__"
    return ("F_" if info.kind == "FUNCTION" else "P_") + info.name


def _struct_name(t: StructType) -> str:
    return "S_" + t.name


def _lit(v) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return "float('inf')" if v > 0 else "float('-inf')"
        return repr(v)
    if isinstance(v, (int, str)):
        return repr(v)
    if v is None:
        return "None"
    raise AssertionError(f"no literal for {v!r}")


def _int_bounds(t):
    t = strip_subrange(t) if not isinstance(t, SubrangeType) else t
    if isinstance(t, SubrangeType):
        return (t.lo, t.hi)
    if isinstance(t, IntType):
        return (t.lo, t.hi)
    if isinstance(t, EnumType):
        return (min(t.members.values(), default=0), max(t.members.values(), default=0))
    return None


def wrap_src(src: str, t) -> str:
    t = strip_subrange(t)
    if not isinstance(t, IntType):
        return src
    mask = (1 << t.bits) - 1
    if t.signed:
        half = 1 << (t.bits - 1)
        return f"((({src}) + {half}) & {mask}) - {half}"
    return f"(({src}) & {mask})"


def wrap_operand(src: str, t) -> str:
    """wrap_src in parentheses when it needs them: a value an enclosing
    operation uses (wrap_src alone is for the right side of a store)."""
    t = strip_subrange(t)
    if isinstance(t, IntType) and t.signed:
        return f"({wrap_src(src, t)})"
    return wrap_src(src, t)


class _PouGen:
    """Statements and expressions of one POU body."""

    def __init__(self, gen: _Gen, info: PouInfo):
        self.g = gen
        self.p = gen.p
        self.info = info
        self.o = gen.out
        self.locals: dict[str, str] = {}
        self.for_ranges: dict[str, tuple[int, int]] = {}
        self.tmp = 0
        self.loop_stack: list[str] = []     # "for" / "while" / "repeat" (REPEAT needs CONTINUE care)
        self.cov = gen.cov if gen.cov is not None and not is_test(info.decl) else None
        self.seg: Count | None = None       # coverage: how often the statement being emitted runs

    def new_tmp(self) -> str:
        self.tmp += 1
        return f"t__{self.tmp}"

    # ------------------------------------------------------------ analysis
    def used_vars(self) -> set[str]:
        from .statements import _walk_exprs, _walk_stmts
        used = set()
        for n in _walk_exprs(self.info.decl.body):
            ref = self.p.refs.get(n)
            if ref is not None and ref.var is not None:
                used.add(ref.var.key)
        for s in _walk_stmts(self.info.decl.body):
            if isinstance(s, A.For):
                used.add(s.var.upper())
        return used

    def assigned_vars(self) -> set[str]:
        from .statements import _root, _walk_stmts
        out = set()
        for s in _walk_stmts(self.info.decl.body):
            if isinstance(s, A.Assign):
                r = _root(s.target)
                ref = self.p.refs.get(r)
                if ref is not None and ref.var is not None and r is s.target or isinstance(s.target, A.BitAccess):
                    if ref is not None and ref.var is not None:
                        out.add(ref.var.key)
            elif isinstance(s, A.For):
                out.add(s.var.upper())
            elif isinstance(s, A.CallStmt):
                info = self.p.calls.get(s)
                for a in s.args:
                    if a.kind != "in":
                        r = _root(a.value)
                        ref = self.p.refs.get(r)
                        if ref is not None and ref.var is not None:
                            out.add(ref.var.key)
                if info is not None:
                    for par, val in info.inputs:
                        if par is not None and par.section == "VAR_IN_OUT":
                            r = _root(val)
                            ref = self.p.refs.get(r)
                            if ref is not None and ref.var is not None:
                                out.add(ref.var.key)
        # function calls inside expressions can write VAR_IN_OUT/outputs too
        from .statements import _walk_exprs
        calls = self.p.calls
        for node in _walk_exprs(self.info.decl.body):
            info = calls.get(node) if isinstance(node, A.Call) else None
            if info is not None and info.kind == "function":
                for par, val in info.inputs:
                    if par is not None and par.section == "VAR_IN_OUT":
                        ref = self.p.refs.get(_root(val))
                        if ref is not None and ref.var is not None:
                            out.add(ref.var.key)
                for par, val, neg in info.outputs:
                    ref = self.p.refs.get(_root(val))
                    if ref is not None and ref.var is not None:
                        out.add(ref.var.key)
        return out

    # ------------------------------------------------------------ statements
    def block(self, stmts, arm: bool = False, first: Count | None = None) -> Count | None:
        """Emit stmts. With coverage, returns how often the block's top ran:
        first when it is known without a counter (an ELSE: the IF's count
        minus its arms'), else a counter emitted at the top (even for an
        empty block when arm: an arm's hits). A statement that may leave the
        list early starts a new counter after it."""
        cov = self.cov
        if cov is None:
            for s in stmts:
                self.stmt(s)
            return None
        seg = top = first
        for s in stmts:
            if isinstance(s, A.Empty):
                continue
            if seg is None:
                self.o.span = s.span
                seg = self._count_here()
                top = top or seg
            cov.statement(s, seg)
            self.seg = seg
            self.stmt(s)
            if may_escape(self.p, s, cov.f32_ext, self.index_in_bounds):
                seg = None
        if top is None and arm:
            top = self._count_here()
        return top

    def _count_here(self) -> Count:
        k = self.cov.counter()
        self.o.line(f"cov__[{k}] += 1")
        return Count((k,))

    def _derivable(self, exprs) -> bool:
        """Does the statement being emitted run one of its arms (or none)
        every time, so the rest is its count minus the arms'?"""
        seg = self.seg
        return seg is not None and seg.scale == 1 and not any(
            may_fault(self.p, e, self.cov.f32_ext, self.index_in_bounds) for e in exprs)

    def stmt(self, s) -> None:  # noqa: C901
        o = self.o
        o.span = s.span
        if isinstance(s, A.Assign):
            self.assign(s.target, s.value)
        elif isinstance(s, A.CallStmt):
            self.call_stmt(s)
        elif isinstance(s, A.If):
            cov = self.cov
            rest = self.seg if cov is not None and self._derivable([c for c, _ in s.branches]) else None
            for i, (c, body) in enumerate(s.branches):
                o.span = c.span
                o.line(f"{'if' if i == 0 else 'elif'} {self.cond(c)}:")
                o.indent += 1
                k = self.block(body, arm=True)
                if cov is not None:
                    cov.branch(s, f"if{i + 1}", expr_line(c),
                               f"IF arm {i + 1} ({'IF' if i == 0 else 'ELSIF'} {cov.text([c])})", k)
                    rest = rest - k if rest is not None else None
                o.line("pass")
                o.indent -= 1
            if s.else_body is not None:
                o.line("else:")
                o.indent += 1
                k = self.block(s.else_body, arm=True, first=rest)
                if cov is not None:
                    cov.branch(s, "else", cov.else_line(s.else_body, s.span.line),
                               f"IF arm {len(s.branches) + 1} (ELSE)", k)
                o.line("pass")
                o.indent -= 1
            elif cov is not None:
                if rest is None:
                    o.line("else:")
                    o.indent += 1
                    rest = self._count_here()
                    o.indent -= 1
                cov.branch(s, "none", s.span.line, "IF implicit ELSE (every condition FALSE)", rest)
        elif isinstance(s, A.Case):
            self.case(s)
        elif isinstance(s, A.For):
            self.for_(s)
        elif isinstance(s, A.While):
            site = self.g.site(s.span)
            seg, skipped = self.seg, None
            if self.cov is not None:
                skipped = self.new_tmp()
                o.line(f"{skipped} = True")
            o.line(f"while {self.cond(s.cond)}:")
            o.indent += 1
            o.line(f"if wd__[0]: wd_expired__({site})")
            if skipped is not None:
                o.line(f"{skipped} = False")
            self.loop_stack.append("while")
            self.block(s.body)
            self.loop_stack.pop()
            o.line("pass")
            o.indent -= 1
            if skipped is not None:
                o.span = s.span
                self.loop_branches(s, "WHILE", seg, f"if {skipped}: ")
        elif isinstance(s, A.Repeat):
            site = self.g.site(s.span)
            o.line("while True:")
            o.indent += 1
            o.line(f"if wd__[0]: wd_expired__({site})")
            if _continues(s.body):
                # CONTINUE goes to the UNTIL test: run the body as a one-pass
                # inner loop that CONTINUE leaves early and EXIT leaves flagged
                flag = self.new_tmp()
                o.line(f"{flag} = True")
                o.line("for _ in (0,):")
                o.indent += 1
                self.loop_stack.append(("repeat", flag))
                self.block(s.body)
                self.loop_stack.pop()
                o.line(f"{flag} = False")
                o.indent -= 1
                o.line(f"if {flag}: break")
            else:
                self.loop_stack.append(("repeat", None))
                self.block(s.body)
                self.loop_stack.pop()
            o.span = s.cond.span
            o.line(f"if {self.cond(s.cond)}: break")
            o.indent -= 1
        elif isinstance(s, A.Exit):
            o.line("break")
        elif isinstance(s, A.Continue):
            top = self.loop_stack[-1] if self.loop_stack else None
            if isinstance(top, tuple) and top[0] == "repeat" and top[1] is not None:
                o.line(f"{top[1]} = False")
            elif isinstance(top, tuple) and top[0] == "for-step":
                o.line(top[1])
            o.line("continue")
        elif isinstance(s, A.Return):
            o.line("return" if self.info.kind != "FUNCTION" else "return " + self._result_name())
        elif isinstance(s, A.Empty):
            pass
        else:  # pragma: no cover
            raise AssertionError(s)

    def cond(self, c) -> str:
        return self.expr(c).src

    def _result_name(self) -> str:
        res = self.info.vars.get(self.info.name.upper())
        return res.pyname if res is not None and res.section == "RESULT" else "None"

    def assign(self, target, value) -> None:
        o = self.o
        tt = self.p.expr_types[target]
        ts = strip_subrange(tt)
        if not _is_scalar(tt):
            v = self.expr(value)
            tgt = self.lvalue_read(target)
            o.line(self.g.copy_stmt(tgt, v.src, tt))
            return
        self.assign_src(target, self.store_value(value, tt))
        del ts

    def assign_src(self, target, src: str) -> None:
        o = self.o
        if isinstance(target, A.Name):
            o.line(f"{self.name_ref(target)} = {src}")
        elif isinstance(target, A.Member):
            base = self.expr(target.base)
            o.line(f"{base.src}.{self.member_attr(target)} = {src}")
        elif isinstance(target, A.Index):
            base = self.expr(target.base)
            idx = self.index_src(target)
            o.line(f"{base.src}[{idx}] = {src}")
        elif isinstance(target, A.BitAccess):
            base_t = strip_subrange(self.p.expr_types[target.base])
            newv = f"setbit__({self.expr(target.base).src}, {target.bit}, {src})"
            if isinstance(base_t, IntType) and base_t.signed:
                newv = wrap_src(newv, base_t)
            self.assign_src(target.base, newv)
        else:  # pragma: no cover
            raise AssertionError(target)

    def lvalue_read(self, target) -> str:
        return self.expr(target).src

    def store_value(self, value, tt: Type) -> str:
        """The Python source of `value` converted for a store into type tt."""
        c = self.p.consts.get(value, _MISSING)
        vt = self.p.expr_types[value]
        if c is not _MISSING:
            return _lit(self.g_const(c, vt, tt))
        return self.coerce(self.expr(value), vt, tt, value.span)

    def coerce(self, v: Code, vt: Type, tt: Type, span) -> str:
        """v (of type vt) as a store into tt needs it: wrapped, rounded,
        range-checked, truncated. Every store site comes through here."""
        ts = strip_subrange(tt)
        vs = strip_subrange(vt)
        if isinstance(ts, RealType):
            if isinstance(vs, IntType):
                # an integer stored in a REAL: exact up to 16 bits, else round
                x = self.observe(v, vs)
                if ts.bits == 32 and vs.bits > 16:
                    return _f32_src(f"float({x})")
                return f"float({x})"
            if ts.bits == 32 and not (v.clean and isinstance(vs, RealType) and vs.bits == 32):
                return _f32_src(v.src)
            return v.src
        if isinstance(tt, SubrangeType):
            # a subrange is checked on every store: out of range is a fault
            v = self.settle(v, tt.base, top=True)
            if v.rng is not None and tt.lo <= v.rng[0] and v.rng[1] <= tt.hi:
                return v.src
            site = self.g.site(span, tt.lo, tt.hi)
            t = self.new_tmp()
            return f"({t} if {tt.lo} <= ({t} := {v.src}) <= {tt.hi} else range_fault__({t}, {site}))"
        if isinstance(ts, IntType):
            return self.observe(v, ts, top=True)
        if isinstance(ts, StringType):
            if isinstance(vs, StringType) and vs.length <= ts.length:
                return v.src
            return f"({v.src})[:{ts.length}]"
        if isinstance(ts, TimeType) and isinstance(vs, TimeType) and vs != ts:
            return self.time_convert(v.src, vs, ts)
        return v.src

    def g_const(self, c, vt, tt):
        from .checker import ExprChecker
        return ExprChecker.coerce_const(None, c, vt, tt)

    def time_convert(self, src, vs: TimeType, ts: TimeType) -> str:
        if vs.unit_ns > ts.unit_ns:
            return f"(({src}) * {vs.unit_ns // ts.unit_ns})"
        return f"trunc_div__({src}, {ts.unit_ns // vs.unit_ns})"

    # ------------------------------------------------------------ calls
    def call_stmt(self, s: A.CallStmt) -> None:
        o = self.o
        info: CallInfo | None = self.p.calls.get(s)
        if info is None:
            return
        if info.kind == "test":
            self.test_call(s, info)
            return
        if info.kind != "fb":
            call = A.Call(s.target.name, s.args, s.span)
            self.p.calls[call] = info
            self.p.expr_types[call] = self.p.expr_types.get(s)
            c = self.call_expr(call) if info.kind == "function" else self.expr(call)
            o.line(c.src)
            return
        inst = self.expr(s.target)
        ref = inst.src
        if not inst.simple:
            ref = self.new_tmp()
            o.line(f"{ref} = {inst.src}")
        inout_back = []
        for par, val in info.inputs:
            attr = par.pyname
            if par.section == "VAR_IN_OUT":
                if _is_scalar(par.type):
                    v = self.expr(val)
                    o.line(f"{ref}.{attr} = {v.src}")
                    inout_back.append((val, f"{ref}.{attr}"))
                else:
                    v = self.expr(val)
                    o.line(f"{ref}.{attr} = {v.src}")
                continue
            if _is_scalar(par.type):
                o.line(f"{ref}.{attr} = {self.store_value(val, par.type)}")
            else:
                v = self.expr(val)
                o.line(self.g.copy_stmt(f"{ref}.{attr}", v.src, par.type))
        o.line(f"{ref}.body__()")
        for val, src in inout_back:
            self.assign_src(val, src)
        for par, target, neg in info.outputs:
            src = f"{ref}.{par.pyname}"
            tt = self.p.expr_types[target]
            if neg:
                src = f"(not {src})"
            elif not _is_scalar(par.type):
                o.line(self.g.copy_stmt(self.lvalue_read(target), src, par.type))
                continue
            else:
                src = self.coerce(Code(src, True, False, _int_bounds(par.type)), par.type, tt, target.span)
            self.assign_src(target, src)

    def call_expr(self, e: A.Call) -> Code:
        info: CallInfo = self.p.calls[e]
        pou = info.pou
        bound = {par.key: val for par, val in info.inputs}
        args = []
        for par in pou.params():
            val = bound.get(par.key)
            if val is None:
                args.append(self.g.init_expr(par.type, par.init))
            elif _is_scalar(par.type):
                args.append(self.store_value(val, par.type))
            else:
                args.append(self.expr(val).src)
        outs = [v for v in pou.vars.values() if v.section == "VAR_OUTPUT" or
                (v.section == "VAR_IN_OUT" and _is_scalar(v.type))]
        fn = _pyclass(pou)
        if not outs:
            return Code(f"{fn}({', '.join(args)})", clean=True)
        # Outputs and scalar VAR_IN_OUT come back in a box and are stored
        # inside the expression, right after the call, so whatever the
        # expression reads next sees them (as a reference would).
        box, res = self.new_tmp(), self.new_tmp()
        parts = [f"({box} := [None] * {len(outs)})", f"({res} := {fn}({', '.join(args + [box])}))"]
        for i, v in enumerate(outs):
            if v.section == "VAR_OUTPUT":
                for par, target, neg in info.outputs:
                    if par is v and not neg and not _is_scalar(par.type):
                        # an array or struct output is copied into the target, in place
                        parts.append(_copy_expr(self.lvalue_read(target), f"{box}[{i}]", par.type))
                    elif par is v:
                        src = f"(not {box}[{i}])" if neg else self.coerce(
                            Code(f"{box}[{i}]", True, False, _int_bounds(par.type)), par.type,
                            self.p.expr_types[target], target.span)
                        parts.append(self._inline_store(target, src))
            else:
                val = bound.get(v.key)
                if val is not None:
                    parts.append(self._inline_store(val, f"{box}[{i}]"))
        parts.append(res)
        return Code(f"({', '.join(parts)})[{len(parts) - 1}]", clean=True)

    def _inline_store(self, target, src: str) -> str:
        """A store written as an expression."""
        if isinstance(target, A.Name):
            ref = self.name_ref(target)
            if "." not in ref:
                return f"({ref} := {src})"
            obj, attr = ref.rsplit(".", 1)
            return f"setattr({obj}, {attr!r}, {src})"
        if isinstance(target, A.Member):
            return f"setattr({self.expr(target.base).src}, {self.member_attr(target)!r}, {src})"
        if isinstance(target, A.Index):
            return f"{self.expr(target.base).src}.__setitem__({self.index_src(target)}, {src})"
        raise Unsupported(target.span, "writing a function output into a single bit")

    # ------------------------------------------------------------ I/O quality, tests
    def io_call(self, info: CallInfo) -> Code:
        """ctx.io maps (id(holder), key) -- what runtime.tags.resolve gives for
        the variable's tag -- to (quality, source ts ns); absent means good."""
        x = info.inputs[0][1]
        root = x
        while isinstance(root, (A.Member, A.Index)):
            root = root.base
        var = self.p.refs[root].var
        is_global = var.section in ("VAR_GLOBAL", "VAR_EXTERNAL")
        if not is_global and (self.info.kind == "FUNCTION" or var.section == "VAR_TEMP"):
            # no tag reaches a function's or a temp's variables: never bound, always good
            return Code({"IO_OK": "True", "IO_QUALITY": "0", "IO_AGE": "0"}[info.name], True, True,
                        None if info.name == "IO_OK" else (0, 0))
        ctx = "g__.ctx__" if self.info.kind == "FUNCTION" else "self.ctx__"
        if isinstance(x, A.Name):
            holder, key = ("g__" if is_global else "self"), repr(var.pyname)
        elif isinstance(x, A.Member):
            holder, key = self.expr(x.base).src, repr(self.member_attr(x))
        else:
            holder, key = self.expr(x.base).src, self.index_src(x)
        if info.name == "IO_AGE":
            return Code(f"io_age__({ctx}, {holder}, {key})", True)
        q = f"{ctx}.io.get((id__({holder}), {key}), IO_GOOD__)[0]"
        if info.name == "IO_OK":
            return Code(f"({q} == 0)", True)
        return Code(q, True, False, (0, 3))

    def test_call(self, s: A.CallStmt, info: CallInfo) -> None:
        o = self.o
        k = info.name
        vals = [v for _, v in info.inputs]
        if k == "ADVANCE":
            t = strip_subrange(self.p.expr_types[vals[0]])
            v = self.expr(vals[0]).src
            o.line(f"advance__(self.ctx__, {v if t.unit_ns == 1 else f'({v}) * {t.unit_ns}'})")
            return
        if k == "ADVANCE_SCANS":
            interval, _ = scan_interval_ns(self.info.decl)
            n = self.observe(self.expr(vals[0]), self.p.expr_types[vals[0]])
            o.line(f"advance__(self.ctx__, ({n}) * {interval})")
            return
        msg = f", {self.expr(vals[-1]).src}" if vals[-1] is not None else ", ''"
        if k in ("ASSERT_TRUE", "ASSERT_FALSE"):
            site = self.g.assert_site(s, k, [BOOL])
            c = self.cond(vals[0])
            if k == "ASSERT_TRUE":
                o.line(f"if not {c}: assert_failed__({site}{msg}, False)")
            else:
                o.line(f"if {c}: assert_failed__({site}{msg}, True)")
            return
        n = 2 if k == "ASSERT_EQ" else 3
        if k == "ASSERT_EQ":
            ot = strip_subrange(self.p.op_types.get(info.node, self.p.expr_types[vals[0]]))
            srcs = [self.observe(self.expr(v), ot) for v in vals[:2]]
            types = [ot, ot]
        else:
            types = [self.p.expr_types[v] for v in vals[:3]]
            srcs = [self.observe(self.expr(v), t) for v, t in zip(vals[:3], types)]
        tmps = [self.new_tmp() for _ in range(n)]
        for t, src in zip(tmps, srcs):
            o.line(f"{t} = {src}")
        site = self.g.assert_site(s, k, types)
        test = f"{tmps[0]} == {tmps[1]}" if k == "ASSERT_EQ" else f"abs({tmps[0]} - {tmps[1]}) <= {tmps[2]}"
        o.line(f"if not ({test}): assert_failed__({site}{msg}, {', '.join(tmps)})")

    # ------------------------------------------------------------ CASE / FOR
    def case(self, s: A.Case) -> None:
        o = self.o
        sel = self.expr(s.selector)
        st = self.p.expr_types[s.selector]
        src = sel.src
        if not sel.simple or not sel.clean:
            t = self.new_tmp()
            o.line(f"{t} = {self.observe(sel, st, top=True)}")
            src = t
        first = True
        rest = self.seg if self.cov is not None and self._derivable([s.selector]) else None
        for i, br in enumerate(s.branches):
            conds = []
            for lab in br.labels:
                lo = self.p.consts[lab.low]
                if lab.high is None:
                    conds.append(f"{src} == {lo}")
                else:
                    conds.append(f"{lo} <= {src} <= {self.p.consts[lab.high]}")
            o.span = br.span
            o.line(f"{'if' if first else 'elif'} {' or '.join(conds)}:")
            first = False
            o.indent += 1
            k = self.block(br.body, arm=True)
            if self.cov is not None:
                text = self.cov.text([x for lab in br.labels for x in (lab.low, lab.high)])
                self.cov.branch(s, f"case{i + 1}", br.span.line, f"CASE arm '{text}'", k)
                rest = rest - k if rest is not None else None
            o.line("pass")
            o.indent -= 1
        if s.else_body is not None:
            if first:
                k = self.block(s.else_body, arm=True, first=rest)
            else:
                o.line("else:")
                o.indent += 1
                k = self.block(s.else_body, arm=True, first=rest)
                o.line("pass")
                o.indent -= 1
            if self.cov is not None:
                self.cov.branch(s, "else", self.cov.else_line(s.else_body, s.span.line), "CASE ELSE", k)
        elif self.cov is not None and not _covers_enum(s, st, self.p.consts):
            if rest is None:
                o.line("else:" if not first else "if True:")
                o.indent += 1
                rest = self._count_here()
                o.indent -= 1
            self.cov.branch(s, "none", s.span.line, "CASE implicit ELSE (no label matched)", rest)

    def for_(self, s: A.For) -> None:
        o = self.o
        var = self.p.refs[s].var
        vname = self.var_ref(var)
        start = self.store_value(s.start, var.type)
        end = self.store_value(s.end, var.type)
        step_c = self.p.consts.get(s.step, 1) if s.step is not None else 1
        rng = self.p.for_ranges.get(s)
        has_inner_loop = any(isinstance(x, (A.For, A.While, A.Repeat)) for x in _walk_body(s.body))
        if s.step is None or s.step in self.p.consts:
            step = step_c
            stop = f"{end} + 1" if step > 0 else f"{end} - 1"
            # START and END are read once, before the variable changes (FOR i := i TO i + 3)
            if not _simple_src(start) or start == vname:
                t = self.new_tmp()
                o.line(f"{t} = {start}")
                start = t
            end_ref = end
            if not _simple_src(end) or end == vname:
                t = self.new_tmp()
                o.line(f"{t} = {end}")
                stop = f"{t} + 1" if step > 0 else f"{t} - 1"
                end_ref = t
            if self.cov is not None and s not in self.p.for_ranges:
                # constant bounds enter always or never: no branch to cover
                self.loop_branches(s, "FOR", self.seg, f"if {start} {'>' if step > 0 else '<'} {end_ref}: ")
            # IEC leaves the variable one step past the last value (or at the
            # start when the loop does not run); `for ... else` gives exactly that
            o.line(f"{vname} = {start} - {step}")
            self.for_ranges_push(var.key, rng)
            o.span = s.span
            o.line(f"for {vname} in range({start}, {stop}{', ' + str(step) if step != 1 else ''}):")
            o.indent += 1
            trips = abs(rng[1] - rng[0]) // abs(step) + 1 if rng is not None else None
            checked = trips is None or trips > LOOP_UNCHECKED_TRIPS_MAX or has_inner_loop
            if checked:
                o.line(f"if wd__[0]: wd_expired__({self.g.site(s.span)})")
            self.loop_stack.append("for")
            if self.cov is not None and not checked and not any(
                    may_escape(self.p, x, self.cov.f32_ext, self.index_in_bounds) for x in s.body):
                # nothing stops a trip early: the body runs `trips` times per run of the loop
                self.block(s.body, first=self.seg.times(trips))
            else:
                self.block(s.body)
            self.loop_stack.pop()
            o.line("pass")
            o.indent -= 1
            o.line("else:")
            o.indent += 1
            o.line(f"{vname} = {wrap_src(f'{vname} + {step}', var.type)}")
            o.indent -= 1
            self.for_ranges_pop(var.key)
            return
        # a variable step: a while loop, direction decided at run time
        stp = self.store_value(s.step, var.type)
        t_start, t_end, t_step = self.new_tmp(), self.new_tmp(), self.new_tmp()
        o.line(f"{t_start} = {start}")
        o.line(f"{t_end} = {end}")
        o.line(f"{t_step} = {stp}")
        o.line(f"{vname} = {t_start}")
        o.line(f"if {t_step} == 0: ref_error__('FOR step is 0')")
        if self.cov is not None:
            self.loop_branches(s, "FOR", self.seg,
                               f"if not (({vname} <= {t_end}) if {t_step} > 0 else ({vname} >= {t_end})): ")
        o.line(f"while ({vname} <= {t_end}) if {t_step} > 0 else ({vname} >= {t_end}):")
        o.indent += 1
        o.line(f"if wd__[0]: wd_expired__({self.g.site(s.span)})")
        step_line = f"{vname} = {wrap_src(f'{vname} + {t_step}', var.type)}"
        self.loop_stack.append(("for-step", step_line))     # CONTINUE steps before it loops
        self.block(s.body)
        self.loop_stack.pop()
        o.line(step_line)
        o.indent -= 1

    def index_in_bounds(self, e: A.Index) -> bool:
        """Does index_src emit no check for e (constant or a FOR variable or
        typed range inside the bounds)?"""
        at = strip_subrange(self.p.expr_types[e.base])
        for ix, (lo, hi) in zip(e.indices, at.dims):
            if ix in self.p.consts:
                continue
            ref = self.p.refs.get(ix) if isinstance(ix, A.Name) else None
            if ref is None or ref.var is None:
                return False
            k = ref.var.key
            rng = self.for_ranges.get(k) if k in self.for_ranges else _int_bounds(ref.var.type)
            if rng is None or not (lo <= rng[0] and rng[1] <= hi):
                return False
        return True

    def loop_branches(self, s, what: str, seg: Count, test: str) -> None:
        """Count the executions of loop s that ran its body zero times; the
        others (the statement's own count minus those) entered it."""
        k = self.cov.counter()
        self.o.line(f"{test}cov__[{k}] += 1")
        skipped = Count((k,))
        self.cov.branch(s, "entered", s.span.line, f"{what} loop entered", seg - skipped, f"{what} loop never entered")
        self.cov.branch(s, "skipped", s.span.line, f"{what} loop skipped (zero iterations)", skipped,
                        f"{what} loop never skipped (it always ran at least once)")

    def for_ranges_push(self, key, rng):
        self._saved = getattr(self, "_saved", [])
        self._saved.append((key, self.for_ranges.get(key)))
        if rng is not None:
            self.for_ranges[key] = rng
        else:
            self.for_ranges.pop(key, None)

    def for_ranges_pop(self, key):
        k, old = self._saved.pop()
        if old is None:
            self.for_ranges.pop(k, None)
        else:
            self.for_ranges[k] = old

    # ------------------------------------------------------------ names
    def var_ref(self, v: VarInfo) -> str:
        if v.section in ("VAR_GLOBAL", "VAR_EXTERNAL"):
            return f"g__.{v.pyname}"
        if v.key in self.locals:
            return self.locals[v.key]
        return f"self.{v.pyname}"

    def name_ref(self, e: A.Name) -> str:
        ref = self.p.refs[e]
        return self.var_ref(ref.var)

    def member_attr(self, e: A.Member) -> str:
        bt = strip_subrange(self.p.expr_types[e.base])
        if isinstance(bt, FBType):
            return bt.pou.lookup_param(e.name).pyname
        if isinstance(bt, StructType):
            return bt.fields[e.name.upper()].name
        raise AssertionError(bt)

    def index_src(self, e: A.Index) -> str:
        at: ArrayType = strip_subrange(self.p.expr_types[e.base])
        parts = []
        stride = 1
        strides = []
        for lo, hi in reversed(at.dims):
            strides.append(stride)
            stride *= hi - lo + 1
        strides.reverse()
        const_off = 0
        for ix, (lo, hi), st in zip(e.indices, at.dims, strides):
            c = self.p.consts.get(ix, _MISSING)
            if c is not _MISSING:
                const_off += (c - lo) * st
                continue
            code = self.expr(ix)
            src = code.src
            it = self.p.expr_types[ix]
            if not code.clean:
                code = self.settle(code, it, top=True)
                src = code.src
            rng = code.rng
            if rng is not None and lo <= rng[0] and rng[1] <= hi:
                checked = src if code.simple else f"({src})"
            else:
                site = self.g.site(ix.span, lo, hi)
                if code.simple:
                    checked = f"({src} if {lo} <= {src} <= {hi} else oob__({src}, {site}))"
                else:
                    t = self.new_tmp()
                    # the test runs before either branch, so it binds the temp
                    checked = f"({t} if {lo} <= ({t} := {src}) <= {hi} else oob__({t}, {site}))"
            term = checked if lo == 0 else f"{checked} - {lo}"
            if st != 1:
                term = f"({term}) * {st}"
            parts.append(term)
        if const_off or not parts:
            parts.append(str(const_off))
        return " + ".join(parts)

    # ------------------------------------------------------------ expressions
    def expr(self, e) -> Code:  # noqa: C901
        p = self.p
        c = p.consts.get(e, _MISSING)
        if c is not _MISSING:
            return Code(_lit(c), True, True, (c, c) if isinstance(c, int) and not isinstance(c, bool) else None)
        if isinstance(e, A.Name):
            ref = p.refs[e]
            if ref.kind == "enum":
                v = ref.enum.members[ref.member]
                return Code(str(v), True, True, (v, v))
            v = ref.var
            src = self.var_ref(v)
            rng = self.for_ranges.get(v.key) if v.key in self.for_ranges else _int_bounds(v.type)
            return Code(src, True, True, rng)
        if isinstance(e, A.Member):
            ref = p.refs.get(e)
            if ref is not None and ref.kind == "enum":
                v = ref.enum.members[ref.member]
                return Code(str(v), True, True, (v, v))
            base = self.expr(e.base)
            return Code(f"{base.src}.{self.member_attr(e)}", True, False, _int_bounds(p.expr_types[e]))
        if isinstance(e, A.Index):
            base = self.expr(e.base)
            return Code(f"{base.src}[{self.index_src(e)}]", True, False, _int_bounds(p.expr_types[e]))
        if isinstance(e, A.BitAccess):
            base = self.expr(e.base)
            return Code(f"((({base.src} >> {e.bit}) & 1) != 0)", True, False)
        if isinstance(e, A.Call):
            return self.call(e)
        if isinstance(e, A.UnOp):
            return self.unop(e)
        if isinstance(e, A.BinOp):
            return self.binop(e)
        if isinstance(e, (A.IntLit, A.RealLit, A.BoolLit, A.StringLit, A.TimeLit, A.DateLit, A.EnumLit)):
            return Code(_lit(c), True, True)
        raise AssertionError(e)

    def observe(self, code: Code, t, top: bool = False) -> str:
        """The value as its type holds it: wrap if it may have left the range."""
        return code.src if code.clean else self.settle(code, t, top).src

    def settle(self, code: Code, t, top: bool = False) -> Code:
        """code as a consumer of type t sees it: wrapped at the width of the
        operation that made it (code.own), then at t's if t is an integer
        type it does not fit. The wraps the interval analysis proves
        unnecessary are left out; a clean code comes back as it is. top: the
        source is a whole statement's right side (no parentheses needed)."""
        if code.clean:
            return code
        ts = strip_subrange(t)
        own = code.own
        src, rng = code.src, code.rng
        t_int = isinstance(ts, IntType)
        wrap = wrap_src if top else wrap_operand
        if own is not None and not _fits(rng, own) and not (t_int and ts.bits <= own.bits):
            # a consumer at least as wide: wrapping at ts would leak own's high bits
            src, rng = wrap(src, own), (own.lo, own.hi)
        if t_int:
            if not _fits(rng, ts):
                src, rng = wrap(src, ts), (ts.lo, ts.hi)
            return Code(src, True, False, rng)
        if own is not None:
            return Code(src, True, False, rng)
        return code

    def lazy(self, code: Code, t) -> Code:
        """An operand of + - * or a bitwise operation of type t, which wrap
        (at t) later: only a narrower operation's deferred wrap is due now."""
        own = code.own
        if code.clean or own is None or _fits(code.rng, own):
            return code
        ts = strip_subrange(t)
        if isinstance(ts, IntType) and ts.bits <= own.bits:
            return code
        return Code(wrap_operand(code.src, own), True, False, (own.lo, own.hi))

    def unop(self, e: A.UnOp) -> Code:
        t = strip_subrange(self.p.expr_types[e])
        v = self.expr(e.operand)
        if e.op == "NOT":
            if isinstance(t, BoolType):
                return Code(f"(not {v.src})")
            return Code(wrap_operand(f"~{self.lazy(v, t).src}", t), True)
        if e.op == "+":
            return v
        if isinstance(t, IntType):
            v = self.lazy(v, t)
            rng = (-v.rng[1], -v.rng[0]) if v.rng is not None else None
            return Code(f"(-{v.src})", _fits(rng, t), False, rng, t)
        return Code(f"(-{v.src})", v.clean if isinstance(t, RealType) else False, False, None)

    def binop(self, e: A.BinOp) -> Code:  # noqa: C901
        p = self.p
        op = e.op
        ot = strip_subrange(p.op_types.get(e, p.expr_types[e]))
        rt = strip_subrange(p.expr_types[e])
        a = self.expr(e.left)
        b = self.expr(e.right)
        if op in ("AND", "OR", "XOR"):
            if isinstance(rt, BoolType):
                if op == "XOR":
                    return Code(f"({a.src} != {b.src})")
                pure = _pure(e.left) and _pure(e.right)
                pyop = {"AND": "and", "OR": "or"}[op] if pure else {"AND": "&", "OR": "|"}[op]
                return Code(f"({a.src} {pyop} {b.src})")
            pyop = {"AND": "&", "OR": "|", "XOR": "^"}[op]
            a, b = self.lazy(a, ot), self.lazy(b, ot)
            return Code(f"({a.src} {pyop} {b.src})", a.clean and b.clean, False, None,
                        ot if isinstance(ot, IntType) else None)
        if op in ("=", "<>", "<", ">", "<=", ">="):
            pyop = {"=": "==", "<>": "!="}.get(op, op)
            return Code(f"({self.observe(a, ot)} {pyop} {self.observe(b, ot)})")
        lt_, rt_ = strip_subrange(p.expr_types[e.left]), strip_subrange(p.expr_types[e.right])
        if isinstance(lt_, DateType) or isinstance(ot, (TimeType, DateType)) or isinstance(rt, TimeType) or op == "**":
            # integer operands (TIME * INT, INT ** 2) as their own types hold them
            x, y = self.observe(a, lt_), self.observe(b, rt_)
            if isinstance(lt_, DateType):
                return Code(_date_arith(op, x, y, lt_, rt_), True)
            if op == "**":
                if isinstance(ot, RealType) and ot.bits == 32:
                    return Code(_f32_src(f"expt__({x}, {y})"), True)
                return Code(f"expt__({x}, {y})", False)
            if op == "/":
                return Code(f"trunc_div__({x}, {y})", True)
            if op == "*":
                r = f"({x} * {y})"
                return Code(f"round({r})" if isinstance(lt_, (RealType, LiteralRealType))
                            or isinstance(rt_, (RealType, LiteralRealType)) else r, True)
            return Code(f"({x} {op} {y})", True)
        is_int = isinstance(ot, (IntType, LiteralIntType))
        if is_int:
            if op in ("/", "MOD"):
                x = self.observe(a, ot)
                y = self.observe(b, ot)
                bc = p.consts.get(e.right, _MISSING)
                arng = a.rng if (a.clean or _fits(a.rng, ot)) else _int_bounds(ot)
                nonneg = arng is not None and arng[0] >= 0
                if bc is not _MISSING and isinstance(bc, int) and bc > 0:
                    if nonneg:
                        r = (0, bc - 1) if op == "MOD" else (arng[0] // bc, arng[1] // bc)
                        return Code(f"({x} {'%' if op == 'MOD' else '//'} {bc})", True, False, r)
                    r = (-(bc - 1), bc - 1) if op == "MOD" else None
                    if a.simple:
                        src = (f"({x} % {bc} if {x} >= 0 else -(-{x} % {bc}))" if op == "MOD"
                               else f"({x} // {bc} if {x} >= 0 else -(-{x} // {bc}))")
                        return Code(src, True, False, r)     # |x / bc| <= |x|: in range
                fn = "imod__" if op == "MOD" else "idiv__"
                # only MIN / -1 leaves the range
                return Code(f"{fn}({x}, {y})", op == "MOD", False, None, ot if isinstance(ot, IntType) else None)
            a, b = self.lazy(a, ot), self.lazy(b, ot)
            rng = _range_op(op, a.rng, b.rng)
            if isinstance(ot, IntType):
                return Code(f"({a.src} {op} {b.src})", _fits(rng, ot), False, rng, ot)
            return Code(f"({a.src} {op} {b.src})", False, False, rng)
        # reals: a REAL result is binary32 after every operation (IEC: REAL op
        # REAL is a REAL), which double-then-round computes exactly for + - * /
        src = f"({self.observe(a, ot)} {'/' if op == '/' else op} {self.observe(b, ot)})"
        if isinstance(ot, RealType) and ot.bits == 32:
            return Code(_f32_src(src), True)
        return Code(src, False)

    # ------------------------------------------------------------ function calls
    def call(self, e: A.Call) -> Code:  # noqa: C901
        info: CallInfo = self.p.calls[e]
        if info.kind == "function":
            return self.call_expr(e)
        if info.kind == "io":
            return self.io_call(info)
        args = [val for _, val in info.inputs]
        k = info.name
        rt = strip_subrange(info.result_type)
        if info.kind == "conv":
            return self.conversion(args[0], info.arg_types[0], rt)
        ats = info.arg_types
        # every argument as its own type holds it (INT + INT wraps at 16 bits
        # before MAX compares it with a DINT or SQRT takes it)
        codes = [self.settle(self.expr(v), t) for v, t in zip(args, ats)]
        srcs = [c.src for c in codes]
        # operands of one type: values of an integer argument promote to rt
        if k in ("MIN", "MAX", "LIMIT", "SEL", "MUX") and isinstance(rt, RealType):
            # a REAL result: an integer argument becomes a float (MIN can return either object)
            first = 1 if k in ("SEL", "MUX") else 0
            for i in range(first, len(args)):
                if isinstance(strip_subrange(self.p.expr_types[args[i]]), (IntType, LiteralIntType)):
                    c = self.p.consts.get(args[i], _MISSING)
                    srcs[i] = _lit(float(c)) if isinstance(c, int) and not isinstance(c, bool) else f"float({srcs[i]})"
        int_rt = isinstance(rt, IntType)
        same_real = all(c.clean for c in codes) and all(strip_subrange(self.p.expr_types[v]) == rt for v in args)
        if k in ("MIN", "MAX"):
            if len(srcs) == 2:
                cmp = "<" if k == "MIN" else ">"
                if codes[0].simple and codes[1].simple:
                    x, y = srcs
                    src = f"({x} if {x} {cmp} {y} else {y})"
                else:
                    # the test runs first, so it defines both temps
                    x, y = self.new_tmp(), self.new_tmp()
                    src = f"({x} if ({x} := {srcs[0]}) {cmp} ({y} := {srcs[1]}) else {y})"
            else:
                src = f"{k.lower()}({', '.join(srcs)})"
            # integers: each argument is within its type, so within rt
            clean = int_rt or same_real
            rng = None
            if all(c.rng for c in codes):
                rng = (min(c.rng[0] for c in codes), max(c.rng[1] for c in codes))
            return Code(src, clean, False, rng)
        if k == "LIMIT":
            mn, x, mx = srcs
            t1, t2, t3 = self.new_tmp(), self.new_tmp(), self.new_tmp()
            src = f"({t1} if ({t2} := {x}) < ({t1} := {mn}) else ({t3} if {t2} > ({t3} := {mx}) else {t2}))"
            rng = codes[0].rng and codes[2].rng and (codes[0].rng[0], codes[2].rng[1])
            return Code(src, int_rt or same_real, False, rng)
        if k == "SEL":
            return Code(f"({srcs[2]} if {srcs[0]} else {srcs[1]})", int_rt or all(c.clean for c in codes[1:]))
        if k == "MUX":
            site = self.g.site(e.span)
            n = len(srcs) - 1
            t = self.new_tmp()
            return Code(f"(({', '.join(srcs[1:])},)[{t}] if 0 <= ({t} := {srcs[0]}) < {n} else mux_error__({t}, {n}, {site}))",
                        int_rt or all(c.clean for c in codes[1:]))
        if k == "MOVE":
            return codes[0]
        if k == "ABS":
            rng = None
            if codes[0].rng:
                lo, hi = codes[0].rng
                rng = (0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
            if int_rt:      # ABS(-32768) is INT: -32768
                return Code(f"abs({srcs[0]})", _fits(rng, rt), False, rng, rt)
            return Code(f"abs({srcs[0]})", codes[0].clean and isinstance(rt, RealType), False, rng)
        if k in ("SQRT", "LN", "LOG", "EXP", "SIN", "COS", "TAN", "ASIN", "ACOS", "ATAN", "EXPT"):
            src = f"{k.lower()}__({', '.join(srcs)})"
            if isinstance(rt, RealType) and rt.bits == 32:
                return Code(_f32_src(src), True)
            return Code(src, False)
        if k in ("SHL", "SHR", "ROL", "ROR"):
            bits = rt.bits
            mask = (1 << bits) - 1
            x = f"({srcs[0]} & {mask})" if rt.signed else srcs[0]
            n = self.new_tmp()
            # a count outside 0..bits-1 shifts everything out (no huge integers)
            if k == "SHL":
                src = f"((({x} << {n}) & {mask}) if 0 <= ({n} := {srcs[1]}) < {bits} else 0)"
            elif k == "SHR":
                src = f"(({x} >> {n}) if 0 <= ({n} := {srcs[1]}) < {bits} else 0)"
            else:
                src = f"{k.lower()}__({x}, {srcs[1]}, {bits})"
            return Code(wrap_operand(src, rt) if rt.signed else src, True)
        if k == "TRUNC":
            return Code(f"trunc__({srcs[0]})", False, False, None, rt if int_rt else None)
        if k == "LEN":
            return Code(f"len({srcs[0]})", True)
        if k == "LEFT":
            return Code(f"left__({srcs[0]}, {srcs[1]})")
        if k == "RIGHT":
            return Code(f"right__({srcs[0]}, {srcs[1]})")
        if k == "MID":
            return Code(f"mid__({srcs[0]}, {srcs[1]}, {srcs[2]})")
        if k == "CONCAT":
            return Code(f"({' + '.join(srcs)})")
        if k == "INSERT":
            return Code(f"insert__({srcs[0]}, {srcs[1]}, {srcs[2]})")
        if k == "DELETE":
            return Code(f"delete__({srcs[0]}, {srcs[1]}, {srcs[2]})")
        if k == "REPLACE":
            return Code(f"replace__({srcs[0]}, {srcs[1]}, {srcs[2]}, {srcs[3]})")
        if k == "FIND":
            return Code(f"find__({srcs[0]}, {srcs[1]})", True)
        raise AssertionError(k)

    def conversion(self, val, src_t, dst) -> Code:
        code = self.expr(val)
        st = strip_subrange(src_t)
        vt = strip_subrange(self.p.expr_types[val])
        if isinstance(vt, EnumType):
            st = vt.base
        sc = self.settle(code, vt if isinstance(vt, IntType) else st)     # its interval too, once wrapped
        x = sc.src
        if isinstance(dst, IntType):
            if isinstance(st, (IntType, LiteralIntType)):
                if isinstance(st, IntType) and st.lo >= dst.lo and st.hi <= dst.hi:
                    return Code(x, True, sc.simple, sc.rng)
                rng = sc.rng if sc.clean or _fits(sc.rng, st) else None
                if _fits(rng, dst):
                    return Code(x, True, sc.simple, rng)
                return Code(wrap_operand(x, dst), True)
            if isinstance(st, RealType):
                return Code(wrap_operand(f"round({x})", dst), True)
            if isinstance(st, BoolType):
                return Code(f"(1 if {x} else 0)", True, False, (0, 1))
            if isinstance(st, TimeType):
                return Code(wrap_operand(x, dst), True)
        if isinstance(dst, RealType):
            if isinstance(st, RealType):
                if dst.bits == 64 or st.bits == 32 and code.clean:
                    return Code(code.src, code.clean if dst.bits == 32 else True, code.simple)
                return Code(_f32_src(code.src), True)
            if isinstance(st, IntType):
                if dst.bits == 64 or st.bits <= 16:
                    return Code(f"float({x})", True)
                return Code(_f32_src(f"float({x})"), True)
            if isinstance(st, BoolType):
                return Code(f"(1.0 if {x} else 0.0)", True)
        if isinstance(dst, BoolType):
            if isinstance(st, (IntType, RealType, TimeType)):
                return Code(f"({x} != 0)", True)
            if isinstance(st, BoolType):
                return code
        if isinstance(dst, TimeType) and isinstance(st, TimeType):
            return Code(self.time_convert(x, st, dst) if st != dst else x, True)
        if isinstance(dst, TimeType) and isinstance(st, IntType):
            return Code(x, True)
        # everything else (strings, dates, enums): the general converter
        return Code(f"convert__({x}, {self._type_ref(st)}, {self._type_ref(dst)})", True)

    def _type_ref(self, t) -> str:
        from .types import ELEMENTARY
        if isinstance(t, StringType):
            return f"StringType__({t.wide}, {t.length})"
        for k, v in ELEMENTARY.items():
            if v == t:
                return f"T__[{k!r}]"
        raise Unsupported(None, f"conversion from or to {t}")


def _copy_expr(dst: str, src: str, t) -> str:
    """copy_stmt as an expression (inside a function call's output stores)."""
    t = strip_subrange(t)
    if isinstance(t, ArrayType):
        if _is_scalar(t.elem):
            return f"{dst}.__setitem__(slice(None), {src})"
        if isinstance(strip_subrange(t.elem), StructType):
            return f"copy_structs__({dst}, {src})"
        return f"copy_deep__({dst}, {src})"
    if isinstance(t, StructType):
        return f"{dst}.copy__({src})"
    return "ref_error__('function block instances cannot be copied')"


def _f32_src(x: str) -> str:
    """Round to binary32: the C helper when built, else struct inline."""
    from .rt_support import HAVE_F32_EXT
    return f"f32__({x})" if HAVE_F32_EXT else f"unpack__(pack__({x}))[0]"


def _continues(stmts) -> bool:
    """Does a CONTINUE in stmts belong to the loop that holds stmts?"""
    for s in stmts:
        if isinstance(s, A.Continue):
            return True
        if isinstance(s, A.If):
            if any(_continues(b) for _, b in s.branches) or _continues(s.else_body or ()):
                return True
        elif isinstance(s, A.Case):
            if any(_continues(b.body) for b in s.branches) or _continues(s.else_body or ()):
                return True
    return False


def _covers_enum(s: A.Case, selector_t, consts) -> bool:
    """A CASE over an enumeration that lists every value: no value falls
    through (an enumeration variable holds only its values)."""
    et = strip_subrange(selector_t)
    if not isinstance(et, EnumType):
        return False
    values = set(et.members.values())
    for br in s.branches:
        for lab in br.labels:
            lo = consts[lab.low]
            hi = consts[lab.high] if lab.high is not None else lo
            values -= {v for v in values if lo <= v <= hi}
    return not values


def _date_arith(op: str, a: str, b: str, lt: DateType, rt) -> str:
    """DATE and DT count seconds, TOD milliseconds, TIME ms, LTIME ns."""
    if isinstance(rt, DateType):            # difference of two points in time: a TIME
        return f"(({a} - {b}) * 1000)" if lt.name != "TIME_OF_DAY" else f"({a} - {b})"
    unit = rt.unit_ns if isinstance(rt, TimeType) else 1_000_000
    if lt.name == "TIME_OF_DAY":            # wraps at midnight
        d = f"trunc_div__({b}, {1_000_000 // unit})" if unit < 1_000_000 else f"({b} * {unit // 1_000_000})"
        return f"(({a} {op} {d}) % 86400000)"
    return f"({a} {op} trunc_div__({b}, {1_000_000_000 // unit}))"


def _simple_src(src: str) -> bool:
    return src.replace(".", "").replace("_", "").isalnum() or src.lstrip("-").isdigit()


_MISSING = object()


def _fits(rng, t) -> bool:
    if rng is None:
        return False
    t = strip_subrange(t)
    if not isinstance(t, IntType):
        return False
    return t.lo <= rng[0] and rng[1] <= t.hi


def _range_op(op, a, b):
    if a is None or b is None:
        return None
    if op == "+":
        return (a[0] + b[0], a[1] + b[1])
    if op == "-":
        return (a[0] - b[1], a[1] - b[0])
    if op == "*":
        c = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
        return (min(c), max(c))
    return None


def _pure(e) -> bool:
    """No function calls: short-circuit evaluation cannot change anything."""
    from .statements import _walk_expr
    return not any(isinstance(n, A.Call) for n in _walk_expr(e))


def _walk_body(stmts):
    from .statements import _walk_stmts
    return _walk_stmts(stmts)
