"""Source files, spans, and the pre-lexing pass that removes comments.

Nested `(* *)` comments are not a regular language, so they cannot be a lark
terminal. This pass blanks comments (keeping newlines, so every line and
column the lexer reports is still the user's) and lifts pragmas `{...}` out
into a list; the parser attaches each pragma to the declaration after it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Pragma:
    text: str          # without the braces, stripped
    span: Span
    offset: int        # character offset of the `{`, for attaching to what follows


@dataclass(slots=True)
class SourceFile:
    path: str
    text: str
    _lines: list[str] | None = None

    def line(self, n: int) -> str:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[n - 1] if 0 < n <= len(self._lines) else ""


class CommentError(Exception):
    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


_INTERESTING = re.compile(r"\(\*|\*\)|//|\{|'|\"")
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(s: str) -> str:
    return _NOT_NEWLINE.sub(" ", s)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def strip_comments(path: str, text: str) -> tuple[str, list[Pragma]]:
    """Return text with comments and pragmas blanked, and the pragmas found."""
    out: list[str] = []
    pragmas: list[Pragma] = []
    pos = 0
    n = len(text)
    while True:
        m = _INTERESTING.search(text, pos)
        if m is None:
            out.append(text[pos:])
            break
        tok = m.group()
        start = m.start()
        out.append(text[pos:start])
        if tok == "(*":
            depth = 1
            i = start + 2
            while depth:
                j = text.find("*", i)
                k = text.find("(*", i)
                if j < 0:
                    line, col = _line_col(text, start)
                    raise CommentError("comment opened here is never closed with '*)'", line, col)
                if 0 <= k < j:
                    depth += 1
                    i = k + 2
                    continue
                if text.startswith("*)", j):
                    depth -= 1
                    i = j + 2
                else:
                    i = j + 1
            out.append(_blank(text[start:i]))
            pos = i
        elif tok == "//":
            end = text.find("\n", start)
            end = n if end < 0 else end
            out.append(" " * (end - start))
            pos = end
        elif tok == "{":
            end = text.find("}", start)
            if end < 0:
                line, col = _line_col(text, start)
                raise CommentError("pragma opened here is never closed with '}'", line, col)
            line, col = _line_col(text, start)
            pragmas.append(Pragma(text[start + 1:end].strip(), Span(path, line, col), start))
            out.append(_blank(text[start:end + 1]))
            pos = end + 1
        elif tok == "*)":
            # A stray close is left for the lexer, which reports it in place.
            out.append(tok)
            pos = start + 2
        else:  # a string literal: copy it whole so comment markers inside survive
            quote = tok
            i = start + 1
            while i < n:
                c = text[i]
                if c == "$":
                    i += 2
                    continue
                if c == quote or c == "\n":
                    break
                i += 1
            end = min(i + 1, n)
            out.append(text[start:end])
            pos = end
    return "".join(out), pragmas
