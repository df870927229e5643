"""The Modbus TCP server for a SCADA (runtime/io/modbus_server.py), seen
through pymodbus's own client, in front of a real engine."""
import asyncio
import contextlib
import math

from pymodbus.client import AsyncModbusTcpClient

from runtime.io.config import ModbusServer, ServerPoint
from runtime.io.modbus_codec import raw_to_words, words_to_raw
from runtime.io.modbus_server import ScadaServer
from runtime.tags import TagError
from tests.stutil import build

SRC = """
PROGRAM Main
VAR
  soc : REAL := 55.5;
  pSet : REAL;
  level : INT := -3;
  count : DINT := 70000;
  enable : BOOL;
  fieldV : REAL;
END_VAR
END_PROGRAM
"""

POINTS = [
    ServerPoint("Main.soc", "input", 0, "UINT16", scale=0.1),
    ServerPoint("Main.count", "input", 1, "UINT32", word_order="little"),
    ServerPoint("Main.count", "input", 3, "INT16"),                         # 70000 does not fit
    ServerPoint("Main.level", "input", 4, "INT16"),
    ServerPoint("Main.pSet", "holding", 0, "FLOAT32", writable=True, range=(-5000.0, 5000.0)),
    ServerPoint("Main.level", "holding", 2, "INT16", writable=True, scale=0.1),
    ServerPoint("Main.soc", "holding", 3, "UINT16", scale=0.1),             # read-only
    ServerPoint("Main.fieldV", "holding", 4, "INT16", writable=True),
    ServerPoint("Main.enable", "coil", 0, "BOOL", writable=True),
    ServerPoint("Main.enable", "discrete", 0, "BOOL"),
]


def run(coro, timeout_s: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


class Site:
    """An engine, the server in front of it, and a SCADA client."""

    def __init__(self, refresh: bool = True):
        self.engine = build(SRC)
        self.engine.declare_input("Main.fieldV")     # bound to the field: the engine refuses writes to it
        self.events = []
        self.engine.events = lambda kind, data: self.events.append((kind, data))
        tags = {p.var: self.engine.tag(p.var) for p in POINTS}
        self.types = {v: t.type for v, t in tags.items()}
        self.server = ScadaServer(ModbusServer("127.0.0.1", 0, 1, list(POINTS)), self.engine.queue_write,
                                  types=self.types)
        self._tags = tags
        self._refresh = refresh
        self.now = 0

    def scan(self):
        self.now += 10_000_000
        self.engine.scan(self.now)
        self.server.refresh({v: t.get() for v, t in self._tags.items()})

    async def __aenter__(self):
        port = await self.server.start()
        if self._refresh:
            self.scan()
        self.client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await self.client.connect()
        return self

    async def __aexit__(self, *exc):
        self.client.close()
        await self.server.stop()
        self.engine.close()

    def local(self) -> str:
        host, port = self.client.ctx.transport.get_extra_info("sockname")[:2]
        return f"{host}:{port}"


def code(resp) -> int | None:
    return resp.exception_code if resp.isError() else None


def test_reads_serve_the_last_scan():
    async def main():
        async with Site() as s:
            c = s.client
            r = await c.read_input_registers(0, count=5, device_id=1)
            assert r.registers[0] == 555
            assert words_to_raw(r.registers[1:3], "UINT32", word_order="little") == 70000
            assert r.registers[3] == 0x8000                  # cannot hold 70000: "not implemented", not clipped
            assert words_to_raw(r.registers[4:5], "INT16") == -3
            assert s.server.stats()["unencodable"] == 1
            h = await c.read_holding_registers(0, count=5, device_id=1)
            assert words_to_raw(h.registers[0:2], "FLOAT32") == 0.0 and words_to_raw(h.registers[2:3], "INT16") == -30
            assert (await c.read_coils(0, count=1, device_id=1)).bits[0] is False
            s.engine.tag("Main.soc").set(60.0)
            assert (await c.read_input_registers(0, count=1, device_id=1)).registers == [555]   # until a scan ends
            s.scan()
            assert (await c.read_input_registers(0, count=1, device_id=1)).registers == [600]
            part = await c.read_input_registers(2, count=1, device_id=1)      # half a UINT32 may be read
            assert part.registers == [0x0001]
    run(main())


def test_writes_are_queued_for_the_next_scan():
    async def main():
        async with Site() as s:
            c = s.client
            r = await c.write_registers(0, raw_to_words(1234.5, "FLOAT32"), device_id=1)
            assert code(r) is None
            h = await c.read_holding_registers(0, count=2, device_id=1)
            assert words_to_raw(h.registers, "FLOAT32") == 0.0          # not applied directly
            s.scan()
            assert s.engine.tag("Main.pSet").get() == 1234.5
            h = await c.read_holding_registers(0, count=2, device_id=1)
            assert words_to_raw(h.registers, "FLOAT32") == 1234.5
            w = [d for k, d in s.events if k == "write"]
            assert w[-1]["path"] == "Main.pSet" and w[-1]["who"] == f"modbus:{s.local()}"
            r = await c.write_register(2, raw_to_words(-75, "INT16")[0], device_id=1)   # -7.5 -> not an INT
            assert code(r) == 3
            r = await c.write_register(2, raw_to_words(-70, "INT16")[0], device_id=1)
            assert code(r) is None and r.registers == [raw_to_words(-70, "INT16")[0]]   # FC6 echoes what was written
            r = await c.write_coil(0, True, device_id=1)
            assert code(r) is None and r.bits[0] is True
            assert (await c.read_coils(0, count=1, device_id=1)).bits[0] is False
            s.scan()
            assert s.engine.tag("Main.level").get() == -7 and s.engine.tag("Main.enable").get() is True
            assert (await c.read_discrete_inputs(0, count=1, device_id=1)).bits[0] is True
    run(main())


def test_refusals_answer_the_exact_exception_code():
    async def main():
        async with Site() as s:
            c = s.client
            assert code(await c.read_input_registers(5, count=1, device_id=1)) == 2        # unmapped
            assert code(await c.read_input_registers(3, count=3, device_id=1)) == 2        # runs past the map
            assert code(await c.read_holding_registers(100, count=1, device_id=1)) == 2
            assert code(await c.write_register(3, 1, device_id=1)) == 2                    # read-only point
            assert code(await c.write_register(9, 1, device_id=1)) == 2                    # unmapped
            assert code(await c.write_register(0, 0x4000, device_id=1)) == 2               # half a FLOAT32
            assert code(await c.write_registers(1, [0, 0], device_id=1)) == 2              # straddles it
            assert code(await c.write_coil(1, True, device_id=1)) == 2
            assert code(await c.write_registers(0, raw_to_words(6000.0, "FLOAT32"), device_id=1)) == 3  # range
            assert code(await c.write_registers(0, raw_to_words(math.nan, "FLOAT32"), device_id=1)) == 3
            assert code(await c.write_register(4, 5, device_id=1)) == 4                    # engine refuses: an input
            assert code(await c.read_input_registers(0, count=1, device_id=7)) == 0x0B     # another unit
            assert s.server.stats()["refused"] == {"02": 8, "03": 2, "04": 1, "0B": 1}
            s.scan()
            assert s.engine.tag("Main.pSet").get() == 0.0 and s.engine.tag("Main.fieldV").get() == 0.0
    run(main())


def test_a_refused_value_queues_nothing_of_the_request():
    async def main():
        async with Site() as s:
            # pSet (2 registers) then level: level -0.5 is no INT
            words = raw_to_words(100.0, "FLOAT32") + raw_to_words(-5, "INT16")
            assert code(await s.client.write_registers(0, words, device_id=1)) == 3
            s.scan()
            assert s.engine.tag("Main.pSet").get() == 0.0
            words = raw_to_words(100.0, "FLOAT32") + raw_to_words(-50, "INT16")
            assert code(await s.client.write_registers(0, words, device_id=1)) is None
            s.scan()
            assert (s.engine.tag("Main.pSet").get(), s.engine.tag("Main.level").get()) == (100.0, -5)
    run(main())


def test_before_the_first_scan_reads_are_busy():
    async def main():
        async with Site(refresh=False) as s:
            assert code(await s.client.read_input_registers(0, count=1, device_id=1)) == 6
            s.scan()
            assert code(await s.client.read_input_registers(0, count=1, device_id=1)) is None
    run(main())


def test_snapshot_function_and_queue_refusal():
    calls = []

    def refuse(var, text, who):
        calls.append((var, text, who))
        raise TagError("write queue full (1000 pending)")

    async def main():
        cfg = ModbusServer("127.0.0.1", 0, 3, [ServerPoint("Main.x", "holding", 10, "INT32", writable=True)])
        srv = ScadaServer(cfg, refuse, snapshot=lambda: {"Main.x": -123456})
        port = await srv.start()
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        try:
            r = await c.read_holding_registers(10, count=2, device_id=3)
            assert words_to_raw(r.registers, "INT32") == -123456
            assert code(await c.write_registers(10, raw_to_words(7, "INT32"), device_id=3)) == 4
            assert calls == [("Main.x", "7", calls[0][2])] and calls[0][2].startswith("modbus:127.0.0.1:")
            assert "queue full" in srv.stats()["last_error"]
            assert srv.variables == ["Main.x"]
        finally:
            c.close()
            await srv.stop()
    run(main())


def test_run_serves_until_cancelled():
    async def main():
        srv = ScadaServer(ModbusServer("127.0.0.1", 0, 1, [ServerPoint("Main.x", "input", 0)]),
                          lambda *a: None)
        srv.refresh({"Main.x": 5})
        task = asyncio.create_task(srv.run())
        for _ in range(100):
            if srv.stats()["state"] == "listening":
                break
            await asyncio.sleep(0.01)
        c = AsyncModbusTcpClient("127.0.0.1", port=srv.port, timeout=2, retries=0)
        await c.connect()
        assert (await c.read_input_registers(0, count=1, device_id=1)).registers == [5]
        c.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert srv.stats()["state"] == "stopped"
    run(main())
