"""SunSpec over Modbus: finding the model chain and binding points by name.

A SunSpec device starts its holding registers with the marker 'SunS'
(0x5375 0x6E53) at 40000, 0 or 50000 (tried in that order), followed by a
chain of models, each `ID, L` and L registers of points, ended by ID 0xFFFF.
An I/O map names a point as "model.point" ("802.SoC"); a model the device
repeats is numbered from 1 ("802:2.SoC" is the second battery).

The point tables below follow the published SunSpec information models
(github.com/sunspec/models, json/model_<id>.json): 1 common, 124 basic
storage controls, 203 three-phase wye meter, 802 battery base, 803
lithium-ion battery bank (its fixed block; points of the repeating string
groups cannot be bound by name). Offsets count from the model's ID register.

"Not implemented" values are BAD, never numbers: 0x8000 (int16, and a scale
factor), 0xFFFF (uint16, enum16, bitfield16), 0x80000000 (int32),
0xFFFFFFFF (uint32, enum32, bitfield32), 0 (acc16, acc32), NaN (float32).
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from .modbus_codec import Field, raw_to_words, words_to_raw

MARKER = (0x5375, 0x6E53)
BASES = (40000, 0, 50000)
END_ID = 0xFFFF
MAX_MODELS = 64            # a chain longer than this is a broken device, not a big one


@dataclass(frozen=True)
class SunSpecPoint:
    name: str
    offset: int            # from the model's ID register
    type: str              # SunSpec type: int16 uint16 ... sunssf string pad
    size: int = 1
    sf: str | int | None = None    # name of the scale-factor point, or a fixed exponent
    access: str = "R"      # "R" or "RW"


@dataclass(frozen=True)
class ModelDef:
    id: int
    name: str
    length: int            # registers after ID and L in the fixed block
    points: dict


def _model(mid: int, name: str, rows: list[tuple]) -> ModelDef:
    points = {}
    off = 2
    for row in rows:
        pname, typ, size, sf, access = row
        points[pname] = SunSpecPoint(pname, off, typ, size, sf, access)
        off += size
    return ModelDef(mid, name, off - 2, points)


def _r(name, typ, size=1, sf=None, access="R"):
    return (name, typ, size, sf, access)


_COMMON = _model(1, "common", [
    _r("Mn", "string", 16), _r("Md", "string", 16), _r("Opt", "string", 8), _r("Vr", "string", 8),
    _r("SN", "string", 16), _r("DA", "uint16", access="RW"), _r("Pad", "pad"),
])

_STORAGE = _model(124, "storage", [
    _r("WChaMax", "uint16", sf="WChaMax_SF", access="RW"),
    _r("WChaGra", "uint16", sf="WChaDisChaGra_SF", access="RW"),
    _r("WDisChaGra", "uint16", sf="WChaDisChaGra_SF", access="RW"),
    _r("StorCtl_Mod", "bitfield16", access="RW"),
    _r("VAChaMax", "uint16", sf="VAChaMax_SF", access="RW"),
    _r("MinRsvPct", "uint16", sf="MinRsvPct_SF", access="RW"),
    _r("ChaState", "uint16", sf="ChaState_SF"),
    _r("StorAval", "uint16", sf="StorAval_SF"),
    _r("InBatV", "uint16", sf="InBatV_SF"),
    _r("ChaSt", "enum16"),
    _r("OutWRte", "int16", sf="InOutWRte_SF", access="RW"),
    _r("InWRte", "int16", sf="InOutWRte_SF", access="RW"),
    _r("InOutWRte_WinTms", "uint16", access="RW"),
    _r("InOutWRte_RvrtTms", "uint16", access="RW"),
    _r("InOutWRte_RmpTms", "uint16", access="RW"),
    _r("ChaGriSet", "enum16", access="RW"),
    _r("WChaMax_SF", "sunssf"), _r("WChaDisChaGra_SF", "sunssf"), _r("VAChaMax_SF", "sunssf"),
    _r("MinRsvPct_SF", "sunssf"), _r("ChaState_SF", "sunssf"), _r("StorAval_SF", "sunssf"),
    _r("InBatV_SF", "sunssf"), _r("InOutWRte_SF", "sunssf"),
])


def _meter_rows() -> list[tuple]:
    rows = [_r("A", "int16", sf="A_SF")] + [_r(f"Aph{p}", "int16", sf="A_SF") for p in "ABC"] + [_r("A_SF", "sunssf")]
    rows += [_r("PhV", "int16", sf="V_SF")] + [_r(f"PhVph{p}", "int16", sf="V_SF") for p in "ABC"]
    rows += [_r("PPV", "int16", sf="V_SF")] + [_r(f"PhVph{p}", "int16", sf="V_SF") for p in ("AB", "BC", "CA")]
    rows += [_r("V_SF", "sunssf"), _r("Hz", "int16", sf="Hz_SF"), _r("Hz_SF", "sunssf")]
    for q, sf in (("W", "W_SF"), ("VA", "VA_SF"), ("VAR", "VAR_SF"), ("PF", "PF_SF")):
        rows += [_r(q, "int16", sf=sf)] + [_r(f"{q}ph{p}", "int16", sf=sf) for p in "ABC"] + [_r(sf, "sunssf")]
    for base, sf in (("TotWh", "TotWh_SF"), ("TotVAh", "TotVAh_SF")):
        for d in ("Exp", "Imp"):
            rows += [_r(f"{base}{d}", "acc32", 2, sf)] + [_r(f"{base}{d}Ph{p}", "acc32", 2, sf) for p in "ABC"]
        rows.append(_r(sf, "sunssf"))
    for d in ("ImpQ1", "ImpQ2", "ExpQ3", "ExpQ4"):
        rows += [_r(f"TotVArh{d}", "acc32", 2, "TotVArh_SF")] + \
                [_r(f"TotVArh{d}Ph{p}", "acc32", 2, "TotVArh_SF") for p in "ABC"]
    rows += [_r("TotVArh_SF", "sunssf"), _r("Evt", "bitfield32", 2)]
    return rows


_METER = _model(203, "ac_meter", _meter_rows())

_BATTERY = _model(802, "battery", [
    _r("AHRtg", "uint16", sf="AHRtg_SF"), _r("WHRtg", "uint16", sf="WHRtg_SF"),
    _r("WChaRteMax", "uint16", sf="WChaDisChaMax_SF"), _r("WDisChaRteMax", "uint16", sf="WChaDisChaMax_SF"),
    _r("DisChaRte", "uint16", sf="DisChaRte_SF"),
    _r("SoCMax", "uint16", sf="SoC_SF"), _r("SoCMin", "uint16", sf="SoC_SF"),
    _r("SoCRsvMax", "uint16", sf="SoC_SF", access="RW"), _r("SoCRsvMin", "uint16", sf="SoC_SF", access="RW"),
    _r("SoC", "uint16", sf="SoC_SF"), _r("DoD", "uint16", sf="DoD_SF"), _r("SoH", "uint16", sf="SoH_SF"),
    _r("NCyc", "uint32", 2), _r("ChaSt", "enum16"), _r("LocRemCtl", "enum16"),
    _r("Hb", "uint16"), _r("CtrlHb", "uint16", access="RW"), _r("AlmRst", "uint16", access="RW"),
    _r("Typ", "enum16"), _r("State", "enum16"), _r("StateVnd", "enum16"), _r("WarrDt", "uint32", 2),
    _r("Evt1", "bitfield32", 2), _r("Evt2", "bitfield32", 2), _r("EvtVnd1", "bitfield32", 2),
    _r("EvtVnd2", "bitfield32", 2),
    _r("V", "uint16", sf="V_SF"), _r("VMax", "uint16", sf="V_SF"), _r("VMin", "uint16", sf="V_SF"),
    _r("CellVMax", "uint16", sf="CellV_SF"), _r("CellVMaxStr", "uint16"), _r("CellVMaxMod", "uint16"),
    _r("CellVMin", "uint16", sf="CellV_SF"), _r("CellVMinStr", "uint16"), _r("CellVMinMod", "uint16"),
    _r("CellVAvg", "uint16", sf="CellV_SF"),
    _r("A", "int16", sf="A_SF"), _r("AChaMax", "uint16", sf="AMax_SF"), _r("ADisChaMax", "uint16", sf="AMax_SF"),
    _r("W", "int16", sf="W_SF"), _r("ReqInvState", "enum16"), _r("ReqW", "int16", sf="W_SF"),
    _r("SetOp", "enum16", access="RW"), _r("SetInvState", "enum16", access="RW"),
    _r("AHRtg_SF", "sunssf"), _r("WHRtg_SF", "sunssf"), _r("WChaDisChaMax_SF", "sunssf"),
    _r("DisChaRte_SF", "sunssf"), _r("SoC_SF", "sunssf"), _r("DoD_SF", "sunssf"), _r("SoH_SF", "sunssf"),
    _r("V_SF", "sunssf"), _r("CellV_SF", "sunssf"), _r("A_SF", "sunssf"), _r("AMax_SF", "sunssf"),
    _r("W_SF", "sunssf"),
])

# The published JSON gives ModTmpAvg no scale factor, beside its siblings'
# ModTmp_SF; a temperature average in other units than the max and min is
# not what any device does, so it takes ModTmp_SF here.
_LI_BANK = _model(803, "lithium_ion_bank", [
    _r("NStr", "uint16"), _r("NStrCon", "uint16"),
    _r("ModTmpMax", "int16", sf="ModTmp_SF"), _r("ModTmpMaxStr", "uint16"), _r("ModTmpMaxMod", "uint16"),
    _r("ModTmpMin", "int16", sf="ModTmp_SF"), _r("ModTmpMinStr", "uint16"), _r("ModTmpMinMod", "uint16"),
    _r("ModTmpAvg", "int16", sf="ModTmp_SF"),
    _r("StrVMax", "uint16", sf="V_SF"), _r("StrVMaxStr", "uint16"), _r("StrVMin", "uint16", sf="V_SF"),
    _r("StrVMinStr", "uint16"), _r("StrVAvg", "uint16", sf="V_SF"),
    _r("StrAMax", "int16", sf="A_SF"), _r("StrAMaxStr", "uint16"), _r("StrAMin", "int16", sf="A_SF"),
    _r("StrAMinStr", "uint16"), _r("StrAAvg", "int16", sf="A_SF"), _r("NCellBal", "uint16"),
    _r("CellV_SF", "sunssf"), _r("ModTmp_SF", "sunssf"), _r("A_SF", "sunssf"), _r("SoH_SF", "sunssf"),
    _r("SoC_SF", "sunssf"), _r("V_SF", "sunssf"),
])
LI_BANK_STRING_LENGTH = 32     # registers of one repeating string group of model 803

MODELS: dict[int, ModelDef] = {m.id: m for m in (_COMMON, _STORAGE, _METER, _BATTERY, _LI_BANK)}

# SunSpec type -> (Modbus codec type, raw "not implemented" value)
_CODEC = {
    "int16": ("INT16", -0x8000), "sunssf": ("INT16", -0x8000),
    "uint16": ("UINT16", 0xFFFF), "enum16": ("UINT16", 0xFFFF), "bitfield16": ("UINT16", 0xFFFF),
    "count": ("UINT16", 0xFFFF), "acc16": ("UINT16", 0),
    "int32": ("INT32", -0x80000000),
    "uint32": ("UINT32", 0xFFFFFFFF), "enum32": ("UINT32", 0xFFFFFFFF), "bitfield32": ("UINT32", 0xFFFFFFFF),
    "acc32": ("UINT32", 0),
    "float32": ("FLOAT32", math.nan),
}


def codec_type(sunspec_type: str) -> tuple[str, object] | None:
    """(Modbus type, raw not-implemented value), None for strings and pads."""
    return _CODEC.get(sunspec_type)


# ---------------------------------------------------------------- names
_REF = re.compile(r"(\d+)(?::(\d+))?\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class PointRef:
    model: int
    index: int             # 1 = the first instance of the model on the device
    point: str


def parse_ref(text: str) -> PointRef:
    m = _REF.fullmatch(text or "")
    if m is None:
        raise ValueError(f"{text!r}: write model.point, e.g. \"802.SoC\" (a repeated model: \"802:2.SoC\")")
    index = int(m.group(2) or 1)
    if index < 1:
        raise ValueError(f"{text!r}: model instances count from 1")
    return PointRef(int(m.group(1)), index, m.group(3))


def check_ref(text: str) -> str | None:
    """What is wrong with a point name by the tables alone (None: usable)."""
    try:
        ref = parse_ref(text)
    except ValueError as e:
        return str(e)
    model = MODELS.get(ref.model)
    if model is None:
        return f"model {ref.model} is not one gridplc knows (known: {', '.join(map(str, sorted(MODELS)))})"
    pt = model.points.get(ref.point)
    if pt is None:
        same = [n for n in model.points if n.lower() == ref.point.lower()]
        close = same or difflib.get_close_matches(ref.point, list(model.points), 3)
        return f"model {ref.model} ({model.name}) has no point '{ref.point}'" + \
            (f" (did you mean {', '.join(close)}?)" if close else "")
    if codec_type(pt.type) is None:
        return f"{text} is a {pt.type}, not a number"
    return None


# ---------------------------------------------------------------- the chain on a device
@dataclass(frozen=True)
class ModelInstance:
    id: int
    index: int             # 1-based among models of this id
    address: int           # of its ID register
    length: int            # L as the device says


@dataclass
class SunSpecMap:
    base: int
    models: list

    def find(self, model: int, index: int = 1) -> ModelInstance | None:
        n = 0
        for m in self.models:
            if m.id == model:
                n += 1
                if n == index:
                    return m
        return None

    def describe(self) -> list[str]:
        return [f"{m.id}" + (f":{m.index}" if m.index > 1 else "") + f"@{m.address}" for m in self.models]


class SunSpecError(Exception):
    """The device is not (or not a well-formed) SunSpec device."""


# read(address, count) -> the holding registers, or None when the device
# refused (an exception response)
Reader = Callable[[int, int], Awaitable[list | None]]


async def discover(read: Reader, base: int | None = None) -> SunSpecMap:
    """Find the marker (at `base`, or 40000, 0, 50000) and walk the chain."""
    bases = (base,) if base is not None else BASES
    found = None
    for b in bases:
        regs = await read(b, 2)
        if regs is not None and tuple(regs[:2]) == MARKER:
            found = b
            break
    if found is None:
        raise SunSpecError(f"no SunSpec marker 'SunS' at {' or '.join(map(str, bases))}")
    models: list[ModelInstance] = []
    counts: dict[int, int] = {}
    addr = found + 2
    while True:
        if addr + 1 > 0xFFFF:
            raise SunSpecError(f"the model chain runs past register 65535 (after {len(models)} models)")
        head = await read(addr, 2)
        if head is None or len(head) < 2:
            raise SunSpecError(f"cannot read the model header at {addr}")
        mid, length = head[0], head[1]
        if mid == END_ID:
            break
        if len(models) >= MAX_MODELS:
            raise SunSpecError(f"more than {MAX_MODELS} models and no end marker")
        counts[mid] = counts.get(mid, 0) + 1
        models.append(ModelInstance(mid, counts[mid], addr, length))
        addr += 2 + length
    return SunSpecMap(found, models)


def resolve(smap: SunSpecMap, text: str) -> Field | str:
    """The register Field of a named point on this device, or what is wrong."""
    problem = check_ref(text)
    if problem:
        return problem
    ref = parse_ref(text)
    inst = smap.find(ref.model, ref.index)
    if inst is None:
        have = ", ".join(smap.describe()) or "none"
        return f"the device has no model {ref.model}" + (f" instance {ref.index}" if ref.index > 1 else "") + \
            f" (models: {have})"
    model = MODELS[ref.model]
    pt = model.points[ref.point]
    if pt.offset - 2 + pt.size > inst.length:
        return f"model {ref.model} on the device is {inst.length} registers long; {ref.point} lies beyond it"
    typ, na = codec_type(pt.type)
    sf_address = sf_fixed = None
    if isinstance(pt.sf, str):
        sf_pt = model.points[pt.sf]
        if sf_pt.offset - 2 + 1 > inst.length:
            return f"model {ref.model} on the device is {inst.length} registers long; {pt.sf} lies beyond it"
        sf_address = inst.address + sf_pt.offset
    elif isinstance(pt.sf, int):
        sf_fixed = pt.sf
    return Field("holding", inst.address + pt.offset, typ, sf_address=sf_address, sf_fixed=sf_fixed,
                 not_implemented=na)


def point_access(text: str) -> str:
    """"R" or "RW" as the model defines the point (check_ref it first)."""
    ref = parse_ref(text)
    return MODELS[ref.model].points[ref.point].access


# ---------------------------------------------------------------- the device side (simulators)
class ImageBuilder:
    """Lays out a SunSpec register image: marker, models, end. Points are
    written by name; unwritten numeric points read as "not implemented"."""

    def __init__(self, base: int = 40000):
        self.base = base
        self.words: dict[int, int] = {base: MARKER[0], base + 1: MARKER[1]}
        self.models: list[ModelInstance] = []
        self._next = base + 2
        self._writable: set[int] = set()

    def add(self, model_id: int, extra: int = 0) -> ModelInstance:
        """Append a model (its fixed block plus `extra` registers of repeating
        groups, which read as 0)."""
        model = MODELS[model_id]
        length = model.length + extra
        index = 1 + sum(1 for m in self.models if m.id == model_id)
        inst = ModelInstance(model_id, index, self._next, length)
        self.words[inst.address] = model_id
        self.words[inst.address + 1] = length
        for pt in model.points.values():
            ct = codec_type(pt.type)
            for k in range(pt.size):
                a = inst.address + pt.offset + k
                self.words[a] = 0
                if pt.access == "RW":
                    self._writable.add(a)
            if ct is not None:
                self._set_raw(inst.address + pt.offset, ct[0], ct[1])
        for k in range(extra):
            self.words[inst.address + 2 + model.length + k] = 0
        self.models.append(inst)
        self._next = inst.address + 2 + length
        return inst

    def finish(self) -> None:
        self.words[self._next] = END_ID
        self.words[self._next + 1] = 0

    def address_of(self, model_id: int, point: str, index: int = 1) -> int:
        inst = SunSpecMap(self.base, self.models).find(model_id, index)
        return inst.address + MODELS[model_id].points[point].offset

    def writable(self, address: int) -> bool:
        return address in self._writable

    def _set_raw(self, address: int, typ: str, raw) -> None:
        for k, w in enumerate(raw_to_words(raw, typ)):
            self.words[address + k] = w

    def set(self, model_id: int, point: str, raw, index: int = 1) -> None:
        """Write a raw (already scaled) value."""
        pt = MODELS[model_id].points[point]
        self._set_raw(self.address_of(model_id, point, index), codec_type(pt.type)[0], raw)

    def set_string(self, model_id: int, point: str, text: str, index: int = 1) -> None:
        pt = MODELS[model_id].points[point]
        data = text.encode("ascii")[:2 * pt.size].ljust(2 * pt.size, b"\0")
        a = self.address_of(model_id, point, index)
        for k in range(pt.size):
            self.words[a + k] = int.from_bytes(data[2 * k:2 * k + 2], "big")

    def set_not_implemented(self, model_id: int, point: str, index: int = 1) -> None:
        pt = MODELS[model_id].points[point]
        typ, na = codec_type(pt.type)
        self._set_raw(self.address_of(model_id, point, index), typ, na)

    def get(self, model_id: int, point: str, index: int = 1):
        """A point's raw value as the registers hold it."""
        pt = MODELS[model_id].points[point]
        typ = codec_type(pt.type)[0]
        a = self.address_of(model_id, point, index)
        return words_to_raw([self.words[a + k] for k in range(pt.size)], typ)
