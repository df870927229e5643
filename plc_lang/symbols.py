"""Pass 2: declare every type, POU, global and task; resolve type specs.

Produces the symbol tables of a CheckedProject. Bodies are checked later
(plc_lang/checker.py); this pass only needs constant expressions, which it
folds with the checker's expression typer.
"""
from __future__ import annotations

import math

from . import ast as A
from .diagnostics import DiagnosticSink
from .model import CheckedProject, ConfigInfo, InstanceInfo, PouInfo, TaskInfo, VarInfo
from .stdlib import blocks
from .types import (ELEMENTARY, ERROR, INT, ArrayType, EnumType, ErrorType, FBType, FieldInfo,
                    IntType, StringType, StructType, SubrangeType, Type, strip_subrange)

ARRAY_ELEMENTS_MAX = 1_000_000


class Symbols:
    """Builds the symbol tables; `folder` evaluates constant expressions."""

    def __init__(self, project: CheckedProject, sink: DiagnosticSink):
        self.p = project
        self.sink = sink
        self.folder = None                      # set by the checker (ExprChecker)
        self._type_decls: dict[str, object] = {}
        self._resolving: set[str] = set()
        self.alias_inits: dict[str, object] = {}

    # ------------------------------------------------------------ declare
    def declare_all(self) -> None:
        p = self.p
        for key, iface in blocks.INTERFACES.items():
            info = PouInfo(key, "FUNCTION_BLOCK", None, std=True, pyname=key)
            for name, section, tname, aliases in iface:
                info.vars[name] = VarInfo(name, ELEMENTARY[tname], section, aliases=aliases, pyname=name)
            p.std_fbs[key] = info
        for unit in p.units:
            for t in unit.types:
                k = t.name.upper()
                if k in self._type_decls or k in ELEMENTARY or k in p.std_fbs:
                    self.sink.error("E0010", t.span, f"type '{t.name}' is declared more than once"
                                    if k in self._type_decls else f"'{t.name}' is a built-in name and cannot be redeclared")
                    continue
                self._type_decls[k] = t
        for unit in p.units:
            for pou in unit.pous:
                k = pou.name.upper()
                if k in p.pous or k in self._type_decls or k in p.std_fbs or k in ELEMENTARY:
                    self.sink.error("E0010", pou.span, f"'{pou.name}' is declared more than once")
                    continue
                p.pous[k] = PouInfo(pou.name, pou.kind, pou, pyname=_py_class_name(pou.name))

    def resolve_types(self) -> None:
        for k in self._type_decls:
            self.user_type(k)

    def user_type(self, key: str) -> Type | None:
        p = self.p
        if key in p.types:
            return p.types[key]
        decl = self._type_decls.get(key)
        if decl is None:
            return None
        if key in self._resolving:
            self.sink.error("E0012", decl.span, f"type '{decl.name}' is defined in terms of itself")
            p.types[key] = ERROR
            return ERROR
        self._resolving.add(key)
        try:
            if isinstance(decl, A.EnumDecl):
                t = self.enum_type(decl.name, decl.spec, decl.default, decl.span)
            elif isinstance(decl, A.StructDecl):
                st = StructType(decl.name, {})
                p.types[key] = st           # allows pointers-free self reference to error cleanly
                for f in decl.fields:
                    fk = f.name.upper()
                    if fk in st.fields:
                        self.sink.error("E0010", f.span, f"field '{f.name}' is declared twice in '{decl.name}'")
                        continue
                    ft = self.resolve(f.type, None)
                    if isinstance(ft, StructType) and ft.name.upper() == key:
                        self.sink.error("E0012", f.span, f"struct '{decl.name}' cannot contain itself")
                        ft = ERROR
                    init = self.folder.fold_init(f.init, ft, None) if f.init is not None else None
                    st.fields[fk] = FieldInfo(f.name, ft, init)
                t = st
            else:
                t = self.resolve(decl.type, None)
                if decl.init is not None:
                    self.alias_inits[key] = self.folder.fold_init(decl.init, t, None)
            p.types[key] = t
            return t
        finally:
            self._resolving.discard(key)

    def enum_type(self, name: str, spec: A.EnumSpec, default: str | None, span) -> EnumType:
        base = INT
        if spec.base is not None:
            b = ELEMENTARY.get(spec.base.upper())
            if isinstance(b, IntType):
                base = b
            else:
                self.sink.error("E0012", spec.span, f"an enumeration's base type must be an integer type, not '{spec.base}'")
        members: dict[str, int] = {}
        display: dict[str, str] = {}
        nxt = 0
        for m in spec.members:
            k = m.name.upper()
            if k in members:
                self.sink.error("E0010", m.span, f"enumeration value '{m.name}' appears twice")
                continue
            if m.value is not None:
                v = self.folder.const_int(m.value, None)
                if v is None:
                    v = nxt
                nxt = v
            members[k] = nxt
            display[k] = m.name
            nxt += 1
        dflt = next(iter(members), "")
        if default is not None:
            if default.upper() in members:
                dflt = default.upper()
            else:
                self.sink.error("E0014", span, f"default '{default}' is not a value of '{name}'")
        return EnumType(name, members, display, dflt, base)

    # ------------------------------------------------------------ type specs
    def resolve(self, spec: A.TypeSpec, scope) -> Type:
        p = self.p
        if isinstance(spec, A.NamedType):
            k = spec.name.upper()
            t = ELEMENTARY.get(k)
            if t is not None:
                if spec.length is not None:
                    if not isinstance(t, StringType):
                        self.sink.error("E0012", spec.span, f"'{spec.name}' does not take a length")
                        return t
                    n = self.folder.const_int(spec.length, scope)
                    if n is None:
                        return t
                    if not 1 <= n <= 65535:
                        self.sink.error("E0032", spec.span, f"string length {n} is outside 1..65535")
                        return t
                    return StringType(t.wide, n)
                return t
            ut = self.user_type(k)
            if ut is not None:
                if spec.length is not None:
                    self.sink.error("E0012", spec.span, f"'{spec.name}' does not take a length")
                return ut
            pou = p.pous.get(k)
            if pou is not None:
                if pou.kind == "FUNCTION_BLOCK":
                    return FBType(pou.name, pou)
                self.sink.error("E0012", spec.span, f"'{spec.name}' is a {pou.kind.lower().replace('_', ' ')}, not a type")
                return ERROR
            if k in p.std_fbs:
                return FBType(k, p.std_fbs[k])
            self.sink.error("E0012", spec.span, f"unknown type '{spec.name}'")
            return ERROR
        if isinstance(spec, A.ArraySpec):
            dims = []
            ok = True
            for lo_e, hi_e in spec.dims:
                lo = self.folder.const_int(lo_e, scope)
                hi = self.folder.const_int(hi_e, scope)
                if lo is None or hi is None:
                    ok = False
                    continue
                if lo > hi:
                    self.sink.error("E0032", lo_e.span, f"array bounds {lo}..{hi}: the low bound is above the high bound")
                    ok = False
                    continue
                dims.append((lo, hi))
            elem = self.resolve(spec.elem, scope)
            if not ok:
                return ERROR
            size = math.prod(hi - lo + 1 for lo, hi in dims) * (elem.size if isinstance(elem, ArrayType) else 1)
            if size > ARRAY_ELEMENTS_MAX:
                self.sink.error("E0032", spec.span, f"array of {size} elements exceeds the limit of {ARRAY_ELEMENTS_MAX}")
                return ERROR
            return ArrayType(tuple(dims), elem)
        if isinstance(spec, A.SubrangeSpec):
            base = ELEMENTARY.get(spec.base.upper())
            if not isinstance(base, IntType):
                self.sink.error("E0012", spec.span, f"a subrange needs an integer base type, not '{spec.base}'")
                return ERROR
            lo = self.folder.const_int(spec.low, scope)
            hi = self.folder.const_int(spec.high, scope)
            if lo is None or hi is None:
                return base
            if lo > hi or lo < base.lo or hi > base.hi:
                self.sink.error("E0032", spec.span, f"subrange {lo}..{hi} is empty or outside {base.name}")
                return base
            return SubrangeType(base, lo, hi)
        if isinstance(spec, A.EnumSpec):
            return self.enum_type(f"enum@{spec.span.line}_{spec.span.col}", spec, None, spec.span)
        raise AssertionError(f"unknown type spec {spec!r}")

    # ------------------------------------------------------------ variables
    def declare_vars(self, info: PouInfo) -> None:
        pou = info.decl
        scope = _DeclScope(info)
        if pou.kind == "FUNCTION":
            rt = self.resolve(pou.return_type, scope) if pou.return_type is not None else None
            info.return_type = rt
            if rt is not None:
                v = VarInfo(pou.name, rt, "RESULT", span=pou.span, pyname="result__")
                info.vars[pou.name.upper()] = v
        for d in pou.vars:
            self._declare_var(info.vars, d, scope, info)

    def _declare_var(self, table: dict, d: A.VarDecl, scope, info: PouInfo | None) -> VarInfo | None:
        k = d.name.upper()
        if k in table:
            self.sink.error("E0010", d.span, f"'{d.name}' is declared more than once")
            return None
        kind = info.kind if info is not None else "GLOBAL"
        if d.section == "VAR_EXTERNAL":
            g = self.p.globals.get(k)
            if g is None:
                self.sink.error("E0011", d.span, f"VAR_EXTERNAL '{d.name}' has no matching VAR_GLOBAL")
                t = self.resolve(d.type, scope)
                v = VarInfo(d.name, t, "VAR_EXTERNAL", span=d.span, pyname=_py_name(d.name))
            else:
                t = self.resolve(d.type, scope)
                if not isinstance(t, ErrorType) and t != g.type and strip_subrange(t) != strip_subrange(g.type):
                    self.sink.error("E0020", d.span, f"VAR_EXTERNAL '{d.name}' is {t} but the global is {g.type}")
                if g.constant and not d.constant:
                    self.sink.error("E0040", d.span, f"global '{d.name}' is CONSTANT: declare the VAR_EXTERNAL CONSTANT too")
                v = VarInfo(g.name, g.type, "VAR_EXTERNAL", constant=g.constant or d.constant,
                            init=g.init if g.constant else None, span=d.span, pyname=g.pyname)
            table[k] = v
            return v
        if d.section == "VAR_GLOBAL" and info is not None:
            self.sink.error("E0091", d.span, f"VAR_GLOBAL inside a {kind.lower().replace('_', ' ')} is not supported: "
                            "declare globals at the top level or in the CONFIGURATION, and use VAR_EXTERNAL here")
            return None
        if d.section == "VAR_IN_OUT" and d.init is not None:
            self.sink.error("E0020", d.span, "a VAR_IN_OUT cannot have an initial value: it refers to the caller's variable")
        t = self.resolve(d.type, scope)
        if isinstance(t, FBType) and kind == "FUNCTION" and d.section != "VAR_IN_OUT":
            self.sink.error("E0020", d.span, "a FUNCTION keeps no state between calls, so it cannot hold a function block instance")
        init = None
        if d.init is not None:
            init = self.folder.fold_init(d.init, t, scope)
        elif isinstance(d.type, A.NamedType) and d.type.name.upper() in self.alias_inits:
            init = self.alias_inits[d.type.name.upper()]
        if d.constant and d.init is None and not isinstance(t, ErrorType):
            self.sink.warning("W0102", d.span, f"CONSTANT '{d.name}' has no value; it is the default of {t}")
        v = VarInfo(d.name, t, d.section, d.constant, d.retain, d.persistent, init, d.span, d.pragmas,
                    pyname=_py_name(d.name))
        table[k] = v
        return v

    def declare_globals(self) -> None:
        for unit in self.p.units:
            for d in unit.globals:
                self._declare_global(d)
        for unit in self.p.units:
            for c in unit.configurations:
                for d in c.globals:
                    self._declare_global(d)
                for r in c.resources:
                    for d in r.globals:
                        self._declare_global(d)

    def _declare_global(self, d: A.VarDecl) -> None:
        if d.section != "VAR_GLOBAL":
            self.sink.error("E0091", d.span, f"{d.section} is not allowed here; use VAR_GLOBAL")
            return
        v = self._declare_var(self.p.globals, d, None, None)
        if v is not None:
            v.pyname = _py_name(d.name)

    # ------------------------------------------------------------ configuration
    def configuration(self) -> None:
        confs = [c for u in self.p.units for c in u.configurations]
        if not confs:
            return
        if len(confs) > 1:
            self.sink.error("E0070", confs[1].span, f"only one CONFIGURATION per project (the first is '{confs[0].name}')")
        c = confs[0]
        tasks: dict[str, TaskInfo] = {}
        instances: list[InstanceInfo] = []
        seen_inst: set[str] = set()
        order = 0
        for r in c.resources:
            for t in r.tasks:
                k = t.name.upper()
                if k in tasks:
                    self.sink.error("E0070", t.span, f"task '{t.name}' is declared twice")
                    continue
                interval = None
                priority = 0
                for pname, pexpr, pspan in t.params:
                    if pname == "INTERVAL":
                        interval = self.folder.const_time_ns(pexpr)
                        if interval is not None and interval <= 0:
                            self.sink.error("E0070", pspan, "a task INTERVAL must be greater than zero")
                            interval = None
                    elif pname == "PRIORITY":
                        pr = self.folder.const_int(pexpr, None)
                        if pr is not None:
                            if not 0 <= pr <= 31:
                                self.sink.error("E0070", pspan, f"PRIORITY {pr} is outside 0..31")
                            priority = pr
                    elif pname == "SINGLE":
                        self.sink.error("E0091", pspan, "event tasks (SINGLE) are not supported yet; use INTERVAL")
                    else:
                        self.sink.error("E0070", pspan, f"unknown task parameter '{pname}' (INTERVAL, PRIORITY)")
                if interval is None:
                    if not any(pn == "INTERVAL" for pn, _, _ in t.params):
                        self.sink.error("E0070", t.span, f"task '{t.name}' needs an INTERVAL, e.g. INTERVAL := T#100ms")
                    interval = 0
                tasks[k] = TaskInfo(t.name, interval, priority, t.span, order)
                order += 1
            for pi in r.programs:
                k = pi.name.upper()
                if k in seen_inst:
                    self.sink.error("E0070", pi.span, f"program instance '{pi.name}' is declared twice")
                    continue
                seen_inst.add(k)
                pou = self.p.pous.get(pi.pou.upper())
                if pou is None or pou.kind != "PROGRAM":
                    what = "is not a PROGRAM" if pou is not None else "does not exist"
                    self.sink.error("E0070", pi.span, f"'{pi.pou}' {what}")
                    continue
                task = None
                if pi.task is not None:
                    task = tasks.get(pi.task.upper())
                    if task is None:
                        known = ", ".join(t.name for t in tasks.values()) or "none declared"
                        self.sink.error("E0070", pi.span, f"unknown task '{pi.task}' (tasks: {known})")
                        continue
                if pi.args:
                    self.sink.error("E0091", pi.span, "arguments on a program instance are not supported yet")
                instances.append(InstanceInfo(pi.name, pou, task, pi.span))
        self.p.config = ConfigInfo(c.name, list(tasks.values()), instances, c.span)


class _DeclScope:
    """Scope for constant expressions inside a POU's declarations: the
    CONSTANT variables declared so far."""

    def __init__(self, info: PouInfo):
        self.info = info


_PY_RESERVED = {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
    "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with",
    "yield", "self", "match", "case", "type", "print", "len", "range", "int", "float", "str", "bool",
    "list", "min", "max", "abs", "round",
}


def _py_name(name: str) -> str:
    """User names keep their spelling in generated code; a name Python
    reserves gets a `__` suffix, which no ST identifier can contain."""
    if name in _PY_RESERVED or name.lower() in _PY_RESERVED:
        return name + "__"
    return name


def _py_class_name(name: str) -> str:
    return "P_" + name
