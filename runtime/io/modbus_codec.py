"""Modbus values: registers and bits to engineering values and back, read
planning, and the checks the I/O map loader makes on Modbus points.

A point's value lives in one table (coil, discrete, input, holding) at a
0-based address and takes `register_count(type)` registers (BOOL: one bit of
a coil/discrete table, or bit 0..15 of a register with `Point.bit`).

Multi-register values: `word_order` "big" sends the high word first (Modbus's
own convention, most PLCs), "little" the low word first; `byte_order` "little"
swaps the two bytes of every register (some gateways). A point's own setting
overrides the device's.

    engineering = raw * 10**sf * scale + offset

where `sf` is 0 unless the point names a scale-factor register (an INT16
power-of-ten exponent, SunSpec's *_SF, read from the same table). A SunSpec
field also carries the raw value meaning "not implemented": such a reading is
BAD, never a number.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Sequence

from .config import Device, Point

TABLES = ("coil", "discrete", "input", "holding")
BIT_TABLES = ("coil", "discrete")
WRITABLE_TABLES = ("coil", "holding")
# registers per type; BOOL is one bit (of a coil, or of a register)
REGISTER_COUNTS = {"BOOL": 1, "INT16": 1, "UINT16": 1, "INT32": 2, "UINT32": 2, "FLOAT32": 2, "FLOAT64": 4}
# the most one read may ask for (Modbus application protocol, 6.1-6.4)
READ_LIMITS = {"coil": 2000, "discrete": 2000, "input": 125, "holding": 125}
SF_LIMIT = 10          # SunSpec scale factors are -10..10; anything else is a broken device

_F32_MAX = 3.4028234663852886e38
_STRUCT = {"INT16": "h", "UINT16": "H", "INT32": "i", "UINT32": "I", "FLOAT32": "f", "FLOAT64": "d"}


class CodecError(ValueError):
    """A value that cannot go into (or come out of) its registers."""


@dataclass(frozen=True)
class TypeInfo:
    registers: int
    lo: float              # raw range the type holds
    hi: float
    integral: bool


_TYPES = {
    "BOOL": TypeInfo(1, 0, 1, True),
    "INT16": TypeInfo(1, -(1 << 15), (1 << 15) - 1, True),
    "UINT16": TypeInfo(1, 0, (1 << 16) - 1, True),
    "INT32": TypeInfo(2, -(1 << 31), (1 << 31) - 1, True),
    "UINT32": TypeInfo(2, 0, (1 << 32) - 1, True),
    "FLOAT32": TypeInfo(2, -_F32_MAX, _F32_MAX, False),
    "FLOAT64": TypeInfo(4, -math.inf, math.inf, False),
}


def type_info(type_name: str) -> TypeInfo:
    """Registers and raw range of a Modbus type; KeyError for an unknown one."""
    return _TYPES[type_name]


def register_count(type_name: str) -> int:
    return _TYPES[type_name].registers


# ---------------------------------------------------------------- one point's coding
@dataclass(frozen=True)
class Field:
    """Where one value lives and how it is coded, the point's and the device's
    settings already merged."""
    table: str
    address: int
    type: str
    bit: int | None = None
    word_order: str = "big"
    byte_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0
    sf_address: int | None = None     # INT16 exponent register in the same table
    sf_fixed: int | None = None       # a constant exponent (a SunSpec point whose sf is a number)
    not_implemented: object = None    # raw value meaning "not implemented" (math.nan for floats)

    @property
    def count(self) -> int:
        """Addresses taken: registers, or bits of a coil/discrete table."""
        return 1 if self.table in BIT_TABLES else REGISTER_COUNTS[self.type]

    @property
    def end(self) -> int:
        return self.address + self.count

    @property
    def bits(self) -> bool:
        return self.table in BIT_TABLES


def field_of(point: Point, device: Device) -> Field:
    """The Field of a point with a fixed address (not a SunSpec one)."""
    if point.table not in TABLES or point.address is None:
        raise CodecError(f"{point.var}: no table/address")
    typ = point.type or ("BOOL" if point.table in BIT_TABLES else None)
    if typ not in REGISTER_COUNTS:
        raise CodecError(f"{point.var}: type {typ!r} is not a Modbus type")
    return Field(point.table, point.address, typ, point.bit,
                 point.word_order or device.word_order, point.byte_order or device.byte_order,
                 point.scale, point.offset, point.scale_factor)


def words_to_raw(words: Sequence[int], type_name: str, word_order: str = "big", byte_order: str = "big"):
    """The raw number in `words` (as they arrived, first register first)."""
    ws = list(words)
    if word_order == "little":
        ws.reverse()
    if byte_order == "little":
        ws = [((w & 0xFF) << 8) | (w >> 8) for w in ws]
    if type_name in ("UINT16", "BOOL"):
        return ws[0]
    data = b"".join(w.to_bytes(2, "big") for w in ws)
    return struct.unpack(">" + _STRUCT[type_name], data)[0]


def raw_to_words(raw, type_name: str, word_order: str = "big", byte_order: str = "big") -> list[int]:
    data = struct.pack(">" + _STRUCT["UINT16" if type_name == "BOOL" else type_name], raw)
    ws = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    if byte_order == "little":
        ws = [((w & 0xFF) << 8) | (w >> 8) for w in ws]
    if word_order == "little":
        ws.reverse()
    return ws


def _byte_swap(w: int, byte_order: str) -> int:
    return ((w & 0xFF) << 8) | (w >> 8) if byte_order == "little" else w


def scale_exponent(raw_sf: int) -> int | None:
    """A scale-factor register's exponent, None when unusable (SunSpec
    not-implemented 0x8000, or outside -10..10)."""
    if raw_sf is None or not -SF_LIMIT <= raw_sf <= SF_LIMIT:
        return None
    return raw_sf


def to_engineering(f: Field, raw, sf: int = 0):
    """Engineering value of a raw reading: bool for BOOL, int when the result
    is exact in integers, else float."""
    if f.type == "BOOL":
        return bool(raw)
    x = raw
    if sf:
        # divide for negative exponents: 253 / 10 is 25.3, 253 * 0.1 is not
        x = x * 10 ** sf if sf > 0 else x / 10 ** -sf
    if f.scale != 1.0:
        x = x * f.scale
    if f.offset:
        x = x + f.offset
    if isinstance(x, float) and x.is_integer() and _TYPES[f.type].integral and not sf \
            and float(f.scale).is_integer() and float(f.offset).is_integer():
        return int(x)
    return x


def decode(f: Field, data: Sequence, start: int, sf: int = 0):
    """(value, problem): the engineering value of `f` in a block read at
    `start`, or (None, why) when the reading is not a usable number."""
    return make_decoder(f)(data, start, sf)


def make_decoder(f: Field):
    """`decode` for one field as a precompiled function (data, start, sf) ->
    (value, problem): a driver calls it for every point of every poll."""
    address = f.address
    if f.bits or (f.type == "BOOL" and f.bit is None):
        return lambda data, start, sf=0: (bool(data[address - start]), None)
    if f.bit is not None:
        bit, swap = f.bit, f.byte_order == "little"

        def bit_of(data, start, sf=0):
            w = data[address - start]
            if swap:
                w = ((w & 0xFF) << 8) | (w >> 8)
            return bool((w >> bit) & 1), None
        return bit_of
    n = REGISTER_COUNTS[f.type]
    if f.byte_order == "big" and f.type == "UINT16":
        def raw(i, data):
            return data[i]
    elif f.byte_order == "big" and f.type == "INT16":
        def raw(i, data):
            w = data[i]
            return w - 0x10000 if w & 0x8000 else w
    else:
        # '<H' lays each register out low byte first: that is the byte swap
        pack = struct.Struct(("<" if f.byte_order == "little" else ">") + "H" * n).pack
        unpack = struct.Struct(">" + _STRUCT[f.type]).unpack
        if f.word_order == "little":
            def raw(i, data):
                return unpack(pack(*reversed(data[i:i + n])))[0]
        else:
            def raw(i, data):
                return unpack(pack(*data[i:i + n]))[0]
    na = f.not_implemented
    na_nan = isinstance(na, float) and math.isnan(na)
    scale, offset = f.scale, f.offset
    # exact in integers: return ints, so an INT variable is not handed 12.0
    whole = _TYPES[f.type].integral and float(scale).is_integer() and float(offset).is_integer()

    def dec(data, start, sf=0):
        x = raw(address - start, data)
        if x != x:
            return None, "not implemented" if na_nan else "NaN"
        if na is not None and x == na:
            return None, "not implemented"
        if sf:
            x = x * 10 ** sf if sf > 0 else x / 10 ** -sf     # 253 / 10 is 25.3, 253 * 0.1 is not
        elif whole:
            return (x * int(scale) + int(offset)) if scale != 1.0 or offset else x, None
        if scale != 1.0:
            x = x * scale
        if offset:
            x = x + offset
        return x, None
    return dec


def from_engineering(f: Field, value, sf: int = 0):
    """The raw number to send for an engineering value; CodecError when the
    type cannot hold it (never wrapped or clipped into something plausible)."""
    if f.type == "BOOL":
        if isinstance(value, float) and value not in (0.0, 1.0):
            raise CodecError(f"{value!r} is not a BOOL")
        return bool(value)
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)):
        raise CodecError(f"{value!r} is not a number")
    x = value
    if f.offset:
        x = x - f.offset
    if f.scale != 1.0:
        x = x / f.scale
    if sf:
        x = x / 10 ** sf if sf > 0 else x * 10 ** -sf
    info = _TYPES[f.type]
    if info.integral:
        if isinstance(x, float):
            if not math.isfinite(x):
                raise CodecError(f"{value!r} is not a finite number")
            x = round(x)            # ties to even, like REAL_TO_INT
        if not info.lo <= x <= info.hi:
            raise CodecError(f"{value!r} needs raw {x}, outside {f.type} ({int(info.lo)}..{int(info.hi)})")
        return x
    x = float(x)
    if math.isnan(x):
        raise CodecError("NaN is not a value to send")
    if f.type == "FLOAT32" and math.isfinite(x) and abs(x) > _F32_MAX:
        raise CodecError(f"{value!r} is outside FLOAT32")
    return x


def encode(f: Field, value, sf: int = 0, current_word: int | None = None) -> list:
    """Registers (or [bool] for a coil) that carry `value`. A register bit
    needs the register's current value: the other 15 bits are kept."""
    raw = from_engineering(f, value, sf)
    if f.bits:
        return [raw]
    if f.bit is not None:
        if current_word is None:
            raise CodecError("a register bit needs the register's current value")
        w = _byte_swap(current_word, f.byte_order)
        w = (w | (1 << f.bit)) if raw else (w & ~(1 << f.bit) & 0xFFFF)
        return [_byte_swap(w, f.byte_order)]
    return raw_to_words(raw, f.type, f.word_order, f.byte_order)


# ---------------------------------------------------------------- read planning
@dataclass
class ReadRequest:
    table: str
    address: int
    count: int
    members: list[int] = field(default_factory=list)   # indices into the spans planned

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(spans: Sequence, max_gap: int = 8, limit: int | None = None) -> list[ReadRequest]:
    """As few reads as cover every span (objects with .table, .address,
    .count, e.g. Field): per table, spans in address order are merged while
    the hole between them is at most `max_gap` addresses and the request stays
    within `limit` (default 125 registers, 2000 bits). Overlapping spans share
    a request."""
    out: list[ReadRequest] = []
    by_table: dict[str, list[int]] = {}
    for i, s in enumerate(spans):
        by_table.setdefault(s.table, []).append(i)
    for table in TABLES:
        idx = sorted(by_table.get(table, ()), key=lambda i: (spans[i].address, spans[i].count))
        cap = limit if limit is not None else READ_LIMITS[table]
        cur: ReadRequest | None = None
        for i in idx:
            s = spans[i]
            end = s.address + s.count
            if cur is not None and s.address - cur.end <= max_gap and max(end, cur.end) - cur.address <= cap:
                cur.count = max(end, cur.end) - cur.address
                cur.members.append(i)
                continue
            cur = ReadRequest(table, s.address, s.count, [i])
            out.append(cur)
    return out


def has_holes(req: ReadRequest, spans: Sequence) -> bool:
    """Whether the request reads addresses no span asked for."""
    covered = set()
    for i in req.members:
        covered.update(range(spans[i].address, spans[i].address + spans[i].count))
    return len(covered) < req.count


# ---------------------------------------------------------------- checks for the I/O map loader
def engineering_range(point: Point) -> tuple[float, float] | None:
    """What a point can deliver, for the type check against its variable;
    None when a scale-factor register makes it depend on the device."""
    typ = point.type or ("BOOL" if point.table in BIT_TABLES else None)
    if typ is None or point.scale_factor is not None or point.sunspec:
        return None
    info = _TYPES[typ]
    if typ == "BOOL":
        return (0.0, 1.0)
    a, b = info.lo * point.scale + point.offset, info.hi * point.scale + point.offset
    return (min(a, b), max(a, b))


def overlaps(points: Sequence[Point]) -> list[tuple[int, int, str, int]]:
    """(i, j, table, first shared address) for every pair of points of one
    device on the same registers where that is an error: two outputs would
    fight over them, an output and an input would read back what we write.
    Inputs may share registers (a status word read bit by bit and as a
    whole), and different bits of one register are separate points."""
    spans = []
    for i, p in enumerate(points):
        if p.sunspec or p.table not in TABLES or p.address is None:
            continue
        typ = p.type or ("BOOL" if p.table in BIT_TABLES else None)
        if typ not in REGISTER_COUNTS:
            continue
        n = 1 if p.table in BIT_TABLES else REGISTER_COUNTS[typ]
        spans.append((p.device, p.table, p.address, p.address + n, i, p))
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    found = []
    for a in range(len(spans)):
        dev, tbl, lo, hi, i, p = spans[a]
        for b in range(a + 1, len(spans)):
            dev2, tbl2, lo2, hi2, j, q = spans[b]
            if (dev2, tbl2) != (dev, tbl) or lo2 >= hi:
                break
            if p.direction == "input" and q.direction == "input":
                continue
            if p.bit is not None and q.bit is not None and p.bit != q.bit:
                continue
            found.append((min(i, j), max(i, j), tbl, lo2))
    return sorted(found)
