"""The BESS reference application: its library's ST unit tests and its
validation scenarios pass, through the commands a user runs."""
from __future__ import annotations

import glob
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gridplc(*args):
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_the_library_unit_tests_pass():
    r = _gridplc("test", "programs/lib")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    import re
    m = re.search(r"(\d+) passed, 0 failed", r.stdout.splitlines()[-1])
    assert m and int(m.group(1)) >= 11      # at least one test per block


def test_the_application_checks_clean():
    files = sorted(glob.glob(os.path.join(REPO, "programs/lib/*.st"))) + \
        [os.path.join(REPO, "programs/bess", f) for f in ("types.st", "protect.st", "coord.st", "dispatch.st", "bess.st")]
    r = _gridplc("check", "--format", "short", *files)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_validation_scenario_passes():
    files = sorted(glob.glob(os.path.join(REPO, "programs/bess/scenarios/*.toml")))
    assert len(files) >= 12
    r = _gridplc("sim", "--scenario", *files)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
