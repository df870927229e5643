"""Diagnostics: what the checker says about a program, and how it is shown.

A Diagnostic is user-facing data. Internal compiler bugs are Python
exceptions and keep their traceback; bad ST never produces one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .codes import CODES
from .source import SourceFile, Span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: str                  # "error" or "warning"
    message: str
    span: Span
    notes: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass
class DiagnosticSink:
    """Collects every diagnostic of a compile, in source order when rendered."""
    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, span: Span, message: str, *notes: str) -> None:
        assert code in CODES, code
        self.items.append(Diagnostic(code, "error", message, span, notes))

    def warning(self, code: str, span: Span, message: str, *notes: str) -> None:
        assert code in CODES, code
        self.items.append(Diagnostic(code, "warning", message, span, notes))

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        seen = set()
        out = []
        for d in sorted(self.items, key=lambda d: (d.span.file, d.span.line, d.span.col, d.code)):
            key = (d.code, d.span.file, d.span.line, d.span.col, d.message)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out


def render_short(d: Diagnostic) -> str:
    """One line per diagnostic (editors and CI parse it); notes go inline."""
    s = f"{d.span.file}:{d.span.line}:{d.span.col}: {d.severity}[{d.code}]: {d.message}"
    for n in d.notes:
        if n:
            s += f" (note: {n})"
    return s


def render_rich(d: Diagnostic, sources: dict[str, SourceFile]) -> str:
    head = render_short_head(d)
    src = sources.get(d.span.file)
    lines = [head]
    if src is not None:
        raw = src.line(d.span.line).rstrip("\n")
        text = raw.expandtabs(4)
        if text.strip():
            num = str(d.span.line)
            pad = " " * len(num)
            # columns count characters; tabs widen on screen, so measure the expanded prefix
            start = len(raw[:d.span.col - 1].expandtabs(4))
            width = 1
            if d.span.end_line == d.span.line and d.span.end_col > d.span.col:
                width = len(raw[:d.span.end_col - 1].expandtabs(4)) - start
            lines.append(f" {pad} |")
            lines.append(f" {num} | {text}")
            lines.append(f" {pad} | {' ' * start}{'^' * max(1, width)}")
    for n in d.notes:
        if n:
            lines.append(f"  = note: {n}")
    return "\n".join(lines)


def render_short_head(d: Diagnostic) -> str:
    return f"{d.span.file}:{d.span.line}:{d.span.col}: {d.severity}[{d.code}]: {d.message}"


def to_json(diags: list[Diagnostic]) -> str:
    return json.dumps([
        {"code": d.code, "severity": d.severity, "message": d.message,
         "file": d.span.file, "line": d.span.line, "column": d.span.col,
         "end_line": d.span.end_line, "end_column": d.span.end_col,
         "notes": list(d.notes)}
        for d in diags], indent=2)


def render(diags: list[Diagnostic], sources: dict[str, SourceFile], fmt: str = "rich") -> str:
    if fmt == "json":
        return to_json(diags)
    if fmt == "short":
        return "\n".join(render_short(d) for d in diags)
    return "\n\n".join(render_rich(d, sources) for d in diags)
