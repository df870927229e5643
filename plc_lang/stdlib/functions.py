"""Standard function signatures: parameter names, by family.

The checker types each family (plc_lang/checker.py: `_std_call`); the code
generator emits each inline or as a call into plc_lang.values.
"""
from __future__ import annotations

from ..types import ELEMENTARY

# name -> (parameter names, family); "*" marks an extensible list (IN1, IN2, ...)
FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ABS": (("IN",), "num_same"),
    "SQRT": (("IN",), "real_same"), "LN": (("IN",), "real_same"), "LOG": (("IN",), "real_same"),
    "EXP": (("IN",), "real_same"), "SIN": (("IN",), "real_same"), "COS": (("IN",), "real_same"),
    "TAN": (("IN",), "real_same"), "ASIN": (("IN",), "real_same"), "ACOS": (("IN",), "real_same"),
    "ATAN": (("IN",), "real_same"),
    "EXPT": (("IN1", "IN2"), "expt"),
    "MIN": (("IN*",), "common"), "MAX": (("IN*",), "common"),
    "LIMIT": (("MN", "IN", "MX"), "common"),
    "SEL": (("G", "IN0", "IN1"), "sel"),
    "MUX": (("K", "IN*0"), "mux"),
    "MOVE": (("IN",), "same"),
    "SHL": (("IN", "N"), "shift"), "SHR": (("IN", "N"), "shift"),
    "ROL": (("IN", "N"), "shift"), "ROR": (("IN", "N"), "shift"),
    "TRUNC": (("IN",), "trunc"),
    "LEN": (("IN",), "len"),
    "LEFT": (("IN", "L"), "str_int"), "RIGHT": (("IN", "L"), "str_int"),
    "MID": (("IN", "L", "P"), "mid"),
    "CONCAT": (("IN*",), "concat"),
    "INSERT": (("IN1", "IN2", "P"), "insert"),
    "DELETE": (("IN", "L", "P"), "delete"),
    "REPLACE": (("IN1", "IN2", "L", "P"), "replace"),
    "FIND": (("IN1", "IN2"), "find"),
}

CONVERSION_TYPES = tuple(ELEMENTARY)


def split_conversion(name: str):
    """'REAL_TO_INT' -> ('REAL', 'INT'); 'TO_INT' -> (None, 'INT'); else None."""
    up = name.upper()
    if up.startswith("TO_"):
        dst = up[3:]
        return (None, dst) if dst in ELEMENTARY else None
    if "_TO_" in up:
        src, dst = up.split("_TO_", 1)
        if src in ELEMENTARY and dst in ELEMENTARY:
            return (src, dst)
    return None
