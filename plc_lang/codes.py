"""Stable diagnostic codes. `gridplc explain CODE` prints the page.

Each page: what it means, a bad example, the fix. Codes never change meaning;
retired codes stay listed.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    title: str
    page: str


def _c(title: str, page: str) -> Code:
    return Code(title, page.strip("\n"))


CODES: dict[str, Code] = {
    "E0001": _c("syntax error", """
The text does not follow Structured Text syntax at this point. The message
names what the parser expected, and for an unclosed block (IF, CASE, FOR,
WHILE, REPEAT, a POU) the line where that block was opened.

Bad:
    IF x > 1 THEN
        y := 2;
    (* END_IF missing *)
    END_PROGRAM

Fix: close every block with its END_ keyword:
    IF x > 1 THEN
        y := 2;
    END_IF;
"""),
    "E0002": _c("unterminated comment or pragma", """
A `(*` comment (comments nest) or a `{` pragma is never closed, so the rest
of the file would be swallowed.

Bad:   (* outer (* inner *) still open
Fix:   (* outer (* inner *) closed *)
"""),
    "E0003": _c("malformed literal", """
A literal that cannot be read: a time with an unknown unit, a date that does
not exist, a digit that does not belong to the base, a `$` escape that is
not one of $$ $' $" $L $N $P $R $T or $hh.

Bad:   t := T#5x;      n := 2#102;
Fix:   t := T#5s;      n := 2#101;
"""),
    "E0010": _c("duplicate declaration", """
The same name is declared twice in one scope (names are case-insensitive:
`Speed` and `SPEED` are the same name), or two POUs or types share a name.

Bad:   VAR speed : REAL; SPEED : INT; END_VAR
Fix:   give each variable its own name.
"""),
    "E0011": _c("undeclared name", """
A name is used that is not declared in this POU, its VAR_EXTERNAL list, the
enumerations, or the global variables.

Bad:   tempMax := tMaxx;       (* typo *)
Fix:   declare the variable, or correct the spelling.
"""),
    "E0012": _c("unknown type", """
A declaration names a type that is neither elementary, nor declared in a
TYPE block, nor a FUNCTION_BLOCK.

Bad:   VAR t : TON_X; END_VAR
Fix:   VAR t : TON; END_VAR
"""),
    "E0013": _c("not callable", """
Something that is not a function or a function block instance is called,
or a function block instance is used inside an expression.

Bad:   x := myTimer(IN := TRUE);    (* an FB call is a statement *)
Fix:   myTimer(IN := TRUE); x := myTimer.Q;
"""),
    "E0014": _c("no such member", """
A `.member` does not exist on the struct, function block or enumeration.

Bad:   v := rack.vmaxx;
Fix:   v := rack.vMax;
"""),
    "E0020": _c("type mismatch", """
A value of one type is used where another, incompatible type is needed.

Bad:   VAR b : BOOL; i : INT; END_VAR  b := i;
Fix:   b := i <> 0;
"""),
    "E0021": _c("implicit narrowing conversion", """
Only widening conversions are implicit (INT to DINT, REAL to LREAL, INT to
REAL, ...). Anything that can lose range or precision needs an explicit
conversion, so the loss is visible in review.

Bad:   VAR r : REAL; i : INT; END_VAR  i := r;
Fix:   i := REAL_TO_INT(r);     (* rounds to nearest, ties to even *)
"""),
    "E0022": _c("operator not defined for these types", """
The operator cannot be applied to operands of these types, for example
arithmetic on BOOL, AND on REAL, or comparing a STRING with a number.

Bad:   x := flag + 1;
Fix:   x := BOOL_TO_INT(flag) + 1;
"""),
    "E0023": _c("condition is not BOOL", """
IF, ELSIF, WHILE and UNTIL need a BOOL condition; ST does not treat numbers
as truth values.

Bad:   IF count THEN ...
Fix:   IF count <> 0 THEN ...
"""),
    "E0030": _c("literal out of range", """
A constant does not fit the type it is assigned to or combined with.

Bad:   VAR s : SINT; END_VAR  s := 200;
Fix:   use a wider type (INT), or a value in -128..127.
"""),
    "E0031": _c("constant index outside the array bounds", """
An array index that the checker can compute lies outside the declared bounds.

Bad:   VAR a : ARRAY[1..8] OF REAL; END_VAR  a[0] := 1.0;
Fix:   a[1] := 1.0;
"""),
    "E0032": _c("invalid array or subrange bounds", """
Array and subrange bounds must be constant integers with low <= high, and
their size must be reasonable.

Bad:   VAR a : ARRAY[10..1] OF INT; END_VAR     (* low above high *)
Fix:   VAR a : ARRAY[1..10] OF INT; END_VAR
(A bound that is not constant at all is E0033.)
"""),
    "E0033": _c("not a constant expression", """
Something that must be known at compile time (an initial value, an array
bound, a CASE label, a string length, an enum value) depends on a variable.

Bad:   CASE x OF y: ...
Fix:   CASE x OF 5: ...   (or declare y in VAR CONSTANT)
"""),
    "E0040": _c("assignment to a constant", """
A VAR CONSTANT, a literal, or an expression that is not a variable is
assigned to.

Bad:   VAR CONSTANT limit : REAL := 3.65; END_VAR  limit := 3.7;
Fix:   declare it in a plain VAR block if it must change.
"""),
    "E0041": _c("assignment to an input", """
A POU writes its own VAR_INPUT. Inputs belong to the caller: write a local
copy instead, so the value the caller passed stays visible.

Bad:   FUNCTION_BLOCK F  VAR_INPUT x : INT; END_VAR  x := x + 1;
Fix:   VAR xLocal : INT; END_VAR  xLocal := x + 1;
"""),
    "E0042": _c("assignment to a function block output from outside", """
An FB's VAR_OUTPUT is written by the FB only. A caller reads it.

Bad:   myTimer.Q := FALSE;
Fix:   reset the timer through its input: myTimer(IN := FALSE);
"""),
    "E0043": _c("assignment to the FOR loop variable", """
The body of a FOR loop must not assign its control variable; the number of
iterations would no longer be what the header says.

Bad:   FOR i := 1 TO 10 DO i := i + 1; END_FOR;
Fix:   use BY 2, or a WHILE loop with its own counter.
"""),
    "E0050": _c("wrong arguments", """
A function is called with the wrong number of arguments, a required input
or VAR_IN_OUT is missing, or formal and positional arguments are mixed.

Bad:   x := LIMIT(0, y);
Fix:   x := LIMIT(0, y, 100);
"""),
    "E0051": _c("unknown parameter", """
A formal argument names a parameter that the function or FB does not have,
or uses `=>` on something that is not an output.

Bad:   t(IN := go, TIME := T#5s);
Fix:   t(IN := go, PT := T#5s);
"""),
    "E0052": _c("VAR_IN_OUT needs a variable", """
A VAR_IN_OUT parameter is passed by reference, so its argument must be a
variable that can be written, not an expression or a constant.

Bad:   Swap(a := x + 1, b := y);
Fix:   tmp := x + 1; Swap(a := tmp, b := y);
"""),
    "E0053": _c("IO_OK, IO_QUALITY or IO_AGE of something that is not a variable", """
The quality functions read the quality and source timestamp the I/O layer
keeps for a variable bound to field I/O. Their argument must be that variable:
a variable, a struct member, an array element (rack[i].tMax) or a global
(VAR_EXTERNAL), of an elementary type. An expression, a literal, a single
bit, a whole array or struct, or a function block instance has no quality.

    IO_OK(x)         TRUE when the value is fresh and valid (quality good)
    IO_QUALITY(x)    0 good, 1 stale, 2 bad, 3 waiting (nothing received yet)
    IO_AGE(x)        TIME since the value's source timestamp (T#0s if none)

A variable no I/O map binds is always good, with age T#0s.

Bad:   ok := IO_OK(tBat + 1.0);      ok := IO_OK(status.3);
Fix:   ok := IO_OK(tBat);            ok := IO_OK(status);

Inside a function block, a VAR_INPUT is the block's own copy of what the
caller passed: IO_OK(vIn) says nothing about the field variable the caller
read (it is good unless the I/O map binds the block's input itself), and in
a FUNCTION the quality of a local or an input is always good. Ask in the
program, where the bound variable lives, and pass the answer as a BOOL input:

    guard(v := bms.vMax, vOk := IO_OK(bms.vMax));
"""),
    "E0060": _c("recursion", """
POUs call each other in a cycle. IEC 61131-3 forbids recursion: the stack a
scan needs must be known before it runs.

Bad:   FUNCTION F : INT  F := F2(1); END_FUNCTION  FUNCTION F2 : INT  F2 := F(1); ...
Fix:   rewrite the cycle as a loop.
"""),
    "E0070": _c("configuration error", """
The CONFIGURATION refers to a task or a program that does not exist, a task
has no valid INTERVAL, two instances share a name, or a PRIORITY is outside
0..31.

Bad:   PROGRAM Main WITH Fsat : SiteMain;
Fix:   PROGRAM Main WITH Fast : SiteMain;
"""),
    "E0080": _c("invalid CASE label", """
CASE labels must be constants of the selector's type, and no value may be
covered by two labels.

Bad:   CASE n OF 1..5: a(); 3: b(); END_CASE;
Fix:   make the ranges disjoint.
"""),
    "E0090": _c("EXIT or CONTINUE outside a loop", """
EXIT leaves the innermost FOR, WHILE or REPEAT loop; CONTINUE starts its next
iteration. Outside a loop they mean nothing.

Fix:   use RETURN to leave the POU.
"""),
    "E0091": _c("unsupported construct", """
The construct is valid IEC 61131-3 but gridplc does not implement it yet. The
message says which; nothing is silently ignored.
"""),
    "E0092": _c("program has nothing to run", """
There is no PROGRAM to run: the files declare only functions, function blocks
or types, or `--program` names a POU that is not a PROGRAM.
"""),
    "E0093": _c("test function outside a test", """
ASSERT_TRUE, ASSERT_FALSE, ASSERT_EQ, ASSERT_NEAR, ADVANCE and ADVANCE_SCANS
exist for ST unit tests (`gridplc test`). They are allowed only in a test, a
PROGRAM or FUNCTION_BLOCK named TEST_... or marked {attribute 'test'}, so
production code can never move the clock. Each is a statement of its own.

Bad:   PROGRAM Main  ADVANCE(T#1s);  ok := ASSERT_TRUE(x);
Fix:   {attribute 'test'}
       PROGRAM TEST_Main  ADVANCE(T#1s);  ASSERT_TRUE(x, 'x is set');
"""),
    "E0094": _c("invalid test declaration", """
A test (a PROGRAM or FUNCTION_BLOCK named TEST_... or marked
{attribute 'test'}) runs on its own: it takes no VAR_INPUT or VAR_IN_OUT.
Its scan interval for ADVANCE_SCANS is a duration:
{attribute 'scan' := '100ms'} (the default is 100ms).

Bad:   FUNCTION_BLOCK TEST_Guard  VAR_INPUT v : REAL; END_VAR
Fix:   declare v in VAR and set it in the test body.
"""),
    "E0095": _c("a test used by production code", """
Only tests may hold instances of tests, and a CONFIGURATION cannot run one:
a test may call ADVANCE, which moves the clock. A name starting with TEST_
makes a POU a test; rename a production block that is not one.

Bad:   PROGRAM Main  VAR t : TEST_Sequence; END_VAR
Fix:   rename the block (Sequence), or move the instance into a test.
"""),
    "W0101": _c("unused variable", """
A variable is declared but never read or written. It may be a leftover or a
typo for another name.

Fix:   remove it, or use it. Inputs and outputs of a POU are its interface and
are never reported.
"""),
    "W0102": _c("variable read before it is written", """
A VAR_TEMP, or a local of a FUNCTION, is read before any assignment and has
no initial value. It holds its type's default (0, FALSE, ''), which is
rarely what was meant.

Fix:   give it an initial value, or assign it first.
"""),
    "W0103": _c("loop with no bound the checker can see", """
A WHILE or REPEAT loop whose condition does not depend on anything the loop
body changes can run forever, and a runaway loop is stopped only by the
watchdog, which faults the task.

Bad:   WHILE NOT done DO count := count + 1; END_WHILE;
Fix:   make the body change `done`, or use a FOR loop with a fixed bound.
"""),
    "W0104": _c("unreachable code", """
Statements after RETURN, EXIT or CONTINUE in the same list never run.
"""),
    "W0105": _c("CASE selector value not covered", """
A CASE on an enumeration does not list every value and has no ELSE branch,
so some states do nothing at all.

Fix:   add the missing labels or an ELSE branch.
"""),
}
