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
                        "--state-dir", str(tmp_path), "--opcua-port", "0", "--modbus-port", "0"], capture_output=True, text=True, cwd=REPO, timeout=90)
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


def test_a_scada_reads_the_demo_over_opc_ua_and_an_operator_changes_the_mode(tmp_path):
    import asyncio
    import socket
    import time

    from asyncua import Client, ua

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "demo", "--duration", "40s", "--cold",
                             "--state-dir", str(tmp_path), "--opcua-port", str(port), "--modbus-port", "0", "-q"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def scada():
        url = f"opc.tcp://127.0.0.1:{port}/gridplc/"
        end = time.monotonic() + 30
        while True:
            try:
                c = Client(url, timeout=4)
                c.set_user("operator")
                c.set_password("operator-demo")
                await c.connect()
                break
            except (OSError, asyncio.TimeoutError, ua.UaError):
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.5)
        try:
            idx = await c.get_namespace_index("urn:gridplc")
            soc = c.get_node(f"ns={idx};s=Protect.bmsSoc")
            end = time.monotonic() + 15
            while (await soc.read_data_value()).StatusCode.is_bad() and time.monotonic() < end:
                await asyncio.sleep(0.3)
            dv = await soc.read_data_value()
            assert dv.StatusCode.is_good() and 0.0 < dv.Value.Value <= 100.0
            mode = c.get_node(f"ns={idx};s=Dispatch.modeSel")
            vt = await mode.read_data_type_as_variant_type()
            await mode.write_value(ua.DataValue(ua.Variant(0, vt)))      # MODE_STANDBY
            end = time.monotonic() + 5
            while (await mode.read_value()) != 0 and time.monotonic() < end:
                await asyncio.sleep(0.2)
            assert await mode.read_value() == 0
        finally:
            await c.disconnect()

    try:
        asyncio.run(scada())
    finally:
        proc.send_signal(2)       # Ctrl-C: a clean stop
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    log = (tmp_path / "events.jsonl").read_text()
    assert '"opcua:operator"' in log and "Dispatch.modeSel" in log
