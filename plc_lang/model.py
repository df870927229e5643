"""What the checker hands to the compiler: resolved symbols and side tables.

The AST stays untouched; types and constant values of expressions live in
side tables keyed by node (identity), as in rusty.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ast as A
from .source import SourceFile, Span
from .types import Type


@dataclass(eq=False)
class VarInfo:
    name: str                      # as declared
    type: Type
    section: str                   # VAR, VAR_INPUT, ..., VAR_GLOBAL
    constant: bool = False
    retain: bool = False
    persistent: bool = False
    init: object = None            # folded initial value (see checker.fold_init); None = type default
    span: Span | None = None
    pragmas: tuple = ()
    aliases: tuple[str, ...] = ()  # other accepted parameter names (CODESYS spellings)
    pyname: str = ""               # attribute / local name in generated code

    @property
    def key(self) -> str:
        return self.name.upper()

    @property
    def is_interface(self) -> bool:
        return self.section in ("VAR_INPUT", "VAR_OUTPUT", "VAR_IN_OUT")


@dataclass(eq=False)
class PouInfo:
    name: str
    kind: str                      # PROGRAM, FUNCTION, FUNCTION_BLOCK
    decl: A.Pou | None             # None for standard blocks written in Python
    vars: dict[str, VarInfo] = field(default_factory=dict)   # UPPER -> var, declaration order
    return_type: Type | None = None
    std: bool = False              # a standard FB implemented in plc_lang/stdlib/blocks.py
    pyname: str = ""

    @property
    def key(self) -> str:
        return self.name.upper()

    def params(self) -> list[VarInfo]:
        return [v for v in self.vars.values() if v.section in ("VAR_INPUT", "VAR_IN_OUT")]

    def inputs(self) -> list[VarInfo]:
        return [v for v in self.vars.values() if v.section == "VAR_INPUT"]

    def outputs(self) -> list[VarInfo]:
        return [v for v in self.vars.values() if v.section == "VAR_OUTPUT"]

    def lookup_param(self, name: str) -> VarInfo | None:
        k = name.upper()
        v = self.vars.get(k)
        if v is not None:
            return v
        for v in self.vars.values():
            if k in v.aliases:
                return v
        return None


@dataclass(eq=False)
class TaskInfo:
    name: str
    interval_ns: int
    priority: int
    span: Span
    order: int                     # declaration order, breaks priority ties


@dataclass(eq=False)
class InstanceInfo:
    name: str                      # Main
    pou: PouInfo
    task: TaskInfo | None
    span: Span


@dataclass(eq=False)
class ConfigInfo:
    name: str
    tasks: list[TaskInfo]
    instances: list[InstanceInfo]
    span: Span


@dataclass(frozen=True)
class Ref:
    """What a Name node refers to."""
    kind: str                      # "var", "global", "enum", "fn_result"
    var: VarInfo | None = None
    enum: object = None
    member: str | None = None


@dataclass(eq=False)
class CheckedProject:
    sources: dict[str, SourceFile]
    units: list[A.CompilationUnit]
    pous: dict[str, PouInfo]                   # user POUs, UPPER -> info
    std_fbs: dict[str, PouInfo]
    types: dict[str, Type]                     # user types, UPPER -> type
    globals: dict[str, VarInfo]
    config: ConfigInfo | None
    expr_types: dict[object, Type] = field(default_factory=dict)
    consts: dict[object, object] = field(default_factory=dict)      # node -> folded value
    refs: dict[object, Ref] = field(default_factory=dict)           # Name node -> Ref
    calls: dict[object, object] = field(default_factory=dict)       # Call/CallStmt -> CallInfo
    op_types: dict[object, Type] = field(default_factory=dict)     # BinOp -> operand type
    for_ranges: dict[object, tuple[int, int] | None] = field(default_factory=dict)
    source_hash: str = ""

    def fb_or_pou(self, key: str) -> PouInfo | None:
        return self.pous.get(key) or self.std_fbs.get(key)


@dataclass(eq=False)
class CallInfo:
    """How a call binds: the callee and each argument in parameter order."""
    kind: str                      # "fb", "function", "std", "conv", "io" (IO_OK...), "test" (ASSERT_...)
    name: str                      # callee name (UPPER for std functions)
    pou: PouInfo | None            # user FUNCTION / FB type
    inputs: list[tuple[VarInfo | None, A.Expr]]       # VAR_INPUT / VAR_IN_OUT bindings
    outputs: list[tuple[VarInfo, A.Expr, bool]]       # (output, target, negated)
    result_type: Type | None = None
    arg_types: list[Type] = field(default_factory=list)   # std functions: the operand types
    node: object = None            # ASSERT_EQ: the comparison (an ast.BinOp) it checks
