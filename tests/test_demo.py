"""`gridplc demo` end to end: devices in their own process over CAN
(socketcand) and Modbus TCP, the BESS application live, a clean stop."""
from __future__ import annotations

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_demo_runs_the_site_closed_loop_and_stops_cleanly(tmp_path):
    r = subprocess.run([sys.executable, "-m", "runtime.cli", "demo", "--duration", "9s", "--cold",
                        "--state-dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=90)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = r.stdout
    assert "Traceback" not in r.stderr
    assert re.search(r"SCADA\s+Modbus TCP 127\.0\.0\.1:\d+", out)
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert len(lines) >= 7
    last = lines[-1]
    # the BMS is heard over CAN (limits open once it hears our keep-alive) and the meter over Modbus
    assert "limits -0/+0 W" not in last and not re.search(r"grid\s+0 W", last), last
    assert "FAULT" not in out
    assert re.search(r"ProtectTask: \d+ scans", out)
    events = (tmp_path / "events.jsonl").read_text()
    assert '"kind":"start"' in events.replace(" ", "") and '"kind":"stop"' in events.replace(" ", "")
