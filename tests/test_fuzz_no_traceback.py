"""Seeded mutation fuzzing: no ST input, however broken, makes gridplc raise.

Valid programs are mutated (tokens and characters deleted, duplicated,
swapped; keywords, operators, digits, quotes and comment openers inserted;
the text truncated; identifiers renamed; lines duplicated or swapped). Every
mutant goes through check_project and compile_project in-process: all
failures must come back as diagnostics. A mutant that compiles is run for 3
scans: runtime faults come back as Fault objects, never as exceptions.
A sample of mutants also goes through the `gridplc` CLI.

Everything is seeded: a failure message gives the program and seed, and
`mutant(program, seed)` rebuilds the exact source.
"""
from __future__ import annotations

from tests.stutil import shared_dir
import random
import re
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest

from plc_lang.driver import check_project, compile_project
from plc_lang.source import SourceFile
from runtime.engine import Engine, EngineError

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

BASES = {
    "site_protect": shared_dir() / "bench" / "site_protect.st",
    "battery_guard": REPO / "programs" / "examples" / "battery_guard.st",
    "clean": FIXTURES / "clean.st",
    "set_types": FIXTURES / "set_types.st",
    "json_values": FIXTURES / "json_values.st",
    "two_tasks": FIXTURES / "two_tasks.st",
    "div_fault": FIXTURES / "div_fault.st",
    "indexing": FIXTURES / "indexing.st",
    "globals": FIXTURES / "globals.st",
}
MUTANTS_PER_BASE = 50                    # 9 x 50 = 450 mutants in-process
CLI_SAMPLE = [(name, seed) for name in BASES for seed in (7, 19)] + [("site_protect", 23), ("clean", 23)]  # 20

TOKEN = re.compile(r"\(\*|\*\)|:=|=>|<>|<=|>=|\*\*|\.\.|[A-Za-z_][A-Za-z0-9_]*#[A-Za-z0-9_.:#-]+"
                   r"|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'[^'\n]*'|\S")
IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
KEYWORDS = {
    "IF", "THEN", "ELSIF", "ELSE", "END_IF", "CASE", "OF", "END_CASE", "FOR", "TO", "BY", "DO", "END_FOR",
    "WHILE", "END_WHILE", "REPEAT", "UNTIL", "END_REPEAT", "EXIT", "CONTINUE", "RETURN", "VAR", "VAR_INPUT",
    "VAR_OUTPUT", "VAR_IN_OUT", "VAR_TEMP", "VAR_GLOBAL", "VAR_EXTERNAL", "CONSTANT", "END_VAR", "PROGRAM",
    "END_PROGRAM", "FUNCTION", "END_FUNCTION", "FUNCTION_BLOCK", "END_FUNCTION_BLOCK", "TYPE", "END_TYPE",
    "STRUCT", "END_STRUCT", "ARRAY", "AND", "OR", "XOR", "NOT", "MOD", "TRUE", "FALSE", "CONFIGURATION",
    "END_CONFIGURATION", "RESOURCE", "END_RESOURCE", "TASK", "WITH", "ON", "INTERVAL", "PRIORITY",
}
INSERTS = sorted(KEYWORDS) + [
    "INT", "REAL", "LREAL", "BOOL", "TIME", "STRING", "DINT", "SINT", "WORD", "TON", "R_TRIG", "CTU",
    ":=", "=>", "+", "-", "*", "/", "**", "=", "<>", "<", ">=", "(", ")", "[", "]", ";", ":", ",", ".", "..",
    "&", "#", "%IX0.0", "0", "1", "-1", "7", "32767", "32768", "2147483648", "99999999999999999999", "0.0",
    "1.0E38", "1.0E39", "16#FFFF", "2#2", "T#5s", "T#-1ms", "T#5x", "D#2024-02-30", "'", '"', "'$'", "'$Q'",
    "(*", "*)", "(* (*", "{", "}", "$",
]
CHARS = "0123456789'\"()*#$.:;[]{}+-=<>&%_ \n\t"


def _tokens(s: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in TOKEN.finditer(s)]


NUMBERS = ["0", "1", "2", "-1", "3", "8", "9", "24", "47", "48", "100", "127", "128", "255", "256", "32767",
           "32768", "65535", "2147483647", "0.0", "0.5", "1.0", "-3.5", "1.0E38", "3.4E38"]
OPERATORS = ["+", "-", "*", "/", "MOD", "**", "AND", "OR", "XOR", "=", "<>", "<", ">", "<=", ">="]
KEYWORD_GROUPS = [["TRUE", "FALSE"], ["AND", "OR", "XOR"], ["EXIT", "CONTINUE", "RETURN"],
                  ["VAR", "VAR_INPUT", "VAR_OUTPUT", "VAR_IN_OUT", "VAR_TEMP", "VAR_GLOBAL", "VAR_EXTERNAL"],
                  ["FUNCTION", "FUNCTION_BLOCK", "PROGRAM"], ["END_FUNCTION", "END_FUNCTION_BLOCK", "END_PROGRAM"]]
TYPES = ["INT", "SINT", "DINT", "LINT", "UINT", "USINT", "REAL", "LREAL", "BOOL", "BYTE", "WORD", "TIME",
         "STRING", "TON", "TOF", "R_TRIG", "CTU"]


def _same_kind(tok: str, s: str, rng: random.Random) -> str:
    """A replacement for tok of the same lexical kind, so the text often still parses."""
    if tok.upper() in OPERATORS:
        return rng.choice(OPERATORS)
    if tok.upper() in TYPES:
        return rng.choice(TYPES)
    if tok[0].isdigit():
        return rng.choice(NUMBERS)
    if tok[0].isalpha() or tok[0] == "_":
        if tok.upper() in KEYWORDS:
            group = next((g for g in KEYWORD_GROUPS if tok.upper() in g), sorted(KEYWORDS))
            return rng.choice(group)
        names = sorted({m.group(0) for m in IDENT.finditer(s)} - KEYWORDS)
        return rng.choice(names)
    return rng.choice(INSERTS)


def _mutate_once(s: str, rng: random.Random) -> str:
    toks = _tokens(s)
    if not toks:
        return s + rng.choice(INSERTS)
    a, b = toks[rng.randrange(len(toks))]
    op = rng.choice([0, 1, 2, 3, 3, 4, 5, 6, 7, 7, 7, 8, 9, 10, 11, 11, 11, 11])
    if op == 0:                                       # delete a token
        return s[:a] + s[b:]
    if op == 1:                                       # duplicate a token
        return s[:b] + " " + s[a:b] + s[b:]
    if op == 2:                                       # swap two tokens
        c, d = toks[rng.randrange(len(toks))]
        if c < a:
            a, b, c, d = c, d, a, b
        if c >= b:
            return s[:a] + s[c:d] + s[b:c] + s[a:b] + s[d:]
        return s
    if op == 3:                                       # insert a keyword, operator, literal, quote, comment opener
        return s[:a] + " " + rng.choice(INSERTS) + " " + s[a:]
    if op == 4:                                       # truncate
        return s[:rng.randrange(len(s) + 1)]
    if op == 5:                                       # delete a character
        i = rng.randrange(len(s))
        return s[:i] + s[i + 1:]
    if op == 6:                                       # insert a character
        i = rng.randrange(len(s) + 1)
        return s[:i] + rng.choice(CHARS) + s[i:]
    if op == 7:                                       # rename: some uses of one identifier become another
        names = sorted({m.group(0) for m in IDENT.finditer(s)} - KEYWORDS)
        if len(names) < 2:
            return s
        x, y = rng.sample(names, 2)
        spots = [m for m in re.finditer(rf"\b{re.escape(x)}\b", s)]
        keep = set(rng.sample(range(len(spots)), rng.randint(1, len(spots))))
        out, pos = [], 0
        for i, m in enumerate(spots):
            out.append(s[pos:m.start()])
            out.append(y if i in keep else x)
            pos = m.end()
        return "".join(out) + s[pos:]
    if op == 8:                                       # swap two identifiers everywhere
        names = sorted({m.group(0) for m in IDENT.finditer(s)} - KEYWORDS)
        if len(names) < 2:
            return s
        x, y = rng.sample(names, 2)
        return IDENT.sub(lambda m: y if m.group(0) == x else x if m.group(0) == y else m.group(0), s)
    if op == 11:                                      # replace a token by one of the same kind
        return s[:a] + _same_kind(s[a:b], s, rng) + s[b:]
    lines = s.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if op == 9:                                       # duplicate a line elsewhere
        lines.insert(j, lines[i])
    else:                                             # swap two lines
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@lru_cache(maxsize=None)
def _base(name: str) -> str:
    return BASES[name].read_text(encoding="utf-8")


def mutant(name: str, seed: int) -> str:
    """The mutant of base program `name` for `seed` (deterministic)."""
    rng = random.Random(f"{name}:{seed}")
    s = _base(name)
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3, 5))):
        s = _mutate_once(s, rng)
    return s


def _engine(result) -> Engine | None:
    """An engine for a compiled mutant, or None when it has nothing runnable
    (EngineError is an acceptable outcome)."""
    program = result.program
    project = result.project
    attempts = [dict(interval_ns=10_000_000)]
    if project is not None and project.config is not None:
        attempts.append(dict(interval_ns=None))
    progs = [p.name for p in project.pous.values() if p.kind == "PROGRAM"] if project is not None else []
    if progs:
        attempts.append(dict(interval_ns=10_000_000, program_name=progs[0]))
    for kw in attempts:
        try:
            return Engine(program, watchdog_s=0.1, **kw)
        except EngineError:
            continue
    return None


def exercise(src: str, path: str = "mutant.st") -> str | None:
    """Run one source through check, compile and 3 scans. None when nothing
    escaped; otherwise a description of what went wrong."""
    try:
        sources = [SourceFile(path, src)]
        checked = check_project(sources)
        assert isinstance(checked.diagnostics, list)
        result = compile_project(sources)
        if not result.ok:
            return None
        if result.program is None:
            return "compile_project reported no errors but produced no program"
        engine = _engine(result)
        if engine is None:
            return None
        try:
            fault = engine.run(3)
            engine.snapshot()
        finally:
            engine.close()
        if fault is not None and fault.what.startswith("internal error"):
            return f"the engine contained an internal error (a gridplc bug): {fault}"
        return None
    except Exception:                           # noqa: BLE001 - this is what the test looks for
        return traceback.format_exc(limit=-6)


def _report(name: str, failures: list[tuple[int, str]]) -> str:
    lines = [f"{len(failures)} mutant(s) of {name} raised instead of giving diagnostics/faults:"]
    for seed, what in failures[:5]:
        lines.append(f"\n=== program {name!r}, seed {seed}  "
                     f"(rebuild: tests.test_fuzz_no_traceback.mutant({name!r}, {seed}))")
        lines.append(what.rstrip())
        lines.append("--- mutant source")
        lines.append(mutant(name, seed))
    if len(failures) > 5:
        lines.append(f"\n... and seeds {[s for s, _ in failures[5:]]}")
    return "\n".join(lines)


def test_bases_are_valid():
    for name in BASES:
        r = compile_project([SourceFile(name, _base(name))])
        assert r.ok, (name, [str(d) for d in r.diagnostics if d.is_error])


def test_mutation_is_deterministic():
    assert [mutant("clean", s) for s in range(20)] == [mutant("clean", s) for s in range(20)]
    assert len({mutant("clean", s) for s in range(20)}) > 15      # and does mutate


@pytest.mark.parametrize("name", list(BASES))
def test_mutants_never_raise(name):
    failures = []
    for seed in range(MUTANTS_PER_BASE):
        what = exercise(mutant(name, seed))
        if what is not None:
            failures.append((seed, what))
    assert not failures, _report(name, failures)


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_mutants_through_the_cli(tmp_path):
    jobs = []
    for name, seed in CLI_SAMPLE:
        src = mutant(name, seed)
        path = tmp_path / f"{name}_{seed}.st"
        path.write_text(src, encoding="utf-8")
        sim = ["sim", str(path), "--cycles", "2", "--watchdog", "200ms", "--json"]
        if "CONFIGURATION" not in src.upper():
            sim += ["--interval", "10ms"]
        jobs.append((name, seed, ["check", str(path)]))
        jobs.append((name, seed, sim))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda j: _cli(j[2]), jobs))
    bad = []
    for (name, seed, args), cp in zip(jobs, results):
        if "Traceback" in cp.stderr or cp.returncode not in (0, 1, 2, 3) or \
                (args[0] == "check" and cp.returncode not in (0, 1)):
            bad.append(f"=== program {name!r}, seed {seed}: gridplc {' '.join(args[:1] + args[2:])} "
                       f"exited {cp.returncode}\n--- stderr\n{cp.stderr}\n--- mutant source\n{mutant(name, seed)}")
    assert not bad, "\n".join(bad)
