"""Coverage instrumentation: which statements ran, which branches were taken.

`compile_project(sources, coverage=True)` makes the code generator count, in
one list shared by every load of the program (`CompiledProgram.coverage`):

- statements: a counter per straight run of statements. A statement that
  cannot leave the run early (no RETURN/EXIT/CONTINUE, no loop, no call of a
  user POU, nothing that can fault) shares the counter of the one before it,
  so a run of plain assignments costs one increment, and a statement after
  one that faulted is never counted as run;
- branches: each IF/ELSIF/ELSE arm and the implicit "no arm" of an IF
  without ELSE; each CASE arm, its ELSE or the implicit "no label matched"
  (none when the labels cover every value of an enumeration); each FOR and
  WHILE loop entered and skipped (zero iterations). A REPEAT body always
  runs, and a FOR with constant bounds always (or never) enters: they have
  no loop branches.

Counts that follow from others cost nothing (a Count is a sum of counters):
an arm's count is its body's first counter; when the conditions cannot
fault, the ELSE (or the implicit no-arm) ran the IF's count minus its arms';
the body of a FOR with constant bounds, no watchdog check and nothing that
stops a trip early ran trips times the loop's count.

Test POUs (plc_lang/testing.py) are not instrumented: their coverage says
nothing about the program. Without the option the generated code is the same
as ever, line for line.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import lru_cache

from . import ast as A
from .types import BoolType, IntType, LiteralIntType, RealType, SubrangeType, strip_subrange


@dataclass(frozen=True)
class Count:
    """How many times something ran: scale * (sum of counters plus - sum of minus)."""
    plus: tuple[int, ...]
    minus: tuple[int, ...] = ()
    scale: int = 1

    def __sub__(self, other: "Count") -> "Count":
        assert self.scale == other.scale == 1
        return Count(self.plus + other.minus, self.minus + other.plus)

    def times(self, n: int) -> "Count":
        return Count(self.plus, self.minus, self.scale * n)


@dataclass
class Point:
    file: str
    line: int                       # where a listing marks it
    col: int
    key: str                        # stable within the file: "41:5" (statement), "41:5/if2" (branch)
    kind: str                       # "statement" or "branch"
    label: str = ""                 # branches: "IF arm 2 (ELSIF tMax > 55.0)"
    never: str = ""                 # branches: what a report says when it never happened
    count: Count = Count(())


@dataclass
class CoverageMap:
    points: list[Point] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def counter(self) -> int:
        self.counts.append(0)
        return len(self.counts) - 1

    def hits(self, point: Point) -> int:
        c, n = self.counts, point.count
        return n.scale * (sum(c[i] for i in n.plus) - sum(c[i] for i in n.minus))


# ---------------------------------------------------------------- source text
def source_text(sources, nodes, start=None, limit: int = 60) -> str:
    """The source text spanning nodes (and their sub-expressions), from
    start (a Span) if given; whitespace collapsed, cut at limit characters."""
    from .statements import _walk_expr
    spans = [start] if start is not None else []
    for n in nodes:
        if n is None:
            continue
        for x in _walk_expr(n):
            spans.append(x.span)
    spans = [s for s in spans if s is not None and s.line > 0]
    if not spans:
        return ""
    src = sources.get(spans[0].file)
    if src is None:
        return ""
    first = min((s.line, s.col) for s in spans)
    last = max((s.end_line or s.line, s.end_col or s.col + 1) for s in spans)
    text = src.text
    starts = _line_starts(text)

    def offset(line, col):
        return starts[min(line, len(starts)) - 1] + col - 1

    a, b = _balance(text, offset(*first), offset(*last))
    out = " ".join(text[a:b].split())
    return out if len(out) <= limit else out[:limit - 3].rstrip() + "..."


@lru_cache(maxsize=32)
def _line_starts(text: str) -> list[int]:
    out = [0]
    i = text.find("\n")
    while i >= 0:
        out.append(i + 1)
        i = text.find("\n", i + 1)
    return out


def _balance(text: str, a: int, b: int) -> tuple[int, int]:
    """Widen [a, b) over the parentheses its text opens or closes: node spans
    cover tokens, not the parentheses around or after them."""
    depth = low = 0
    quote = None
    for ch in text[a:b]:
        if quote is not None:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            low = min(low, depth)
    need = -low
    i = a
    while need > 0 and i > 0 and (text[i - 1] == "(" or text[i - 1] in " \t"):
        i -= 1
        if text[i] == "(":
            need -= 1
            depth += 1
            a = i
    j = b
    while depth > 0 and j < min(len(text), b + 500):
        ch = text[j]
        if quote is not None:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        j += 1
    return a, j


def call_text(sources, s: A.CallStmt) -> str:
    return source_text(sources, [a.value for a in s.args], start=s.target.span, limit=200)


# ---------------------------------------------------------------- flow analysis
_SAFE_STD = {"MIN", "MAX", "LIMIT", "SEL", "MOVE", "ABS", "LEN", "CONCAT"}


def may_fault(p, e, f32_ext: bool, index_safe=None) -> bool:
    """Can evaluating e raise a runtime fault? Conservative: unsure means yes.
    index_safe(node) says whether the code generator proved an Index in bounds."""
    from .statements import _walk_expr
    for n in _walk_expr(e):
        if n in p.consts:
            continue
        if isinstance(n, A.Index):
            if any(i not in p.consts for i in n.indices) and not (index_safe is not None and index_safe(n)):
                return True
        elif isinstance(n, A.BinOp):
            if n.op in ("/", "MOD") and n.right not in p.consts:
                return True
        elif isinstance(n, A.Call):
            info = p.calls.get(n)
            if info is None or info.kind == "function" or info.kind == "test":
                return True
            if info.kind == "std" and info.name not in _SAFE_STD:
                return True
            if info.kind == "conv" and not isinstance(strip_subrange(info.arg_types[0]),
                                                      (IntType, LiteralIntType, BoolType)):
                return True
        if not f32_ext and isinstance(n, (A.BinOp, A.UnOp, A.Call)):
            t = strip_subrange(p.expr_types.get(n))
            if isinstance(t, RealType) and t.bits == 32:
                return True          # struct.pack raises on overflow where the C helper gives inf
    return False


def may_escape(p, s, f32_ext: bool, index_safe=None) -> bool:
    """Can s end without the next statement of its list running?"""
    def fault(e):
        return may_fault(p, e, f32_ext, index_safe)

    def escape(x):
        return may_escape(p, x, f32_ext, index_safe)

    if isinstance(s, A.Empty):
        return False
    if isinstance(s, A.Assign):
        tt = p.expr_types.get(s.target)
        if isinstance(tt, SubrangeType):
            return True
        if not f32_ext and isinstance(strip_subrange(tt), RealType):
            return True
        return fault(s.target) or fault(s.value)
    if isinstance(s, A.CallStmt):
        info = p.calls.get(s)
        if info is None or info.kind != "fb" or not info.pou.std:
            return True
        if any(isinstance(p.expr_types.get(t), SubrangeType) for _, t, _ in info.outputs):
            return True
        return fault(s.target) or any(fault(a.value) for a in s.args)
    if isinstance(s, A.If):
        return any(fault(c) or any(escape(x) for x in body) for c, body in s.branches) or \
            any(escape(x) for x in s.else_body or ())
    if isinstance(s, A.Case):
        return fault(s.selector) or any(escape(x) for br in s.branches for x in br.body) or \
            any(escape(x) for x in s.else_body or ())
    return True                      # loops (the watchdog), RETURN, EXIT, CONTINUE


# ---------------------------------------------------------------- points
class Recorder:
    """What the code generator calls while it instruments one project."""

    def __init__(self, sources, f32_ext: bool):
        self.map = CoverageMap()
        self.sources = sources
        self.f32_ext = f32_ext
        self._stripped: dict[str, str] = {}

    def counter(self) -> int:
        return self.map.counter()

    def statement(self, s, count: Count) -> None:
        sp = s.span
        line, col = sp.line, sp.col
        if isinstance(s, (A.Assign, A.CallStmt)):
            # the statement starts where its target does (`a[i].v :=` has the span of `[`)
            from .statements import _walk_expr
            line, col = min((n.span.line, n.span.col) for n in _walk_expr(s.target))
        self.map.points.append(Point(sp.file, line, col, f"{line}:{col}", "statement", count=count))

    def branch(self, owner, suffix: str, line: int, label: str, count: Count, never: str = "") -> None:
        sp = owner.span
        self.map.points.append(Point(sp.file, line, sp.col, f"{sp.line}:{sp.col}/{suffix}", "branch",
                                     label, never or f"{label} never taken", count))

    def text(self, nodes, start=None) -> str:
        return source_text(self.sources, nodes, start)

    def else_line(self, body, default: int) -> int:
        """The line of the ELSE keyword before body (default when body is empty):
        only blanks and comments lie between the two."""
        first = next((s for s in body or () if not isinstance(s, A.Empty)), None)
        if first is None:
            return default
        sp = first.span
        src = self.sources.get(sp.file)
        if src is None:
            return sp.line
        text = self._stripped.get(sp.file)
        if text is None:
            from .source import strip_comments
            text = self._stripped[sp.file] = strip_comments(sp.file, src.text)[0]
        starts = _line_starts(text)
        i = starts[sp.line - 1] + sp.col - 2
        while i >= 0 and text[i].isspace():
            i -= 1
        if i >= 3 and text[i - 3:i + 1].upper() == "ELSE":
            return bisect.bisect_right(starts, i)
        return sp.line


def expr_line(e) -> int:
    """The first line of an expression (a span is its operator's token)."""
    from .statements import _walk_expr
    return min(n.span.line for n in _walk_expr(e))
