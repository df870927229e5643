"""plc_lang: IEC 61131-3 Structured Text front end and compiler to Python.

Pipeline (plc_lang/driver.py): parse (parser.py, lexer.py) -> declare and
resolve (symbols.py) -> check (checker.py, statements.py) -> emit (codegen.py).
plc_lang never imports runtime.
"""
