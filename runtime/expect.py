"""Expectations written as ST expressions over tags: `Main.derate < 0.8`.

The text is parsed by the ST parser (so engineers write the language they
know) and turned into a small Python closure over resolved tags. Bare names
are enumeration values (`Main.state = TRIPPED`); every variable is written
with its instance (`Main.x`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from plc_lang import ast as A
from plc_lang.diagnostics import DiagnosticSink
from plc_lang.parser import parse_source
from plc_lang.source import SourceFile
from plc_lang.types import EnumType, RealType, strip_subrange
from plc_lang.values import f32, idiv, imod

from . import tags
from .io.quality import GOOD, NAMES


class ExpectError(ValueError):
    pass


@dataclass
class CompiledExpr:
    text: str
    fn: object                 # () -> value
    reads: list                # (label, () -> JSON value) of what it reads, for failure reports

    def __call__(self):
        return self.fn()

    def values(self) -> dict:
        return {label: get() for label, get in self.reads}


_FUNCS = {"ABS": abs, "MIN": min, "MAX": max, "SQRT": math.sqrt,
          "LIMIT": lambda mn, x, mx: min(max(x, mn), mx)}


def _div(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return idiv(a, b)
    return a / b


# The quality of an input as the last scan latched it (runtime/io/quality.py),
# as ST reads it: IO_OK(x) is x GOOD, IO_QUALITY(x) its number, IO_AGE(x) a
# TIME since its source timestamp (T#0s when it has none).
_IO_FUNCS = ("IO_OK", "IO_QUALITY", "IO_AGE")


def compile_expr(text: str, engine, what: str = "expression") -> CompiledExpr:
    expr = _parse(text, what)
    enums: dict[str, int] = {}
    for t in engine.project.types.values():
        if isinstance(t, EnumType):
            for k, v in t.members.items():
                enums.setdefault(k, v)
    reads: list = []
    gen = _Source(engine, enums, reads, text, what)
    fn = eval(f"lambda: {gen.of(expr)}", gen.env)     # noqa: S307 - source made of names only
    return CompiledExpr(text, fn, reads)


@lru_cache(maxsize=256)
def _parse(text: str, what: str):
    """The expression's syntax tree; the fuzzer binds one text to thousands of engines."""
    sink = DiagnosticSink()
    src = SourceFile(what, f"PROGRAM Expectation\nx := ({text});\nEND_PROGRAM\n")
    unit = parse_source(src, sink)
    if unit is None or sink.has_errors:
        msg = sink.items[0].message if sink.items else "cannot read it"
        raise ExpectError(f"{what}: '{text}' is not an ST expression: {msg}")
    return unit.pous[0].body[0].value


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


class _Source:
    """Python source for one expression: a single function per check, where a
    tree of closures would cost a call per node on every scan. Values reach
    the source only through names bound in `env` (tags, constants, helpers),
    never as text."""

    def __init__(self, engine, enums, reads, text, what):
        self.engine, self.enums, self.reads, self.text, self.what = engine, enums, reads, text, what
        self.env: dict = {"__builtins__": {}, "_and": _and, "_or": _or, "_xor": _xor, "_not": _not,
                          "_div": _div, "_mod": imod, "_pow": _pow}
        self.names: dict = {}

    def bind(self, prefix: str, value) -> str:
        key = (prefix, id(value)) if prefix == "t" else (prefix, type(value), value)
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = f"{prefix}{len(self.names)}"
            self.env[name] = value
        return name

    def tag(self, path: str) -> str:
        try:
            tag = self.engine.tag(path)
        except tags.TagError as err:
            raise ExpectError(f"{self.what}: '{self.text}': {err}") from None
        if all(label != path for label, _ in self.reads):
            self.reads.append((path, lambda: tags.to_json_value(tag.get(), tag.type)))
        return tag_source(tag, self.bind("t", tag))

    def fail(self, message: str):
        raise ExpectError(f"{self.what}: '{self.text}': {message}")

    def of(self, e) -> str:  # noqa: C901
        if isinstance(e, (A.IntLit, A.BoolLit, A.StringLit, A.RealLit, A.TimeLit)):
            return self.bind("c", e.value)
        if isinstance(e, A.EnumLit):
            t = self.engine.project.types.get(e.type_name.upper())
            if not isinstance(t, EnumType) or e.member.upper() not in t.members:
                self.fail(f"{e.type_name}#{e.member} is not an enumeration value")
            return self.bind("c", t.members[e.member.upper()])
        if isinstance(e, A.Name) and e.name.upper() in self.enums:
            return self.bind("c", self.enums[e.name.upper()])
        if isinstance(e, (A.Name, A.Member, A.Index)):
            path = _path_of(e)
            if path is None or "." not in path:
                self.fail("write variables with their instance, e.g. Main.x")
            return self.tag(path)
        if isinstance(e, A.UnOp):
            x = self.of(e.operand)
            return f"_not({x})" if e.op == "NOT" else (f"(-{x})" if e.op == "-" else x)
        if isinstance(e, A.BinOp):
            # as in ST, a real literal beside a REAL is a REAL: `Main.v = 3.65` compares in binary32
            left, right = e.left, e.right
            if isinstance(right, A.RealLit) and _is_real32(left, self.engine):
                right = A.RealLit(f32(right.value), right.type_name, right.text, right.span)
            elif isinstance(left, A.RealLit) and _is_real32(right, self.engine):
                left = A.RealLit(f32(left.value), left.type_name, left.text, left.span)
            a, b = self.of(left), self.of(right)
            if e.op in _PY_OPS:
                return f"({a} {_PY_OPS[e.op]} {b})"
            return f"{_HELPERS[e.op]}({a}, {b})"
        if isinstance(e, A.Call) and e.name.upper() in _IO_FUNCS:
            return self.io_call(e)
        if isinstance(e, A.Call):
            fn = _FUNCS.get(e.name.upper())
            if fn is None:
                self.fail(f"{e.name} is not available in expectations ({', '.join(sorted(_FUNCS) + list(_IO_FUNCS))})")
            return f"{self.bind('f', fn)}({', '.join(self.of(x.value) for x in e.args)})"
        self.fail("this kind of expression is not supported here")

    def io_call(self, e) -> str:
        name = e.name.upper()
        path = _path_of(e.args[0].value) if len(e.args) == 1 else None
        if path is None or "." not in path:
            self.fail(f"{name} takes one input variable, e.g. {name}(Main.tMax)")
        try:
            path = self.engine.tag(path).path
        except tags.TagError as err:
            raise ExpectError(f"{self.what}: '{self.text}': {err}") from None
        quality = self.engine.quality
        label = f"IO_QUALITY({path})"
        if all(lb != label for lb, _ in self.reads):
            self.reads.append((label, lambda: NAMES.get(quality(path)[0], "?")))
        if name == "IO_OK":
            return f"({self.bind('f', lambda: quality(path)[0] == GOOD)}())"
        if name == "IO_QUALITY":
            return f"{self.bind('f', lambda: quality(path)[0])}()"
        ctx = self.engine.ctx

        def age():
            ts = quality(path)[1]
            return 0 if ts is None else max(0, ctx.now_ns - ts) // 1_000_000     # TIME counts milliseconds
        return f"{self.bind('f', age)}()"


def tag_source(tag, name: str) -> str:
    """Source reading `tag` bound as `name`: through tag.holder, so it follows a task reset."""
    if isinstance(tag.key, str) and tag.key.isidentifier():
        return f"{name}.holder.{tag.key}"
    if isinstance(tag.key, int):
        return f"{name}.holder[{tag.key}]"
    return f"{name}.get()"


def reader(tag_list: list) -> object:
    """One function returning the values of `tag_list` as a list (for traces)."""
    env = {"__builtins__": {}}
    parts = []
    for i, tag in enumerate(tag_list):
        env[f"t{i}"] = tag
        parts.append(tag_source(tag, f"t{i}"))
    return eval(f"lambda: [{', '.join(parts)}]", env)   # noqa: S307 - source made of names only


_PY_OPS = {"=": "==", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "+": "+", "-": "-", "*": "*"}
_HELPERS = {"AND": "_and", "OR": "_or", "XOR": "_xor", "MOD": "_mod", "/": "_div", "**": "_pow"}


def _and(a, b):
    return a and b if isinstance(a, bool) else a & b


def _or(a, b):
    return a or b if isinstance(a, bool) else a | b


def _xor(a, b):
    return a != b if isinstance(a, bool) else a ^ b


def _not(v):
    return (not v) if isinstance(v, bool) else ~v


def _pow(a, b):
    return float(a) ** b
