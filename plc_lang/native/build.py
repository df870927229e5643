"""Compile the generated C into a shared library, once per distinct source.

Libraries are cached by the hash of the C text, the flags and the compiler,
in $GRIDPLC_NATIVE_CACHE or ~/.cache/gridplc/native; parallel scenario
workers building the same program race harmlessly (write, then rename).

The flags are part of the semantics: no FP contraction (a*b+c stays two
roundings, as in Python), no fast-math, wrapping signed arithmetic.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

FLAGS = ["-O2", "-std=gnu11", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fwrapv",
         "-fno-strict-aliasing", "-fexcess-precision=standard", "-w"]


class NativeBuildError(Exception):
    pass


def compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc) or shutil.which("gcc")


def cache_dir() -> str:
    d = os.environ.get("GRIDPLC_NATIVE_CACHE")
    if not d:
        d = os.path.join(os.path.expanduser("~"), ".cache", "gridplc", "native")
    os.makedirs(d, exist_ok=True)
    return d


def build(c_source: str) -> str:
    """Path of the shared library for c_source, compiling it if needed."""
    cc = compiler()
    if cc is None:
        raise NativeBuildError("no C compiler (cc or gcc) on PATH")
    key = hashlib.sha256("\0".join([c_source, " ".join(FLAGS), cc]).encode()).hexdigest()[:32]
    d = cache_dir()
    lib = os.path.join(d, f"gp_{key}.so")
    if os.path.exists(lib):
        return lib
    fd, c_path = tempfile.mkstemp(suffix=".c", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(c_source)
    tmp_lib = c_path[:-2] + ".so"
    try:
        r = subprocess.run([cc, *FLAGS, "-o", tmp_lib, c_path, "-lm"], capture_output=True, text=True)
    except OSError as e:
        os.unlink(c_path)
        raise NativeBuildError(f"cannot run the C compiler {cc}: {e}") from None
    if r.returncode != 0:
        # a bug of the generator: keep the source for the report
        raise NativeBuildError(f"the C compiler failed ({r.returncode}) on {c_path}: {r.stderr.strip()[:2000]}")
    os.replace(tmp_lib, lib)
    os.unlink(c_path)
    return lib
