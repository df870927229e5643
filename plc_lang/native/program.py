"""A compiled program whose scans run as native code.

NativeProgram stands in for codegen.CompiledProgram: the engine calls
load() and gets a namespace with the same class names, whose instances are
ctypes structures over the C state. Tags, snapshots, retain and the
scenario runner read and write them as attributes and indexes, as they do
the Python backend's objects (REAL fields read as the binary32 value, BOOL
as bool, arrays index from 0, flat for several dimensions).
"""
from __future__ import annotations

import ctypes

from ..codegen import CompiledProgram
from ..types import ArrayType, BoolType, EnumType, FBType, IntType, RealType, StructType, TimeType, strip_subrange
from ..values import DivisionByZero, IndexOutOfBounds, PlcFault, WatchdogExpired
from . import build as _build
from .cgen import CGen, NativeUnsupported, _own_vars
from .prelude import STD_LAYOUT

_C_SCALARS = {"bool": ctypes.c_bool, "int16_t": ctypes.c_int16, "int64_t": ctypes.c_int64}
_INTS = {(8, True): ctypes.c_int8, (16, True): ctypes.c_int16, (32, True): ctypes.c_int32,
         (64, True): ctypes.c_int64, (8, False): ctypes.c_uint8, (16, False): ctypes.c_uint16,
         (32, False): ctypes.c_uint32, (64, False): ctypes.c_uint64}


class GpCtx(ctypes.Structure):
    _fields_ = [("now_ms", ctypes.c_int64), ("now_ns", ctypes.c_int64), ("wd", ctypes.POINTER(ctypes.c_int32)),
                ("g", ctypes.c_void_p), ("fault_kind", ctypes.c_int32), ("fault_site", ctypes.c_int32),
                ("fault_i", ctypes.c_int64), ("fault_j", ctypes.c_int64), ("fault_f", ctypes.c_double)]


class NativeProgram:
    """Built by native_program(); everything but load() is the Python program's."""

    backend = "native"

    def __init__(self, py: CompiledProgram, gen: CGen, lib_path: str):
        self.py = py
        self.c_source = gen.source
        self.c_sites = gen.sites
        self.lib_path = lib_path
        self._lib = ctypes.CDLL(lib_path)
        self._classes = _Classes(py.project, gen, self._lib)

    def __getattr__(self, name):
        return getattr(self.py, name)

    def load(self) -> dict:
        lib = self._lib
        gp = GpCtx()
        wd = (ctypes.c_int32 * 1)()
        gp.wd = ctypes.cast(wd, ctypes.POINTER(ctypes.c_int32))
        ns: dict = {"wd__": wd, "gp__": gp}
        sites = self.c_sites
        keep = []

        base_g = self._classes.globals_cls
        init_g = lib.gp_init_Globals__

        class Globals__(base_g):
            def __init__(self, ctx=None):
                super().__init__()
                init_g(ctypes.byref(self))
                gp.g = ctypes.addressof(self)
                keep.append(self)          # the C side holds its address

        ns["Globals__"] = Globals__
        for key, info in self.py.project.pous.items():
            if info.kind != "PROGRAM":
                continue
            ns[self.py.class_names[key]] = _program_class(self._classes.types[("P", key)], info.name, lib, gp,
                                                          wd, sites)
        return ns


def _program_class(base, name: str, lib, gp: GpCtx, wd, sites):
    init = getattr(lib, f"gp_init_P_{name}")
    run = getattr(lib, f"gp_run_P_{name}")
    run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    run.restype = ctypes.c_int
    gp_addr = ctypes.addressof(gp)

    def __init__(self, ctx=None):
        base.__init__(self)
        init(ctypes.byref(self))
        self._ctx = ctx
        self._addr = ctypes.addressof(self)

    def body__(self):
        # plain integers cross the call: the cheapest ctypes conversion (about 1 us in all)
        c = self._ctx
        if run(gp_addr, self._addr, c.now_ms, c.now_ns):
            raise _fault(gp, wd, sites)

    return type(base.__name__, (base,), {"__init__": __init__, "body__": body__})


def _fault(gp: GpCtx, wd, sites) -> PlcFault:
    """The exception the Python backend raises for the same fault, with its text and place."""
    kind, site, i, j = gp.fault_kind, gp.fault_site, gp.fault_i, gp.fault_j
    gp.fault_kind = 0
    span, lo, hi = sites[site]
    where = str(span) if span is not None else None
    if kind == 1:
        return IndexOutOfBounds(f"index {i} is outside the array bounds {lo}..{hi}", where)
    if kind == 2:
        return DivisionByZero("division by zero", where)
    if kind == 3:
        wd[0] = 0
        return WatchdogExpired("watchdog: the scan ran too long (stopped in a loop)", where)
    if kind == 4:
        return PlcFault(f"value {i} is outside the subrange {lo}..{hi}", where)
    if kind == 5:
        return PlcFault(f"MUX selector {i} is outside 0..{j - 1}", where)
    if kind == 6:
        return PlcFault("arithmetic error: cannot convert float NaN to integer", where)
    if kind == 7:
        return PlcFault("arithmetic error: cannot convert float infinity to integer", where)
    if kind == 8:
        return PlcFault("arithmetic error: math domain error", where)
    if kind == 9:
        return PlcFault("FOR step is 0", where)
    return PlcFault(f"native fault {kind}", where)


class _Classes:
    """ctypes mirrors of the C structs, checked field by field against the
    layout table the C compiler wrote."""

    def __init__(self, project, gen: CGen, lib):
        self.types: dict = {}
        self.std: dict = {}
        for name, fields in STD_LAYOUT.items():
            self.std[name] = type(f"{name}__", (ctypes.Structure,),
                                  {"_fields_": [(f, _C_SCALARS[ct]) for f, ct in fields]})
        for t in gen._struct_order():
            if isinstance(t, StructType):
                fields = [(f.name, self.ctype(f.type)) for f in t.fields.values()]
                self.types[("S", t.name.upper())] = self._record("S_" + t.name, fields)
            else:
                fields = [(v.pyname, self.ctype(v.type)) for v in _own_vars(t.pou)]
                self.types[("P", t.pou.key)] = self._record("P_" + t.pou.name, fields)
        self.globals_cls = self._record("Globals__", [(v.pyname, self.ctype(v.type))
                                                      for v in project.globals.values()])
        self._check(gen, lib)

    @staticmethod
    def _record(name, fields):
        return type(name, (ctypes.Structure,), {"_fields_": fields or [("empty__", ctypes.c_char)]})

    def ctype(self, t):
        t = strip_subrange(t)
        if isinstance(t, BoolType):
            return ctypes.c_bool
        if isinstance(t, EnumType):
            t = t.base
        if isinstance(t, IntType):
            return _INTS[(t.bits, t.signed)]
        if isinstance(t, RealType):
            return ctypes.c_float if t.bits == 32 else ctypes.c_double
        if isinstance(t, TimeType):
            return ctypes.c_int64
        if isinstance(t, ArrayType):
            return self.ctype(t.elem) * t.size
        if isinstance(t, StructType):
            return self.types[("S", t.name.upper())]
        if isinstance(t, FBType):
            return self.std[t.pou.name.upper()] if t.pou.std else self.types[("P", t.pou.key)]
        raise NativeUnsupported(f"variables of type {t}")

    def _check(self, gen: CGen, lib) -> None:
        want = []
        by_cname = {("S_" + k[1] if k[0] == "S" else "P_" + k[1]): v for k, v in self.types.items()}
        for cname, fields in gen.layout:
            cls = self.globals_cls if cname == "Globals__" else _lookup(by_cname, cname)
            want.append(ctypes.sizeof(cls))
            want.extend(getattr(cls, f[2:]).offset for f in fields)
        for name, fields in STD_LAYOUT.items():
            cls = self.std[name]
            want.append(ctypes.sizeof(cls))
            want.extend(getattr(cls, f).offset for f, _ in fields)
        n = ctypes.c_int64.in_dll(lib, "gp_layout_len").value
        got = list((ctypes.c_int64 * n).in_dll(lib, "gp_layout"))
        if got != want:
            raise _build.NativeBuildError("the C struct layout and its ctypes mirror differ")


def _lookup(by_cname: dict, cname: str):
    for k, v in by_cname.items():
        if k.upper() == cname.upper():
            return v
    raise KeyError(cname)


def native_program(py: CompiledProgram):
    """(NativeProgram, None), or (None, why not) when the program uses what
    the native backend does not compile or no C compiler is here."""
    from .cgen import generate_c
    if py.coverage is not None:
        return None, "coverage counters run on the Python backend"
    try:
        gen = generate_c(py.project)
        lib = _build.build(gen.source)
        return NativeProgram(py, gen, lib), None
    except NativeUnsupported as e:
        return None, f"the native backend does not compile {e}"
    except _build.NativeBuildError as e:
        return None, str(e)
