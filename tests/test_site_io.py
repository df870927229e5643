"""`[io] process` in the site file: the live runtime runs the drivers of its
I/O maps in a process of their own unless told not to (or given a clock of
its own). A real Modbus device on loopback feeds a program through both."""
from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from runtime.io.modbus_server import TcpRegisterServer
from runtime.io.quality import GOOD
from runtime.live import LiveRuntime
from runtime.scheduler import MonotonicClock
from runtime.site import SiteError, load_site

PROGRAM = """
PROGRAM Main
VAR
    raw : INT;
    seen : INT;
END_VAR
seen := raw;
END_PROGRAM
"""

MAP = """
[devices.dev]
transport = "modbus"
host = "127.0.0.1"
port = {port}
poll = "50ms"
timeout = "2s"

[[points]]
var = "Main.raw"
device = "dev"
table = "holding"
address = 0
type = "INT16"
"""


class _Registers:
    async def read(self, table, address, count, peer):
        if table != "holding":
            return 2
        return [123 + a for a in range(address, address + count)]

    async def write(self, table, address, values, peer):
        return 2


class Device:
    """A Modbus TCP server on 127.0.0.1, in a loop on a thread of the test."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.server = TcpRegisterServer(_Registers())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def device():
    d = Device()
    yield d
    d.close()


def _site(tmp_path, io_section: str, port: int = 1502):
    (tmp_path / "prog.st").write_text(PROGRAM)
    (tmp_path / "map.toml").write_text(MAP.format(port=port))
    p = tmp_path / "site.toml"
    p.write_text('[site]\nsources = ["prog.st"]\ninterval = "10ms"\nstate_dir = "state"\n'
                 'io_maps = ["map.toml"]\n' + io_section)
    return p


def test_the_drivers_run_in_a_process_of_their_own_unless_the_site_says_false(tmp_path):
    assert load_site(str(_site(tmp_path, ""))).io_process is True
    assert load_site(str(_site(tmp_path, "\n[io]\nprocess = true\n"))).io_process is True
    assert load_site(str(_site(tmp_path, "\n[io]\nprocess = false\n"))).io_process is False


def test_a_wrong_io_key_or_value_names_file_line_and_key(tmp_path):
    p = _site(tmp_path, '\n[io]\nprocess = "yes"\nthreads = 2\n')
    with pytest.raises(SiteError) as e:
        load_site(str(p))
    msgs = e.value.problems
    assert any(m.startswith(f"{p}:8: io.process: must be true") and "'yes'" in m for m in msgs), msgs
    assert any(m.startswith(f"{p}:9: io.threads: unknown key (known: process)") for m in msgs), msgs


@pytest.mark.parametrize("process", [True, False])
def test_a_live_runtime_reads_the_device_either_way(tmp_path, device, process):
    site = load_site(str(_site(tmp_path, f"\n[io]\nprocess = {str(process).lower()}\n", device.port)))
    rt = LiveRuntime(site)
    rt.start()
    try:
        if process:
            pid = rt.io.process.pid
            assert pid is not None and pid != os.getpid()
        else:
            assert rt.io.process is None and rt.io.drivers
        deadline = time.monotonic() + 10
        while rt.engine.tag("Main.seen").get() != 123 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rt.engine.tag("Main.seen").get() == 123
        assert rt.engine.quality("Main.raw")[0] == GOOD
    finally:
        rt.stop()


def test_a_runtime_given_its_own_clock_keeps_the_drivers_in_process(tmp_path):
    rt = LiveRuntime(load_site(str(_site(tmp_path, "\n[io]\nprocess = true\n"))), clock=MonotonicClock())
    try:
        assert rt.io.process is None and rt.io.drivers
    finally:
        rt.stop()
