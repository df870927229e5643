"""Parse Structured Text into the AST (plc_lang.ast).

LALR with the contextual lexer; the transformer runs inline, so no lark Tree
is ever built. Syntax errors become E0001 diagnostics phrased for engineers.
"""
from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast as A
from .diagnostics import DiagnosticSink
from .literals import (LiteralError, parse_date_literal, parse_dt_literal, parse_int, parse_real,
                       parse_string, parse_time_literal, parse_tod_literal)
from .lexer import _LEXER_TOKENS, KEYWORDS, LexError, STLexer
from .source import CommentError, Pragma, SourceFile, Span, strip_comments


class _LiteralFault(Exception):
    def __init__(self, message: str, span: Span):
        super().__init__(message)
        self.message = message
        self.span = span


_PREC = {"OR": 1, "XOR": 2, "AND": 3, "&": 3, "=": 4, "<>": 4, "<": 5, ">": 5, "<=": 5, ">=": 5,
         "+": 6, "-": 6, "*": 7, "/": 7, "MOD": 7}


def _climb(items):
    """Precedence climbing over a flat operand/operator list (all left-assoc)."""
    pos = 0
    path = items[1].span.file if False else None  # spans come from tokens below
    del path

    def parse(min_prec: int):
        nonlocal pos
        left = items[pos]
        pos += 1
        while pos < len(items):
            op_tok = items[pos]
            o = str(op_tok).upper()
            prec = _PREC[o]
            if prec < min_prec:
                break
            pos += 1
            right = parse(prec + 1)
            span = Span(left.span.file, op_tok.line, op_tok.column, op_tok.end_line, op_tok.end_column)
            left = A.BinOp("AND" if o == "&" else o, left, right, span)
        return left

    return parse(1)


def _first_span(items) -> Span:
    for it in items:
        sp = getattr(it, "span", None)
        if sp is not None:
            return sp
        if isinstance(it, tuple):
            for x in it:
                sp = getattr(x, "span", None)
                if sp is not None:
                    return sp
    return Span("", 1, 1)


def _tok_span(path: str, t: Token) -> Span:
    return Span(path, t.line, t.column, t.end_line or t.line, t.end_column or t.column)


@v_args(inline=True)
class _Builder(Transformer):
    """Builds AST nodes bottom-up as the LALR parser reduces."""

    def __init__(self, path: str, pragmas_at: dict[int, list[Pragma]], literal_errors: list):
        super().__init__(visit_tokens=False)
        self.path = path
        self.pragmas_at = pragmas_at
        self.literal_errors = literal_errors

    # -- helpers
    def _ts(self, t: Token) -> Span:
        return Span(self.path, t.line, t.column, t.end_line or t.line, t.end_column or t.column)

    def _pragmas(self, start_pos: int | None) -> tuple[Pragma, ...]:
        if start_pos is None or not self.pragmas_at:
            return ()
        return tuple(self.pragmas_at.get(start_pos, ()))

    def _lit(self, fn, tok: Token):
        try:
            return fn(str(tok))
        except LiteralError as e:
            self.literal_errors.append((str(e), self._ts(tok)))
            return None

    # -- compilation unit
    def start(self, *items):
        return list(items)

    def program(self, kw, name, *rest):
        return self._pou("PROGRAM", kw, name, None, rest)

    def function(self, kw, name, ret, *rest):
        return self._pou("FUNCTION", kw, name, ret, rest)

    def function_block(self, kw, name, *rest):
        return self._pou("FUNCTION_BLOCK", kw, name, None, rest)

    def _pou(self, kind, kw, name, ret, rest):
        *blocks, body, end = rest
        decls = tuple(d for b in blocks for d in b)
        return A.Pou(kind, str(name), ret, decls, tuple(body), self._pragmas(kw.start_pos),
                     self._ts(name), self._ts(end))

    # -- variables
    def var_block(self, kind, *rest):
        quals = [q for q in rest if isinstance(q, str)]
        decls_src = [r for r in rest if isinstance(r, tuple)]
        section = kind
        out = []
        for names, loc, tspec, init, pragmas in decls_src:
            for n in names:
                out.append(A.VarDecl(str(n), tspec, init, section, "CONSTANT" in quals,
                                     "RETAIN" in quals, "PERSISTENT" in quals, loc, pragmas,
                                     self._ts(n)))
        return out

    def var_kind(self, tok):
        return str(tok).upper()

    def var_qualifier(self, tok):
        return str(tok).upper()

    def var_decl(self, names, at, loc, tspec, init, semi=None):
        return (names, str(loc) if loc is not None else None, tspec, init,
                self._pragmas(names[0].start_pos))

    def name_list(self, *names):
        return list(names)

    # -- types
    def type_block(self, kw, *rest):
        return ("TYPES", [r for r in rest if not isinstance(r, Token)])

    def struct_type_def(self, name, fields, *semi):
        return A.StructDecl(str(name), fields, self._pragmas(name.start_pos), self._ts(name))

    def enum_type_def(self, name, spec, default, *semi):
        return A.EnumDecl(str(name), spec, str(default) if default is not None else None,
                          self._pragmas(name.start_pos), self._ts(name))

    def plain_type_def(self, name, tspec, init, *semi):
        return A.AliasDecl(str(name), tspec, init, self._pragmas(name.start_pos), self._ts(name))

    def struct_spec(self, kw, *rest):
        fields = []
        for r in rest:
            if isinstance(r, list):
                fields.extend(r)
        return tuple(fields)

    def struct_field(self, names, tspec, init):
        return [A.VarDecl(str(n), tspec, init, "VAR", False, False, False, None,
                          self._pragmas(n.start_pos), self._ts(n)) for n in names]

    def enum_spec(self, *rest):
        *members, base = rest
        return A.EnumSpec(tuple(members), str(base) if base is not None else None, members[0].span)

    def enum_member(self, name, value):
        return A.EnumMember(str(name), value, self._ts(name))

    def named_type(self, name, length=None):
        return A.NamedType(str(name), length, self._ts(name))

    def subrange_spec(self, name, lo, dots, hi):
        return A.SubrangeSpec(str(name), lo, hi, self._ts(name))

    def array_spec(self, kw, *rest):
        *dims, of, elem = rest
        return A.ArraySpec(tuple(dims), elem, self._ts(kw))

    def dim_range(self, lo, dots, hi):
        return (lo, hi)

    def array_init(self, *items):
        out = []
        for it in items:
            if isinstance(it, tuple) and len(it) == 3 and it[0] == "REPEAT":
                out.append((it[1], it[2]))
            else:
                out.append((1, it))
        return A.ArrayInit(tuple(out), _first_span(items))

    def repeated_init(self, count, value):
        return ("REPEAT", parse_int(str(count)), value)

    def struct_init(self, *fields):
        return A.StructInit(tuple(fields), fields[0][2])

    def field_init(self, name, value):
        return (str(name), value, self._ts(name))

    # -- configuration
    def configuration(self, kw, name, *rest):
        globals_: list[A.VarDecl] = []
        resources_: list[A.Resource] = []
        tasks, progs = [], []
        for r in rest:
            if isinstance(r, list):
                globals_.extend(r)
            elif isinstance(r, A.Resource):
                resources_.append(r)
            elif isinstance(r, A.TaskDecl):
                tasks.append(r)
            elif isinstance(r, A.ProgramInst):
                progs.append(r)
        if tasks or progs or not resources_:
            resources_.insert(0, A.Resource(str(name), None, (), tuple(tasks), tuple(progs), self._ts(name)))
        return A.Configuration(str(name), tuple(globals_), tuple(resources_), self._ts(name))

    def resource(self, kw, name, on_kw, on, body, end):
        g, t, p = body
        return A.Resource(str(name), str(on) if on is not None else None, g, t, p, self._ts(name))

    def resource_body(self, *items):
        g = tuple(d for i in items if isinstance(i, list) for d in i)
        t = tuple(i for i in items if isinstance(i, A.TaskDecl))
        p = tuple(i for i in items if isinstance(i, A.ProgramInst))
        return (g, t, p)

    def task_decl(self, kw, name, *params):
        return A.TaskDecl(str(name), tuple(params), self._ts(name))

    def task_param(self, name, value):
        return (str(name).upper(), value, self._ts(name))

    def program_inst(self, kw, retain, name, with_kw, task, pou, args):
        r = None if retain is None else str(retain).upper() == "RETAIN"
        return A.ProgramInst(str(name), str(task) if task is not None else None, str(pou),
                             tuple(args or ()), r, self._ts(name))

    # -- statements
    def stmt_list(self, *stmts):
        return tuple(stmts)

    def assign_stmt(self, target, value):
        return A.Assign(target, value, target.span)

    def call_stmt(self, target, args):
        return A.CallStmt(target, tuple(args or ()), target.span)

    def if_stmt(self, kw, cond, then_kw, body, *rest):
        *elsifs, else_body, end = rest
        branches = [(cond, body)] + list(elsifs)
        return A.If(tuple(branches), else_body, self._ts(kw))

    def elsif_clause(self, kw, cond, then_kw, body):
        return (cond, body)

    def else_clause(self, kw, body):
        return body

    def case_stmt(self, kw, sel, of, *rest):
        *branches, else_body, end = rest
        return A.Case(sel, tuple(branches), else_body, self._ts(kw))

    def case_branch(self, *rest):
        *labels, body = rest
        return A.CaseBranch(tuple(labels), body, labels[0].span)

    def case_label(self, low, dots, high):
        return A.CaseLabel(low, high, low.span)

    def label_name(self, tok):
        return A.Name(str(tok), self._ts(tok))

    def label_enum(self, tname, member):
        return A.EnumLit(str(tname), str(member), self._ts(tname))

    def for_stmt(self, kw, var, start, to, end, by, step, do, body, end_kw):
        return A.For(str(var), self._ts(var), start, end, step, body, self._ts(kw))

    def while_stmt(self, kw, cond, do, body, end):
        return A.While(cond, body, self._ts(kw))

    def repeat_stmt(self, kw, body, until, cond, end):
        return A.Repeat(body, cond, self._ts(kw))

    def exit_stmt(self, kw):
        return A.Exit(self._ts(kw))

    def continue_stmt(self, kw):
        return A.Continue(self._ts(kw))

    def return_stmt(self, kw):
        return A.Return(self._ts(kw))

    def empty_stmt(self, semi):
        return A.Empty(self._ts(semi))

    # -- calls
    def call_args(self, *args):
        out = []
        for a in args:
            if isinstance(a, A.Arg):
                out.append(a)
            else:
                out.append(A.Arg(None, a, "in", a.span))
        return out

    def formal_in(self, name, value):
        return A.Arg(str(name), value, "in", self._ts(name))

    def formal_out(self, name, arrow, var):
        return A.Arg(str(name), var, "out", self._ts(name))

    def formal_out_negated(self, not_kw, name, arrow, var):
        return A.Arg(str(name), var, "out_not", self._ts(name))

    def call_expr(self, name, args):
        return A.Call(str(name), tuple(args or ()), self._ts(name))

    # -- expressions
    def expr(self, *items):
        # items alternate operand, operator token, operand, ...
        return _climb(items)

    def binop(self, left, op, right):
        o = str(op).upper()
        if o == "&":
            o = "AND"
        return A.BinOp(o, left, right, self._ts(op))

    def unop(self, op, operand):
        return A.UnOp(str(op).upper(), operand, self._ts(op))

    def variable(self, name, *sels):
        node: A.Expr = A.Name(str(name), self._ts(name))
        for kind, payload, span in sels:
            if kind == "member":
                node = A.Member(node, payload, span)
            elif kind == "index":
                node = A.Index(node, payload, span)
            else:
                node = A.BitAccess(node, payload, span)
        return node

    def member(self, name):
        return ("member", str(name), self._ts(name))

    def index(self, *exprs):
        return ("index", tuple(exprs), exprs[0].span)

    def bit_access(self, num):
        return ("bit", int(str(num)), self._ts(num))

    # -- literals
    def int_lit(self, tok):
        v = self._lit(parse_int, tok)
        return A.IntLit(v if v is not None else 0, None, self._ts(tok))

    def real_lit(self, tok):
        return A.RealLit(parse_real(str(tok)), None, str(tok), self._ts(tok))

    def bool_lit(self, tok):
        return A.BoolLit(str(tok).upper() == "TRUE", None, self._ts(tok))

    def typed_lit(self, tok):
        text = str(tok)
        tname, body = text.split("#", 1)
        tname = tname.upper()
        span = self._ts(tok)
        if body.upper() in ("TRUE", "FALSE"):
            return A.BoolLit(body.upper() == "TRUE", tname, span)
        if tname in ("REAL", "LREAL"):
            try:
                return A.RealLit(parse_real(body.replace("_", "")) if "#" not in body
                                 else float(parse_int(body)), tname, body, span)
            except (ValueError, LiteralError):
                self.literal_errors.append((f"'{text}' is not a number", span))
                return A.RealLit(0.0, tname, body, span)
        sign = 1
        if body[:1] in "+-":
            sign = -1 if body[0] == "-" else 1
            body = body[1:]
        if "." in body or "e" in body.lower() and "#" not in body:
            self.literal_errors.append((f"'{text}': {tname} takes an integer", span))
            return A.IntLit(0, tname, span)
        try:
            return A.IntLit(sign * parse_int(body), tname, span)
        except (ValueError, LiteralError) as e:
            self.literal_errors.append((str(e), span))
            return A.IntLit(0, tname, span)

    def time_lit(self, tok):
        r = self._lit(parse_time_literal, tok)
        if r is None:
            return A.TimeLit(0, "LTIME" if str(tok).upper().startswith("LT") else "TIME", self._ts(tok))
        return A.TimeLit(r[0], r[1], self._ts(tok))

    def date_lit(self, tok):
        return A.DateLit(self._lit(parse_date_literal, tok) or 0, "DATE", self._ts(tok))

    def tod_lit(self, tok):
        return A.DateLit(self._lit(parse_tod_literal, tok) or 0, "TIME_OF_DAY", self._ts(tok))

    def dt_lit(self, tok):
        return A.DateLit(self._lit(parse_dt_literal, tok) or 0, "DATE_AND_TIME", self._ts(tok))

    def string_lit(self, tok):
        v = self._lit(lambda s: parse_string(s, False), tok)
        return A.StringLit(v or "", False, self._ts(tok))

    def wstring_lit(self, tok):
        v = self._lit(lambda s: parse_string(s, True), tok)
        return A.StringLit(v or "", True, self._ts(tok))

    def enum_lit(self, tname, member):
        return A.EnumLit(str(tname), str(member), self._ts(tname))


@functools.lru_cache(maxsize=1)
def _grammar_text() -> str:
    return (Path(__file__).parent / "grammar" / "st.lark").read_text(encoding="utf-8")


_BUILDER = _Builder("", {}, [])


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    # The parse table is built once per process and the builder runs inline
    # (no Tree); per-file state lives on the one builder, reset per parse.
    return Lark(_grammar_text(), parser="lalr", lexer=STLexer, 
                maybe_placeholders=True, transformer=_BUILDER, cache=True)


# ------------------------------------------------------------------ entry point
_OPENERS = {
    "IF": "END_IF", "CASE": "END_CASE", "FOR": "END_FOR", "WHILE": "END_WHILE",
    "REPEAT": "END_REPEAT", "PROGRAM": "END_PROGRAM", "FUNCTION": "END_FUNCTION",
    "FUNCTION_BLOCK": "END_FUNCTION_BLOCK", "TYPE": "END_TYPE", "STRUCT": "END_STRUCT",
    "VAR": "END_VAR", "VAR_INPUT": "END_VAR", "VAR_OUTPUT": "END_VAR", "VAR_IN_OUT": "END_VAR",
    "VAR_TEMP": "END_VAR", "VAR_GLOBAL": "END_VAR", "VAR_EXTERNAL": "END_VAR",
    "CONFIGURATION": "END_CONFIGURATION", "RESOURCE": "END_RESOURCE",
}

_NEXT_KEYWORDS = {"IF": ("THEN",), "ELSIF": ("THEN",), "WHILE": ("DO",), "FOR": ("TO", "DO"),
                  "CASE": ("OF",), "REPEAT": ("UNTIL",)}


def _previous_token(tok: Token) -> Token | None:
    """The token before `tok` in the file being parsed (the lexer keeps them)."""
    toks = _LEXER_TOKENS[0]
    if not toks or tok.start_pos is None:
        return None
    lo, hi = 0, len(toks)
    while lo < hi:
        mid = (lo + hi) // 2
        if toks[mid].start_pos < tok.start_pos:
            lo = mid + 1
        else:
            hi = mid
    return toks[lo - 1] if lo > 0 else None


_TERMINAL_WORDS = {
    "NAME": "a name", "LABEL_NAME": "a name", "INTEGER": "a number", "BASED_INT": "a number",
    "REAL_NUM": "a number", "TYPED_LIT": "a literal", "TIME_LIT": "a time literal",
    "DATE_LIT": "a date literal", "TOD_LIT": "a time-of-day literal", "DT_LIT": "a date-and-time literal",
    "STRING_LIT": "a string", "WSTRING_LIT": "a string", "DIRECT_ADDR": "an address like %IX0.0",
    "$END": "end of file",
}


_KEYWORD_TYPES = set(KEYWORDS)


def _display(term: str) -> str:
    if term in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[term]
    t = _lark().get_terminal(term) if term else None
    if t is not None and t.pattern.type == "str":
        return f"'{t.pattern.value}'"
    return term


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type in ("NAME", "LABEL_NAME"):
        return f"name '{tok}'"
    return f"'{tok}'"


def _syntax_message(e: UnexpectedToken) -> tuple[str, Token | None]:
    """Returns (message, token to point at if not the unexpected one)."""
    expected = set(e.expected or ())
    tok = e.token
    stack = []
    ip = getattr(e, "interactive_parser", None)
    if ip is not None:
        stack = list(ip.parser_state.value_stack)
    opens = [v for v in stack if isinstance(v, Token) and v.type in _OPENERS]
    if opens:
        innermost = opens[-1]
        closer = _OPENERS[innermost.type]
        if innermost.type in ("VAR_INPUT", "VAR_OUTPUT", "VAR_IN_OUT", "VAR_TEMP", "VAR_GLOBAL", "VAR_EXTERNAL"):
            closer = "END_VAR"
        if closer in expected and tok.type.startswith("END_") or (closer in expected and tok.type == "$END"):
            return (f"expected {closer} to close the {str(innermost).upper()} on line {innermost.line}, "
                    f"found {_found(tok)}", None)
        # the keyword a construct needs next: IF ... THEN, WHILE ... DO, REPEAT ... UNTIL
        after = stack[stack.index(innermost) + 1:]
        for kw in _NEXT_KEYWORDS.get(innermost.type, ()):
            if kw in expected and not any(isinstance(v, Token) and v.type == kw for v in after):
                what = "condition" if innermost.type in ("IF", "ELSIF", "WHILE") else "header"
                if innermost.type == "REPEAT":
                    return (f"expected UNTIL <condition> END_REPEAT to close the REPEAT on line {innermost.line}, "
                            f"found {_found(tok)}", None)
                return (f"expected {kw} after the {str(innermost).upper()} {what} on line {innermost.line}, "
                        f"found {_found(tok)}", None)
    prev = _previous_token(tok)
    if "SEMI" in expected and prev is not None and tok.type != "$END" and (
            tok.line > (prev.end_line or prev.line) or tok.type in _KEYWORD_TYPES):
        return (f"expected ';' after '{prev}'", prev)
    if {"NAME", "INTEGER", "LPAR"} <= expected:
        return (f"expected an expression, found {_found(tok)}", None)
    names = sorted({_display(t) for t in expected if not t.startswith("__ANON")} |
                   {_display(t) for t in expected if t.startswith("__ANON")})
    if len(names) > 8:
        names = names[:8] + ["..."]
    if not names:
        return (f"unexpected {_found(tok)}", None)
    if len(names) == 1:
        return (f"expected {names[0]}, found {_found(tok)}", None)
    return (f"unexpected {_found(tok)}; expected one of: {', '.join(names)}", None)


def _attach_points(text: str, pragmas: list[Pragma]) -> dict[int, list[Pragma]]:
    # A pragma belongs to the declaration that starts at the next non-blank
    # character after it (pragma text is already blanked in `text`).
    out: dict[int, list[Pragma]] = {}
    n = len(text)
    for p in pragmas:
        close = text.find("}", p.offset) if text[p.offset:p.offset + 1] == "{" else -1
        i = p.offset + 1
        while i < n and text[i].isspace():
            i += 1
        out.setdefault(i, []).append(p)
        del close
    return out


SYNTAX_ERRORS_MAX = 20


def _same_block(a: str, b: str) -> bool:
    """Two reports of one unclosed block (at END_PROGRAM, then at end of file)."""
    return "to close the" in a and a.split(", found")[0] == b.split(", found")[0]


def _insertions(e: UnexpectedToken) -> list[str]:
    expected = set(e.expected or ())
    out = []
    if "SEMI" in expected:
        out.append("SEMI")
    msg, _ = _syntax_message(e)
    if "to close the" in msg:
        out.append(msg.split("expected ", 1)[1].split(" ", 1)[0])
    return out


def _virtual(kind: str, at: Token) -> Token:
    return Token(kind, ";" if kind == "SEMI" else kind, at.start_pos, at.line, at.column,
                 at.line, at.column, at.start_pos)


def _syntax_diag(e: UnexpectedToken, text: str, path: str) -> tuple[str, Span]:
    msg, at = _syntax_message(e)
    if e.token.type == "STAR" and text.startswith("*)", e.token.start_pos):
        msg, at = "'*)' closes a comment that was never opened", None
    t = at if at is not None else e.token
    if t.type == "$END" or t.line is None:
        last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        span = Span(path, last, 1, last, 1)
    elif at is not None:
        span = Span(path, at.end_line or at.line, at.end_column or at.column,
                    at.end_line or at.line, (at.end_column or at.column) + 1)
    else:
        span = _tok_span(path, t)
    return msg, span


def _offset(text: str, line: int, col: int) -> int:
    pos = 0
    for _ in range(line - 1):
        pos = text.index("\n", pos) + 1
    return pos + col - 1


def parse_source(src: SourceFile, sink: DiagnosticSink) -> A.CompilationUnit | None:
    path = src.path
    try:
        text, pragmas = strip_comments(path, src.text)
    except CommentError as e:
        sink.error("E0002", Span(path, e.line, e.col, e.line, e.col + 2), e.message)
        return None
    literal_errors: list = []
    _BUILDER.path = path
    _BUILDER.pragmas_at = _attach_points(text, pragmas)
    _BUILDER.literal_errors = literal_errors
    syntax_errors: list[UnexpectedToken] = []

    def recover(e) -> bool:
        # Go on after a syntax error so one run reports the errors of a whole
        # file: insert the `;` or END_ keyword the parser wanted when that lets
        # it take the offending token, else skip the token. Errors inside one
        # cascade (before the parser has taken a `;` again) are not reported.
        if not isinstance(e, UnexpectedToken) or len(syntax_errors) >= SYNTAX_ERRORS_MAX:
            return False
        if quiet[0] and e.token.type != "$END":
            pass
        else:
            msg_span = _syntax_diag(e, text, path)
            if not any(msg_span[1].line == old[1].line or _same_block(msg_span[0], old[0]) for old in syntax_errors):
                syntax_errors.append(msg_span)
        if e.token.type == "$END":
            return False
        ip = e.interactive_parser
        for fix in _insertions(e):
            trial = ip.copy()
            try:
                trial.feed_token(_virtual(fix, e.token))
                trial.feed_token(e.token)
            except UnexpectedInput:
                continue
            ip.feed_token(_virtual(fix, e.token))
            ip.feed_token(e.token)
            quiet[0] = False
            return True
        quiet[0] = e.token.type != "SEMI"
        return True

    quiet = [False]

    try:
        try:
            items = _lark().parse(text, on_error=recover)
        finally:
            for msg, span in syntax_errors:
                sink.error("E0001", span, msg)
        if syntax_errors:
            return None
    except UnexpectedToken:
        return None
    except LexError as e:
        if text.startswith("*)", _offset(text, e.line, e.col)):
            msg = "'*)' closes a comment that was never opened"
        else:
            msg = e.message
        sink.error("E0001", Span(path, e.line, e.col, e.line, e.col + 1), msg)
        return None
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        if text.startswith("*)", e.pos_in_stream):
            msg = "'*)' closes a comment that was never opened"
        else:
            msg = f"unexpected character '{ch}'"
        sink.error("E0001", Span(path, e.line, e.column, e.line, e.column + 1), msg)
        return None
    except UnexpectedEOF:
        last = max(1, text.count("\n"))
        sink.error("E0001", Span(path, last, 1), "unexpected end of file")
        return None
    except UnexpectedInput as e:  # any other lark complaint
        sink.error("E0001", Span(path, getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1), str(e).split("\n")[0])
        return None
    for msg, span in literal_errors:
        sink.error("E0003", span, msg)
    pous, types, confs, globals_ = [], [], [], []
    for it in items:
        if isinstance(it, A.Pou):
            pous.append(it)
        elif isinstance(it, A.Configuration):
            confs.append(it)
        elif isinstance(it, tuple) and it and it[0] == "TYPES":
            types.extend(it[1])
        elif isinstance(it, list):
            globals_.extend(it)
    return A.CompilationUnit(path, tuple(pous), tuple(types), tuple(confs), tuple(globals_), tuple(pragmas))
