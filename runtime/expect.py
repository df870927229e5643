"""Expectations written as ST expressions over tags: `Main.derate < 0.8`.

The text is parsed by the ST parser (so engineers write the language they
know) and turned into a small Python closure over resolved tags. Bare names
are enumeration values (`Main.state = TRIPPED`); every variable is written
with its instance (`Main.x`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from plc_lang import ast as A
from plc_lang.diagnostics import DiagnosticSink
from plc_lang.parser import parse_source
from plc_lang.source import SourceFile
from plc_lang.types import EnumType, RealType, strip_subrange
from plc_lang.values import f32, idiv, imod

from . import tags


class ExpectError(ValueError):
    pass


@dataclass
class CompiledExpr:
    text: str
    fn: object                 # () -> value
    reads: list                # (path, Tag) it reads, for failure reports

    def __call__(self):
        return self.fn()

    def values(self) -> dict:
        return {p: tags.to_json_value(t.get(), t.type) for p, t in self.reads}


_BIN = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    "AND": lambda a, b: a and b if isinstance(a, bool) else a & b,
    "OR": lambda a, b: a or b if isinstance(a, bool) else a | b,
    "XOR": lambda a, b: a != b if isinstance(a, bool) else a ^ b,
    "MOD": lambda a, b: imod(a, b),
    "**": lambda a, b: float(a) ** b,
}
_FUNCS = {"ABS": abs, "MIN": min, "MAX": max, "SQRT": math.sqrt,
          "LIMIT": lambda mn, x, mx: min(max(x, mn), mx)}


def _div(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return idiv(a, b)
    return a / b


def compile_expr(text: str, engine, what: str = "expression") -> CompiledExpr:
    sink = DiagnosticSink()
    src = SourceFile(what, f"PROGRAM Expectation\nx := ({text});\nEND_PROGRAM\n")
    unit = parse_source(src, sink)
    if unit is None or sink.has_errors:
        msg = sink.items[0].message if sink.items else "cannot read it"
        raise ExpectError(f"{what}: '{text}' is not an ST expression: {msg}")
    expr = unit.pous[0].body[0].value
    enums: dict[str, int] = {}
    for t in engine.project.types.values():
        if isinstance(t, EnumType):
            for k, v in t.members.items():
                enums.setdefault(k, v)
    reads: list = []
    fn = _build(expr, engine, enums, reads, text, what)
    return CompiledExpr(text, fn, reads)


def _path_of(e) -> str | None:
    if isinstance(e, A.Name):
        return e.name
    if isinstance(e, A.Member):
        base = _path_of(e.base)
        return None if base is None else f"{base}.{e.name}"
    if isinstance(e, A.Index):
        base = _path_of(e.base)
        if base is None or not all(isinstance(i, A.IntLit) or isinstance(i, A.UnOp) and isinstance(i.operand, A.IntLit)
                                   for i in e.indices):
            return None
        idx = ", ".join(str(i.value) if isinstance(i, A.IntLit) else str(-i.operand.value) for i in e.indices)
        return f"{base}[{idx}]"
    return None


def _is_real32(e, engine) -> bool:
    path = _path_of(e)
    if path is None or "." not in path:
        return False
    try:
        t = strip_subrange(engine.tag(path).type)
    except tags.TagError:
        return False
    return isinstance(t, RealType) and t.bits == 32


def _build(e, engine, enums, paths, text, what):  # noqa: C901
    if isinstance(e, (A.IntLit, A.BoolLit, A.StringLit)):
        v = e.value
        return lambda: v
    if isinstance(e, A.RealLit):
        v = e.value
        return lambda: v
    if isinstance(e, A.TimeLit):
        v = e.value
        return lambda: v
    if isinstance(e, A.EnumLit):
        t = engine.project.types.get(e.type_name.upper())
        if not isinstance(t, EnumType) or e.member.upper() not in t.members:
            raise ExpectError(f"{what}: '{text}': {e.type_name}#{e.member} is not an enumeration value")
        v = t.members[e.member.upper()]
        return lambda: v
    if isinstance(e, A.Name) and e.name.upper() in enums:
        v = enums[e.name.upper()]
        return lambda: v
    if isinstance(e, (A.Name, A.Member, A.Index)):
        path = _path_of(e)
        if path is None or "." not in path:
            raise ExpectError(f"{what}: '{text}': write variables with their instance, e.g. Main.x")
        try:
            tag = engine.tag(path)
        except tags.TagError as err:
            raise ExpectError(f"{what}: '{text}': {err}") from None
        paths.append((path, tag))
        return tag.get
    if isinstance(e, A.UnOp):
        f = _build(e.operand, engine, enums, paths, text, what)
        if e.op == "NOT":
            def not_(f=f):
                v = f()
                return (not v) if isinstance(v, bool) else ~v
            return not_
        if e.op == "-":
            return lambda: -f()
        return f
    if isinstance(e, A.BinOp):
        # as in ST, a real literal beside a REAL is a REAL: `Main.v = 3.65` compares in binary32
        left, right = e.left, e.right
        if isinstance(right, A.RealLit) and _is_real32(left, engine):
            right = A.RealLit(f32(right.value), right.type_name, right.text, right.span)
        elif isinstance(left, A.RealLit) and _is_real32(right, engine):
            left = A.RealLit(f32(left.value), left.type_name, left.text, left.span)
        a = _build(left, engine, enums, paths, text, what)
        b = _build(right, engine, enums, paths, text, what)
        op = _div if e.op == "/" else _BIN[e.op]
        return lambda: op(a(), b())
    if isinstance(e, A.Call):
        fn = _FUNCS.get(e.name.upper())
        if fn is None:
            raise ExpectError(f"{what}: '{text}': {e.name} is not available in expectations "
                              f"({', '.join(sorted(_FUNCS))})")
        args = [_build(x.value, engine, enums, paths, text, what) for x in e.args]
        return lambda: fn(*[g() for g in args])
    raise ExpectError(f"{what}: '{text}': this kind of expression is not supported here")
