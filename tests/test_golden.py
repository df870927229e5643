"""Golden files: rendered diagnostics and generated Python.

A change to either is a change users see; review the diff, then refresh with
GRIDPLC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from plc_lang import rt_support
from plc_lang.diagnostics import render
from plc_lang.driver import check_project, compile_project
from plc_lang.source import SourceFile

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GRIDPLC_UPDATE_GOLDEN") == "1"


def _source(name: str) -> SourceFile:
    # a stable relative path, so the golden text does not depend on the checkout
    return SourceFile(f"golden/{name}", (GOLDEN / name).read_text())


def _compare(got: str, golden: Path) -> None:
    if UPDATE or not golden.exists():
        golden.write_text(got)
        if not UPDATE:
            pytest.fail(f"created {golden.name}; review it and commit")
    assert got == golden.read_text(), f"{golden.name} differs; run with GRIDPLC_UPDATE_GOLDEN=1 after review"


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("diag_*.st")))
@pytest.mark.parametrize("fmt", ["rich", "short"])
def test_diagnostics_golden(name, fmt):
    src = _source(name)
    r = check_project([src])
    _compare(render(r.diagnostics, r.sources, fmt) + "\n", GOLDEN / f"{name[:-3]}.{fmt}.txt")


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("codegen_*.st")))
def test_generated_python_golden(name, monkeypatch):
    monkeypatch.setattr(rt_support, "HAVE_F32_EXT", True)
    r = compile_project([_source(name)])
    assert r.ok, render(r.diagnostics, r.sources, "short")
    _compare(r.program.source, GOLDEN / f"{name[:-3]}.py.txt")


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("codegen_*.st")))
def test_generated_c_golden(name):
    """The native backend's C for the same program (after the fixed prelude)."""
    from plc_lang.native.cgen import generate_c
    from plc_lang.native.prelude import prelude
    r = compile_project([_source(name)])
    assert r.ok, render(r.diagnostics, r.sources, "short")
    src = generate_c(r.project).source
    assert src.startswith(prelude())
    _compare(src[len(prelude()):].lstrip("\n"), GOLDEN / f"{name[:-3]}.c.txt")
