"""`gridplc check` over programs and their I/O maps together.

The .toml arguments are I/O maps, or site files whose sources and io_maps
join the check. A map is first checked on its own, then against the program
(only when the program itself has no errors: binding needs a built engine).
"""
from __future__ import annotations

import tomllib

from .iomap import bind_problems, read_iomap


def split_args(files: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(ST files, map files, problems) with site files expanded."""
    from ..site import SiteError, load_site
    st, maps, problems = [], [], []
    for f in files:
        if not f.endswith(".toml"):
            st.append(f)
            continue
        try:
            with open(f, "rb") as fh:
                is_site = "site" in tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
            is_site = False          # load_iomap reports it properly
        if not is_site:
            maps.append(f)
            continue
        try:
            site = load_site(f)
        except SiteError as e:
            problems.extend(e.problems)
            continue
        st.extend(x for x in site.sources if x not in st)
        maps.extend(x for x in site.io_maps if x not in maps)
    return st, maps, problems


def check_maps(maps: list[str], result, program_name: str | None = None,
               interval_ns: int | None = None) -> tuple[list[str], set[str]]:
    """(problems of the maps, canonical paths of the variables they bind);
    `result` is the compile result of the program (None or failed: only
    each map's own checks)."""
    problems: list[str] = []
    loaded = []
    for path in maps:
        m, found = read_iomap(path)
        problems.extend(found)
        if m is not None:
            loaded.append(m)
    if result is None or not getattr(result, "ok", False) or not loaded:
        return problems, set()
    from ..engine import Engine, EngineError
    try:
        eng = Engine(result.program, program_name=program_name, interval_ns=interval_ns or 100_000_000)
    except EngineError as e:
        return problems + [f"{loaded[0].path}: cannot bind the map: {e}"], set()
    try:
        for m in loaded:
            problems.extend(bind_problems(m, eng))
        bound = set(eng.inputs) | set(eng.outputs)
        bound |= {p.var for m in loaded if m.modbus_server for p in m.modbus_server.points}
        decls = set()
        for key, inst in eng.instances.items():
            for v in inst.pou.vars.values():
                if f"{inst.name}.{v.name}" in bound and v.span is not None:
                    decls.add((v.span.file, v.span.line, v.span.col))
    finally:
        eng.close()
    return sorted(problems, key=_where), decls


def _where(problem: str):
    parts = problem.split(":", 2)
    return (parts[0], int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0)
