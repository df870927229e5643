"""Which code runs the scans of an offline run: the Python backend
(plc_lang/codegen.py) or the native one (plc_lang/native/), which gives the
same values bit for bit on the programs it compiles and runs a scenario
some 20x faster (bench/sim_bench.py).

    auto    native when the program compiles natively and a C compiler is
            here, else Python (the default; results do not depend on it)
    native  native, or an error saying why not
    python  always Python

$GRIDPLC_BACKEND sets the default. Coverage counters and the live runtime
always use the Python backend.
"""
from __future__ import annotations

import os

BACKENDS = ("auto", "native", "python")


class BackendError(Exception):
    pass


def default_backend() -> str:
    b = os.environ.get("GRIDPLC_BACKEND", "auto").strip().lower() or "auto"
    if b not in BACKENDS:
        raise BackendError(f"GRIDPLC_BACKEND={b!r}: expected one of {', '.join(BACKENDS)}")
    return b


def select(program, backend: str | None = None):
    """The program to hand to Engine for `backend` (None: the default)."""
    backend = default_backend() if backend is None else backend
    if backend not in BACKENDS:
        raise BackendError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "python" or getattr(program, "coverage", None) is not None:
        return program
    from plc_lang.native import native_program
    native, why = native_program(program)
    if native is not None:
        return native
    if backend == "native":
        raise BackendError(f"--backend native: {why}")
    return program
