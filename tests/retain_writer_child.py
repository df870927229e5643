"""Helper for the retain kill test (not a test itself).

    python retain_writer_child.py STORE_PATH N_VALUES

Resumes from the stored sequence number (k = stored scan + 1, or 0 without a
file), prints ``ready K`` and then saves snapshots for k, k+1, ... in a tight
loop until killed, printing ``k`` (flushed) after each save has returned.
Every value in snapshot k is derived from k (see ``snapshot``), so a reader
can check that a file holds one whole snapshot and not a mix.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime.retain import RetainEntry, RetainStore  # noqa: E402

PROGRAM_HASH = "kill-test"


def snapshot(k: int, n: int) -> dict[str, RetainEntry]:
    """n values plus the sequence number, all functions of k."""
    e = {"Main.k": RetainEntry("LINT", k)}
    for i in range(n):
        m = i % 5
        if m == 0:
            e[f"Main.r{i}"] = RetainEntry("LREAL", (k * 1000 + i) / 7.0)
        elif m == 1:
            e[f"Main.i{i}"] = RetainEntry("DINT", k * 31 + i)
        elif m == 2:
            e[f"Main.b{i}"] = RetainEntry("BOOL", (k + i) % 3 == 0)
        elif m == 3:
            e[f"Main.s{i}"] = RetainEntry("STRING(40)", f"k={k} i={i} \u00e9\"")
        else:
            e[f"Main.a{i}"] = RetainEntry("ARRAY[0..2] OF DINT", [k, i, k - i])
    return e


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    store = RetainStore(path)
    loaded = store.load()
    k = loaded.scan + 1 if loaded is not None else 0
    out = sys.stdout
    out.write(f"ready {k}\n")
    out.flush()
    while True:
        store.save(snapshot(k, n), program_hash=PROGRAM_HASH, scan=k)
        out.write(f"{k}\n")
        out.flush()
        k += 1


if __name__ == "__main__":
    main()
