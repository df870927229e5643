"""IEC 61131-3 types as OPC UA sees them, in plain data (no asyncua here).

    BOOL                 Boolean
    SINT INT DINT LINT   SByte Int16 Int32 Int64
    USINT UINT UDINT ULINT, BYTE WORD DWORD LWORD
                         Byte UInt16 UInt32 UInt64
    REAL LREAL           Float Double
    STRING WSTRING       String (longer than the declared length: Bad_OutOfRange)
    TIME                 Duration (a Double of milliseconds; whole ms only)
    LTIME                Int64 nanoseconds
    DATE DATE_AND_TIME   DateTime
    TIME_OF_DAY          UInt32 milliseconds since midnight
    enumerations         Int32 with EnumStrings (EnumValues when not 0..n-1)
    subranges            their base type, the bounds as EURange

The server process converts with these codecs (server_values.py); the
runtime process only needs the table.
"""
from __future__ import annotations

from dataclasses import dataclass

from plc_lang.types import (BoolType, DateType, EnumType, IntType, RealType, StringType, SubrangeType,
                            TimeType, Type, strip_subrange)

# OPC UA built-in DataType NodeIds (namespace 0)
DATATYPE_IDS = {"Boolean": 1, "SByte": 2, "Byte": 3, "Int16": 4, "UInt16": 5, "Int32": 6, "UInt32": 7,
                "Int64": 8, "UInt64": 9, "Float": 10, "Double": 11, "String": 12, "DateTime": 13,
                "Duration": 290}

_INTS = {(8, True): "SByte", (16, True): "Int16", (32, True): "Int32", (64, True): "Int64",
         (8, False): "Byte", (16, False): "UInt16", (32, False): "UInt32", (64, False): "UInt64"}


@dataclass(frozen=True)
class UaType:
    datatype: str            # name in DATATYPE_IDS
    variant: str             # asyncua VariantType name
    codec: str               # plain | time_ms | ltime_ns | date_s | string | enum
    lo: float | None = None  # inherent bounds (subranges, enums) checked on write
    hi: float | None = None
    length: int | None = None                       # STRING(n)
    enum: tuple[tuple[int, str], ...] | None = None  # (value, name) in declaration order


def ua_type(t: Type) -> UaType | None:
    """None for a type OPC UA gets no scalar for (structs, FBs: objects)."""
    ts = strip_subrange(t)
    if isinstance(ts, BoolType):
        return UaType("Boolean", "Boolean", "plain")
    if isinstance(ts, IntType):
        name = _INTS[(ts.bits, ts.signed)]
        if isinstance(t, SubrangeType):
            return UaType(name, name, "plain", t.lo, t.hi)
        return UaType(name, name, "plain")
    if isinstance(ts, RealType):
        name = "Float" if ts.bits == 32 else "Double"
        return UaType(name, name, "plain")
    if isinstance(ts, TimeType):
        if ts.unit_ns == 1_000_000:
            return UaType("Duration", "Double", "time_ms")
        return UaType("Int64", "Int64", "ltime_ns")
    if isinstance(ts, DateType):
        if ts.name == "TIME_OF_DAY":
            return UaType("UInt32", "UInt32", "plain", 0, 86_400_000 - 1)
        return UaType("DateTime", "DateTime", "date_s")
    if isinstance(ts, StringType):
        return UaType("String", "String", "string", length=ts.length)
    if isinstance(ts, EnumType):
        members = tuple((v, ts.display[k]) for k, v in ts.members.items())
        return UaType("Int32", "Int32", "enum", enum=members)
    return None


def st_text(value, ut: UaType) -> str:
    """A checked OPC UA value (server_values.check) as the text Engine.queue_write parses."""
    if ut.codec == "string":
        return "'" + value + "'"           # parse_value drops the outer quotes and nothing else
    if ut.codec == "enum":
        return dict(ut.enum)[value]
    if ut.codec == "ltime_ns":
        return f"{value}ns"
    if ut.codec == "time_ms":
        return str(int(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)
    return str(value)
