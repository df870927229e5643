"""Pass 3: type every expression, check every statement.

Fills the side tables of CheckedProject (expr_types, consts, refs, calls,
op_types, for_ranges). All errors of a file are collected; an expression that
failed gets ERROR so that one mistake is reported once.
"""
from __future__ import annotations

import math

from . import ast as A
from .diagnostics import DiagnosticSink
from .model import CallInfo, CheckedProject, PouInfo, Ref, VarInfo
from .stdlib.functions import FUNCTIONS, split_conversion
from .testing import IO_FUNCTIONS, TEST_FUNCTIONS, is_test
from .types import (BOOL, DINT, ELEMENTARY, ERROR, LINT, LREAL, LTIME, REAL, TIME, ULINT, VOID,
                    ArrayType, BoolType, DateType, EnumType, ErrorType, FBType, IntType,
                    LiteralIntType, LiteralRealType, RealType, StringType, StructType, SubrangeType,
                    TimeType, Type, common_type, is_arith_int, literal_fits,
                    strip_subrange, widens_to)
from .values import f32, idiv, imod, wrap

REAL32_MAX = 3.4028234663852886e38


class NotConst(Exception):
    pass


def _is_err(*ts) -> bool:
    return any(isinstance(t, ErrorType) for t in ts)


def _concrete_int(t: Type) -> Type:
    """The type a lone integer literal takes when nothing else decides."""
    if isinstance(t, LiteralIntType):
        v = t.value
        for c in (ELEMENTARY["INT"], DINT, LINT):
            if c.lo <= v <= c.hi:
                return c
        return ULINT
    if isinstance(t, LiteralRealType):
        return LREAL if abs(t.value) > REAL32_MAX else REAL
    return t


class Scope:
    def __init__(self, pou: PouInfo | None):
        self.pou = pou
        self.loop_depth = 0
        self.for_vars: list[str] = []


class ExprChecker:
    def __init__(self, project: CheckedProject, sink: DiagnosticSink, symbols):
        self.p = project
        self.sink = sink
        self.sym = symbols
        self._enum_index: dict[str, list[EnumType]] | None = None
        self.statement_call: A.Call | None = None     # the call a call statement stands for

    # ------------------------------------------------------------ constants
    def const_int(self, e: A.Expr, scope) -> int | None:
        t = self.expr(e, self._scope_of(scope))
        if _is_err(t):
            return None
        if e not in self.p.consts:
            self.sink.error("E0033", e.span, "this must be a constant integer expression")
            return None
        v = self.p.consts[e]
        if not isinstance(v, int) or isinstance(v, bool) or isinstance(strip_subrange(t), EnumType):
            self.sink.error("E0020", e.span, f"expected an integer constant, found {t}")
            return None
        return v

    def const_time_ns(self, e: A.Expr) -> int | None:
        t = self.expr(e, Scope(None))
        if _is_err(t):
            return None
        if e not in self.p.consts or not isinstance(t, TimeType):
            self.sink.error("E0070", e.span, "expected a constant duration such as T#100ms")
            return None
        return self.p.consts[e] * t.unit_ns

    def _scope_of(self, scope):
        if isinstance(scope, Scope):
            return scope
        if scope is None:
            return Scope(None)
        return Scope(scope.info)

    def fold_init(self, init, t: Type, scope):
        """Fold an initialiser to a value tree: scalar, list (arrays, flat),
        dict (structs, UPPER field -> value). Reports what is not constant."""
        sc = self._scope_of(scope)
        if _is_err(t):
            return None
        if isinstance(init, A.ArrayInit):
            if not isinstance(t, ArrayType):
                self.sink.error("E0020", init.span, f"an array initialiser cannot initialise {t}")
                return None
            out = []
            for count, item in init.items:
                v = self.fold_init(item, t.elem, scope) if item is not None else None
                out.extend([v] * count)
            if len(out) > t.size:
                self.sink.error("E0030", init.span, f"{len(out)} initial values for an array of {t.size} elements")
                out = out[:t.size]
            return out
        if isinstance(init, A.StructInit):
            if isinstance(t, FBType):
                fields = {v.key: v.type for v in t.pou.vars.values()}
            elif isinstance(t, StructType):
                fields = {k: f.type for k, f in t.fields.items()}
            else:
                self.sink.error("E0020", init.span, f"a structure initialiser cannot initialise {t}")
                return None
            out = {}
            for name, value, span in init.fields:
                ft = fields.get(name.upper())
                if ft is None:
                    self.sink.error("E0014", span, f"'{t}' has no member '{name}'")
                    continue
                out[name.upper()] = self.fold_init(value, ft, scope)
            return out
        if isinstance(t, ArrayType):
            # a single value fills every element (CODESYS accepts `:= [n(0)]` only; be helpful)
            self.sink.error("E0020", init.span, f"initialise an array with [..], e.g. [{t.size}(0)]")
            return None
        vt = self.expr(init, sc, expected=t)
        if _is_err(vt):
            return None
        self.check_assignable(vt, t, init)
        if init not in self.p.consts:
            self.sink.error("E0033", init.span, "an initial value must be a constant expression")
            return None
        return self.coerce_const(self.p.consts[init], vt, t)

    def coerce_const(self, v, src: Type, dst: Type):
        dst = strip_subrange(dst)
        if isinstance(dst, RealType):
            v = float(v)
            return f32(v) if dst.bits == 32 else v
        if isinstance(dst, IntType) and isinstance(v, int):
            return wrap(v, dst.bits, dst.signed)
        if isinstance(dst, TimeType) and isinstance(strip_subrange(src), TimeType):
            s = strip_subrange(src)
            return v * s.unit_ns // dst.unit_ns
        if isinstance(dst, StringType) and isinstance(v, str):
            return v[:dst.length]
        return v

    # ------------------------------------------------------------ names
    def _enums(self) -> dict[str, list[EnumType]]:
        if self._enum_index is None:
            idx: dict[str, list[EnumType]] = {}
            for t in self.p.types.values():
                if isinstance(t, EnumType):
                    for m in t.members:
                        idx.setdefault(m, []).append(t)
            self._enum_index = idx
        return self._enum_index

    def lookup_var(self, name: str, scope: Scope) -> VarInfo | None:
        k = name.upper()
        if scope.pou is not None:
            v = scope.pou.vars.get(k)
            if v is not None:
                return v
        return self.p.globals.get(k)

    # ------------------------------------------------------------ expressions
    def expr(self, e: A.Expr, scope: Scope, expected: Type | None = None) -> Type:
        t = self._expr(e, scope, expected)
        self.p.expr_types[e] = t
        return t

    def _expr(self, e, scope: Scope, expected):  # noqa: C901 - one dispatch, read top to bottom
        p = self.p
        if isinstance(e, A.IntLit):
            if e.type_name is None:
                p.consts[e] = e.value
                return LiteralIntType(e.value)
            t = ELEMENTARY.get(e.type_name)
            if isinstance(t, RealType):
                p.consts[e] = self.coerce_const(float(e.value), t, t)
                return t
            if not literal_fits(e.value, t):
                self.sink.error("E0030", e.span, f"{e.value} does not fit in {t} ({t.lo}..{t.hi})")
                return ERROR
            p.consts[e] = wrap(e.value, t.bits, t.signed)
            return t
        if isinstance(e, A.RealLit):
            if e.type_name is None:
                p.consts[e] = e.value
                return LiteralRealType(e.value)
            t = ELEMENTARY[e.type_name]
            if t.bits == 32 and math.isfinite(e.value) and abs(e.value) > REAL32_MAX:
                self.sink.error("E0030", e.span, f"{e.text} does not fit in REAL")
                return ERROR
            p.consts[e] = f32(e.value) if t.bits == 32 else e.value
            return t
        if isinstance(e, A.BoolLit):
            p.consts[e] = e.value
            return BOOL
        if isinstance(e, A.TimeLit):
            p.consts[e] = e.value
            return TIME if e.type_name == "TIME" else LTIME
        if isinstance(e, A.DateLit):
            p.consts[e] = e.value
            return ELEMENTARY[e.type_name]
        if isinstance(e, A.StringLit):
            p.consts[e] = e.value
            return StringType(e.wide, max(1, len(e.value)))
        if isinstance(e, A.EnumLit):
            t = p.types.get(e.type_name.upper())
            if not isinstance(t, EnumType):
                self.sink.error("E0011", e.span, f"'{e.type_name}' is not an enumeration type")
                return ERROR
            m = e.member.upper()
            if m not in t.members:
                self.sink.error("E0014", e.span, f"'{e.member}' is not a value of {t.name}",
                                f"values: {', '.join(t.display.values())}")
                return ERROR
            p.consts[e] = t.members[m]
            p.refs[e] = Ref("enum", enum=t, member=m)
            return t
        if isinstance(e, A.Name):
            return self._name(e, scope, expected)
        if isinstance(e, A.Member):
            return self._member(e, scope)
        if isinstance(e, A.Index):
            return self._index(e, scope)
        if isinstance(e, A.BitAccess):
            bt = strip_subrange(self.expr(e.base, scope))
            if _is_err(bt):
                return ERROR
            if not isinstance(bt, IntType):
                self.sink.error("E0022", e.span, f"bit access .{e.bit} needs an integer or bit string, not {bt}")
                return ERROR
            if e.bit >= bt.bits:
                self.sink.error("E0031", e.span, f"bit {e.bit} is outside {bt} (bits 0..{bt.bits - 1})")
                return ERROR
            if e.base in p.consts:
                p.consts[e] = bool((p.consts[e.base] >> e.bit) & 1)
            return BOOL
        if isinstance(e, A.Call):
            return self._call_expr(e, scope, expected)
        if isinstance(e, A.UnOp):
            return self._unop(e, scope, expected)
        if isinstance(e, A.BinOp):
            return self._binop(e, scope, expected)
        raise AssertionError(f"unknown expression {e!r}")

    def _name(self, e: A.Name, scope: Scope, expected):
        p = self.p
        k = e.name.upper()
        exp = strip_subrange(expected) if expected is not None else None
        if isinstance(exp, EnumType) and k in exp.members:
            # where an enumeration is expected its values win over variables of
            # the same name (`state := PRECHARGE` beside a `precharge : TON`)
            p.refs[e] = Ref("enum", enum=exp, member=k)
            p.consts[e] = exp.members[k]
            return exp
        v = self.lookup_var(e.name, scope)
        if v is not None:
            kind = "global" if v.section in ("VAR_GLOBAL",) else "var"
            p.refs[e] = Ref(kind, var=v)
            if v.constant and v.init is not None and not isinstance(v.init, (list, dict)):
                p.consts[e] = v.init
            return v.type
        enums = self._enums().get(k)
        if enums:
            et = None
            if len(enums) == 1:
                et = enums[0]
            else:
                self.sink.error("E0011", e.span, f"'{e.name}' is a value of several enumerations",
                                "qualify it: " + " or ".join(f"{t.name}#{e.name}" for t in enums))
                return ERROR
            p.refs[e] = Ref("enum", enum=et, member=k)
            p.consts[e] = et.members[k]
            return et
        if k in p.pous or k in p.std_fbs:
            what = p.fb_or_pou(k).kind.lower().replace("_", " ")
            self.sink.error("E0013", e.span, f"'{e.name}' is a {what}, not a variable")
            return ERROR
        self.sink.error("E0011", e.span, f"'{e.name}' is not declared")
        return ERROR

    def _member(self, e: A.Member, scope: Scope):
        p = self.p
        # `Mode.IDLE`: CODESYS spells qualified enum values with a dot
        if isinstance(e.base, A.Name) and self.lookup_var(e.base.name, scope) is None:
            t = p.types.get(e.base.name.upper())
            if isinstance(t, EnumType):
                m = e.name.upper()
                if m not in t.members:
                    self.sink.error("E0014", e.span, f"'{e.name}' is not a value of {t.name}")
                    return ERROR
                p.refs[e] = Ref("enum", enum=t, member=m)
                p.consts[e] = t.members[m]
                return t
        bt = self.expr(e.base, scope)
        if _is_err(bt):
            return ERROR
        k = e.name.upper()
        if isinstance(bt, StructType):
            f = bt.fields.get(k)
            if f is None:
                self.sink.error("E0014", e.span, f"struct {bt.name} has no field '{e.name}'",
                                f"fields: {', '.join(x.name for x in bt.fields.values())}")
                return ERROR
            return f.type
        if isinstance(bt, FBType):
            v = bt.pou.lookup_param(e.name)
            if v is None or v.section not in ("VAR_INPUT", "VAR_OUTPUT", "VAR_IN_OUT"):
                what = "has no input or output" if v is None else "does not expose"
                self.sink.error("E0014", e.span, f"{bt.name} {what} '{e.name}'",
                                "inputs and outputs: " + ", ".join(
                                    x.name for x in bt.pou.vars.values() if x.is_interface))
                return ERROR
            return v.type
        self.sink.error("E0014", e.span, f"{bt} has no members ('.{e.name}')")
        return ERROR

    def _index(self, e: A.Index, scope: Scope):
        bt = self.expr(e.base, scope)
        its = [self.expr(i, scope) for i in e.indices]
        if _is_err(bt, *its):
            return ERROR
        if not isinstance(bt, ArrayType):
            self.sink.error("E0022", e.span, f"{bt} is not an array and cannot be indexed")
            return ERROR
        if len(e.indices) != len(bt.dims):
            self.sink.error("E0031", e.span, f"{bt} takes {len(bt.dims)} index(es), not {len(e.indices)}")
            return ERROR
        for ix, it, (lo, hi) in zip(e.indices, its, bt.dims):
            if not is_arith_int(it) and not isinstance(strip_subrange(it), IntType):
                self.sink.error("E0020", ix.span, f"an array index must be an integer, not {it}")
                continue
            if ix in self.p.consts:
                v = self.p.consts[ix]
                if not lo <= v <= hi:
                    self.sink.error("E0031", ix.span, f"index {v} is outside the array bounds {lo}..{hi}")
        return bt.elem

    # ------------------------------------------------------------ operators
    def _unop(self, e: A.UnOp, scope, expected):
        t = self.expr(e.operand, scope, expected)
        if _is_err(t):
            return ERROR
        c = self.p.consts.get(e.operand, _MISSING)
        st = strip_subrange(t)
        if e.op == "NOT":
            if isinstance(st, BoolType):
                if c is not _MISSING:
                    self.p.consts[e] = not c
                return BOOL
            if isinstance(st, (IntType, LiteralIntType)):
                rt = _concrete_int(st) if isinstance(st, LiteralIntType) else st
                if c is not _MISSING:
                    self.p.consts[e] = wrap(~c, rt.bits, rt.signed)
                return rt
            self.sink.error("E0022", e.span, f"NOT needs BOOL or a bit string, not {t}")
            return ERROR
        if isinstance(st, (IntType, LiteralIntType, RealType, LiteralRealType, TimeType)) and not (
                isinstance(st, IntType) and st.bitstring):
            if e.op == "+":
                if c is not _MISSING:
                    self.p.consts[e] = c
                return st
            if isinstance(st, IntType) and not st.signed:
                self.sink.error("E0022", e.span, f"unary minus on unsigned {st}; convert to a signed type first")
                return ERROR
            if c is not _MISSING:
                if isinstance(st, LiteralIntType):
                    self.p.consts[e] = -c
                    return LiteralIntType(-c)
                if isinstance(st, LiteralRealType):
                    self.p.consts[e] = -c
                    return LiteralRealType(-c)
                self.p.consts[e] = self._wrap_to(st, -c)
            return st
        self.sink.error("E0022", e.span, f"unary '{e.op}' is not defined for {t}")
        return ERROR

    def _wrap_to(self, t: Type, v):
        t = strip_subrange(t)
        if isinstance(t, IntType):
            return wrap(v, t.bits, t.signed)
        if isinstance(t, RealType) and t.bits == 32:
            return f32(v)
        return v

    def _binop(self, e: A.BinOp, scope, expected):  # noqa: C901
        op = e.op
        lt = self.expr(e.left, scope, expected if op not in _CMP else None)
        rt = self.expr(e.right, scope, lt if not _is_err(lt) else expected)
        if isinstance(strip_subrange(rt), EnumType) and not isinstance(strip_subrange(lt), EnumType) \
                and isinstance(e.left, A.Name) and _is_err(lt):
            pass
        if _is_err(lt, rt):
            return ERROR
        lc = self.p.consts.get(e.left, _MISSING)
        rc = self.p.consts.get(e.right, _MISSING)
        both = lc is not _MISSING and rc is not _MISSING
        ls, rs = strip_subrange(lt), strip_subrange(rt)

        if op in ("AND", "OR", "XOR"):
            if isinstance(ls, BoolType) and isinstance(rs, BoolType):
                if both:
                    self.p.consts[e] = {"AND": lc and rc, "OR": lc or rc, "XOR": lc != rc}[op]
                self.p.op_types[e] = BOOL
                return BOOL
            ot = self._int_common(ls, rs, e, bitwise=True)
            if ot is None:
                return ERROR
            if both:
                v = {"AND": lc & rc, "OR": lc | rc, "XOR": lc ^ rc}[op]
                self.p.consts[e] = self._wrap_to(ot, v) if not isinstance(ot, LiteralIntType) else v
                if isinstance(ot, LiteralIntType):
                    ot = LiteralIntType(v)
            self.p.op_types[e] = ot
            return ot

        if op in _CMP:
            ot = self._comparable(ls, rs, e)
            if ot is None:
                return ERROR
            self.p.op_types[e] = ot
            if both:
                self.p.consts[e] = _compare(op, lc, rc)
            return BOOL

        # arithmetic
        if isinstance(ls, TimeType) or isinstance(rs, TimeType) or isinstance(ls, DateType) or isinstance(rs, DateType):
            return self._time_arith(e, ls, rs, lc, rc, both)
        if op == "**":
            if not (_numeric(ls) and _numeric(rs)):
                self.sink.error("E0022", e.span, f"'**' needs numbers, not {lt} and {rt}")
                return ERROR
            base = ls
            if isinstance(base, (IntType, LiteralIntType)):
                base = REAL if isinstance(base, LiteralIntType) or widens_to(base, REAL) else LREAL
            elif isinstance(base, LiteralRealType):
                base = REAL
            self.p.op_types[e] = base
            if both:
                try:
                    self.p.consts[e] = self._wrap_to(base, float(lc) ** float(rc))
                except (OverflowError, ZeroDivisionError, ValueError):
                    self.sink.error("E0022", e.span, "this constant power is not a finite number")
                    return ERROR
            return base
        if op == "MOD":
            ot = self._int_common(ls, rs, e, bitwise=False)
            if ot is None:
                return ERROR
            self.p.op_types[e] = ot
            if both:
                if rc == 0:
                    self.sink.error("E0022", e.right.span, "MOD by a constant zero")
                    return ERROR
                v = imod(lc, rc)
                if isinstance(ot, LiteralIntType):
                    self.p.consts[e] = v
                    return LiteralIntType(v)
                self.p.consts[e] = self._wrap_to(ot, v)
            return ot
        if isinstance(ls, BoolType) or isinstance(rs, BoolType) or isinstance(ls, StringType) \
                or isinstance(rs, StringType) or not (_numeric(ls) and _numeric(rs)):
            hint = " (use CONCAT for strings)" if isinstance(ls, StringType) and op == "+" else ""
            self.sink.error("E0022", e.span, f"'{op}' is not defined for {lt} and {rt}{hint}")
            return ERROR
        ot = self._num_common(ls, rs, e)
        if ot is None:
            return ERROR
        self.p.op_types[e] = ot
        if both:
            if op == "/" and rc == 0:
                self.sink.error("E0022", e.right.span, "division by a constant zero")
                return ERROR
            if isinstance(ot, (LiteralIntType, IntType)):
                v = {"+": lc + rc, "-": lc - rc, "*": lc * rc, "/": idiv(lc, rc) if op == "/" else 0}[op]
            else:
                a, b = float(lc), float(rc)
                v = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if op == "/" else 0.0}[op]
            if isinstance(ot, LiteralIntType):
                self.p.consts[e] = v
                return LiteralIntType(v)
            if isinstance(ot, LiteralRealType):
                self.p.consts[e] = v
                return LiteralRealType(v)
            self.p.consts[e] = self._wrap_to(ot, v)
        return ot

    def _time_arith(self, e, ls, rs, lc, rc, both):
        op = e.op
        res = None
        if isinstance(ls, TimeType) and isinstance(rs, TimeType) and op in ("+", "-"):
            res = ls if ls == rs else LTIME
        elif isinstance(ls, TimeType) and _numeric(rs) and op in ("*", "/"):
            res = ls
        elif isinstance(rs, TimeType) and _numeric(ls) and op == "*":
            res = rs
        elif isinstance(ls, DateType) and isinstance(rs, TimeType) and op in ("+", "-") and ls.name != "DATE":
            res = ls
        elif isinstance(ls, DateType) and isinstance(rs, DateType) and op == "-" and ls == rs:
            res = TIME
        if res is None:
            self.sink.error("E0022", e.span, f"'{op}' is not defined for {ls} and {rs}")
            return ERROR
        if ls != rs and isinstance(ls, TimeType) and isinstance(rs, TimeType):
            self.sink.error("E0021", e.span, f"mixing {ls} and {rs}: convert with TIME_TO_LTIME first")
            return ERROR
        self.p.op_types[e] = ls if isinstance(ls, (TimeType, DateType)) else rs
        if both and isinstance(ls, TimeType) or both and isinstance(rs, TimeType) and not isinstance(ls, DateType):
            try:
                if op == "+":
                    v = lc + rc
                elif op == "-":
                    v = lc - rc
                elif op == "*":
                    v = lc * rc
                else:
                    v = idiv(lc, rc) if isinstance(rc, int) else int(lc / rc)
                self.p.consts[e] = int(v) if not isinstance(v, float) else round(v)
            except ZeroDivisionError:
                self.sink.error("E0022", e.right.span, "division by a constant zero")
                return ERROR
        return res

    def _int_common(self, ls, rs, e, bitwise: bool):
        ok = (lambda t: isinstance(t, (IntType, LiteralIntType))) if bitwise else is_arith_int
        if not (ok(ls) and ok(rs)):
            what = "bit strings or integers" if bitwise else "integers"
            self.sink.error("E0022", e.span, f"'{e.op}' needs {what}, not {ls} and {rs}")
            return None
        return self._num_common(ls, rs, e)

    def _num_common(self, ls, rs, e):
        if isinstance(ls, LiteralIntType) and isinstance(rs, LiteralIntType):
            return ls
        if isinstance(ls, (LiteralIntType, LiteralRealType)) and isinstance(rs, (LiteralIntType, LiteralRealType)):
            return LiteralRealType(0.0)
        if isinstance(ls, (LiteralIntType, LiteralRealType)):
            return self._adopt(ls, rs, e.left)
        if isinstance(rs, (LiteralIntType, LiteralRealType)):
            return self._adopt(rs, ls, e.right)
        ct = common_type(ls, rs)
        if ct is None:
            self.sink.error("E0021", e.span, f"'{e.op}' on {ls} and {rs} needs an explicit conversion",
                            f"for example {ls.name}_TO_{rs.name}(...) or {rs.name}_TO_{ls.name}(...)")
            return None
        return ct

    def _adopt(self, lit, t, node):
        """A literal operand takes the other operand's type if it fits. A real
        literal next to a REAL is a REAL: `v > 3.65` compares in binary32."""
        if isinstance(t, RealType) and t.bits == 32 and node in self.p.consts:
            self.p.consts[node] = f32(float(self.p.consts[node]))
        if isinstance(lit, LiteralIntType):
            if isinstance(t, IntType) and not literal_fits(lit.value, t):
                self.sink.error("E0030", node.span, f"{lit.value} does not fit in {t} ({t.lo}..{t.hi})")
                return None
            return t
        if isinstance(t, RealType):
            return t
        if isinstance(t, IntType):
            return REAL if widens_to(t, REAL) else LREAL
        return t

    def _comparable(self, ls, rs, e):
        if isinstance(ls, EnumType) or isinstance(rs, EnumType):
            if ls == rs:
                return ls
            self.sink.error("E0022", e.span, f"cannot compare {ls} with {rs}")
            return None
        if isinstance(ls, BoolType) and isinstance(rs, BoolType):
            return BOOL
        if isinstance(ls, StringType) and isinstance(rs, StringType):
            return ls
        if isinstance(ls, (TimeType, DateType)) or isinstance(rs, (TimeType, DateType)):
            if ls == rs:
                return ls
            self.sink.error("E0022", e.span, f"cannot compare {ls} with {rs}")
            return None
        if (isinstance(ls, (IntType, LiteralIntType, RealType, LiteralRealType)) and
                isinstance(rs, (IntType, LiteralIntType, RealType, LiteralRealType))):
            if isinstance(ls, (LiteralIntType, LiteralRealType)) and isinstance(rs, (LiteralIntType, LiteralRealType)):
                return LREAL if isinstance(ls, LiteralRealType) or isinstance(rs, LiteralRealType) else LINT
            if isinstance(ls, (LiteralIntType, LiteralRealType)):
                return self._adopt(ls, rs, e.left)
            if isinstance(rs, (LiteralIntType, LiteralRealType)):
                return self._adopt(rs, ls, e.right)
            ct = common_type(ls, rs)
            if ct is None:
                self.sink.error("E0021", e.span, f"comparing {ls} with {rs} needs an explicit conversion")
            return ct
        self.sink.error("E0022", e.span, f"cannot compare {ls} with {rs}")
        return None

    # ------------------------------------------------------------ assignability
    def check_assignable(self, vt: Type, tt: Type, node) -> bool:
        if _is_err(vt, tt):
            return True
        ts = strip_subrange(tt)
        if isinstance(vt, LiteralIntType):
            if isinstance(tt, SubrangeType):
                if not tt.lo <= vt.value <= tt.hi:
                    self.sink.error("E0030", node.span, f"{vt.value} is outside {tt}")
                    return False
                return True
            if isinstance(ts, IntType):
                if not literal_fits(vt.value, ts):
                    self.sink.error("E0030", node.span, f"{vt.value} does not fit in {ts} ({ts.lo}..{ts.hi})")
                    return False
                return True
            if isinstance(ts, RealType):
                return True
            self.sink.error("E0020", node.span, f"cannot assign an integer to {tt}" + _hint(ts))
            return False
        if isinstance(vt, LiteralRealType):
            if isinstance(ts, RealType):
                if ts.bits == 32 and math.isfinite(vt.value) and abs(vt.value) > REAL32_MAX:
                    self.sink.error("E0030", node.span, f"{vt.value} does not fit in REAL")
                    return False
                return True
            if isinstance(ts, IntType):
                self.sink.error("E0021", node.span, f"a real number cannot be stored in {tt} without a conversion",
                                f"use REAL_TO_{ts.name}(...) (rounds) or TRUNC(...)")
                return False
            self.sink.error("E0020", node.span, f"cannot assign a real number to {tt}")
            return False
        vs = strip_subrange(vt)
        if widens_to(vs, ts):
            return True
        if isinstance(ts, StringType) and isinstance(vs, StringType):
            self.sink.error("E0020", node.span, f"cannot assign {vt} to {tt}: convert with {'WSTRING_TO_STRING' if vs.wide else 'STRING_TO_WSTRING'}")
            return False
        if isinstance(vs, FBType) or isinstance(ts, FBType):
            self.sink.error("E0020", node.span, "function block instances cannot be assigned")
            return False
        if _numeric(vs) and _numeric(ts) or isinstance(vs, IntType) and isinstance(ts, IntType) \
                or isinstance(vs, TimeType) and isinstance(ts, TimeType):
            self.sink.error("E0021", node.span, f"assigning {vt} to {tt} can lose range or precision",
                            f"convert explicitly: {vs.name}_TO_{ts.name}(...)")
            return False
        self.sink.error("E0020", node.span, f"cannot assign {vt} to {tt}" + _hint(ts))
        return False

    # ------------------------------------------------------------ calls
    def _call_expr(self, e: A.Call, scope, expected):
        k = e.name.upper()
        p = self.p
        pou = p.pous.get(k)
        if pou is not None:
            if pou.kind != "FUNCTION":
                self.sink.error("E0013", e.span, f"'{e.name}' is a {pou.kind.lower().replace('_', ' ')}; "
                                "call a function block instance as a statement")
                return ERROR
            return self._user_call(e, e.args, pou, scope, "function")
        if k in IO_FUNCTIONS:
            return self._io_call(e, k, scope)
        if k in TEST_FUNCTIONS:
            return self._test_call(e, k, scope)
        if k in FUNCTIONS or split_conversion(k) is not None:
            return self._std_call(e, k, scope, expected)
        v = self.lookup_var(e.name, scope)
        if v is not None and isinstance(v.type, FBType):
            self.sink.error("E0013", e.span, f"'{e.name}' is a function block instance: call it as a statement, "
                            f"then read its outputs ({e.name}.Q)")
            return ERROR
        if k in p.std_fbs:
            self.sink.error("E0013", e.span, f"'{e.name}' is a function block type: declare an instance and call that")
            return ERROR
        self.sink.error("E0011", e.span, f"unknown function '{e.name}'")
        return ERROR

    # ------------------------------------------------------------ I/O quality
    def _io_call(self, e: A.Call, k: str, scope):
        args = e.args
        if len(args) != 1 or args[0].kind != "in" or (args[0].name is not None and args[0].name.upper() != "IN"):
            self.sink.error("E0050", e.span, f"{k} takes one variable, e.g. {k}(tBat)")
            for a in args:
                self.expr(a.value, scope)
            return ERROR
        x = args[0].value
        t = self.expr(x, scope)
        if _is_err(t):
            return ERROR
        problem = self._io_target_problem(x, t)
        if problem is not None:
            self.sink.error("E0053", x.span, f"{k} needs a variable: {problem}",
                            "quality belongs to a variable the I/O map binds (a variable, struct member, "
                            "array element or global)")
            return ERROR
        rt = {"IO_OK": BOOL, "IO_QUALITY": ELEMENTARY["INT"], "IO_AGE": TIME}[k]
        self.p.calls[e] = CallInfo("io", k, None, [(None, x)], [], rt, [t])
        return rt

    def _io_target_problem(self, x, t) -> str | None:
        if isinstance(x, A.BitAccess):
            return "a single bit has no quality of its own; ask about the whole word"
        if not isinstance(x, (A.Name, A.Member, A.Index)):
            what = "a constant" if x in self.p.consts else "an expression"
            return f"{what} has no quality; pass the variable itself"
        root = x
        while isinstance(root, (A.Member, A.Index)):
            if self.p.refs.get(root) is not None:          # `Mode.IDLE`
                break
            root = root.base
        ref = self.p.refs.get(root)
        if ref is None or ref.var is None:
            return "an enumeration value has no quality"
        ts = strip_subrange(t)
        if isinstance(ts, FBType):
            return "a function block instance has no quality; name one of its outputs"
        if isinstance(ts, (ArrayType, StructType)):
            return f"this is a whole {ts}; name one element or member"
        return None

    # ------------------------------------------------------------ test functions
    def _test_call(self, e: A.Call, k: str, scope):
        pnames, required = TEST_FUNCTIONS[k]
        values = self._bind_test_args(e, k, pnames, required)
        if values is None:
            for a in e.args:
                self.expr(a.value, scope)
            return ERROR
        misuse = None
        if scope.pou is None or not is_test(scope.pou.decl):
            misuse = (f"{k} is allowed only in a test",
                      "a test is a PROGRAM or FUNCTION_BLOCK named TEST_... or marked {attribute 'test'}")
        elif e is not self.statement_call:
            misuse = (f"{k} is a statement of its own, not a value",)
        if misuse is not None:
            self.sink.error("E0093", e.span, *misuse)
            for v in values:
                if v is not None:
                    self.expr(v, scope)        # typed, so its variables count as used
            return ERROR
        ok = True
        for name, v in zip(pnames, values):
            if v is None:
                continue
            if name == "MSG":
                t = self.expr(v, scope)
                if not _is_err(t) and not isinstance(strip_subrange(t), StringType):
                    self.sink.error("E0020", v.span, f"{k}: the message is a STRING, not {t}")
                    ok = False
            elif name == "COND":
                t = self.expr(v, scope, BOOL)
                if not _is_err(t) and not isinstance(strip_subrange(t), BoolType):
                    self.sink.error("E0020", v.span, f"{k} needs a BOOL condition, not {t}")
                    ok = False
            elif name in ("EXPECTED", "ACTUAL", "TOLERANCE") and k == "ASSERT_NEAR":
                t = self.expr(v, scope)
                if not _is_err(t) and not _numeric(strip_subrange(t)):
                    self.sink.error("E0020", v.span, f"ASSERT_NEAR compares numbers, not {t}")
                    ok = False
            elif name == "T":
                t = self.expr(v, scope)
                if not _is_err(t) and not isinstance(strip_subrange(t), TimeType):
                    self.sink.error("E0020", v.span, f"ADVANCE takes a duration such as T#500ms, not {t}")
                    ok = False
                elif self.p.consts.get(v, 0) < 0:
                    self.sink.error("E0030", v.span, "ADVANCE cannot move time backwards")
                    ok = False
            elif name == "N":
                t = self.expr(v, scope)
                if not _is_err(t) and not is_arith_int(strip_subrange(t)):
                    self.sink.error("E0020", v.span, f"ADVANCE_SCANS takes a number of scans, not {t}")
                    ok = False
                elif self.p.consts.get(v, 0) < 0:
                    self.sink.error("E0030", v.span, "ADVANCE_SCANS cannot move time backwards")
                    ok = False
            else:
                t = None                  # ASSERT_EQ operands: typed as one comparison below
            ok = ok and not _is_err(t)
        node = None
        if k == "ASSERT_EQ":
            # typed as `expected = actual`: the same literal and binary32 rules, and
            # arrays, structs and instances cannot be compared
            node = A.BinOp("=", values[0], values[1], e.span)
            ok = not _is_err(self.expr(node, scope)) and ok
        if not ok:
            return ERROR
        self.p.calls[e] = CallInfo("test", k, None, [(None, v) for v in values], [], VOID, node=node)
        return VOID

    def _bind_test_args(self, e, k, pnames, required):
        """Positional or formal (name :=) arguments -> a value per parameter (None if left out)."""
        args = e.args
        if any(a.kind != "in" for a in args):
            self.sink.error("E0051", e.span, f"{k} has no outputs")
            return None
        if all(a.name is None for a in args):
            if not required <= len(args) <= len(pnames):
                n = f"{required}" if required == len(pnames) else f"{required} or {len(pnames)}"
                self.sink.error("E0050", e.span, f"{k} takes {n} argument(s) ({', '.join(pnames)}), {len(args)} given")
                return None
            return [a.value for a in args] + [None] * (len(pnames) - len(args))
        if any(a.name is None for a in args):
            self.sink.error("E0050", e.span, f"{k}: use either all positional or all formal (name :=) arguments")
            return None
        by_name = {}
        for a in args:
            n = a.name.upper()
            if n not in pnames:
                self.sink.error("E0051", a.span, f"{k} has no input '{a.name}' (inputs: {', '.join(pnames)})")
                return None
            by_name[n] = a.value
        missing = [n for n in pnames[:required] if n not in by_name]
        if missing:
            self.sink.error("E0050", e.span, f"{k} needs its input {missing[0]}")
            return None
        return [by_name.get(n) for n in pnames]

    def bind_args(self, node, args, pou: PouInfo, scope, kind: str) -> CallInfo | None:
        info = CallInfo(kind, pou.name, pou, [], [])
        params = pou.params()
        positional = 0
        seen_formal = False
        bound: dict[str, tuple] = {}
        ok = True
        for a in args:
            if a.name is None:
                if seen_formal:
                    self.sink.error("E0050", a.span, "a positional argument cannot follow formal (name :=) arguments")
                    ok = False
                    continue
                if positional >= len(params):
                    self.sink.error("E0050", a.span, f"{pou.name} takes {len(params)} argument(s)")
                    ok = False
                    positional += 1
                    continue
                par = params[positional]
                positional += 1
                bound[par.key] = (par, a.value)
                continue
            seen_formal = True
            par = pou.lookup_param(a.name)
            if a.kind == "in":
                if par is None or par.section not in ("VAR_INPUT", "VAR_IN_OUT"):
                    what = "is an output: use =>" if par is not None and par.section == "VAR_OUTPUT" else "is not an input of"
                    self.sink.error("E0051", a.span, f"'{a.name}' {what} {pou.name}" if par is None or par.section != "VAR_OUTPUT"
                                    else f"'{a.name}' {what}",
                                    "inputs: " + ", ".join(v.name for v in pou.params()) if par is None else "")
                    ok = False
                    self.expr(a.value, scope)
                    continue
                if par.key in bound:
                    self.sink.error("E0050", a.span, f"'{a.name}' is given twice")
                    ok = False
                    continue
                bound[par.key] = (par, a.value)
            else:
                if par is None or par.section != "VAR_OUTPUT":
                    self.sink.error("E0051", a.span, f"'{a.name}' is not an output of {pou.name}")
                    ok = False
                    continue
                tt = self.expr(a.value, scope)
                self.check_lvalue(a.value, scope)
                if a.kind == "out_not" and not isinstance(strip_subrange(par.type), BoolType):
                    self.sink.error("E0022", a.span, "NOT => needs a BOOL output")
                    ok = False
                elif not self.check_assignable(par.type, tt, a.value):
                    ok = False
                info.outputs.append((par, a.value, a.kind == "out_not"))
        for par in params:
            b = bound.get(par.key)
            if b is None:
                if par.section == "VAR_IN_OUT":
                    self.sink.error("E0050", node.span, f"VAR_IN_OUT '{par.name}' of {pou.name} must be given")
                    ok = False
                elif kind == "function" and positional and positional < len(params):
                    self.sink.error("E0050", node.span, f"{pou.name} takes {len(params)} argument(s), {positional} given")
                    ok = False
                    break
                continue
            _, value = b
            vt = self.expr(value, scope, expected=par.type)
            if par.section == "VAR_IN_OUT":
                if not self._is_lvalue(value):
                    self.sink.error("E0052", value.span, f"VAR_IN_OUT '{par.name}' needs a variable, not an expression")
                    ok = False
                    continue
                self.check_lvalue(value, scope)
                if not _is_err(vt) and vt != par.type and not (
                        isinstance(vt, ArrayType) and widens_to(vt, par.type)):
                    self.sink.error("E0020", value.span, f"VAR_IN_OUT '{par.name}' is {par.type}; the variable is {vt}")
                    ok = False
            elif not self.check_assignable(vt, par.type, value):
                ok = False
            info.inputs.append((par, value))
        return info if ok else None

    def _user_call(self, node, args, pou: PouInfo, scope, kind):
        info = self.bind_args(node, args, pou, scope, kind)
        if info is None:
            return ERROR
        info.result_type = pou.return_type or VOID
        self.p.calls[node] = info
        return pou.return_type or VOID

    def _std_call(self, e: A.Call, k: str, scope, expected):  # noqa: C901
        conv = split_conversion(k)
        if conv is not None:
            src_name, dst_name = conv
            if len(e.args) != 1 or e.args[0].kind != "in":
                self.sink.error("E0050", e.span, f"{e.name} takes one argument")
                return ERROR
            a = e.args[0]
            if a.name is not None and a.name.upper() != "IN":
                self.sink.error("E0051", a.span, f"{e.name} has one input, IN")
                return ERROR
            vt = self.expr(a.value, scope)
            if _is_err(vt):
                return ERROR
            dst = ELEMENTARY[dst_name]
            if src_name is not None:
                src = ELEMENTARY[src_name]
                if not self._arg_ok(vt, src):
                    self.sink.error("E0020", a.value.span, f"{e.name} expects {src}, not {vt}")
                    return ERROR
                op_t = src
            else:
                op_t = _concrete_int(vt)
            if isinstance(strip_subrange(op_t), (StructType, ArrayType, FBType)):
                self.sink.error("E0020", a.value.span, f"cannot convert {vt}")
                return ERROR
            self.p.calls[e] = CallInfo("conv", k, None, [(None, a.value)], [], dst, [op_t])
            c = self.p.consts.get(a.value, _MISSING)
            if c is not _MISSING:
                from .values import convert, PlcFault
                try:
                    self.p.consts[e] = convert(self.coerce_const(c, vt, op_t), strip_subrange(op_t), dst)
                except PlcFault as f:
                    self.sink.error("E0030", a.value.span, str(f))
            return dst
        pnames, family = FUNCTIONS[k]
        args = e.args
        if any(a.kind != "in" for a in args):
            self.sink.error("E0051", e.span, f"{k} has no outputs")
            return ERROR
        values = self._std_bind(e, k, pnames, args)
        if values is None:
            for a in args:
                self.expr(a.value, scope)
            return ERROR
        ts = [self.expr(v, scope, expected) for v in values]
        if _is_err(*ts):
            return ERROR
        ss = [strip_subrange(t) for t in ts]
        consts = [self.p.consts.get(v, _MISSING) for v in values]
        rt: Type | None = None
        arg_types = list(ss)
        if family == "num_same":
            if not _numeric(ss[0]) and not isinstance(ss[0], TimeType):
                return self._bad_arg(e, values[0], k, "a number", ts[0])
            rt = _concrete_int(ss[0])
        elif family == "real_same":
            s = ss[0]
            if isinstance(s, (LiteralIntType, LiteralRealType)):
                rt = REAL if isinstance(s, LiteralIntType) or abs(s.value) <= REAL32_MAX else LREAL
            elif isinstance(s, RealType):
                rt = s
            elif isinstance(s, IntType) and not s.bitstring:
                rt = REAL if widens_to(s, REAL) else LREAL
            else:
                return self._bad_arg(e, values[0], k, "a real number", ts[0])
            arg_types = [rt]
        elif family == "expt":
            if not (_numeric(ss[0]) and _numeric(ss[1])):
                return self._bad_arg(e, values[0], k, "numbers", ts[0])
            b = ss[0]
            rt = b if isinstance(b, RealType) else (REAL if isinstance(b, (LiteralIntType, LiteralRealType)) or widens_to(b, REAL) else LREAL)
        elif family in ("common", "sel", "mux", "same"):
            data = {"common": ss, "sel": ss[1:], "mux": ss[1:], "same": ss}[family]
            if family == "sel" and not isinstance(ss[0], BoolType):
                return self._bad_arg(e, values[0], k, "BOOL for G", ts[0])
            if family == "mux" and not is_arith_int(ss[0]):
                return self._bad_arg(e, values[0], k, "an integer for K", ts[0])
            rt = data[0]
            for t, v in zip(data[1:], values[len(ss) - len(data) + 1:]):
                nt = self._merge(rt, t)
                if nt is None:
                    self.sink.error("E0020", v.span, f"{k}: {t} does not go with {rt}")
                    return ERROR
                rt = nt
            if isinstance(rt, (LiteralIntType, LiteralRealType)) and expected is not None and _numeric(strip_subrange(expected)):
                rt = _concrete_int(rt)
            rt = _concrete_int(rt)
            if family in ("common",) and isinstance(rt, (StructType, ArrayType, FBType, StringType)) and k != "MOVE":
                return self._bad_arg(e, values[0], k, "elementary values", ts[0])
            arg_types = [BOOL if family == "sel" else DINT] * (len(ss) - len(data)) + [rt] * len(data)
        elif family == "shift":
            if not isinstance(ss[0], (IntType, LiteralIntType)):
                return self._bad_arg(e, values[0], k, "a bit string or integer", ts[0])
            if not is_arith_int(ss[1]):
                return self._bad_arg(e, values[1], k, "an integer shift count", ts[1])
            rt = _concrete_int(ss[0]) if isinstance(ss[0], LiteralIntType) else ss[0]
            if isinstance(ss[0], LiteralIntType):
                rt = ELEMENTARY["DWORD"] if 0 <= ss[0].value <= 0xFFFFFFFF else ELEMENTARY["LWORD"]
            arg_types = [rt, DINT]
        elif family == "trunc":
            if not _numeric(ss[0]):
                return self._bad_arg(e, values[0], k, "a real number", ts[0])
            rt = DINT
        elif family in ("len", "str_int", "mid", "concat", "insert", "delete", "replace", "find"):
            str_pos = {"len": [0], "str_int": [0], "mid": [0], "concat": list(range(len(ss))),
                       "insert": [0, 1], "delete": [0], "replace": [0, 1], "find": [0, 1]}[family]
            wide = None
            for i, (t, v) in enumerate(zip(ss, values)):
                if i in str_pos:
                    if not isinstance(t, StringType):
                        return self._bad_arg(e, v, k, "a string", ts[i])
                    if wide is None:
                        wide = t.wide
                    elif wide != t.wide:
                        return self._bad_arg(e, v, k, "strings of one kind", ts[i])
                elif not is_arith_int(t):
                    return self._bad_arg(e, v, k, "an integer", ts[i])
            if family in ("len", "find"):
                rt = ELEMENTARY["INT"]
            else:
                rt = StringType(bool(wide), 255 if not family == "concat" else 255)
            arg_types = [ss[i] if i in str_pos else DINT for i in range(len(ss))]
        else:  # pragma: no cover - table and code out of step
            raise AssertionError(family)
        for v, at in zip(values, arg_types):
            if isinstance(at, RealType) and at.bits == 32 and v in self.p.consts and \
                    isinstance(self.p.expr_types.get(v), (LiteralIntType, LiteralRealType)):
                self.p.consts[v] = f32(float(self.p.consts[v]))
        info = CallInfo("std", k, None, [(None, v) for v in values], [], rt, arg_types)
        self.p.calls[e] = info
        if all(c is not _MISSING for c in consts):
            v = _fold_std(k, family, consts, rt, arg_types)
            if v is not _MISSING:
                self.p.consts[e] = v
        return rt

    def _std_bind(self, e, k, pnames, args):
        extensible = pnames[-1].endswith("*") or pnames[-1].endswith("*0")
        fixed = [n for n in pnames if "*" not in n]
        if all(a.name is None for a in args):
            if extensible:
                need = len(fixed) + (2 if k not in ("MUX", "CONCAT") else 1)
                if k == "MUX":
                    need = 2
                if len(args) < need:
                    self.sink.error("E0050", e.span, f"{k} takes at least {need} arguments, {len(args)} given")
                    return None
            elif len(args) != len(pnames):
                self.sink.error("E0050", e.span, f"{k} takes {len(pnames)} argument(s) ({', '.join(pnames)}), "
                                f"{len(args)} given")
                return None
            return [a.value for a in args]
        if any(a.name is None for a in args):
            self.sink.error("E0050", e.span, f"{k}: use either all positional or all formal (name :=) arguments")
            return None
        names = list(fixed)
        if extensible:
            stem = pnames[-1].rstrip("*0").rstrip("*")
            start = 0 if pnames[-1].endswith("*0") else 1
            names += [f"{stem}{i}" for i in range(start, start + len(args))]
        by_name = {a.name.upper(): a for a in args}
        out = []
        for n in names:
            a = by_name.pop(n, None)
            if a is None:
                if extensible and n not in fixed:
                    continue
                self.sink.error("E0050", e.span, f"{k} needs its input {n}")
                return None
            out.append(a.value)
        if by_name:
            bad = next(iter(by_name.values()))
            self.sink.error("E0051", bad.span, f"{k} has no input '{bad.name}' (inputs: {', '.join(fixed) or names[0]})")
            return None
        return out

    def _merge(self, a: Type, b: Type) -> Type | None:
        if isinstance(a, LiteralIntType) and isinstance(b, LiteralIntType):
            return a if a.value >= b.value else b
        if isinstance(a, (LiteralIntType, LiteralRealType)) and isinstance(b, (LiteralIntType, LiteralRealType)):
            return LiteralRealType(0.0)
        if isinstance(a, (LiteralIntType, LiteralRealType)):
            a, b = b, a
        if isinstance(b, LiteralIntType):
            if isinstance(a, IntType):
                return a if literal_fits(b.value, a) else None
            return a if isinstance(a, RealType) else None
        if isinstance(b, LiteralRealType):
            if isinstance(a, RealType):
                return a
            if isinstance(a, IntType) and not a.bitstring:
                return REAL if widens_to(a, REAL) else LREAL
            return None
        if a == b:
            return a
        if isinstance(a, StringType) and isinstance(b, StringType) and a.wide == b.wide:
            return a if a.length >= b.length else b
        return common_type(a, b)

    def _arg_ok(self, vt: Type, want: Type) -> bool:
        if isinstance(vt, LiteralIntType):
            return literal_fits(vt.value, strip_subrange(want)) or isinstance(strip_subrange(want), RealType)
        if isinstance(vt, LiteralRealType):
            return isinstance(strip_subrange(want), RealType)
        vs = strip_subrange(vt)
        if isinstance(vs, EnumType):
            return want == vs.base or isinstance(want, IntType)
        if isinstance(vs, StringType) and isinstance(want, StringType):
            return vs.wide == want.wide
        return widens_to(vs, want)

    def _bad_arg(self, e, v, k, what, t):
        self.sink.error("E0020", v.span, f"{k} expects {what}, not {t}")
        return ERROR

    # ------------------------------------------------------------ lvalues
    def _is_lvalue(self, e) -> bool:
        return isinstance(e, (A.Name, A.Member, A.Index, A.BitAccess))

    def check_lvalue(self, e, scope: Scope) -> bool:
        """Report writes the language forbids. The target is already typed."""
        if not self._is_lvalue(e):
            self.sink.error("E0040", e.span, "only a variable can be assigned")
            return False
        root = e
        via_member_of_fb = None
        while isinstance(root, (A.Member, A.Index, A.BitAccess)):
            if isinstance(root, A.Member):
                bt = self.p.expr_types.get(root.base)
                if isinstance(bt, FBType):
                    via_member_of_fb = (root, bt)
            root = root.base
        ref = self.p.refs.get(root)
        if ref is None:
            return True
        if ref.kind == "enum":
            self.sink.error("E0040", e.span, f"'{root.name}' is an enumeration value, not a variable")
            return False
        v = ref.var
        if v.constant:
            self.sink.error("E0040", e.span, f"'{v.name}' is CONSTANT")
            return False
        if via_member_of_fb is not None:
            m, bt = via_member_of_fb
            par = bt.pou.lookup_param(m.name)
            if par is not None and par.section == "VAR_OUTPUT":
                self.sink.error("E0042", m.span, f"'{m.name}' is an output of {bt.name}: only the block writes it")
                return False
        elif v.section == "VAR_INPUT" and root is e:
            self.sink.error("E0041", e.span, f"'{v.name}' is an input of {scope.pou.name if scope.pou else 'this POU'}; "
                            "assign a local copy instead")
            return False
        if root is e and v.key in scope.for_vars:
            self.sink.error("E0043", e.span, f"'{v.name}' controls the enclosing FOR loop and cannot be assigned in its body")
            return False
        return True


_MISSING = object()
_CMP = {"=", "<>", "<", ">", "<=", ">="}


def _numeric(t) -> bool:
    return isinstance(t, (LiteralIntType, LiteralRealType, RealType)) or isinstance(t, IntType) and not t.bitstring


def _compare(op, a, b):
    return {"=": a == b, "<>": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _hint(t) -> str:
    if isinstance(t, BoolType):
        return " (compare instead, e.g. x <> 0)"
    if isinstance(t, TimeType):
        return " (write a duration literal such as T#5s, or use DINT_TO_TIME)"
    return ""


def _fold_std(k, family, consts, rt, arg_types):
    from . import values as V
    try:
        if family in ("common", "same"):
            cv = [V.convert(c, _concrete_int(t) if isinstance(t, LiteralIntType) else t, rt) if _numeric(rt) else c
                  for c, t in zip(consts, arg_types)]
            if k == "MIN":
                return min(cv)
            if k == "MAX":
                return max(cv)
            if k == "LIMIT":
                return min(max(cv[1], cv[0]), cv[2])
            if k == "MOVE":
                return cv[0]
        if k == "ABS" and isinstance(consts[0], (int, float)):
            v = abs(consts[0])
            return wrap(v, rt.bits, rt.signed) if isinstance(rt, IntType) else v
        if k == "SEL":
            return consts[2] if consts[0] else consts[1]
        if k == "LEN":
            return len(consts[0])
    except (V.PlcFault, TypeError, ValueError):
        return _MISSING
    return _MISSING
