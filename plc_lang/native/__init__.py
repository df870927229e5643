"""The native backend: the checked project as C, compiled with the system's
C compiler and run through ctypes, bit-identical with the Python backend
(plc_lang/codegen.py) on everything it accepts. See cgen.py for the rules."""
from .program import NativeProgram, native_program  # noqa: F401
