"""Helpers for tests: compile ST text, run it on the virtual clock, read tags."""
from __future__ import annotations

from plc_lang.diagnostics import render
from plc_lang.driver import check_project, compile_project
from plc_lang.source import SourceFile
from runtime.engine import Engine


def diagnostics(src: str, path: str = "t.st"):
    """All diagnostics (errors and warnings) for one source text."""
    return check_project([SourceFile(path, src)]).diagnostics


def error_codes(src: str) -> list[str]:
    return [d.code for d in diagnostics(src) if d.is_error]


def warning_codes(src: str) -> list[str]:
    return [d.code for d in diagnostics(src) if not d.is_error]


def build(src: str, *, program: str | None = None, interval: str | int = "10ms",
          watchdog_s: float = 1.0, path: str = "t.st") -> Engine:
    """Compile (asserting no errors) and return an Engine ready to scan."""
    r = compile_project([SourceFile(path, src)])
    if not r.ok:
        raise AssertionError("compile errors:\n" + render(r.diagnostics, r.sources, "short"))
    ns = interval if isinstance(interval, int) else _ns(interval)
    cfg = r.project.config
    return Engine(r.program, program_name=program, interval_ns=None if cfg and not program else ns,
                  watchdog_s=watchdog_s)


def run(src: str, cycles: int = 1, **kw) -> dict:
    """Compile, run `cycles` scans, return the snapshot (keys `Inst.var`)."""
    e = build(src, **kw)
    try:
        fault = e.run(cycles)
        if fault is not None:
            raise AssertionError(f"unexpected fault: {fault}")
        return e.snapshot()
    finally:
        e.close()


def _ns(text: str) -> int:
    from plc_lang.literals import parse_duration_ns
    return parse_duration_ns(text)


def shared_dir():
    """../shared beside the repository (the data the brief ships), else /work/shared."""
    from pathlib import Path
    here = Path(__file__).resolve().parents[1].parent / "shared"
    return here if here.is_dir() else Path("/work/shared")
