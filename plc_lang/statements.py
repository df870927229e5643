"""Pass 3b: check statement bodies, and the warnings of pass 4 (lint).

Statement rules: conditions are BOOL, targets are writable, CASE labels are
constant and disjoint, EXIT/CONTINUE sit inside loops, FOR variables are not
assigned in their body. Warnings: unused variables, reads before any write,
loops with no visible bound, unreachable statements, uncovered enum CASEs.
"""
from __future__ import annotations

from . import ast as A
from .checker import ExprChecker, Scope, _is_err
from .diagnostics import DiagnosticSink
from .model import CheckedProject, PouInfo
from .types import (BOOL, BoolType, EnumType, ErrorType, FBType, IntType, LiteralIntType,
                    StringType, SubrangeType, strip_subrange)


class BodyChecker:
    def __init__(self, project: CheckedProject, sink: DiagnosticSink, ex: ExprChecker):
        self.p = project
        self.sink = sink
        self.ex = ex

    def check_pou(self, info: PouInfo) -> None:
        scope = Scope(info)
        self.block(info.decl.body, scope)
        _Lint(self.p, self.sink, info).run()

    # ------------------------------------------------------------ statements
    def block(self, stmts, scope: Scope) -> None:
        dead_reported = False
        for i, s in enumerate(stmts):
            self.stmt(s, scope)
            if isinstance(s, (A.Return, A.Exit, A.Continue)) and not dead_reported:
                rest = [r for r in stmts[i + 1:] if not isinstance(r, A.Empty)]
                if rest:
                    self.sink.warning("W0104", rest[0].span, "this statement can never run")
                    dead_reported = True

    def cond(self, e, scope: Scope, what: str) -> None:
        t = self.ex.expr(e, scope, BOOL)
        if not _is_err(t) and not isinstance(strip_subrange(t), BoolType):
            self.sink.error("E0023", e.span, f"{what} needs a BOOL condition, not {t}")

    def stmt(self, s, scope: Scope) -> None:  # noqa: C901
        ex = self.ex
        if isinstance(s, A.Assign):
            tt = ex.expr(s.target, scope)
            vt = ex.expr(s.value, scope, tt)
            if _is_err(tt, vt):
                return
            if ex.check_lvalue(s.target, scope):
                if isinstance(tt, FBType):
                    self.sink.error("E0020", s.span, "function block instances cannot be assigned")
                    return
                ex.check_assignable(vt, tt, s.value)
        elif isinstance(s, A.CallStmt):
            self.call_stmt(s, scope)
        elif isinstance(s, A.If):
            for c, body in s.branches:
                self.cond(c, scope, "IF")
                self.block(body, scope)
            if s.else_body is not None:
                self.block(s.else_body, scope)
        elif isinstance(s, A.Case):
            self.case(s, scope)
        elif isinstance(s, A.For):
            self.for_(s, scope)
        elif isinstance(s, A.While):
            self.cond(s.cond, scope, "WHILE")
            scope.loop_depth += 1
            self.block(s.body, scope)
            scope.loop_depth -= 1
        elif isinstance(s, A.Repeat):
            scope.loop_depth += 1
            self.block(s.body, scope)
            scope.loop_depth -= 1
            self.cond(s.cond, scope, "UNTIL")
        elif isinstance(s, (A.Exit, A.Continue)):
            if scope.loop_depth == 0:
                self.sink.error("E0090", s.span, f"{'EXIT' if isinstance(s, A.Exit) else 'CONTINUE'} outside a loop")
        elif isinstance(s, (A.Return, A.Empty)):
            pass
        else:  # pragma: no cover
            raise AssertionError(f"unknown statement {s!r}")

    def call_stmt(self, s: A.CallStmt, scope: Scope) -> None:
        ex = self.ex
        tgt = s.target
        if isinstance(tgt, A.Name) and ex.lookup_var(tgt.name, scope) is None:
            # a function called for its effect: `Log(x);`
            call = A.Call(tgt.name, s.args, tgt.span)
            ex.statement_call = call
            ex.expr(call, scope)
            ex.statement_call = None
            info = self.p.calls.get(call)
            if info is not None:
                self.p.calls[s] = info
            self.p.expr_types[s] = self.p.expr_types.get(call)
            return
        t = ex.expr(tgt, scope)
        if _is_err(t):
            return
        if not isinstance(t, FBType):
            self.sink.error("E0013", s.span, f"{t} is not a function block instance and cannot be called")
            return
        info = ex.bind_args(s, s.args, t.pou, scope, "fb")
        if info is not None:
            self.p.calls[s] = info

    def case(self, s: A.Case, scope: Scope) -> None:
        ex = self.ex
        st = ex.expr(s.selector, scope)
        sel = strip_subrange(st)
        if not _is_err(st) and not (isinstance(sel, (IntType, EnumType, LiteralIntType))):
            self.sink.error("E0080", s.selector.span, f"CASE needs an integer or enumeration selector, not {st}")
            sel = None
        seen: list[tuple[int, int, A.CaseLabel]] = []
        covered: set[int] = set()
        for br in s.branches:
            for lab in br.labels:
                lo = self._label(lab.low, sel, scope)
                hi = self._label(lab.high, sel, scope) if lab.high is not None else lo
                if lo is None or hi is None:
                    continue
                if lo > hi:
                    self.sink.error("E0080", lab.span, f"range {lo}..{hi} is empty")
                    continue
                for a, b, other in seen:
                    if lo <= b and a <= hi:
                        self.sink.error("E0080", lab.span, f"label overlaps the one at {other.span.line}:{other.span.col}")
                        break
                seen.append((lo, hi, lab))
                if isinstance(sel, EnumType):
                    covered.update(v for v in sel.members.values() if lo <= v <= hi)
            self.block(br.body, scope)
        if s.else_body is not None:
            self.block(s.else_body, scope)
        elif isinstance(sel, EnumType):
            missing = [sel.display[k] for k, v in sel.members.items() if v not in covered]
            if missing:
                self.sink.warning("W0105", s.span, f"CASE on {sel.name} does not handle {', '.join(missing)} and has no ELSE")

    def _label(self, e, sel, scope: Scope) -> int | None:
        t = self.ex.expr(e, scope, sel)
        if _is_err(t) or sel is None:
            return None
        if e not in self.p.consts:
            self.sink.error("E0033", e.span, "a CASE label must be a constant")
            return None
        ts = strip_subrange(t)
        if isinstance(sel, EnumType):
            if ts != sel:
                self.sink.error("E0080", e.span, f"label of type {t} on a CASE over {sel.name}")
                return None
        elif isinstance(ts, EnumType) or isinstance(ts, (BoolType, StringType)):
            self.sink.error("E0080", e.span, f"label of type {t} on a CASE over {sel}")
            return None
        elif isinstance(ts, LiteralIntType) and isinstance(sel, IntType) and not sel.lo <= ts.value <= sel.hi:
            self.sink.error("E0030", e.span, f"label {ts.value} can never match a {sel}")
            return None
        return self.p.consts[e]

    def for_(self, s: A.For, scope: Scope) -> None:
        ex = self.ex
        v = ex.lookup_var(s.var, scope)
        name_node = A.Name(s.var, s.var_span)
        if v is None:
            self.sink.error("E0011", s.var_span, f"FOR variable '{s.var}' is not declared")
            vt = None
        else:
            ex.expr(name_node, scope)
            self.p.refs[s] = self.p.refs.get(name_node)
            vt = strip_subrange(v.type)
            if not isinstance(vt, IntType) or vt.bitstring:
                self.sink.error("E0020", s.var_span, f"a FOR variable must be a signed or unsigned integer, not {v.type}")
                vt = None
            elif v.constant or v.section == "VAR_INPUT":
                ex.check_lvalue(name_node, scope)
            elif s.var.upper() in scope.for_vars:
                self.sink.error("E0043", s.var_span, f"'{s.var}' already controls an enclosing FOR loop")
        parts = [s.start, s.end] + ([s.step] if s.step is not None else [])
        for e in parts:
            t = ex.expr(e, scope, v.type if v is not None else None)
            if vt is not None and not _is_err(t):
                ex.check_assignable(t, v.type, e)
        if s.step is not None and self.p.consts.get(s.step) == 0:
            self.sink.error("E0033", s.step.span, "a FOR step of 0 never ends")
        # a constant trip range lets the compiler drop index checks in the body, when
        # nothing but the loop can change the variable: not a global (a called
        # function may assign it), not an argument of a call in the body (VAR_IN_OUT)
        if all(e in self.p.consts for e in (s.start, s.end)) and (s.step is None or s.step in self.p.consts) \
                and v is not None and v.section not in ("VAR_GLOBAL", "VAR_EXTERNAL") \
                and not _passed_to_a_call(s.body, s.var):
            a, b = self.p.consts[s.start], self.p.consts[s.end]
            step = self.p.consts[s.step] if s.step is not None else 1
            self.p.for_ranges[s] = (min(a, b), max(a, b)) if (b - a) * step >= 0 else None
        scope.loop_depth += 1
        scope.for_vars.append(s.var.upper())
        self.block(s.body, scope)
        scope.for_vars.pop()
        scope.loop_depth -= 1


# ---------------------------------------------------------------- lint
class _Lint:
    def __init__(self, p: CheckedProject, sink: DiagnosticSink, info: PouInfo):
        self.p = p
        self.sink = sink
        self.info = info
        self.used: set[str] = set()

    def run(self) -> None:
        body = self.info.decl.body
        for node in _walk_exprs(body):
            ref = self.p.refs.get(node)
            if ref is not None and ref.var is not None:
                self.used.add(ref.var.key)
        for s in _walk_stmts(body):
            if isinstance(s, A.For):
                self.used.add(s.var.upper())
        for k, v in self.info.vars.items():
            if v.section in ("VAR", "VAR_TEMP") and k not in self.used:
                self.sink.warning("W0101", v.span, f"'{v.name}' is never used")
        self._read_before_write()
        self._loops(body)

    def _read_before_write(self) -> None:
        watch = {k for k, v in self.info.vars.items()
                 if v.init is None and (v.section == "VAR_TEMP" or self.info.kind == "FUNCTION" and v.section == "VAR")
                 and not isinstance(v.type, (FBType,)) and not isinstance(strip_subrange(v.type), (SubrangeType,))
                 and _scalar(v.type)}
        if not watch:
            return
        reported: set[str] = set()
        self._flow(self.info.decl.body, set(), watch, reported)

    def _flow(self, stmts, assigned: set[str], watch, reported) -> set[str]:
        for s in stmts:
            assigned = self._flow_stmt(s, assigned, watch, reported)
        return assigned

    def _reads(self, e, assigned, watch, reported):
        for n in _walk_expr(e):
            if isinstance(n, A.Name):
                ref = self.p.refs.get(n)
                if ref is not None and ref.var is not None:
                    k = ref.var.key
                    if k in watch and k not in assigned and k not in reported:
                        reported.add(k)
                        self.sink.warning("W0102", n.span, f"'{ref.var.name}' is read before it is written")

    def _target_key(self, e):
        ref = self.p.refs.get(e) if isinstance(e, A.Name) else None
        return ref.var.key if ref is not None and ref.var is not None else None

    def _flow_stmt(self, s, assigned, watch, reported):  # noqa: C901
        if isinstance(s, A.Assign):
            self._reads(s.value, assigned, watch, reported)
            if not isinstance(s.target, A.Name):
                self._reads(s.target, assigned, watch, reported)
            k = self._target_key(s.target)
            return assigned | {k} if k else assigned
        if isinstance(s, A.CallStmt):
            out = set(assigned)
            for a in s.args:
                if a.kind == "in":
                    self._reads(a.value, assigned, watch, reported)
                else:
                    k = self._target_key(a.value)
                    if k:
                        out.add(k)
            return out
        if isinstance(s, A.If):
            results = []
            for c, body in s.branches:
                self._reads(c, assigned, watch, reported)
                results.append(self._flow(body, set(assigned), watch, reported))
            results.append(self._flow(s.else_body, set(assigned), watch, reported) if s.else_body is not None else assigned)
            return set.intersection(*results)
        if isinstance(s, A.Case):
            self._reads(s.selector, assigned, watch, reported)
            results = [self._flow(b.body, set(assigned), watch, reported) for b in s.branches]
            results.append(self._flow(s.else_body, set(assigned), watch, reported) if s.else_body is not None else assigned)
            return set.intersection(*results)
        if isinstance(s, A.For):
            for e in (s.start, s.end, s.step):
                if e is not None:
                    self._reads(e, assigned, watch, reported)
            k = s.var.upper()
            self._flow(s.body, assigned | {k}, watch, reported)
            return assigned | {k}
        if isinstance(s, A.While):
            self._reads(s.cond, assigned, watch, reported)
            self._flow(s.body, set(assigned), watch, reported)
            return assigned
        if isinstance(s, A.Repeat):
            after = self._flow(s.body, set(assigned), watch, reported)
            self._reads(s.cond, after, watch, reported)
            return after
        return assigned

    def _loops(self, body) -> None:
        for s in _walk_stmts(body):
            if isinstance(s, (A.While, A.Repeat)):
                cond_roots = {self._root_key(n) for n in _walk_expr(s.cond) if isinstance(n, A.Name)} - {None}
                changed = set()
                leaves = False
                for inner in _walk_stmts(s.body):
                    if isinstance(inner, A.Assign):
                        changed.add(self._root_key(_root(inner.target)))
                    elif isinstance(inner, A.CallStmt):
                        changed.add(self._root_key(_root(inner.target)))
                        for a in inner.args:
                            if a.kind != "in":
                                changed.add(self._root_key(_root(a.value)))
                            else:
                                changed.add(self._root_key(_root(a.value)))
                    elif isinstance(inner, A.For):
                        changed.add(inner.var.upper())
                    elif isinstance(inner, (A.Exit, A.Return)):
                        leaves = True
                if not leaves and not (cond_roots & changed):
                    self.sink.warning("W0103", s.span, "nothing in this loop changes its condition, so it may never end",
                                      "a runaway loop is stopped by the watchdog, which faults the task")

    def _root_key(self, n):
        if not isinstance(n, A.Name):
            return None
        ref = self.p.refs.get(n)
        if ref is not None and ref.var is not None:
            return ref.var.key
        return n.name.upper()


def _scalar(t) -> bool:
    from .types import ArrayType, StructType
    return not isinstance(t, (ArrayType, StructType, FBType, ErrorType))


def _root(e):
    while isinstance(e, (A.Member, A.Index, A.BitAccess)):
        e = e.base
    return e


def _walk_stmts(stmts):
    for s in stmts or ():
        yield s
        if isinstance(s, A.If):
            for _, b in s.branches:
                yield from _walk_stmts(b)
            yield from _walk_stmts(s.else_body)
        elif isinstance(s, A.Case):
            for br in s.branches:
                yield from _walk_stmts(br.body)
            yield from _walk_stmts(s.else_body)
        elif isinstance(s, (A.For, A.While, A.Repeat)):
            yield from _walk_stmts(s.body)


def _stmt_exprs(s):
    if isinstance(s, A.Assign):
        return [s.target, s.value]
    if isinstance(s, A.CallStmt):
        return [s.target] + [a.value for a in s.args]
    if isinstance(s, A.If):
        return [c for c, _ in s.branches]
    if isinstance(s, A.Case):
        return [s.selector] + [x for br in s.branches for lab in br.labels for x in (lab.low, lab.high) if x is not None]
    if isinstance(s, A.For):
        return [x for x in (s.start, s.end, s.step) if x is not None]
    if isinstance(s, (A.While, A.Repeat)):
        return [s.cond]
    return []


def _walk_exprs(stmts):
    for s in _walk_stmts(stmts):
        for e in _stmt_exprs(s):
            yield from _walk_expr(e)


def _walk_expr(e):
    stack = [e]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        yield n
        if isinstance(n, A.BinOp):
            stack.append(n.left)
            stack.append(n.right)
        elif isinstance(n, A.UnOp):
            stack.append(n.operand)
        elif isinstance(n, (A.Member, A.BitAccess)):
            stack.append(n.base)
        elif isinstance(n, A.Index):
            stack.append(n.base)
            stack.extend(n.indices)
        elif isinstance(n, A.Call):
            stack.extend(a.value for a in n.args)


def _passed_to_a_call(stmts, var: str) -> bool:
    """Does a call in stmts take the variable `var` itself as an argument?"""
    k = var.upper()
    calls = [x for x in _walk_stmts(stmts) if isinstance(x, A.CallStmt)]
    calls += [x for x in _walk_exprs(stmts) if isinstance(x, A.Call)]
    for c in calls:
        for arg in c.args:
            val = getattr(arg, "value", None)
            if isinstance(val, A.Name) and val.name.upper() == k:
                return True
    return False
