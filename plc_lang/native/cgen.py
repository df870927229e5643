"""Emit C for a checked project: the native backend.

The same checked project the Python backend (plc_lang/codegen.py) compiles,
turned into one C translation unit: a struct per STRUCT, FUNCTION_BLOCK and
PROGRAM (fields in the order of the Python classes' slots, so a ctypes
mirror built from the same walk reads and writes them), a function per POU
body, an init function per type and an entry point per PROGRAM that sets
up the fault exit.

The values are the Python backend's, bit for bit; the rules that make it so:
- integers are computed modulo 2**64 and cast to the operation's type after
  every operation. The Python backend wraps lazily (before /, MOD,
  comparisons, conversions and at stores); + - * and bitwise operations
  commute with wrapping, so wrapping eagerly gives the same values;
- REAL values travel as double and are rounded to binary32 exactly where the
  Python backend rounds (the same `clean` bookkeeping), with FP contraction
  off, so a*b+c is never fused;
- operands with side effects or faults are sequenced left to right (GNU
  statement expressions), as Python evaluates them;
- every fault the Python backend raises (index, division by zero, NaN or
  infinity to an integer, subrange, MUX, watchdog) is a call that records
  the fault and longjmps to the entry point, with the site the Python
  backend would report.

What it does not compile (strings, dates, VAR_IN_OUT, IO_* functions,
tests, EXPT, recursion) raises NativeUnsupported; the caller runs the
Python backend instead.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import ast as A
from ..model import CallInfo, CheckedProject, PouInfo, VarInfo
from ..types import (ArrayType, BoolType, EnumType, FBType, IntType, LiteralIntType, LiteralRealType,
                     RealType, StructType, SubrangeType, TimeType, Type, default_value, strip_subrange)
from .prelude import STD_LAYOUT, prelude


class NativeUnsupported(Exception):
    def __init__(self, what: str, span=None):
        super().__init__(f"{span}: {what}" if span is not None else what)
        self.what = what
        self.span = span


@dataclass
class CCode:
    src: str
    kind: str            # "b" bool, "i" integer (of its type), "f" floating (double)
    clean: bool = True   # "f" REAL: already binary32 (the Python backend's Code.clean)
    pure: bool = True    # no call, no fault: may be evaluated in any order


_MISSING = object()
_LINT = IntType("LINT", 64, True)


def cint(t: Type) -> str:
    """C type of an integer-like ST type (int, enum, subrange, time)."""
    t = strip_subrange(t)
    if isinstance(t, EnumType):
        t = t.base
    if isinstance(t, LiteralIntType):
        return "int64_t"
    if isinstance(t, IntType):
        return f"{'' if t.signed else 'u'}int{t.bits}_t"
    if isinstance(t, TimeType):
        return "int64_t"
    raise NativeUnsupported(f"type {t}")


def int_type(t: Type) -> IntType:
    t = strip_subrange(t)
    if isinstance(t, EnumType):
        return t.base
    if isinstance(t, IntType):
        return t
    if isinstance(t, (LiteralIntType, TimeType)):
        return _LINT
    raise NativeUnsupported(f"type {t} as an integer")


def is_scalar(t) -> bool:
    t = strip_subrange(t)
    return not isinstance(t, (ArrayType, StructType, FBType))


def kind_of(t: Type) -> str:
    t = strip_subrange(t)
    if isinstance(t, BoolType):
        return "b"
    if isinstance(t, (RealType, LiteralRealType)):
        return "f"
    if isinstance(t, (IntType, EnumType, LiteralIntType, TimeType)):
        return "i"
    raise NativeUnsupported(f"values of type {t}")


def c_literal(v, t: Type) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if v != v:
            return "NAN"
        if v in (float("inf"), float("-inf")):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        return v.hex()
    if isinstance(v, int):
        ts = strip_subrange(t)
        if isinstance(ts, (RealType, LiteralRealType)):
            return float(v).hex()
        ct = cint(t) if not isinstance(ts, BoolType) else "int64_t"
        if ct == "uint64_t" or v > (1 << 63) - 1:
            return f"UINT64_C({v})"
        if v == -(1 << 63):
            return "INT64_MIN"
        return f"(({ct})INT64_C({v}))"
    raise NativeUnsupported(f"the constant {v!r}")


class CGen:
    """The whole translation unit. Names: S_x structs, P_x blocks and
    programs, F_x functions, B_x standard blocks, v_x fields, l_x locals."""

    def __init__(self, p: CheckedProject):
        self.p = p
        self.lines: list[str] = []
        self.sites: list = []            # site id -> (Span, lo, hi), like CompiledProgram.sites
        self.arrays: dict[Type, str] = {}
        self.decls: list[str] = []       # typedefs and structs, each after what it uses
        self.layout: list[tuple[str, list[str]]] = []   # (C type, [C field]) checked against ctypes
        self.source = ""                 # the translation unit, once emit() ran

    # ------------------------------------------------------------ types
    def site(self, span, lo=0, hi=0) -> int:
        self.sites.append((span, lo, hi))
        return len(self.sites) - 1

    def ctype(self, t: Type) -> str:
        t0 = t
        t = strip_subrange(t)
        if isinstance(t, BoolType):
            return "bool"
        if isinstance(t, RealType):
            return "float" if t.bits == 32 else "double"
        if isinstance(t, (IntType, EnumType, TimeType)):
            return cint(t)
        if isinstance(t, StructType):
            return "S_" + t.name
        if isinstance(t, FBType):
            return ("B_" if t.pou.std else "P_") + t.pou.name
        if isinstance(t, ArrayType):
            name = self.arrays.get(t)
            if name is None:
                name = f"A_{len(self.arrays)}"
                self.arrays[t] = name
                self.decls.append(f"typedef {self.ctype(t.elem)} {name}[{t.size}];")
            return name
        raise NativeUnsupported(f"variables of type {t0}")

    # ------------------------------------------------------------ the unit
    def emit(self) -> str:
        p = self.p
        self._refuse_recursion()
        body: list[str] = []
        structs = self._struct_order()
        for t in structs:
            self.decls.append(self._struct_decl(t))
        gvars = list(p.globals.values())
        self.decls.append(self._record("Globals__", [(v.pyname, v.type) for v in gvars]))
        for t in structs:
            name = ("S_" + t.name) if isinstance(t, StructType) else ("P_" + t.pou.name)
            body.append(f"static void init_{name}({name} *p);")       # bodies initialise locals with them
        for info in p.pous.values():
            if info.kind == "FUNCTION":
                body.append(self._function_proto(info) + ";")
            else:
                body.append(f"static void P_{info.name}_body(GpCtx *c, P_{info.name} *self);")
        for info in p.pous.values():
            gen = _PouC(self, info)
            body.extend(gen.emit())
        inits = self._inits(structs, gvars)
        entries = []
        for info in p.pous.values():
            if info.kind == "PROGRAM":
                entries.append(
                    f"int gp_run_P_{info.name}(GpCtx *c, P_{info.name} *self, int64_t now_ms, int64_t now_ns) {{\n"
                    f"    c->now_ms = now_ms; c->now_ns = now_ns;\n"
                    f"    jmp_buf jb; jmp_buf *saved = gp_jb; gp_jb = &jb;\n"
                    f"    if (setjmp(jb)) {{ gp_jb = saved; return c->fault_kind; }}\n"
                    f"    P_{info.name}_body(c, self);\n"
                    f"    gp_jb = saved; return 0;\n}}")
        layout = self._layout_table()
        return "\n".join([prelude(), *self.decls, *body, *inits, *entries, layout, ""])

    def _refuse_recursion(self) -> None:
        """C recursion has no depth guard: refuse call cycles (Python backend's RecursionError)."""
        graph = {k: set() for k in self.p.pous}
        for key, info in self.p.pous.items():
            if info.decl is None:
                continue
            for node in _walk_calls(info.decl.body):
                ci = self.p.calls.get(node)
                if ci is not None and ci.pou is not None and not ci.pou.std:
                    graph[key].add(ci.pou.key)
            for v in info.vars.values():
                t = strip_subrange(v.type)
                while isinstance(t, ArrayType):
                    t = strip_subrange(t.elem)
                if isinstance(t, FBType) and not t.pou.std:
                    graph[key].add(t.pou.key)
        state: dict[str, int] = {}

        def visit(k):
            state[k] = 1
            for n in graph.get(k, ()):
                if state.get(n) == 1:
                    raise NativeUnsupported(f"recursion through {self.p.pous[n].name}")
                if n not in state:
                    visit(n)
            state[k] = 2
        for k in graph:
            if k not in state:
                visit(k)

    def _struct_order(self) -> list[Type]:
        """STRUCTs and FB/PROGRAM types, every type after the ones it contains."""
        out: list[Type] = []
        seen: set = set()

        def need(t):
            t = strip_subrange(t)
            while isinstance(t, ArrayType):
                t = strip_subrange(t.elem)
            if isinstance(t, StructType):
                key = ("S", t.name.upper())
                if key in seen:
                    return
                seen.add(key)
                for f in t.fields.values():
                    need(f.type)
                out.append(t)
            elif isinstance(t, FBType) and not t.pou.std:
                key = ("P", t.pou.key)
                if key in seen:
                    return
                seen.add(key)
                for v in _own_vars(t.pou):
                    need(v.type)
                out.append(t)
        for t in self.p.types.values():
            if isinstance(t, StructType):
                need(t)
        for info in self.p.pous.values():
            for v in info.vars.values():
                need(v.type)
            if info.kind != "FUNCTION":
                need(FBType(info.name, info))
        for v in self.p.globals.values():
            need(v.type)
        return out

    def _record(self, cname: str, fields: list[tuple[str, Type]]) -> str:
        parts = [f"{self.ctype(t)} v_{name};" for name, t in fields]
        self.layout.append((cname, [f"v_{name}" for name, _ in fields]))
        if not parts:
            parts = ["char empty__;"]     # C has no empty structs; the ctypes mirror has the same byte
        return f"typedef struct {{ {' '.join(parts)} }} {cname};"

    def _struct_decl(self, t) -> str:
        if isinstance(t, StructType):
            return self._record("S_" + t.name, [(f.name, f.type) for f in t.fields.values()])
        return self._record("P_" + t.pou.name, [(v.pyname, v.type) for v in _own_vars(t.pou)])

    def _function_proto(self, info: PouInfo) -> str:
        res = info.vars.get(info.name.upper())
        rt = self.ctype(res.type) if res is not None and res.section == "RESULT" else "void"
        args = ["GpCtx *c"]
        for v in info.params():
            if v.section == "VAR_IN_OUT":
                raise NativeUnsupported("VAR_IN_OUT", v.span)
            args.append(f"{self.ctype(v.type)} l_{v.pyname}" if is_scalar(v.type)
                        else f"const {self.ctype(v.type)} *a_{v.pyname}")
        for v in info.vars.values():
            if v.section == "VAR_OUTPUT":
                args.append(f"{self.ctype(v.type)} *o_{v.pyname}")
        return f"static {rt} F_{info.name}({', '.join(args)})"

    # ------------------------------------------------------------ initial values
    def init_stmts(self, dst: str, t: Type, init, out: list[str], depth: int = 0) -> None:
        """Statements giving dst (zeroed memory) the Python backend's initial value."""
        t0 = t
        ts = strip_subrange(t) if not isinstance(t, SubrangeType) else t
        if isinstance(ts, ArrayType):
            vals = init if isinstance(init, list) else []
            elem = ts.elem
            if vals:
                for i in range(ts.size):
                    self.init_stmts(f"{dst}[{i}]", elem, vals[i] if i < len(vals) else None, out, depth)
                return
            inner: list[str] = []
            var = f"i{depth}"
            self.init_stmts(f"{dst}[{var}]", elem, None, inner, depth + 1)
            if inner:
                out.append(f"for (int {var} = 0; {var} < {ts.size}; {var}++) {{ {' '.join(inner)} }}")
            return
        if isinstance(ts, StructType):
            out.append(f"init_S_{ts.name}(&{dst});")
            if isinstance(init, dict):
                for k, v in init.items():
                    f = ts.fields[k]
                    self.init_stmts(f"{dst}.v_{f.name}", f.type, v, out, depth)
            return
        if isinstance(ts, FBType):
            if not ts.pou.std:
                out.append(f"init_P_{ts.pou.name}(&{dst});")
            if isinstance(init, dict):
                for k, v in init.items():
                    var = ts.pou.vars[k]
                    self.init_stmts(f"{dst}.v_{var.pyname}", var.type, v, out, depth)
            return
        value = default_value(t0) if init is None else init
        if value is None:
            raise NativeUnsupported(f"the initial value of type {t0}")
        if isinstance(value, str):
            raise NativeUnsupported(f"the initial value {value!r}")
        if value:
            out.append(f"{dst} = {c_literal(value, t0)};")

    def _inits(self, structs, gvars) -> list[str]:
        out = []
        for t in structs:
            stmts: list[str] = []
            if isinstance(t, StructType):
                name = "S_" + t.name
                for f in t.fields.values():
                    self.init_stmts(f"p->v_{f.name}", f.type, f.init, stmts)
            else:
                name = "P_" + t.pou.name
                for v in _own_vars(t.pou):
                    self.init_stmts(f"p->v_{v.pyname}", v.type, v.init, stmts)
            out.append(f"static void init_{name}({name} *p) {{ (void)p; {' '.join(stmts)} }}")
            out.append(f"void gp_init_{name}({name} *p) {{ init_{name}(p); }}")
        stmts = []
        for v in gvars:
            self.init_stmts(f"p->v_{v.pyname}", v.type, v.init, stmts)
        out.append(f"void gp_init_Globals__(Globals__ *p) {{ (void)p; {' '.join(stmts)} }}")
        return out

    def _layout_table(self) -> str:
        """sizeof and every offsetof, for the loader to compare with ctypes'."""
        items = []
        for cname, fields in self.layout:
            items.append(f"sizeof({cname})")
            items.extend(f"offsetof({cname}, {f})" for f in fields)
        for name, fields in STD_LAYOUT.items():
            items.append(f"sizeof(B_{name})")
            items.extend(f"offsetof(B_{name}, v_{f})" for f, _ in fields)
        return ("const int64_t gp_layout[] = { "
                + ", ".join(["(int64_t)" + x for x in items] or ["0"]) + " };\n"
                f"const int64_t gp_layout_len = {len(items)};")


STACK_FRAME_MAX = 1 << 20      # bytes of a function's (or a block's VAR_TEMP) variables on the C stack


def _size(t) -> int:
    """Bytes of a value of type t, near enough to bound a stack frame."""
    t = strip_subrange(t)
    if isinstance(t, ArrayType):
        return t.size * _size(t.elem)
    if isinstance(t, StructType):
        return sum(_size(f.type) for f in t.fields.values())
    if isinstance(t, FBType):
        return 64 if t.pou.std else sum(_size(v.type) for v in t.pou.vars.values()
                                         if v.section not in ("VAR_EXTERNAL", "VAR_TEMP"))
    if isinstance(t, EnumType):
        t = t.base
    if isinstance(t, IntType):
        return t.bits // 8
    return 8


def _own_vars(info: PouInfo) -> list[VarInfo]:
    """The block's state, in the order of the Python class's slots."""
    out = []
    for v in info.vars.values():
        if v.section in ("VAR_EXTERNAL", "VAR_TEMP"):
            continue
        if v.section == "VAR_IN_OUT":
            raise NativeUnsupported("VAR_IN_OUT", v.span)
        out.append(v)
    return out


def _walk_calls(stmts):
    from ..statements import _walk_exprs, _walk_stmts
    for s in _walk_stmts(stmts):
        if isinstance(s, A.CallStmt):
            yield s
    for e in _walk_exprs(stmts):
        if isinstance(e, A.Call):
            yield e


class _PouC:
    """Statements and expressions of one POU body, in C."""

    def __init__(self, g: CGen, info: PouInfo):
        self.g = g
        self.p = g.p
        self.info = info
        self.out: list[str] = []
        self.ind = 1
        self.tmp = 0
        self.labels = 0
        self.loops: list[tuple[str, str]] = []     # (break label, continue label)
        self.for_ranges: dict[str, tuple[int, int]] = {}   # FOR variable -> its constant trip range
        self.span = info.decl.span if info.decl is not None else None
        self.fn = info.kind == "FUNCTION"

    def line(self, s: str) -> None:
        self.out.append("    " * self.ind + s)

    def new_tmp(self) -> str:
        self.tmp += 1
        return f"t{self.tmp}"

    # ------------------------------------------------------------ the POU
    def emit(self) -> list[str]:
        info = self.info
        g = self.g
        frame = sum(_size(v.type) for v in info.vars.values()
                    if v.section == "VAR_TEMP" or (self.fn and v.section not in ("VAR_EXTERNAL",)))
        if frame > STACK_FRAME_MAX:
            # the Python backend allocates these on the heap; a C stack this deep could overflow
            raise NativeUnsupported(f"{frame} bytes of local variables in {info.name}", info.decl.span)
        if info.kind == "FUNCTION":
            head = g._function_proto(info) + " {"
            res = info.vars.get(info.name.upper())
            for v in info.vars.values():
                if v.section == "VAR_INPUT":
                    if not is_scalar(v.type):
                        self.line(f"{g.ctype(v.type)} l_{v.pyname};")
                        self.line(f"memcpy(&l_{v.pyname}, a_{v.pyname}, sizeof(l_{v.pyname}));")
                    continue
                if v.section == "VAR_EXTERNAL":
                    continue
                self.declare_local(v)
            self.block(info.decl.body)
            self.ind = 1
            self.line("gp_ret: ;")
            for v in info.vars.values():
                if v.section == "VAR_OUTPUT":
                    self.line(f"memcpy(o_{v.pyname}, &l_{v.pyname}, sizeof(l_{v.pyname}));")
            if res is not None and res.section == "RESULT":
                self.line(f"return l_{res.pyname};")
            return [head, *self.out, "}"]
        head = f"static void P_{info.name}_body(GpCtx *c, P_{info.name} *self) {{"
        self.line("(void)c; (void)self;")
        for v in info.vars.values():
            if v.section == "VAR_TEMP":
                self.declare_local(v)
        self.block(info.decl.body)
        return [head, *self.out, "}"]

    def declare_local(self, v: VarInfo) -> None:
        """A variable on the C stack, with its initial value (fresh at every call)."""
        self.line(f"{self.g.ctype(v.type)} l_{v.pyname};")
        self.line(f"memset(&l_{v.pyname}, 0, sizeof(l_{v.pyname}));")
        stmts: list[str] = []
        self.g.init_stmts(f"l_{v.pyname}", v.type, v.init, stmts)
        for s in stmts:
            self.line(s)

    def loop_body(self, site: int, brk: str, cont: str, body, var_key: str | None = None,
                  rng: tuple[int, int] | None = None) -> None:
        """A loop's body: the watchdog test, EXIT/CONTINUE labels, and for a
        FOR the variable's trip range while the body is emitted (None: unknown)."""
        self.line(f"GP_WD(c, {site});")
        self.loops.append((brk, cont))
        saved = self.for_ranges.get(var_key) if var_key is not None else None
        if var_key is not None:
            if rng is not None:
                self.for_ranges[var_key] = rng
            else:
                self.for_ranges.pop(var_key, None)
        self.block(body)
        if var_key is not None:
            if saved is not None:
                self.for_ranges[var_key] = saved
            else:
                self.for_ranges.pop(var_key, None)
        self.loops.pop()
        self.line(f"{cont}: ;")

    # ------------------------------------------------------------ statements
    def block(self, stmts) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, s) -> None:  # noqa: C901
        self.span = s.span
        if isinstance(s, A.Assign):
            self.assign(s.target, s.value)
        elif isinstance(s, A.CallStmt):
            self.call_stmt(s)
        elif isinstance(s, A.If):
            for i, (cnd, body) in enumerate(s.branches):
                self.span = cnd.span
                c = self.expr(cnd)
                self.line(f"{'if' if i == 0 else 'else if'} ({c.src}) {{")
                self.ind += 1
                self.block(body)
                self.ind -= 1
                self.line("}")
            if s.else_body is not None:
                self.line("else {")
                self.ind += 1
                self.block(s.else_body)
                self.ind -= 1
                self.line("}")
        elif isinstance(s, A.Case):
            self.case(s)
        elif isinstance(s, A.For):
            self.for_(s)
        elif isinstance(s, A.While):
            site = self.g.site(s.span)
            brk, cont = self.new_labels()
            c = self.expr(s.cond)
            self.line(f"while ({c.src}) {{")
            self.ind += 1
            self.loop_body(site, brk, cont, s.body)
            self.ind -= 1
            self.line("}")
            self.line(f"{brk}: ;")
        elif isinstance(s, A.Repeat):
            site = self.g.site(s.span)
            brk, cont = self.new_labels()
            self.line("for (;;) {")
            self.ind += 1
            self.loop_body(site, brk, cont, s.body)
            self.span = s.cond.span
            c = self.expr(s.cond)
            self.line(f"if ({c.src}) break;")
            self.ind -= 1
            self.line("}")
            self.line(f"{brk}: ;")
        elif isinstance(s, A.Exit):
            self.line(f"goto {self.loops[-1][0]};")
        elif isinstance(s, A.Continue):
            self.line(f"goto {self.loops[-1][1]};")
        elif isinstance(s, A.Return):
            self.line("goto gp_ret;" if self.fn else "return;")
        elif isinstance(s, A.Empty):
            pass
        else:
            raise NativeUnsupported(f"the statement {type(s).__name__}", s.span)

    def vtype(self, t: Type) -> str:
        """C type of a value of scalar type t inside an expression (REALs travel as double)."""
        k = kind_of(t)
        return "bool" if k == "b" else ("double" if k == "f" else cint(t))

    def new_labels(self) -> tuple[str, str]:
        self.labels += 1
        return f"brk{self.labels}", f"cont{self.labels}"

    def assign(self, target, value) -> None:
        tt = self.p.expr_types[target]
        if not is_scalar(tt):
            ts = strip_subrange(tt)
            if isinstance(ts, FBType):
                raise NativeUnsupported("copying a function block instance", target.span)
            v = self.expr(value)
            dst = self.lvalue(target)
            self.line(f"memmove(&{dst}, &{v.src}, sizeof({dst}));")
            return
        self.store(target, self.store_value(value, tt))

    def store(self, target, src: str) -> None:
        """target := src, src already converted for target's type."""
        if isinstance(target, A.BitAccess):
            bt = strip_subrange(self.p.expr_types[target.base])
            ct = cint(bt)
            base = self.expr(target.base).src
            t, b = self.new_tmp(), self.new_tmp()
            # Python: setbit__(base, bit, value): the base is read (and its index checked) first
            self.line(f"{{ uint64_t {b} = (uint64_t){base}; bool {t} = {src}; {self.lvalue(target.base)} = ({ct})({t} ? "
                      f"({b} | ((uint64_t)1 << {target.bit})) : ({b} & ~((uint64_t)1 << {target.bit}))); }}")
            return
        self.line(f"{self.lvalue(target)} = {src};")

    def lvalue(self, target) -> str:
        if isinstance(target, A.Name):
            return self.name_ref(target)
        if isinstance(target, (A.Member, A.Index)):
            return self.expr(target).src
        raise NativeUnsupported("this assignment target", target.span)

    def store_value(self, value, tt: Type) -> str:
        c = self.p.consts.get(value, _MISSING)
        vt = self.p.expr_types[value]
        if c is not _MISSING:
            from ..checker import ExprChecker
            return c_literal(ExprChecker.coerce_const(None, c, vt, tt), tt)
        return self.coerce(self.expr(value), vt, tt, value.span)

    def coerce(self, v: CCode, vt: Type, tt: Type, span) -> str:
        """v (of type vt) as stored into tt: the Python backend's coerce()."""
        ts = strip_subrange(tt)
        vs = strip_subrange(vt)
        if isinstance(ts, RealType):
            if isinstance(vs, (IntType, EnumType)):
                if ts.bits == 32 and int_type(vs).bits > 16:
                    return f"GP_R32((double){v.src})"
                return f"(double){v.src}"
            if isinstance(vs, (RealType, LiteralRealType)):
                if ts.bits == 32 and not (v.clean and isinstance(vs, RealType) and vs.bits == 32):
                    return f"GP_R32({v.src})"
                return v.src
            raise NativeUnsupported(f"storing {vt} into {tt}", span)
        if isinstance(tt, SubrangeType):
            site = self.g.site(span, tt.lo, tt.hi)
            return f"({cint(tt)})gp_sub(c, (int64_t)({v.src}), {tt.lo}, {tt.hi}, {site})"
        if isinstance(ts, (IntType, EnumType)):
            if v.kind != "i" and v.kind != "b":
                raise NativeUnsupported(f"storing {vt} into {tt}", span)
            return f"({cint(ts)})({v.src})"
        if isinstance(ts, TimeType):
            if isinstance(vs, TimeType) and vs != ts:
                return self.time_convert(v.src, vs, ts)
            return v.src
        if isinstance(ts, BoolType):
            return v.src
        raise NativeUnsupported(f"storing {vt} into {tt}", span)

    def time_convert(self, src: str, vs: TimeType, ts: TimeType) -> str:
        if vs.unit_ns > ts.unit_ns:
            return f"((int64_t)(({src}) * (uint64_t){vs.unit_ns // ts.unit_ns}))"
        return f"(({src}) / {ts.unit_ns // vs.unit_ns})"

    # ------------------------------------------------------------ calls
    def call_stmt(self, s: A.CallStmt) -> None:
        info: CallInfo | None = self.p.calls.get(s)
        if info is None:
            return
        if info.kind in ("test", "io"):
            raise NativeUnsupported(f"{info.name}", s.span)
        if info.kind != "fb":
            call = A.Call(s.target.name, s.args, s.span)
            self.p.calls[call] = info
            self.p.expr_types[call] = self.p.expr_types.get(s)
            c = self.call_expr(call) if info.kind == "function" else self.expr(call)
            self.line(f"(void)({c.src});")
            return
        inst = self.expr(s.target)
        fbt = strip_subrange(self.p.expr_types[s.target])
        ct = self.g.ctype(fbt)
        ref = self.new_tmp()
        self.line("{")
        self.ind += 1
        self.line(f"{ct} *{ref} = &{inst.src};")
        for par, val in info.inputs:
            if par.section == "VAR_IN_OUT":
                raise NativeUnsupported("VAR_IN_OUT", s.span)
            if is_scalar(par.type):
                self.line(f"{ref}->v_{par.pyname} = {self.store_value(val, par.type)};")
            else:
                v = self.expr(val)
                self.line(f"memmove(&{ref}->v_{par.pyname}, &{v.src}, sizeof({ref}->v_{par.pyname}));")
        body = ("B_" if fbt.pou.std else "P_") + fbt.pou.name + "_body"
        self.line(f"{body}(c, {ref});")
        for par, target, neg in info.outputs:
            src = f"{ref}->v_{par.pyname}"
            tt = self.p.expr_types[target]
            if neg:
                self.store(target, f"(!{src})")
            elif not is_scalar(par.type):
                dst = self.lvalue(target)
                self.line(f"memmove(&{dst}, &{src}, sizeof({dst}));")
            else:
                self.store(target, self.coerce(CCode(src, kind_of(par.type)), par.type, tt, target.span))
        self.ind -= 1
        self.line("}")

    def call_expr(self, e: A.Call) -> CCode:
        """A user FUNCTION: arguments left to right into temporaries, outputs
        into boxes, stored to their targets right after the call."""
        info: CallInfo = self.p.calls[e]
        pou = info.pou
        bound = {par.key: val for par, val in info.inputs}
        parts = []
        args = ["c"]
        for par in pou.params():
            if par.section == "VAR_IN_OUT":
                raise NativeUnsupported("VAR_IN_OUT", e.span)
            val = bound.get(par.key)
            t = self.new_tmp()
            ct = self.g.ctype(par.type)
            if val is None:
                stmts: list[str] = []
                parts.append(f"{ct} {t}; memset(&{t}, 0, sizeof({t}));")
                self.g.init_stmts(t, par.type, par.init, stmts)
                parts.extend(stmts)
            elif is_scalar(par.type):
                parts.append(f"{ct} {t} = {self.store_value(val, par.type)};")
            else:
                parts.append(f"const {ct} *{t}p = &{self.expr(val).src};")
                args.append(f"{t}p")
                continue
            args.append(t if is_scalar(par.type) else f"&{t}")
        outs = [v for v in pou.vars.values() if v.section == "VAR_OUTPUT"]
        boxes = []
        for v in outs:
            b = self.new_tmp()
            parts.append(f"{self.g.ctype(v.type)} {b};")
            args.append(f"&{b}")
            boxes.append((v, b))
        res = pou.vars.get(pou.name.upper())
        has_res = res is not None and res.section == "RESULT"
        r = self.new_tmp()
        call = f"F_{pou.name}({', '.join(args)})"
        parts.append(f"{self.g.ctype(res.type)} {r} = {call};" if has_res else f"{call};")
        for v, b in boxes:
            for par, target, neg in info.outputs:
                if par is v:
                    if neg:
                        src = f"(!{b})"
                    elif not is_scalar(par.type):
                        dst = self.lvalue(target)
                        parts.append(f"memmove(&{dst}, &{b}, sizeof({dst}));")
                        continue
                    else:
                        src = self.coerce(CCode(b, kind_of(par.type)), par.type, self.p.expr_types[target],
                                          target.span)
                    parts.append(self.store_text(target, src))
        if has_res:
            parts.append(f"{r};")
            return CCode("({ " + " ".join(parts) + " })", kind_of(res.type), True, False)
        parts.append("0;")
        return CCode("({ " + " ".join(parts) + " })", "i", True, False)

    def store_text(self, target, src: str) -> str:
        saved, self.out = self.out, []
        ind, self.ind = self.ind, 0
        try:
            self.store(target, src)
            return " ".join(x.strip() for x in self.out)
        finally:
            self.out, self.ind = saved, ind

    # ------------------------------------------------------------ CASE / FOR
    def case(self, s: A.Case) -> None:
        sel = self.expr(s.selector)
        st = self.p.expr_types[s.selector]
        t = self.new_tmp()
        sct = cint(st)
        self.line("{")
        self.ind += 1
        self.line(f"{sct} {t} = ({sct})({sel.src});")     # compared in its own type (ULINT labels >= 2**63)
        first = True
        for br in s.branches:
            conds = []
            for lab in br.labels:
                lo = c_literal(int(self.p.consts[lab.low]), st)
                if lab.high is None:
                    conds.append(f"{t} == {lo}")
                else:
                    conds.append(f"({lo} <= {t} && {t} <= {c_literal(int(self.p.consts[lab.high]), st)})")
            self.span = br.span
            self.line(f"{'if' if first else 'else if'} ({' || '.join(conds)}) {{")
            first = False
            self.ind += 1
            self.block(br.body)
            self.ind -= 1
            self.line("}")
        if s.else_body is not None:
            if first:
                self.line("{")
            else:
                self.line("else {")
            self.ind += 1
            self.block(s.else_body)
            self.ind -= 1
            self.line("}")
        self.ind -= 1
        self.line("}")

    def for_(self, s: A.For) -> None:
        var = self.p.refs[s].var
        vt = var.type
        if int_type(vt).bits > 32:
            raise NativeUnsupported("a FOR variable wider than 32 bits", s.span)
        v = self.var_ref(var)
        ct = cint(vt)
        start = self.store_value(s.start, vt)
        end = self.store_value(s.end, vt)
        site = self.g.site(s.span)
        brk, cont = self.new_labels()
        ts, te = self.new_tmp(), self.new_tmp()
        self.line("{")
        self.ind += 1
        self.line(f"int64_t {ts} = {start};")      # START, END (and STEP) once, before the variable changes
        if s.step is None or s.step in self.p.consts:
            self.line(f"int64_t {te} = {end};")
            step = self.p.consts.get(s.step, 1) if s.step is not None else 1
            cmp = "<=" if step > 0 else ">="
            # IEC leaves the variable one step past the last value, or at the
            # start when the loop does not run (Python: `for ... else`)
            ti = self.new_tmp()
            self.line(f"if (!({ts} {cmp} {te})) {v} = ({ct}){ts};")
            self.line("else {")
            self.ind += 1
            self.line(f"for (int64_t {ti} = {ts}; {ti} {cmp} {te}; {ti} += {step}) {{")
            self.ind += 1
            self.line(f"{v} = ({ct}){ti};")
            # the body cannot assign the variable (E0043): inside, it stays in the trip range
            self.loop_body(site, brk, cont, s.body, var.key, self.p.for_ranges.get(s))
            self.ind -= 1
            self.line("}")
            self.line(f"{v} = ({ct})((int64_t){v} + {step});")
            self.ind -= 1
            self.line("}")
        else:
            stp = self.store_value(s.step, vt)
            tst = self.new_tmp()
            fsite = self.g.site(s.span)
            self.line(f"int64_t {te} = {end};")
            self.line(f"int64_t {tst} = {stp};")
            self.line(f"{v} = ({ct}){ts};")
            self.line(f"if ({tst} == 0) gp_fault(c, GP_F_FOR_STEP0, {fsite}, 0, 0, 0.0);")
            self.line(f"while ({tst} > 0 ? (int64_t){v} <= {te} : (int64_t){v} >= {te}) {{")
            self.ind += 1
            self.loop_body(site, brk, cont, s.body, var.key, None)
            self.line(f"{v} = ({ct})((int64_t){v} + {tst});")
            self.ind -= 1
            self.line("}")
        self.ind -= 1
        self.line("}")
        self.line(f"{brk}: ;")

    # ------------------------------------------------------------ names
    def var_ref(self, v: VarInfo) -> str:
        if v.section in ("VAR_GLOBAL", "VAR_EXTERNAL"):
            return f"((Globals__ *)c->g)->v_{v.pyname}"
        if self.fn or v.section == "VAR_TEMP":
            return f"l_{v.pyname}"       # a function's variables and a block's temps live on the C stack
        return f"self->v_{v.pyname}"

    def name_ref(self, e: A.Name) -> str:
        ref = self.p.refs[e]
        if ref.var is None:
            raise NativeUnsupported("this name", e.span)
        return self.var_ref(ref.var)

    def member_attr(self, e: A.Member) -> str:
        bt = strip_subrange(self.p.expr_types[e.base])
        if isinstance(bt, FBType):
            return "v_" + bt.pou.lookup_param(e.name).pyname
        if isinstance(bt, StructType):
            return "v_" + bt.fields[e.name.upper()].name
        raise NativeUnsupported("this member access", e.span)

    def index_src(self, e: A.Index) -> tuple[str, bool]:
        at: ArrayType = strip_subrange(self.p.expr_types[e.base])
        strides = []
        stride = 1
        for lo, hi in reversed(at.dims):
            strides.append(stride)
            stride *= hi - lo + 1
        strides.reverse()
        const_off = 0
        parts = []
        pure = True
        for ix, (lo, hi), st in zip(e.indices, at.dims, strides):
            c = self.p.consts.get(ix, _MISSING)
            if c is not _MISSING:
                const_off += (c - lo) * st
                continue
            code = self.expr(ix)
            it = self.p.expr_types[ix]
            rng = self.known_range(ix)
            if rng is not None and lo <= rng[0] and rng[1] <= hi:
                # a FOR variable over a constant range, or a type, inside the bounds: no check
                # (the Python backend skips the same ones)
                term = f"((int64_t)({code.src}) - {lo})"
                if st != 1:
                    term = f"{term} * {st}"
                parts.append(term)
                continue
            site = self.g.site(ix.span, lo, hi)
            pure = False
            term = f"(gp_idx(c, (int64_t)({cint(it)})({code.src}), {lo}, {hi}, {site}) - {lo})"
            if st != 1:
                term = f"{term} * {st}"
            parts.append(term)
        if const_off or not parts:
            parts.append(str(const_off))
        if len(parts) > 1 and not pure:
            # several checked indexes: checked left to right, as Python does
            tmps = []
            pre = []
            for part in parts:
                t = self.new_tmp()
                pre.append(f"int64_t {t} = {part};")
                tmps.append(t)
            return "({ " + " ".join(pre) + " " + " + ".join(tmps) + "; })", False
        return " + ".join(parts), pure

    def known_range(self, ix) -> tuple[int, int] | None:
        ref = self.p.refs.get(ix) if isinstance(ix, A.Name) else None
        if ref is None or ref.var is None:
            return None
        v = ref.var
        if v.key in self.for_ranges:
            return self.for_ranges[v.key]
        t = v.type if isinstance(v.type, SubrangeType) else strip_subrange(v.type)
        if isinstance(t, SubrangeType):
            return (t.lo, t.hi)
        if isinstance(t, IntType):
            return (t.lo, t.hi)
        return None

    # ------------------------------------------------------------ expressions
    def expr(self, e) -> CCode:  # noqa: C901
        p = self.p
        c = p.consts.get(e, _MISSING)
        if c is not _MISSING:
            t = p.expr_types.get(e)
            if isinstance(c, str):
                raise NativeUnsupported("strings", e.span)
            k = "b" if isinstance(c, bool) else ("f" if isinstance(c, float) or isinstance(
                strip_subrange(t), (RealType, LiteralRealType)) else "i")
            return CCode(c_literal(c, t), k, True, True)
        if isinstance(e, A.Name):
            ref = p.refs[e]
            if ref.kind == "enum":
                return CCode(f"INT64_C({ref.enum.members[ref.member]})", "i")
            v = ref.var
            return CCode(self.var_ref(v), kind_of(v.type) if is_scalar(v.type) else "o")
        if isinstance(e, A.Member):
            ref = p.refs.get(e)
            if ref is not None and ref.kind == "enum":
                return CCode(f"INT64_C({ref.enum.members[ref.member]})", "i")
            base = self.expr(e.base)
            t = p.expr_types[e]
            return CCode(f"{base.src}.{self.member_attr(e)}", kind_of(t) if is_scalar(t) else "o",
                         True, base.pure)
        if isinstance(e, A.Index):
            base = self.expr(e.base)
            idx, pure = self.index_src(e)
            t = p.expr_types[e]
            return CCode(f"{base.src}[{idx}]", kind_of(t) if is_scalar(t) else "o", True, pure and base.pure)
        if isinstance(e, A.BitAccess):
            base = self.expr(e.base)
            return CCode(f"((((uint64_t)(int64_t){base.src} >> {e.bit}) & 1) != 0)", "b", True, base.pure)
        if isinstance(e, A.Call):
            return self.call(e)
        if isinstance(e, A.UnOp):
            return self.unop(e)
        if isinstance(e, A.BinOp):
            return self.binop(e)
        raise NativeUnsupported(f"the expression {type(e).__name__}", getattr(e, "span", None))

    def seq(self, codes: list[CCode], kinds: list[str]) -> tuple[list[str], list[str]]:
        """Operands in order: when one may call or fault, each goes into a
        temporary first (C leaves the order of operands open; Python
        evaluates left to right)."""
        if all(c.pure for c in codes):
            return [], [c.src for c in codes]
        pre, names = [], []
        for c, k in zip(codes, kinds):
            t = self.new_tmp()
            pre.append(f"{k} {t} = {c.src};")
            names.append(t)
        return pre, names

    @staticmethod
    def wrap_seq(pre: list[str], src: str) -> str:
        if not pre:
            return src
        return "({ " + " ".join(pre) + f" {src}; }})"

    def unop(self, e: A.UnOp) -> CCode:
        t = strip_subrange(self.p.expr_types[e])
        v = self.expr(e.operand)
        if e.op == "NOT":
            if isinstance(t, BoolType):
                return CCode(f"(!{v.src})", "b", True, v.pure)
            return CCode(f"(({cint(t)})~(uint64_t){v.src})", "i", True, v.pure)
        if e.op == "+":
            return v
        if isinstance(t, RealType):
            return CCode(f"(-{v.src})", "f", v.clean, v.pure)
        return CCode(f"(({cint(t)})(0 - (uint64_t){v.src}))", "i", True, v.pure)

    def binop(self, e: A.BinOp) -> CCode:  # noqa: C901
        p = self.p
        op = e.op
        ot = strip_subrange(p.op_types.get(e, p.expr_types[e]))
        rt = strip_subrange(p.expr_types[e])
        a = self.expr(e.left)
        b = self.expr(e.right)
        pure = a.pure and b.pure
        if op in ("AND", "OR", "XOR"):
            if isinstance(rt, BoolType):
                if op == "XOR":
                    pre, (x, y) = self.seq([a, b], ["bool", "bool"])
                    return CCode(self.wrap_seq(pre, f"({x} != {y})"), "b", True, pure)
                if _pure(e.left) and _pure(e.right):
                    return CCode(f"({a.src} {'&&' if op == 'AND' else '||'} {b.src})", "b", True, pure)
                pre, (x, y) = self.seq([a, b], ["bool", "bool"])
                return CCode(self.wrap_seq(pre, f"({x} {'&' if op == 'AND' else '|'} {y})"), "b", True, pure)
            ct = cint(rt)
            cop = {"AND": "&", "OR": "|", "XOR": "^"}[op]
            pre, (x, y) = self.seq([a, b], ["uint64_t", "uint64_t"])
            return CCode(self.wrap_seq(pre, f"(({ct})((uint64_t){x} {cop} (uint64_t){y}))"), "i", True, pure)
        if op in ("=", "<>", "<", ">", "<=", ">="):
            cop = {"=": "==", "<>": "!="}.get(op, op)
            if isinstance(ot, (RealType, LiteralRealType)):
                pre, (x, y) = self.seq([a, b], ["double", "double"])
                return CCode(self.wrap_seq(pre, f"((double){x} {cop} (double){y})"), "b", True, pure)
            if isinstance(ot, BoolType):
                pre, (x, y) = self.seq([a, b], ["bool", "bool"])
                return CCode(self.wrap_seq(pre, f"({x} {cop} {y})"), "b", True, pure)
            ct = cint(ot)
            pre, (x, y) = self.seq([a, b], [ct, ct])
            return CCode(self.wrap_seq(pre, f"(({ct}){x} {cop} ({ct}){y})"), "b", True, pure)
        lt_, rt_ = strip_subrange(p.expr_types[e.left]), strip_subrange(p.expr_types[e.right])
        if isinstance(ot, TimeType) or isinstance(rt, TimeType):
            return self.time_op(e, op, a, b, lt_, rt_)
        if op == "**":
            raise NativeUnsupported("EXPT / **", e.span)
        if isinstance(ot, (IntType, LiteralIntType, EnumType)):
            it = int_type(ot)
            ct = cint(it)
            if op in ("/", "MOD"):
                site = self.g.site(self.span)
                pre, (x, y) = self.seq([a, b], [ct, ct])
                if it.signed:
                    fn = "gp_sdiv" if op == "/" else "gp_smod"
                    src = f"(({ct}){fn}(c, (int64_t)({ct}){x}, (int64_t)({ct}){y}, {site}))"
                else:
                    fn = "gp_udiv" if op == "/" else "gp_umod"
                    src = f"(({ct}){fn}(c, (uint64_t)({ct}){x}, (uint64_t)({ct}){y}, {site}))"
                return CCode(self.wrap_seq(pre, src), "i", True, False)
            pre, (x, y) = self.seq([a, b], ["int64_t", "int64_t"])
            return CCode(self.wrap_seq(pre, f"(({ct})((uint64_t){x} {op} (uint64_t){y}))"), "i", True, pure)
        if isinstance(ot, (RealType, LiteralRealType)):
            pre, (x, y) = self.seq([a, b], ["double", "double"])
            if op == "/":
                src = f"gp_fdiv(c, (double){x}, (double){y}, {self.g.site(self.span)})"
                pure = False
            else:
                src = f"((double){x} {op} (double){y})"
            if isinstance(ot, RealType) and ot.bits == 32:
                return CCode(self.wrap_seq(pre, f"GP_R32({src})"), "f", True, pure)
            return CCode(self.wrap_seq(pre, src), "f", False, pure)
        raise NativeUnsupported(f"the operator {op} on {ot}", e.span)

    def time_op(self, e, op, a: CCode, b: CCode, lt_, rt_) -> CCode:
        reals = isinstance(lt_, (RealType, LiteralRealType)) or isinstance(rt_, (RealType, LiteralRealType))
        site = self.g.site(self.span)
        if op == "/":
            if reals:
                pre, (x, y) = self.seq([a, b], ["double", "double"])
                src = f"((int64_t)gp_trunc(c, gp_fdiv(c, (double){x}, (double){y}, {site}), {site}))"
            else:
                pre, (x, y) = self.seq([a, b], ["int64_t", "int64_t"])
                src = f"gp_sdiv(c, (int64_t){x}, (int64_t){y}, {site})"
            return CCode(self.wrap_seq(pre, src), "i", True, False)
        if op == "*":
            if reals:
                pre, (x, y) = self.seq([a, b], ["double", "double"])
                return CCode(self.wrap_seq(pre, f"((int64_t)gp_round(c, (double){x} * (double){y}, {site}))"),
                             "i", True, False)
            pre, (x, y) = self.seq([a, b], ["int64_t", "int64_t"])
            return CCode(self.wrap_seq(pre, f"((int64_t)((uint64_t){x} * (uint64_t){y}))"), "i", True,
                         a.pure and b.pure)
        if op in ("+", "-"):
            pre, (x, y) = self.seq([a, b], ["int64_t", "int64_t"])
            return CCode(self.wrap_seq(pre, f"((int64_t)((uint64_t){x} {op} (uint64_t){y}))"), "i", True,
                         a.pure and b.pure)
        raise NativeUnsupported(f"the operator {op} on TIME", e.span)

    # ------------------------------------------------------------ functions
    def call(self, e: A.Call) -> CCode:  # noqa: C901
        info: CallInfo = self.p.calls[e]
        if info.kind == "function":
            return self.call_expr(e)
        if info.kind != "std" and info.kind != "conv":
            raise NativeUnsupported(f"{info.name}", e.span)
        args = [val for _, val in info.inputs]
        k = info.name
        rt = strip_subrange(info.result_type)
        if info.kind == "conv":
            return self.conversion(args[0], info.arg_types[0], rt)
        codes = [self.expr(v) for v in args]
        ats = info.arg_types
        pure = all(c.pure for c in codes)
        if k in ("MIN", "MAX"):
            ct = self.vtype(rt)
            tmps = [self.new_tmp() for _ in codes]
            pre = [f"{ct} {t} = ({ct})({c.src});" for t, c in zip(tmps, codes)]
            cmp = "<" if k == "MIN" else ">"
            if len(tmps) == 2:
                x, y = tmps
                src = f"({x} {cmp} {y} ? {x} : {y})"
            else:
                # Python's min/max: the first extreme, replaced only by a strictly smaller/larger one
                r = self.new_tmp()
                pre.append(f"{ct} {r} = {tmps[0]};")
                pre.extend(f"if ({t} {cmp} {r}) {r} = {t};" for t in tmps[1:])
                src = r
            clean = all(c.clean for c in codes) and all(strip_subrange(self.p.expr_types[v]) == rt for v in args)
            return CCode(self.wrap_seq(pre, src), kind_of(rt), clean, pure)
        if k == "LIMIT":
            # Python: x, then mn; mx only when x >= mn
            ct = self.vtype(rt)
            mn, x, mx = self.new_tmp(), self.new_tmp(), self.new_tmp()
            pre = [f"{ct} {x} = ({ct})({codes[1].src});", f"{ct} {mn} = ({ct})({codes[0].src});"]
            src = f"({x} < {mn} ? {mn} : ({{ {ct} {mx} = ({ct})({codes[2].src}); {x} > {mx} ? {mx} : {x}; }}))"
            clean = all(c.clean for c in codes) and all(strip_subrange(self.p.expr_types[v]) == rt for v in args)
            return CCode(self.wrap_seq(pre, src), kind_of(rt), clean, pure)
        if k == "SEL":
            ct = self.vtype(rt)
            return CCode(f"(({codes[0].src}) ? ({ct})({codes[2].src}) : ({ct})({codes[1].src}))", kind_of(rt),
                         all(c.clean for c in codes[1:]), pure)
        if k == "MUX":
            # Python: the selector, then every input (a tuple), then the pick
            ct = self.vtype(rt)
            n = len(codes) - 1
            t = self.new_tmp()
            ins = [self.new_tmp() for _ in codes[1:]]
            pre = " ".join(f"{ct} {i} = ({ct})({c.src});" for i, c in zip(ins, codes[1:]))
            arms = " ".join(f"case {i}: r = {x}; break;" for i, x in enumerate(ins))
            src = (f"({{ int64_t {t} = (int64_t)({codes[0].src}); {ct} r = 0; "
                   f"if ({t} < 0 || {t} >= {n}) gp_fault(c, GP_F_MUX, {self.g.site(e.span)}, {t}, {n}, 0.0); "
                   f"{pre} switch ({t}) {{ {arms} }} r; }})")
            return CCode(src, kind_of(rt), all(c.clean for c in codes[1:]), False)
        if k == "MOVE":
            return codes[0]
        if k == "ABS":
            if isinstance(rt, RealType):
                return CCode(f"fabs({codes[0].src})", "f", codes[0].clean, pure)
            ct = cint(rt)
            t = self.new_tmp()
            return CCode(f"({{ int64_t {t} = (int64_t)({codes[0].src}); ({ct})({t} < 0 ? 0 - (uint64_t){t} : "
                         f"(uint64_t){t}); }})", "i", True, pure)
        simple = {"SQRT": "gp_sqrt", "LN": "gp_ln", "LOG": "gp_log", "EXP": "gp_exp", "ASIN": "gp_asin",
                  "ACOS": "gp_acos", "ATAN": "gp_atan"}
        checked = {"SIN": "gp_sin", "COS": "gp_cos", "TAN": "gp_tan"}
        if k in simple or k in checked:
            x = f"(double)({codes[0].src})"
            src = f"{simple[k]}({x})" if k in simple else f"{checked[k]}(c, {x}, {self.g.site(self.span)})"
            if k in checked:
                pure = False
            if isinstance(rt, RealType) and rt.bits == 32:
                return CCode(f"GP_R32({src})", "f", True, pure)
            return CCode(src, "f", False, pure)
        if k in ("SHL", "SHR", "ROL", "ROR"):
            it = int_type(rt)
            bits = it.bits
            mask = "UINT64_MAX" if bits == 64 else f"UINT64_C({(1 << bits) - 1})"
            ct = cint(it)
            x, n = self.new_tmp(), self.new_tmp()
            xs = f"uint64_t {x} = (uint64_t)({codes[0].src}) & {mask};"
            ns = f"int64_t {n} = (int64_t)({codes[1].src});"
            if k in ("SHL", "SHR"):
                # Python reads the count first and the value only when the count is in range
                shift = f"(({x} << {n}) & {mask})" if k == "SHL" else f"({x} >> {n})"
                return CCode(f"({{ {ns} ({n} >= 0 && {n} < {bits}) ? ({{ {xs} ({ct})({shift}); }}) : ({ct})0; }})",
                             "i", True, pure)
            return CCode(f"({{ {xs} {ns} ({ct})(gp_{k.lower()}({x}, {n}, {bits})); }})", "i", True, pure)
        if k == "TRUNC":
            ct = cint(rt)
            return CCode(f"(({ct})gp_trunc(c, (double)({codes[0].src}), {self.g.site(self.span)}))", "i", True, False)
        raise NativeUnsupported(f"the function {k}", e.span)

    def conversion(self, val, src_t, dst) -> CCode:
        code = self.expr(val)
        st = strip_subrange(src_t)
        vt = strip_subrange(self.p.expr_types[val])
        if isinstance(vt, EnumType):
            st = vt.base
        if isinstance(dst, IntType):
            ct = cint(dst)
            if isinstance(st, (IntType, LiteralIntType, TimeType)):
                return CCode(f"(({ct})({code.src}))", "i", True, code.pure)
            if isinstance(st, RealType):
                return CCode(f"(({ct})gp_round(c, (double)({code.src}), {self.g.site(self.span)}))", "i", True, False)
            if isinstance(st, BoolType):
                return CCode(f"(({ct})(({code.src}) ? 1 : 0))", "i", True, code.pure)
        if isinstance(dst, RealType):
            if isinstance(st, RealType):
                if dst.bits == 64 or st.bits == 32 and code.clean:
                    return CCode(f"(double)({code.src})", "f", code.clean if dst.bits == 32 else True, code.pure)
                return CCode(f"GP_R32({code.src})", "f", True, code.pure)
            if isinstance(st, (IntType, LiteralIntType)):
                if dst.bits == 64 or int_type(st).bits <= 16:
                    return CCode(f"(double)({code.src})", "f", True, code.pure)
                return CCode(f"GP_R32((double)({code.src}))", "f", True, code.pure)
            if isinstance(st, BoolType):
                return CCode(f"(({code.src}) ? 1.0 : 0.0)", "f", True, code.pure)
        if isinstance(dst, BoolType):
            if isinstance(st, (IntType, RealType, TimeType)):
                return CCode(f"(({code.src}) != 0)", "b", True, code.pure)
            if isinstance(st, BoolType):
                return code
        if isinstance(dst, TimeType) and isinstance(st, TimeType):
            return CCode(self.time_convert(code.src, st, dst) if st != dst else code.src, "i", True, code.pure)
        if isinstance(dst, TimeType) and isinstance(st, IntType):
            return CCode(f"(int64_t)({code.src})", "i", True, code.pure)
        raise NativeUnsupported(f"the conversion {st} to {dst}", val.span)


def _pure(e) -> bool:
    from ..statements import _walk_expr
    return not any(isinstance(n, A.Call) for n in _walk_expr(e))


def generate_c(project: CheckedProject) -> CGen:
    """Raises NativeUnsupported for what the native backend does not compile."""
    g = CGen(project)
    g.source = g.emit()
    return g
