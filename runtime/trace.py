"""Traces of chosen tags, one sample per scan: CSV for spreadsheets, VCD for
GTKWave. Written from a ScenarioResult; deterministic byte for byte."""
from __future__ import annotations

from plc_lang.types import BoolType, EnumType, IntType, RealType, TimeType, strip_subrange


def write_csv(path: str, tag_names: list[str], rows) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("t_s," + ",".join(tag_names) + "\n")
        for t, values in rows:
            f.write(f"{t / 1e9:.6f}," + ",".join(_csv(v) for v in values) + "\n")


def _csv(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return repr(v) if isinstance(v, float) else str(v)


def _vcd_id(i: int) -> str:
    chars = "".join(chr(c) for c in range(33, 127))
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, len(chars))
        out = chars[r] + out
    return out


def write_vcd(path: str, tag_names: list[str], types, rows, timescale_ns: int = 1_000_000) -> None:
    """VCD with one variable per tag; time unit 1 ms by default."""
    kinds = []
    for t in types:
        ts = strip_subrange(t)
        if isinstance(ts, BoolType):
            kinds.append(("wire", 1))
        elif isinstance(ts, (IntType, TimeType, EnumType)):
            kinds.append(("integer", 64))
        elif isinstance(ts, RealType):
            kinds.append(("real", 64))
        else:
            kinds.append(("string", 0))
    unit = {1: "1ns", 1000: "1us", 1_000_000: "1ms"}.get(timescale_ns, "1ms")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(f"$timescale {unit} $end\n$scope module gridplc $end\n")
        for i, (name, (kind, width)) in enumerate(zip(tag_names, kinds)):
            safe = name.replace(" ", "_")
            f.write(f"$var {kind if kind != 'string' else 'real'} {width or 64} {_vcd_id(i)} {safe} $end\n")
        f.write("$upscope $end\n$enddefinitions $end\n")
        last: list = [object()] * len(tag_names)
        for t, values in rows:
            changes = []
            for i, (v, (kind, _w)) in enumerate(zip(values, kinds)):
                if v == last[i] and type(v) is type(last[i]):
                    continue
                last[i] = v
                ident = _vcd_id(i)
                if kind == "wire":
                    changes.append(f"{1 if v else 0}{ident}")
                elif kind == "integer":
                    changes.append(f"b{int(v) & ((1 << 64) - 1):b} {ident}")
                else:
                    changes.append(f"r{float(v) if not isinstance(v, str) else 0.0!r} {ident}")
            if changes:
                f.write(f"#{t // timescale_ns}\n" + "\n".join(changes) + "\n")
