"""The front end's own promises: spans, pragmas kept on the AST, CASE labels
told from statements, and the AST shape of precedence."""
from __future__ import annotations

from plc_lang import ast as A
from plc_lang.diagnostics import DiagnosticSink
from plc_lang.parser import parse_source
from plc_lang.source import SourceFile

SRC = """{attribute 'description' := 'site guard'}
PROGRAM Main
VAR
  {attribute 'opcua' := 'rw'}
  setpoint : REAL;
  (* a comment between pragma and declaration (* nested *) *)
  {attribute 'unit' := 'kW'} {attribute 'opcua' := 'ro'}
  power : REAL;
  plain : INT;
END_VAR
CASE plain OF
  1, 2: setpoint := 1.0;
  plain2..plain3: power := 2.0;
  Mode#IDLE: power := 3.0;
END_CASE;
power := -2.0 ** 2 + 3.0 * setpoint;
END_PROGRAM
"""


def _unit():
    sink = DiagnosticSink()
    u = parse_source(SourceFile("m.st", SRC), sink)
    assert not sink.items, sink.items
    return u


def test_pragmas_are_kept_on_the_declaration_after_them():
    u = _unit()
    pou = u.pous[0]
    assert [p.text for p in pou.pragmas] == ["attribute 'description' := 'site guard'"]
    by_name = {v.name: v for v in pou.vars}
    assert [p.text for p in by_name["setpoint"].pragmas] == ["attribute 'opcua' := 'rw'"]
    assert [p.text for p in by_name["power"].pragmas] == ["attribute 'unit' := 'kW'", "attribute 'opcua' := 'ro'"]
    assert by_name["plain"].pragmas == ()
    assert by_name["setpoint"].pragmas[0].span.line == 4


def test_spans_point_at_the_source():
    u = _unit()
    by_name = {v.name: v for v in u.pous[0].vars}
    sp = by_name["power"].span
    assert (sp.file, sp.line, sp.col) == ("m.st", 8, 3)
    assign = u.pous[0].body[-1]
    assert isinstance(assign, A.Assign) and assign.span.line == 16


def test_case_labels_with_names_are_labels_not_statements():
    u = _unit()
    case = u.pous[0].body[0]
    assert isinstance(case, A.Case) and len(case.branches) == 3
    lab = case.branches[1].labels[0]
    assert isinstance(lab.low, A.Name) and lab.low.name == "plain2" and lab.high.name == "plain3"
    assert isinstance(case.branches[2].labels[0].low, A.EnumLit)


def test_power_binds_tighter_than_unary_minus_and_multiplication():
    u = _unit()
    e = u.pous[0].body[-1].value
    # -2.0 ** 2 + 3.0 * setpoint  ==  (-(2.0 ** 2)) + (3.0 * setpoint)
    assert isinstance(e, A.BinOp) and e.op == "+"
    assert isinstance(e.left, A.UnOp) and isinstance(e.left.operand, A.BinOp) and e.left.operand.op == "**"
    assert isinstance(e.right, A.BinOp) and e.right.op == "*"
