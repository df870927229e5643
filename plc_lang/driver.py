"""The pipeline, top to bottom: parse -> declare -> resolve -> check -> lint -> emit.

    result = compile_project([SourceFile(path, text), ...])
    result.diagnostics   # every error and warning, in source order
    result.program       # a CompiledProgram (plc_lang.codegen) when there are no errors
    compile_project(sources, coverage=True)   # instrumented: result.program.coverage
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field

from . import ast as A
from .checker import ExprChecker
from .diagnostics import Diagnostic, DiagnosticSink
from .model import CheckedProject
from .parser import parse_source
from .source import SourceFile
from .statements import BodyChecker, _walk_exprs, _walk_stmts
from .symbols import Symbols
from .testing import is_test, scan_interval_ns
from .types import FBType


@dataclass
class CompileResult:
    sources: dict[str, SourceFile]
    diagnostics: list[Diagnostic]
    project: CheckedProject | None = None
    program: object | None = None           # codegen.CompiledProgram
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def read_sources(paths: list[str]) -> list[SourceFile]:
    out = []
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            out.append(SourceFile(p, f.read()))
    return out


def check_project(sources: list[SourceFile]) -> CompileResult:
    # Passes recurse once per nesting level of an expression; CPython 3.11
    # runs Python-to-Python calls without C stack, so a higher limit is safe.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, RECURSION_LIMIT))
    try:
        return _check_project(sources)
    except RecursionError:
        # an expression nested thousands deep: the checker recurses per level
        return _too_deep(sources)
    finally:
        sys.setrecursionlimit(old)


RECURSION_LIMIT = 12000


def _check_project(sources: list[SourceFile]) -> CompileResult:
    sink = DiagnosticSink()
    srcmap = {s.path: s for s in sources}
    # 1. parse
    units: list[A.CompilationUnit] = []
    for s in sources:
        u = parse_source(s, sink)
        if u is not None:
            units.append(u)
    project = CheckedProject(srcmap, units, {}, {}, {}, {}, None)
    project.source_hash = hashlib.sha256(
        b"".join(s.path.encode() + b"\0" + s.text.encode() + b"\0" for s in sources)).hexdigest()
    # 2. declare names, 3. resolve types, globals, interfaces, configuration
    sym = Symbols(project, sink)
    ex = ExprChecker(project, sink, sym)
    sym.folder = ex
    sym.declare_all()
    sym.resolve_types()
    sym.declare_globals()
    for info in project.pous.values():
        sym.declare_vars(info)
    sym.configuration()
    # 4. check bodies and lint
    bodies = BodyChecker(project, sink, ex)
    for info in project.pous.values():
        bodies.check_pou(info)
    _check_recursion(project, sink)
    _check_tests(project, sink)
    return CompileResult(srcmap, sink.sorted(), project)


def compile_project(sources: list[SourceFile], coverage: bool = False) -> CompileResult:
    """coverage: instrument the code to count statements and branches
    (plc_lang/instrument.py); result.program.coverage holds the counts."""
    result = check_project(sources)
    if result.ok:
        from .codegen import Unsupported, generate
        try:
            result.program = generate(result.project, coverage)
        except RecursionError:
            return _too_deep(sources)
        except Unsupported as u:
            span = u.span or next(iter(result.project.pous.values())).decl.span
            sink = DiagnosticSink(list(result.diagnostics))
            sink.error("E0091", span, f"not supported yet: {u.what}")
            result.diagnostics = sink.sorted()
    return result


def _check_recursion(p: CheckedProject, sink: DiagnosticSink) -> None:
    """Functions calling each other in a cycle, or FBs containing themselves."""
    edges: dict[str, set[str]] = {k: set() for k in p.pous}
    for k, info in p.pous.items():
        for v in info.vars.values():
            t = v.type
            while hasattr(t, "elem"):
                t = t.elem
            if isinstance(t, FBType) and not t.pou.std:
                edges[k].add(t.pou.key)
        for node in _walk_exprs(info.decl.body):
            call = p.calls.get(node) if isinstance(node, A.Call) else None
            if call is not None and call.kind == "function" and call.pou is not None:
                edges[k].add(call.pou.key)
        for s in _walk_stmts(info.decl.body):
            call = p.calls.get(s) if isinstance(s, A.CallStmt) else None
            if call is not None and call.kind == "function" and call.pou is not None:
                edges[k].add(call.pou.key)
    state: dict[str, int] = {}          # 1 on the DFS stack, 2 done
    reported: set[frozenset] = set()

    def visit(k: str, stack: list[str]) -> None:
        state[k] = 1
        stack.append(k)
        for n in sorted(edges.get(k, ())):
            if state.get(n) == 1:
                cyc = stack[stack.index(n):]
                if frozenset(cyc) not in reported:        # each cycle once
                    reported.add(frozenset(cyc))
                    sink.error("E0060", p.pous[n].decl.span,
                               "recursion: " + " -> ".join(p.pous[c].name for c in cyc + [n]))
            elif state.get(n) is None:
                visit(n, stack)
        stack.pop()
        state[k] = 2

    for k in edges:
        if state.get(k) is None:
            visit(k, [])


def _check_tests(p: CheckedProject, sink: DiagnosticSink) -> None:
    """Tests take no inputs, and production code never holds a test (a test
    may call ADVANCE, which moves the clock)."""
    def test_instance(t):
        while hasattr(t, "elem"):
            t = t.elem
        return t.pou if isinstance(t, FBType) and is_test(t.pou.decl) else None

    for info in p.pous.values():
        if is_test(info.decl):
            for v in info.vars.values():
                if v.section in ("VAR_INPUT", "VAR_IN_OUT"):
                    sink.error("E0094", v.span, f"the test {info.name} cannot have a {v.section}: "
                               "a test runs on its own, nothing calls it with arguments")
            _ns, problem = scan_interval_ns(info.decl)
            if problem is not None:
                sink.error("E0094", info.decl.span, problem)
            continue
        for v in info.vars.values():
            used = test_instance(v.type)
            if used is not None:
                sink.error("E0095", v.span, f"'{v.name}' is an instance of the test {used.name}: only tests may use tests")
    for v in p.globals.values():
        used = test_instance(v.type)
        if used is not None:
            sink.error("E0095", v.span, f"'{v.name}' is an instance of the test {used.name}: only tests may use tests")
    if p.config is not None:
        for inst in p.config.instances:
            if is_test(inst.pou.decl):
                sink.error("E0095", inst.span, f"'{inst.pou.name}' is a test: run it with `gridplc test`, "
                           "not in a CONFIGURATION")


def _too_deep(sources: list[SourceFile]) -> CompileResult:
    from .source import Span
    sink = DiagnosticSink()
    sink.error("E0091", Span(sources[0].path if sources else "?", 1, 1),
               "not supported: nesting this deep (split the expression or block)")
    return CompileResult({s.path: s for s in sources}, sink.sorted())
