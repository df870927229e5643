"""The type model: elementary types, their widening table, and user types.

Types are plain frozen dataclasses compared structurally, so two anonymous
`ARRAY[1..8] OF REAL` are the same type (CODESYS behaviour, DESIGN.md).
User types (struct, enum, FB) compare by their declared name.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class Type:
    __slots__ = ()
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class BoolType(Type):
    name: str = "BOOL"


@dataclass(frozen=True, slots=True)
class IntType(Type):
    name: str
    bits: int
    signed: bool
    bitstring: bool = False        # BYTE/WORD/DWORD/LWORD

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


@dataclass(frozen=True, slots=True)
class RealType(Type):
    name: str
    bits: int


@dataclass(frozen=True, slots=True)
class TimeType(Type):
    name: str                      # TIME (ms) or LTIME (ns)
    unit_ns: int


@dataclass(frozen=True, slots=True)
class DateType(Type):
    name: str                      # DATE, TIME_OF_DAY, DATE_AND_TIME


@dataclass(frozen=True, slots=True)
class StringType(Type):
    wide: bool
    length: int                    # maximum characters

    @property
    def name(self) -> str:  # type: ignore[override]
        base = "WSTRING" if self.wide else "STRING"
        return base if self.length == DEFAULT_STRING_LEN else f"{base}({self.length})"


DEFAULT_STRING_LEN = 80


@dataclass(frozen=True, slots=True)
class SubrangeType(Type):
    base: IntType
    lo: int
    hi: int

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.base.name}({self.lo}..{self.hi})"


@dataclass(frozen=True, slots=True)
class ArrayType(Type):
    dims: tuple[tuple[int, int], ...]
    elem: Type

    @property
    def name(self) -> str:  # type: ignore[override]
        d = ", ".join(f"{lo}..{hi}" for lo, hi in self.dims)
        return f"ARRAY[{d}] OF {self.elem.name}"

    @property
    def size(self) -> int:
        n = 1
        for lo, hi in self.dims:
            n *= hi - lo + 1
        return n


@dataclass(frozen=True, eq=False)
class EnumType(Type):
    name: str
    members: dict[str, int]        # UPPER name -> value
    display: dict[str, str]        # UPPER name -> name as declared
    default: str                   # UPPER name of the initial value
    base: IntType

    def __eq__(self, other):
        return isinstance(other, EnumType) and other.name.upper() == self.name.upper()

    def __hash__(self):
        return hash(("enum", self.name.upper()))

    def name_of(self, value: int) -> str:
        for k, v in self.members.items():
            if v == value:
                return self.display[k]
        return str(value)


@dataclass(frozen=True, eq=False)
class StructType(Type):
    name: str
    fields: dict[str, "FieldInfo"] = field(default_factory=dict)   # UPPER -> info

    def __eq__(self, other):
        return isinstance(other, StructType) and other.name.upper() == self.name.upper()

    def __hash__(self):
        return hash(("struct", self.name.upper()))


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: Type
    init: object                   # a folded constant value, or None for the type default


@dataclass(frozen=True, eq=False)
class FBType(Type):
    name: str
    pou: object                    # the PouInfo from the symbol table

    def __eq__(self, other):
        return isinstance(other, FBType) and other.name.upper() == self.name.upper()

    def __hash__(self):
        return hash(("fb", self.name.upper()))


@dataclass(frozen=True, slots=True)
class LiteralIntType(Type):
    """An untyped integer literal (or constant expression of them): it takes
    the type its context asks for, if the value fits."""
    value: int
    name: str = "ANY_INT"


@dataclass(frozen=True, slots=True)
class LiteralRealType(Type):
    value: float
    name: str = "ANY_REAL"


@dataclass(frozen=True, slots=True)
class VoidType(Type):
    name: str = "VOID"


@dataclass(frozen=True, slots=True)
class ErrorType(Type):
    """Stands in after an error so one mistake reports once."""
    name: str = "<error>"


BOOL = BoolType()
SINT = IntType("SINT", 8, True)
INT = IntType("INT", 16, True)
DINT = IntType("DINT", 32, True)
LINT = IntType("LINT", 64, True)
USINT = IntType("USINT", 8, False)
UINT = IntType("UINT", 16, False)
UDINT = IntType("UDINT", 32, False)
ULINT = IntType("ULINT", 64, False)
BYTE = IntType("BYTE", 8, False, True)
WORD = IntType("WORD", 16, False, True)
DWORD = IntType("DWORD", 32, False, True)
LWORD = IntType("LWORD", 64, False, True)
REAL = RealType("REAL", 32)
LREAL = RealType("LREAL", 64)
TIME = TimeType("TIME", 1_000_000)
LTIME = TimeType("LTIME", 1)
DATE = DateType("DATE")
TOD = DateType("TIME_OF_DAY")
DT = DateType("DATE_AND_TIME")
STRING = StringType(False, DEFAULT_STRING_LEN)
WSTRING = StringType(True, DEFAULT_STRING_LEN)
VOID = VoidType()
ERROR = ErrorType()

ELEMENTARY: dict[str, Type] = {
    t.name: t for t in (BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, ULINT, BYTE, WORD,
                        DWORD, LWORD, REAL, LREAL, TIME, LTIME, DATE, TOD, DT)
}
ELEMENTARY["TOD"] = TOD
ELEMENTARY["DT"] = DT
ELEMENTARY["STRING"] = STRING
ELEMENTARY["WSTRING"] = WSTRING

# IEC 61131-3 (3rd ed.) implicit conversions: only these widen silently.
_WIDEN: dict[str, tuple[str, ...]] = {
    "SINT": ("INT", "DINT", "LINT", "REAL", "LREAL"),
    "INT": ("DINT", "LINT", "REAL", "LREAL"),
    "DINT": ("LINT", "LREAL"),
    "USINT": ("UINT", "UDINT", "ULINT", "INT", "DINT", "LINT", "REAL", "LREAL"),
    "UINT": ("UDINT", "ULINT", "DINT", "LINT", "REAL", "LREAL"),
    "UDINT": ("ULINT", "LINT", "LREAL"),
    "REAL": ("LREAL",),
    "BOOL": ("BYTE", "WORD", "DWORD", "LWORD"),
    "BYTE": ("WORD", "DWORD", "LWORD"),
    "WORD": ("DWORD", "LWORD"),
    "DWORD": ("LWORD",),
    "TIME": ("LTIME",),
}

# Candidates for the common type of a mixed binary operation, narrowest first.
_COMMON_ORDER = ("SINT", "USINT", "INT", "UINT", "DINT", "UDINT", "LINT", "ULINT",
                 "REAL", "LREAL", "BYTE", "WORD", "DWORD", "LWORD")


def strip_subrange(t: Type) -> Type:
    return t.base if isinstance(t, SubrangeType) else t


def is_int(t: Type) -> bool:
    t = strip_subrange(t)
    return isinstance(t, (IntType, LiteralIntType)) or isinstance(t, EnumType) and False


def is_numeric(t: Type) -> bool:
    t = strip_subrange(t)
    return isinstance(t, (IntType, RealType, LiteralIntType, LiteralRealType)) and not (
        isinstance(t, IntType) and t.bitstring)


def is_arith_int(t: Type) -> bool:
    t = strip_subrange(t)
    return isinstance(t, LiteralIntType) or isinstance(t, IntType) and not t.bitstring


def is_real(t: Type) -> bool:
    return isinstance(t, (RealType, LiteralRealType))


def is_bitwise(t: Type) -> bool:
    t = strip_subrange(t)
    return isinstance(t, (BoolType, LiteralIntType)) or isinstance(t, IntType)


def widens_to(src: Type, dst: Type) -> bool:
    """True when a value of src may be stored in dst with no conversion."""
    src = strip_subrange(src)
    dstb = strip_subrange(dst)
    if src == dstb:
        return True
    if isinstance(src, ErrorType) or isinstance(dstb, ErrorType):
        return True
    if isinstance(src, StringType) and isinstance(dstb, StringType):
        return src.wide == dstb.wide
    if isinstance(src, ArrayType) and isinstance(dstb, ArrayType):
        return src.dims == dstb.dims and src.elem == dstb.elem
    return dstb.name in _WIDEN.get(src.name, ())


def literal_fits(value: int, t: Type) -> bool:
    if isinstance(t, SubrangeType):
        return t.lo <= value <= t.hi
    if isinstance(t, IntType):
        # Bit strings take the two's complement pattern of a negative literal
        # only if it fits the signed range of the same width.
        if t.bitstring and value < 0:
            return value >= -(1 << (t.bits - 1))
        return t.lo <= value <= t.hi
    if isinstance(t, RealType):
        return True
    return False


def common_type(a: Type, b: Type) -> Type | None:
    """The narrowest type both widen to (INT + UINT -> DINT)."""
    a = strip_subrange(a)
    b = strip_subrange(b)
    if a == b:
        return a
    if widens_to(a, b):
        return b
    if widens_to(b, a):
        return a
    for name in _COMMON_ORDER:
        t = ELEMENTARY[name]
        if widens_to(a, t) and widens_to(b, t):
            return t
    return None


def smallest_int_for(value: int) -> IntType:
    for t in (INT, DINT, LINT):
        if t.lo <= value <= t.hi:
            return t
    return LINT if value < 0 else ULINT


def default_value(t: Type):
    """The initial value of a variable of type t with no initialiser."""
    t = strip_subrange(t) if not isinstance(t, SubrangeType) else t
    if isinstance(t, SubrangeType):
        return t.lo if t.lo > 0 or t.hi < 0 else 0
    if isinstance(t, BoolType):
        return False
    if isinstance(t, (IntType, TimeType, DateType)):
        return 0
    if isinstance(t, RealType):
        return 0.0
    if isinstance(t, StringType):
        return ""
    if isinstance(t, EnumType):
        return t.members[t.default]
    return None
