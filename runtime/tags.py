"""Tag paths (`Main.rack[3].vMax`) over a running program: read, write, dump.

One place for every interface that names variables: `gridplc sim --set`,
the JSON dump, and later the control socket and OPC UA server.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from plc_lang.literals import LiteralError, parse_duration_ns
from plc_lang.types import (ArrayType, BoolType, DateType, EnumType, FBType, IntType, RealType,
                            StringType, StructType, SubrangeType, TimeType, Type, strip_subrange)
from plc_lang.values import f32, wrap


class TagError(ValueError):
    pass


_STEP = re.compile(r"\s*(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]*)\])")


@dataclass(eq=False)
class Tag:
    """A resolved path: the container holding the value and how to reach it."""
    path: str
    type: Type
    holder: object          # object with the attribute, or list
    key: object             # attribute name (str) or list index (int)

    def get(self):
        if isinstance(self.key, int):
            return self.holder[self.key]
        return getattr(self.holder, self.key)

    def set(self, value) -> None:
        if isinstance(self.key, int):
            self.holder[self.key] = value
        else:
            setattr(self.holder, self.key, value)


def member_table(t: Type):
    """(UPPER name -> (python attribute, type)) for a struct or FB type."""
    if isinstance(t, StructType):
        return {k: (f.name, f.type) for k, f in t.fields.items()}
    if isinstance(t, FBType):
        out = {}
        for k, v in t.pou.vars.items():
            if v.section in ("VAR_TEMP", "RESULT", "VAR_EXTERNAL", "VAR_IN_OUT"):
                continue        # VAR_IN_OUT refers to the caller's variable: not this block's state
            out[k] = (v.pyname, v.type)
            for a in v.aliases:
                out[a] = (v.pyname, v.type)
        return out
    return {}


def resolve(path: str, roots: dict[str, tuple]) -> Tag:
    """Resolve `Inst.a.b[1, 2]`; roots maps UPPER instance names to
    (object, FBType, declared name). Tag.path is the canonical spelling."""
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", path)
    if not m:
        raise TagError(f"'{path}' is not a tag path (expected Instance.variable)")
    root = roots.get(m.group(1).upper())
    if root is None:
        raise TagError(f"'{m.group(1)}' is not a program instance (have: {', '.join(sorted(roots))})")
    obj, t = root[0], root[1]
    canon = [root_name(roots, m.group(1))]
    pos = m.end()
    holder, key = None, None
    cur_t: Type = t
    cur = obj
    steps = 0
    while pos < len(path):
        sm = _STEP.match(path, pos)
        if not sm:
            raise TagError(f"'{path}': cannot read '{path[pos:]}'")
        pos = sm.end()
        steps += 1
        if sm.group(1) is not None:
            table = member_table(strip_subrange(cur_t))
            ent = table.get(sm.group(1).upper())
            if ent is None:
                raise TagError(f"'{path}': {cur_t} has no member '{sm.group(1)}'")
            holder, key = cur, ent[0]
            canon.append("." + _declared_name(strip_subrange(cur_t), sm.group(1)))
            cur_t = ent[1]
        else:
            at = strip_subrange(cur_t)
            if not isinstance(at, ArrayType):
                raise TagError(f"'{path}': {cur_t} is not an array")
            try:
                idx = [int(x) for x in sm.group(2).split(",")]
            except ValueError:
                raise TagError(f"'{path}': array indexes must be integers") from None
            if len(idx) != len(at.dims):
                raise TagError(f"'{path}': {at} takes {len(at.dims)} index(es)")
            flat = 0
            for i, (lo, hi) in zip(idx, at.dims):
                if not lo <= i <= hi:
                    raise TagError(f"'{path}': index {i} is outside {lo}..{hi}")
                flat = flat * (hi - lo + 1) + (i - lo)
            holder, key = cur, flat
            canon.append("[" + ", ".join(str(i) for i in idx) + "]")
            cur_t = at.elem
        cur = holder[key] if isinstance(key, int) else getattr(holder, key)
    if steps == 0:
        raise TagError(f"'{path}' names a program instance; add .variable")
    return Tag("".join(canon), cur_t, holder, key)


def root_name(roots: dict, name: str) -> str:
    ent = roots.get(name.upper())
    return ent[2] if ent is not None and len(ent) > 2 else name


def _declared_name(t: Type, name: str) -> str:
    """Tag paths are canonical: members as declared (ST is case-insensitive)."""
    k = name.upper()
    if isinstance(t, StructType):
        return t.fields[k].name
    if isinstance(t, FBType):
        v = t.pou.lookup_param(name) or t.pou.vars.get(k)
        return v.name if v is not None else name
    return name


def parse_value(text: str, t: Type):
    """Text from a user (CLI, scenario file) to a value of type t, checked."""
    s = text.strip()
    ts = strip_subrange(t)
    try:
        if isinstance(ts, BoolType):
            u = s.upper()
            if u in ("TRUE", "1"):
                return True
            if u in ("FALSE", "0"):
                return False
            raise TagError(f"'{text}' is not a BOOL (TRUE/FALSE)")
        if isinstance(ts, IntType):
            v = int(s.replace("_", ""), 0) if not s.upper().startswith(("16#", "2#", "8#")) else \
                int(s.split("#", 1)[1].replace("_", ""), int(s.split("#", 1)[0]))
            lo, hi = (t.lo, t.hi) if isinstance(t, SubrangeType) else (ts.lo, ts.hi)
            if not lo <= v <= hi:
                raise TagError(f"{v} is outside {t} ({lo}..{hi})")
            return v
        if isinstance(ts, RealType):
            v = float(s)
            return f32(v) if ts.bits == 32 else v
        if isinstance(ts, TimeType):
            if "#" in s:
                s = s.split("#", 1)[1]
            if s.lstrip("-").isdigit():
                return int(s) * 1_000_000 // ts.unit_ns
            return parse_duration_ns(s) // ts.unit_ns
        if isinstance(ts, EnumType):
            name = s.split("#", 1)[-1].split(".")[-1].upper()
            if name in ts.members:
                return ts.members[name]
            raise TagError(f"'{text}' is not a value of {ts.name} ({', '.join(ts.display.values())})")
        if isinstance(ts, StringType):
            if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
                s = s[1:-1]
            return s[:ts.length]
        if isinstance(ts, DateType):
            return int(s)
    except (ValueError, LiteralError) as e:
        if isinstance(e, TagError):
            raise
        raise TagError(f"'{text}' is not a valid {t}: {e}") from None
    raise TagError(f"cannot set a value of type {t} from text")


def to_json_value(v, t: Type):
    """Values as `gridplc sim --json` prints them (issue contract): numbers,
    booleans, strings; TIME in ms; enums by name; arrays as (nested) lists;
    structs and FB instances as objects."""
    ts = strip_subrange(t)
    if isinstance(ts, (BoolType, IntType, StringType, DateType)):
        return v
    if isinstance(ts, RealType):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(ts, TimeType):
        if ts.unit_ns == 1_000_000:
            return v
        ms = v * ts.unit_ns / 1_000_000
        return int(ms) if ms == int(ms) else ms
    if isinstance(ts, EnumType):
        return ts.name_of(v)
    if isinstance(ts, ArrayType):
        flat = [to_json_value(x, ts.elem) for x in v]
        for lo, hi in reversed(ts.dims[1:]):
            n = hi - lo + 1
            flat = [flat[i:i + n] for i in range(0, len(flat), n)]
        return flat
    if isinstance(ts, (StructType, FBType)):
        out = {}
        seen = set()
        for k, (attr, ft) in member_table(ts).items():
            if attr in seen:
                continue
            seen.add(attr)
            name = ts.fields[k].name if isinstance(ts, StructType) else ts.pou.vars[k].name
            out[name] = to_json_value(getattr(v, attr), ft)
        return out
    return repr(v)


def coerce_for_store(v, t: Type):
    ts = strip_subrange(t)
    if isinstance(ts, IntType):
        return wrap(int(v), ts.bits, ts.signed)
    if isinstance(ts, RealType) and ts.bits == 32:
        return f32(float(v))
    return v


def from_json_value(v, t: Type):
    """The inverse of to_json_value for a scalar (retain files, journals)."""
    ts = strip_subrange(t)
    if isinstance(ts, BoolType):
        return bool(v)
    if isinstance(ts, IntType):
        return wrap(int(v), ts.bits, ts.signed)
    if isinstance(ts, RealType):
        x = float(v)
        return f32(x) if ts.bits == 32 else x
    if isinstance(ts, TimeType):
        return int(v) if ts.unit_ns == 1_000_000 else round(float(v) * 1_000_000 / ts.unit_ns)
    if isinstance(ts, EnumType):
        k = str(v).upper()
        if k not in ts.members:
            raise TagError(f"'{v}' is not a value of {ts.name}")
        return ts.members[k]
    if isinstance(ts, StringType):
        return str(v)[:ts.length]
    if isinstance(ts, DateType):
        return int(v)
    raise TagError(f"cannot restore a value of type {t}")


def assign_json(tag: Tag, value) -> None:
    """Store a JSON value (as to_json_value made it) into the tag, in place."""
    _assign(tag.holder, tag.key, tag.type, value)


def _assign(holder, key, t: Type, value) -> None:
    ts = strip_subrange(t)
    if isinstance(ts, ArrayType):
        cur = holder[key] if isinstance(key, int) else getattr(holder, key)
        flat = value
        for _ in ts.dims[1:]:
            flat = [x for row in flat for x in row]
        if len(flat) != len(cur):
            raise TagError(f"{len(flat)} values for {ts}")
        for i, x in enumerate(flat):
            _assign(cur, i, ts.elem, x)
        return
    if isinstance(ts, (StructType, FBType)):
        obj = holder[key] if isinstance(key, int) else getattr(holder, key)
        table = member_table(ts)
        for name, x in value.items():
            ent = table.get(name.upper())
            if ent is None:
                raise TagError(f"{ts} has no member '{name}'")
            _assign(obj, ent[0], ent[1], x)
        return
    v = from_json_value(value, t)
    if isinstance(key, int):
        holder[key] = v
    else:
        setattr(holder, key, v)
