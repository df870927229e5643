"""ST files that carry their own expectations, like rusty's `// CHECK:` lines.

Header comments in tests/st_cases/*.st:
    // CYCLES: 5             scans to run (default 1)
    // INTERVAL: 10ms        scan period when there is no CONFIGURATION
    // EXPECT: Main.x = 5    after the last scan, the tag's JSON value
    // ERROR: E0021 @ 7      the file must fail to compile with this code on that line
    // FAULT: division by zero @ 9   the run must fault at that line
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from plc_lang.driver import compile_project
from plc_lang.literals import parse_duration_ns
from plc_lang.source import SourceFile
from runtime.engine import Engine

CASES = Path(__file__).parent / "st_cases"
_DIRECTIVE = re.compile(r"^\s*//\s*(CYCLES|INTERVAL|EXPECT|ERROR|FAULT):\s*(.*?)\s*$", re.M)


def _directives(text: str):
    out = {"CYCLES": [], "INTERVAL": [], "EXPECT": [], "ERROR": [], "FAULT": []}
    for k, v in _DIRECTIVE.findall(text):
        out[k].append(v)
    return out


@pytest.mark.parametrize("path", sorted(CASES.glob("*.st")), ids=lambda p: p.name)
def test_st_case(path: Path):
    text = path.read_text()
    d = _directives(text)
    assert d["EXPECT"] or d["ERROR"] or d["FAULT"], f"{path.name} states no expectation"
    result = compile_project([SourceFile(path.name, text)])
    if d["ERROR"]:
        got = {(x.code, x.span.line) for x in result.diagnostics if x.is_error}
        for want in d["ERROR"]:
            code, line = [s.strip() for s in want.split("@")]
            assert (code, int(line)) in got, f"expected {code} at line {line}, got {sorted(got)}"
        return
    assert result.ok, [f"{x.span}: {x.message}" for x in result.diagnostics if x.is_error]
    interval = parse_duration_ns(d["INTERVAL"][0]) if d["INTERVAL"] else 10_000_000
    cycles = int(d["CYCLES"][0]) if d["CYCLES"] else 1
    eng = Engine(result.program, interval_ns=None if result.project.config else interval)
    try:
        fault = eng.run(cycles)
        if d["FAULT"]:
            what, line = [s.strip() for s in d["FAULT"][0].rsplit("@", 1)]
            assert fault is not None, "expected a fault, the run completed"
            assert what in fault.what and fault.where.split(":")[1] == line, str(fault)
            return
        assert fault is None, str(fault)
        snap = eng.snapshot()
        for exp in d["EXPECT"]:
            tag, value = [s.strip() for s in exp.split("=", 1)]
            assert tag in snap, f"no tag {tag}"
            assert snap[tag] == json.loads(value), f"{tag}: expected {value}, got {snap[tag]!r}"
    finally:
        eng.close()
