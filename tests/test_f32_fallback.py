"""Without the C helper (no compiler at install) REAL rounding falls back to
struct; both paths must give the same bits."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT.parent / "shared" / "bench" / "site_protect.st"
GUARD = ROOT / "programs" / "examples" / "battery_guard.st"


def _sim(path: Path, no_ext: bool) -> str:
    env = dict(os.environ)
    env.pop("GRIDPLC_NO_F32_EXT", None)
    if no_ext:
        env["GRIDPLC_NO_F32_EXT"] = "1"
    out = subprocess.run([sys.executable, "-m", "runtime.cli", "sim", str(path), "--cycles", "60", "--json",
                          "--compact"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_struct_fallback_gives_identical_results():
    for path in (SITE, GUARD):
        if path.exists():
            assert _sim(path, no_ext=False) == _sim(path, no_ext=True)


def test_fallback_is_really_used_when_disabled():
    code = "import plc_lang.rt_support as r; print(r.HAVE_F32_EXT)"
    env = dict(os.environ, GRIDPLC_NO_F32_EXT="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
