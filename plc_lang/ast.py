"""The Structured Text syntax tree: frozen dataclasses, each with a Span.

Nodes compare by identity (eq=False) so that later passes can key side tables
(types, constant values) on the node itself, as rusty keys on node ids.
Names keep the user's spelling; lookups normalise with `.upper()`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .source import Pragma, Span

node = dataclass(frozen=True, eq=False, slots=True)


# ------------------------------------------------------------------ expressions
class Expr:
    __slots__ = ()
    span: Span


@node
class IntLit(Expr):
    value: int
    type_name: str | None          # INT#5 -> "INT"; a bare 5 -> None
    span: Span


@node
class RealLit(Expr):
    value: float
    type_name: str | None
    text: str
    span: Span


@node
class BoolLit(Expr):
    value: bool
    type_name: str | None
    span: Span


@node
class TimeLit(Expr):
    value: int                     # TIME in milliseconds, LTIME in nanoseconds
    type_name: str                 # "TIME" or "LTIME"
    span: Span


@node
class DateLit(Expr):
    value: int                     # DATE/DT: seconds since 1970; TOD: ms since midnight
    type_name: str                 # "DATE", "TIME_OF_DAY", "DATE_AND_TIME"
    span: Span


@node
class StringLit(Expr):
    value: str
    wide: bool
    span: Span


@node
class EnumLit(Expr):
    type_name: str                 # Mode#IDLE -> "Mode"
    member: str
    span: Span


@node
class Name(Expr):
    name: str
    span: Span


@node
class Member(Expr):
    base: Expr
    name: str
    span: Span


@node
class Index(Expr):
    base: Expr
    indices: tuple[Expr, ...]
    span: Span


@node
class BitAccess(Expr):
    base: Expr
    bit: int
    span: Span


@node
class Arg:
    name: str | None               # None for a positional argument
    value: Expr
    kind: str                      # "in", "out" (=>), "out_not" (NOT x =>)
    span: Span


@node
class Call(Expr):
    name: str
    args: tuple[Arg, ...]
    span: Span


@node
class BinOp(Expr):
    op: str                        # normalised: OR XOR AND = <> < > <= >= + - * / MOD **
    left: Expr
    right: Expr
    span: Span


@node
class UnOp(Expr):
    op: str                        # "-", "+", "NOT"
    operand: Expr
    span: Span


# ------------------------------------------------------------------ statements
class Stmt:
    __slots__ = ()
    span: Span


@node
class Assign(Stmt):
    target: Expr
    value: Expr
    span: Span


@node
class CallStmt(Stmt):
    target: Expr                   # an FB instance (any designator) or a function name
    args: tuple[Arg, ...]
    span: Span


@node
class If(Stmt):
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    else_body: tuple[Stmt, ...] | None
    span: Span


@node
class CaseLabel:
    low: Expr
    high: Expr | None              # a range `low..high`
    span: Span


@node
class CaseBranch:
    labels: tuple[CaseLabel, ...]
    body: tuple[Stmt, ...]
    span: Span


@node
class Case(Stmt):
    selector: Expr
    branches: tuple[CaseBranch, ...]
    else_body: tuple[Stmt, ...] | None
    span: Span


@node
class For(Stmt):
    var: str
    var_span: Span
    start: Expr
    end: Expr
    step: Expr | None
    body: tuple[Stmt, ...]
    span: Span


@node
class While(Stmt):
    cond: Expr
    body: tuple[Stmt, ...]
    span: Span


@node
class Repeat(Stmt):
    body: tuple[Stmt, ...]
    cond: Expr
    span: Span


@node
class Exit(Stmt):
    span: Span


@node
class Continue(Stmt):
    span: Span


@node
class Return(Stmt):
    span: Span


@node
class Empty(Stmt):
    span: Span


# ------------------------------------------------------------------ type specs
class TypeSpec:
    __slots__ = ()
    span: Span


@node
class NamedType(TypeSpec):
    name: str
    length: Expr | None            # STRING(20) / STRING[20]
    span: Span


@node
class ArraySpec(TypeSpec):
    dims: tuple[tuple[Expr, Expr], ...]
    elem: TypeSpec
    span: Span


@node
class SubrangeSpec(TypeSpec):
    base: str
    low: Expr
    high: Expr
    span: Span


@node
class EnumMember:
    name: str
    value: Expr | None
    span: Span


@node
class EnumSpec(TypeSpec):
    members: tuple[EnumMember, ...]
    base: str | None               # (A, B) INT
    span: Span


# initialisers that are not expressions
@node
class ArrayInit:
    items: tuple[tuple[int, object], ...]    # (repeat count, initialiser or None)
    span: Span


@node
class StructInit:
    fields: tuple[tuple[str, object, Span], ...]
    span: Span


# ------------------------------------------------------------------ declarations
SECTIONS = ("VAR", "VAR_INPUT", "VAR_OUTPUT", "VAR_IN_OUT", "VAR_TEMP",
            "VAR_GLOBAL", "VAR_EXTERNAL")


@node
class VarDecl:
    name: str
    type: TypeSpec
    init: object | None            # Expr, ArrayInit or StructInit
    section: str                   # one of SECTIONS
    constant: bool
    retain: bool
    persistent: bool
    location: str | None           # AT %IX0.0
    pragmas: tuple[Pragma, ...]
    span: Span


@node
class Pou:
    kind: str                      # "PROGRAM", "FUNCTION", "FUNCTION_BLOCK"
    name: str
    return_type: TypeSpec | None
    vars: tuple[VarDecl, ...]
    body: tuple[Stmt, ...]
    pragmas: tuple[Pragma, ...]
    span: Span
    end_span: Span


@node
class StructDecl:
    name: str
    fields: tuple[VarDecl, ...]
    pragmas: tuple[Pragma, ...]
    span: Span


@node
class EnumDecl:
    name: str
    spec: EnumSpec
    default: str | None
    pragmas: tuple[Pragma, ...]
    span: Span


@node
class AliasDecl:
    name: str
    type: TypeSpec
    init: object | None
    pragmas: tuple[Pragma, ...]
    span: Span


@node
class TaskDecl:
    name: str
    params: tuple[tuple[str, Expr, Span], ...]
    span: Span


@node
class ProgramInst:
    name: str
    task: str | None
    pou: str
    args: tuple[Arg, ...]
    retain: bool | None
    span: Span


@node
class Resource:
    name: str
    on: str | None
    globals: tuple[VarDecl, ...]
    tasks: tuple[TaskDecl, ...]
    programs: tuple[ProgramInst, ...]
    span: Span


@node
class Configuration:
    name: str
    globals: tuple[VarDecl, ...]
    resources: tuple[Resource, ...]
    span: Span


@node
class CompilationUnit:
    path: str
    pous: tuple[Pou, ...]
    types: tuple[object, ...]      # StructDecl | EnumDecl | AliasDecl
    configurations: tuple[Configuration, ...]
    globals: tuple[VarDecl, ...]   # top-level VAR_GLOBAL blocks
    pragmas: tuple[Pragma, ...] = field(default=())
