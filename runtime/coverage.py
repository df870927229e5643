"""Coverage data: hits per ST statement and branch, merged across runs.

`gridplc test --coverage` and `gridplc sim --scenario --coverage` compile the
program with counters (plc_lang/instrument.py), then add what the run hit to
a data file (default `.gridplc-coverage.json` in the current directory):

    {"format": "gridplc-coverage/1",
     "files": {
      "programs/protect.st": {
       "sha256": "<of the source text>",
       "statements": {"41:5": 120, "43:9": 0},
       "branches": {
        "41:5/if2": {"line": 42, "label": "IF arm 2 (ELSIF tMax > 55.0)",
                     "never": "IF arm 2 (ELSIF tMax > 55.0) never taken", "hits": 0}}}}}

Statement keys are `line:col` of the statement; a branch key is the
`line:col` of the IF/CASE/FOR/WHILE that owns it and which branch (`if2`,
`else`, `none` (no arm taken), `case3`, `entered`, `skipped`). Merging adds
hits key by key, so it does not matter which process or command ran first;
the file is written sorted and without timestamps, so the same runs give the
same bytes. A source whose text changed (another sha256) starts again from
the new run's counts. Paths are relative to the current directory when the
file lies below it.

Reports: `summary()` (per file statements and branches hit/total), and
`missing()` (a listing of the source with what never ran), `write_html()`
(one annotated page per source file and an index): `gridplc coverage`.
"""
from __future__ import annotations

import fcntl
import hashlib
import html
import json
import os
import re
from contextlib import contextmanager

FORMAT = "gridplc-coverage/1"
DEFAULT_FILE = ".gridplc-coverage.json"


class CoverageError(Exception):
    pass


# ---------------------------------------------------------------- collecting
def norm_path(path: str) -> str:
    full = os.path.abspath(path)
    rel = os.path.relpath(full)
    return full if rel.startswith("..") else rel


def from_programs(programs) -> dict:
    """The hits of instrumented CompiledPrograms as coverage data."""
    data = empty()
    for prog in programs:
        merge(data, _from_program(prog))
    return data


def _from_program(program) -> dict:
    cov = program.coverage
    files: dict[str, dict] = {}
    sources = program.project.sources
    for pt in cov.points:
        src = sources.get(pt.file)
        if src is None:
            continue
        f = files.setdefault(norm_path(pt.file), {"sha256": hashlib.sha256(src.text.encode()).hexdigest(),
                                                  "statements": {}, "branches": {}})
        hits = cov.hits(pt)
        if pt.kind == "statement":
            f["statements"][pt.key] = f["statements"].get(pt.key, 0) + hits
        else:
            b = f["branches"].setdefault(pt.key, {"line": pt.line, "label": pt.label, "never": pt.never, "hits": 0})
            b["hits"] += hits
    return {"format": FORMAT, "files": files}


def empty() -> dict:
    return {"format": FORMAT, "files": {}}


def merge(into: dict, other: dict, notes: list[str] | None = None) -> dict:
    """Add other's hits to into (in place). A file whose sha256 differs takes
    other's counts alone (its source changed between the runs)."""
    for path, f in other["files"].items():
        mine = into["files"].get(path)
        if mine is None or mine["sha256"] != f["sha256"]:
            if mine is not None and notes is not None:
                notes.append(f"coverage: {path} changed since its earlier counts were recorded; they were dropped")
            into["files"][path] = json.loads(json.dumps(f))
            continue
        for k, h in f["statements"].items():
            mine["statements"][k] = mine["statements"].get(k, 0) + h
        for k, b in f["branches"].items():
            m = mine["branches"].get(k)
            if m is None:
                mine["branches"][k] = dict(b)
            else:
                m["hits"] += b["hits"]
    return into


# ---------------------------------------------------------------- the data file
def load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return empty()
    except (OSError, ValueError) as e:
        raise CoverageError(f"{path}: not a coverage data file ({e}); remove it or run `gridplc coverage --erase`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise CoverageError(f"{path}: not a {FORMAT} data file; remove it or run `gridplc coverage --erase`")
    return data


def dumps(data: dict) -> str:
    """Sorted, one statement or branch a line: the same data, the same bytes."""
    d = json.dumps
    out = ["{", f' "format": {d(FORMAT)},', ' "files": {']
    paths = sorted(data["files"])
    for i, path in enumerate(paths):
        f = data["files"][path]
        stmts = [f"   {d(k)}: {f['statements'][k]}" for k in sorted(f["statements"], key=_stmt_order)]
        branches = [f"   {d(k)}: " + d({"line": b["line"], "label": b["label"], "never": b["never"], "hits": b["hits"]})
                    for k, b in sorted(f["branches"].items(), key=lambda kv: _branch_order(kv[0]))]
        out.append(f"  {d(path)}: {{")
        out.append(f'   "sha256": {d(f["sha256"])},')
        out.append('   "statements": {' + ("\n" + ",\n".join(" " + x for x in stmts) + "\n   " if stmts else "") + "},")
        out.append('   "branches": {' + ("\n" + ",\n".join(" " + x for x in branches) + "\n   " if branches else "") + "}")
        out.append("  }" + ("," if i < len(paths) - 1 else ""))
    out.append(" }")
    out.append("}")
    return "\n".join(out) + "\n"


@contextmanager
def _locked(path: str):
    """Processes that add to one data file take turns (the lock file stays)."""
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def accumulate(path: str, data: dict, notes: list[str] | None = None) -> dict:
    """Add data to the file at path (atomically, under a lock); returns the total."""
    with _locked(path):
        total = merge(load(path), data, notes)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(dumps(total))
        os.replace(tmp, path)
    return total


def erase(path: str) -> bool:
    found = False
    for p in (path, path + ".lock"):
        try:
            os.remove(p)
            found = True
        except FileNotFoundError:
            pass
    return found


def _stmt_order(key: str):
    line, col = key.split(":")
    return int(line), int(col)


_SUFFIX_RANK = {"if": 0, "case": 0, "else": 1, "none": 2, "entered": 3, "skipped": 4}


def _branch_order(key: str):
    owner, suffix = key.split("/", 1)
    m = re.match(r"([a-z]+)(\d*)$", suffix)
    name, num = (m.group(1), int(m.group(2) or 0)) if m else (suffix, 0)
    return (*_stmt_order(owner), _SUFFIX_RANK.get(name, 9), num, suffix)


# ---------------------------------------------------------------- reports
def _counts(f: dict) -> tuple[int, int, int, int]:
    st = f["statements"].values()
    br = [b["hits"] for b in f["branches"].values()]
    return sum(1 for h in st if h > 0), len(st), sum(1 for h in br if h > 0), len(br)


def _pct(hit: int, total: int) -> str:
    return f"{100.0 * hit / total:5.1f}%" if total else "    -"


def summary(data: dict, title: str = "") -> str:
    """Per file: statements hit/total and branches hit/total."""
    paths = sorted(data["files"])
    width = max([len("file")] + [len(p) for p in paths] + [len("total")])
    lines = [title] if title else []
    lines.append(f"{'file':<{width}}  {'statements':>16}  {'branches':>16}")
    tot = [0, 0, 0, 0]
    for p in paths:
        c = _counts(data["files"][p])
        tot = [a + b for a, b in zip(tot, c)]
        lines.append(_summary_row(p, width, c))
    if len(paths) != 1:
        lines.append(_summary_row("total", width, tuple(tot)))
    return "\n".join(lines)


def _summary_row(name: str, width: int, c) -> str:
    sh, st, bh, bt = c
    return f"{name:<{width}}  {f'{sh}/{st}':>9} {_pct(sh, st)}  {f'{bh}/{bt}':>9} {_pct(bh, bt)}"


def _read_source(path: str, f: dict) -> tuple[list[str] | None, str | None]:
    """The source lines, or why they cannot be shown."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None, f"{path}: source not found; counts only"
    if hashlib.sha256(text.encode()).hexdigest() != f["sha256"]:
        return None, f"{path}: the source changed since these counts were recorded; counts only"
    return text.splitlines(), None


def _line_marks(f: dict):
    """line -> (hits of its statements (max), any statement never run, [branches never taken])."""
    hits: dict[int, int] = {}
    missed: set[int] = set()
    for k, h in f["statements"].items():
        line = _stmt_order(k)[0]
        hits[line] = max(hits.get(line, 0), h)
        if h == 0:
            missed.add(line)
    branches: dict[int, list[dict]] = {}
    for k, b in sorted(f["branches"].items(), key=lambda kv: _branch_order(kv[0])):
        if b["hits"] == 0:
            branches.setdefault(b["line"], []).append(b)
    return hits, missed, branches


def missing(data: dict, context: int = 1) -> str:
    """A listing of every file's source around what never ran: `>>` marks a
    line with a statement never run, `!` one with a branch never taken; then
    each branch never taken as `file:line description`."""
    out = []
    for path in sorted(data["files"]):
        f = data["files"][path]
        hits, missed, branches = _line_marks(f)
        if not missed and not branches:
            continue
        sh, st, bh, bt = _counts(f)
        out.append(f"{path}: {st - sh} of {st} statements never ran, {bt - bh} of {bt} branches never taken")
        lines, why = _read_source(path, f)
        if lines is None:
            out.append(f"  ({why})")
            for line in sorted(missed):
                out.append(f"  {path}:{line} statement never ran")
        else:
            marked = sorted(missed | set(branches))
            show = sorted({n for m in marked for n in range(m - context, m + context + 1) if 1 <= n <= len(lines)})
            prev = None
            for n in show:
                if prev is not None and n != prev + 1:
                    out.append("       ...")
                prev = n
                mark = ">>" if n in missed else (" !" if n in branches else "  ")
                count = str(hits[n]) if n in hits else ""
                out.append(f"  {mark} {n:>5} {count:>7} | {lines[n - 1].rstrip()}")
        for line in sorted(branches):
            for b in branches[line]:
                out.append(f"  {path}:{line} {b['never']}")
        out.append("")
    return "\n".join(out).rstrip("\n") + ("\n" if out else "")


_CSS = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
td,th{padding:0 .6em;text-align:left}td.n,td.h{text-align:right;color:#666}
pre{margin:0;font-family:monospace}tr.miss{background:#fdd}tr.part{background:#ffe8b0}
tr.hit{background:#e6f6e6}tr.note td{color:#a00;font-size:90%}"""


def write_html(data: dict, out_dir: str) -> list[str]:
    """index.html and one page per source file; returns the files written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    pages = _page_names(sorted(data["files"]))
    rows = []
    for path in sorted(data["files"]):
        f = data["files"][path]
        sh, st, bh, bt = _counts(f)
        rows.append(f"<tr><td><a href=\"{pages[path]}\">{html.escape(path)}</a></td>"
                    f"<td>{sh}/{st}</td><td>{_pct(sh, st).strip()}</td><td>{bh}/{bt}</td><td>{_pct(bh, bt).strip()}</td></tr>")
        target = os.path.join(out_dir, pages[path])
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(_file_page(path, f))
        written.append(target)
    index = os.path.join(out_dir, "index.html")
    with open(index, "w", encoding="utf-8") as fh:
        fh.write(f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gridplc coverage</title>"
                 f"<style>{_CSS}</style></head><body>\n<h1>gridplc coverage</h1>\n<table>\n"
                 "<tr><th>file</th><th>statements</th><th></th><th>branches</th><th></th></tr>\n"
                 + "\n".join(rows) + "\n</table>\n</body></html>\n")
    written.append(index)
    return written


def _page_names(paths: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", p.lstrip("/")) or "source"
        name, n = base + ".html", 2
        while name in used:
            name, n = f"{base}-{n}.html", n + 1
        used.add(name)
        out[p] = name
    return out


def _file_page(path: str, f: dict) -> str:
    hits, missed, branches = _line_marks(f)
    sh, st, bh, bt = _counts(f)
    head = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(path)}</title>"
            f"<style>{_CSS}</style></head><body>\n<p><a href=\"index.html\">index</a></p>\n"
            f"<h1>{html.escape(path)}</h1>\n<p>statements {sh}/{st} {_pct(sh, st).strip()}, "
            f"branches {bh}/{bt} {_pct(bh, bt).strip()}</p>\n")
    lines, why = _read_source(path, f)
    body = []
    if lines is None:
        body.append(f"<p>{html.escape(why)}</p>\n<ul>")
        body += [f"<li>line {n}: statement never ran</li>" for n in sorted(missed)]
        body += [f"<li>line {n}: {html.escape(b['never'])}</li>" for n in sorted(branches) for b in branches[n]]
        body.append("</ul>")
    else:
        body.append("<table>")
        for n, text in enumerate(lines, 1):
            cls = "miss" if n in missed else ("part" if n in branches else ("hit" if n in hits else ""))
            count = str(hits[n]) if n in hits else ""
            attr = f" class=\"{cls}\"" if cls else ""
            body.append(f"<tr id=\"L{n}\"{attr}><td class=\"n\">{n}</td><td class=\"h\">{count}</td>"
                        f"<td><pre>{html.escape(text.rstrip())}</pre></td></tr>")
            for b in branches.get(n, ()):
                body.append(f"<tr class=\"note\"><td></td><td></td><td>{html.escape(b['never'])}</td></tr>")
        body.append("</table>")
    return head + "\n".join(body) + "\n</body></html>\n"
