"""The Modbus TCP driver (runtime/io/modbus_client.py) against real pymodbus
servers and misbehaving raw TCP servers on 127.0.0.1."""
import asyncio
import contextlib
import time

from runtime.io.config import Device, Point
from runtime.io.image import InputStage, IoPort, OutputImage
from runtime.io.modbus_client import ModbusDriver
from runtime.io.modbus_server import TcpRegisterServer
from runtime.io.quality import BAD, GOOD, STALE

# short enough to keep every test well under a second or two
PERIOD_NS = 20_000_000
TIMEOUT_NS = 150_000_000


def run(coro, timeout_s: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


class Rig:
    """The driver's side of the process image, drained like the engine does."""

    def __init__(self):
        self.stage = InputStage()
        self.outputs = OutputImage()
        self.port = IoPort(self.stage, self.outputs, time.monotonic_ns)
        self.latest: dict = {}
        self.history: list = []

    def take(self) -> None:
        for path, u in self.stage.drain().items():
            self.latest[path] = u
            self.history.append(u)

    def q(self, path):
        u = self.latest.get(path)
        return None if u is None else u.quality

    def v(self, path):
        u = self.latest.get(path)
        return None if u is None else u.value

    async def until(self, pred, what: str, timeout_s: float = 3.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self.take()
            if pred():
                return
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; latest: {self.latest}")
            await asyncio.sleep(0.005)

    async def watch(self, seconds: float) -> None:
        """Drain as the engine would (often) for a while."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.take()
            await asyncio.sleep(0.005)

    def set_output(self, path: str, value) -> None:
        self.outputs.values[path] = value
        self.outputs.changed()


@contextlib.asynccontextmanager
async def driving(drv: ModbusDriver):
    task = asyncio.create_task(drv.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def device(port: int, **kw) -> Device:
    kw.setdefault("period_ns", PERIOD_NS)
    kw.setdefault("timeout_ns", TIMEOUT_NS)
    kw.setdefault("backoff_max_ns", 400_000_000)
    return Device("dev", "modbus", host="127.0.0.1", port=port, **kw)


def inp(var, table, address, typ=None, **kw):
    return Point(var, "dev", "input", table=table, address=address, type=typ, **kw)


def out(var, table, address, typ=None, **kw):
    return Point(var, "dev", "output", table=table, address=address, type=typ, **kw)


class Registers:
    """A plain register map (no SunSpec) that records what it was asked."""

    def __init__(self, **tables):
        self.tables = {t: dict(tables.get(t, {})) for t in ("coil", "discrete", "input", "holding")}
        self.reads: list = []
        self.writes: list = []
        self.fail: dict = {}          # (table, address) -> exception code for a request touching it

    def _failure(self, table, address, count):
        for a in range(address, address + count):
            if (table, a) in self.fail:
                return self.fail[(table, a)]
        return None

    async def read(self, table, address, count, peer):
        self.reads.append((table, address, count))
        code = self._failure(table, address, count)
        if code:
            return code
        t = self.tables[table]
        if any(a not in t for a in range(address, address + count)):
            return 2
        return [t[a] for a in range(address, address + count)]

    async def write(self, table, address, values, peer):
        code = self._failure(table, address, len(values))
        if code:
            return code
        t = self.tables[table]
        if any(a not in t for a in range(address, address + len(values))):
            return 2
        self.writes.append((table, address, list(values)))
        for k, v in enumerate(values):
            t[address + k] = v
        return None


@contextlib.asynccontextmanager
async def serving(store):
    srv = TcpRegisterServer(store)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


# ---------------------------------------------------------------- reads
def test_grouped_reads_one_request_per_group():
    # the holes read across (holding 3-4, coils 1-2) exist on this device
    regs = Registers(
        holding={0: 7, 1: 0xFFFF, 2: 3, 3: 0, 4: 0, 5: 0x0001, 6: 0x0002, 20: 42, 200: 0x3FC0, 201: 0},
        input={0: 11},
        coil={0: True, 1: False, 2: False, 3: False, 100: True},
    )
    pts = [inp("M.h0", "holding", 0, "INT16"), inp("M.h1", "holding", 1, "INT16"), inp("M.h2", "holding", 2, "UINT16"),
           inp("M.h5", "holding", 5, "UINT32"), inp("M.h20", "holding", 20, "UINT16"),
           inp("M.f", "holding", 200, "FLOAT32"), inp("M.i0", "input", 0, "UINT16"),
           inp("M.c0", "coil", 0), inp("M.c3", "coil", 3), inp("M.c100", "coil", 100)]

    async def main():
        rig = Rig()
        async with serving(regs) as srv:
            drv = ModbusDriver(device(srv.port, max_gap=8), pts, rig.port)
            async with driving(drv):
                await rig.until(lambda: len(rig.latest) == len(pts), "every point")
                polls = drv.stats()["polls"]
            per_poll = sorted(set(regs.reads))
            assert per_poll == [("coil", 0, 4), ("coil", 100, 1), ("holding", 0, 7), ("holding", 20, 1),
                                ("holding", 200, 2), ("input", 0, 1)]
            assert len(regs.reads) >= 6 * polls and drv.stats()["reads_per_poll"] == 6
        assert {p: (u.value, u.quality) for p, u in rig.latest.items()} == {
            "M.h0": (7, GOOD), "M.h1": (-1, GOOD), "M.h2": (3, GOOD), "M.h5": (0x00010002, GOOD),
            "M.h20": (42, GOOD), "M.f": (1.5, GOOD), "M.i0": (11, GOOD), "M.c0": (True, GOOD),
            "M.c3": (False, GOOD), "M.c100": (True, GOOD)}
    run(main())


def test_types_orders_scales_end_to_end():
    regs = Registers(holding={
        0: 0x5678, 1: 0x1234,                  # UINT32 0x12345678, low word first (the device's default)
        2: 0x1234, 3: 0x5678,                  # the same, point overrides to big
        4: 0xC03F, 5: 0x0000,                  # FLOAT32 1.5, bytes swapped in each register
        6: 0x0000, 7: 0, 8: 0, 9: 0xC000,      # FLOAT64 -2.0, low word first
        10: 0xFF9C,                            # INT16 -100 x 0.5 + 20 = -30
        11: 1234, 12: 0xFFFE,                  # UINT16 1234 with scale factor register 12 = -2
        13: 0x0010,                            # bit 4
    })
    pts = [inp("M.u32", "holding", 0, "UINT32"),
           inp("M.u32b", "holding", 2, "UINT32", word_order="big"),
           inp("M.f32", "holding", 4, "FLOAT32", word_order="big", byte_order="little"),
           inp("M.f64", "holding", 6, "FLOAT64"),
           inp("M.i16", "holding", 10, "INT16", scale=0.5, offset=20.0),
           inp("M.sf", "holding", 11, "UINT16", scale_factor=12),
           inp("M.bit", "holding", 13, "BOOL", bit=4)]

    async def main():
        rig = Rig()
        async with serving(regs) as srv:
            async with driving(ModbusDriver(device(srv.port, word_order="little"), pts, rig.port)):
                await rig.until(lambda: len(rig.latest) == len(pts), "every point")
        assert {p: u.value for p, u in rig.latest.items()} == {
            "M.u32": 0x12345678, "M.u32b": 0x12345678, "M.f32": 1.5, "M.f64": -2.0, "M.i16": -30.0,
            "M.sf": 12.34, "M.bit": True}
    run(main())


def test_exception_response_makes_points_bad_then_recovers():
    regs = Registers(holding={0: 1, 1: 2, 50: 3})
    regs.fail[("holding", 0)] = 4

    async def main():
        rig = Rig()
        pts = [inp("M.a", "holding", 0, "INT16"), inp("M.b", "holding", 1, "INT16"), inp("M.c", "holding", 50, "INT16")]
        async with serving(regs) as srv:
            drv = ModbusDriver(device(srv.port), pts, rig.port)
            async with driving(drv):
                await rig.until(lambda: rig.q("M.a") == BAD and rig.q("M.b") == BAD and rig.q("M.c") == GOOD,
                                "the refused request's points BAD")
                assert rig.v("M.a") is None and rig.v("M.c") == 3
                assert drv.stats()["exceptions"]["04"] >= 1
                assert drv.stats()["connects"] == 1            # an exception is an answer, not a lost device
                del regs.fail[("holding", 0)]
                await rig.until(lambda: rig.q("M.a") == GOOD and rig.v("M.b") == 2, "recovery")
    run(main())


def test_refused_block_across_a_hole_is_split():
    regs = Registers(holding={0: 10, 1: 11, 6: 16})      # 2..5 are not mapped on the device

    async def main():
        rig = Rig()
        pts = [inp("M.a", "holding", 0, "INT16"), inp("M.b", "holding", 1, "INT16"), inp("M.c", "holding", 6, "INT16")]
        async with serving(regs) as srv:
            drv = ModbusDriver(device(srv.port, max_gap=8), pts, rig.port)
            async with driving(drv):
                await rig.until(lambda: rig.v("M.c") == 16 and rig.v("M.a") == 10, "values after the split")
                s = drv.stats()
        assert regs.reads[0] == ("holding", 0, 7)
        assert regs.reads[1:3] == [("holding", 0, 2), ("holding", 6, 1)]
        assert ("holding", 0, 7) not in regs.reads[1:]
        assert s["split_reads"] == 1 and s["reads_per_poll"] == 2
        assert all(u.quality == GOOD for u in rig.history)
    run(main())


def test_steady_values_are_confirmed_not_repeated():
    regs = Registers(holding={0: 5, 1: 9})

    async def main():
        rig = Rig()
        pts = [inp("M.a", "holding", 0, "INT16"), inp("M.b", "holding", 1, "INT16", timeout_ns=10_000_000_000)]
        async with serving(regs) as srv:
            drv = ModbusDriver(device(srv.port), pts, rig.port)       # device timeout 150 ms
            async with driving(drv):
                await rig.until(lambda: rig.v("M.a") == 5, "first value")
                await rig.watch(0.4)
                polls = drv.stats()["polls"]
                a = [u for u in rig.history if u.path == "M.a"]
                b = [u for u in rig.history if u.path == "M.b"]
                # every 75 ms (half its timeout), not at every 20 ms poll
                assert 2 <= len(a) <= 8 and len(a) < polls / 2
                assert len(b) == 1                  # its own timeout is 10 s: confirmed after 5 s
                assert all(x.ts_ns < y.ts_ns for x, y in zip(a, a[1:]))
                regs.tables["holding"][1] = 10
                t0 = time.monotonic()
                await rig.until(lambda: rig.v("M.b") == 10, "a change goes out at the next poll")
                assert time.monotonic() - t0 < 2.0  # not at the confirmation, 5 s after the last
    run(main())


# ---------------------------------------------------------------- writes
def test_outputs_on_change_cyclic_bits_and_refusals():
    regs = Registers(holding={0: 0, 1: 0, 2: 0x8001, 3: 0}, coil={0: False})

    async def main():
        rig = Rig()
        pts = [out("M.p", "holding", 0, "INT16", scale=0.1),
               out("M.hb", "holding", 1, "UINT16", write="cyclic", period_ns=30_000_000),
               out("M.bit", "holding", 2, "BOOL", bit=4),
               out("M.run", "coil", 0)]
        for var, v in (("M.p", 12.5), ("M.hb", 7), ("M.bit", True), ("M.run", True)):
            rig.outputs.values[var] = v
        async with serving(regs) as srv:
            drv = ModbusDriver(device(srv.port), pts, rig.port)
            async with driving(drv):
                await rig.until(lambda: regs.tables["coil"][0] is True and regs.tables["holding"][0] == 125,
                                "first writes")
                assert regs.tables["holding"][2] == 0x8011          # bit 4 set, bits 0 and 15 kept
                writes_of = lambda a: [w for w in regs.writes if w[:2] == ("holding", a)]  # noqa: E731
                await rig.until(lambda: len(writes_of(1)) >= 4, "cyclic: again and again")
                assert len(writes_of(0)) == 1                      # on change, unchanged: written once
                rig.set_output("M.p", -3.2)
                await rig.until(lambda: regs.tables["holding"][0] == 0xFFE0, "a changed value written")
                rig.set_output("M.p", 5000.0)                      # raw 50000 does not fit INT16
                await rig.until(lambda: drv.stats()["write_errors"], "the value refused")
                polls = drv.stats()["polls"]
                await rig.until(lambda: drv.stats()["polls"] >= polls + 3, "more polls")
                assert regs.tables["holding"][0] == 0xFFE0 and len(writes_of(0)) == 2
                s = drv.stats()
                assert s["write_errors"] == {"out_of_range": 1} and "M.p" in s["last_error"]   # not retried
                regs.fail[("coil", 0)] = 3
                rig.set_output("M.run", False)
                await rig.until(lambda: drv.stats()["write_errors"].get("03", 0) >= 2, "refusal retried per period")
                del regs.fail[("coil", 0)]
                await rig.until(lambda: regs.tables["coil"][0] is False, "retry succeeds")
    run(main())


def test_outputs_rewritten_after_reconnect():
    regs = Registers(holding={0: 0})

    async def main():
        rig = Rig()
        rig.outputs.values["M.p"] = 42
        srv = TcpRegisterServer(regs)
        port = await srv.start()
        drv = ModbusDriver(device(port), [out("M.p", "holding", 0, "INT16")], rig.port)
        async with driving(drv):
            await rig.until(lambda: len(regs.writes) == 1, "first write")
            await srv.stop()
            regs.tables["holding"][0] = 0                      # the device restarted with its default
            srv = TcpRegisterServer(regs, port=port)
            await srv.start()
            await rig.until(lambda: len(regs.writes) == 2 and regs.tables["holding"][0] == 42,
                            "the same value written again on the new connection", timeout_s=5)
            assert drv.stats()["reconnects"] >= 1
        await srv.stop()
    run(main())


# ---------------------------------------------------------------- a device that goes away
def test_lost_device_goes_stale_and_recovers():
    regs = Registers(holding={0: 5})

    async def main():
        rig = Rig()
        srv = TcpRegisterServer(regs)
        port = await srv.start()
        drv = ModbusDriver(device(port), [inp("M.a", "holding", 0, "INT16")], rig.port)
        async with driving(drv):
            await rig.until(lambda: rig.q("M.a") == GOOD, "first value")
            srv.silent = True
            t0 = time.monotonic()
            await rig.until(lambda: rig.q("M.a") == STALE, "STALE once the request times out")
            assert time.monotonic() - t0 < TIMEOUT_NS / 1e9 + 1.0
            assert rig.v("M.a") is None                        # keep the last value, change quality
            assert drv.stats()["timeouts"] >= 1
            srv.silent = False
            regs.tables["holding"][0] = 6
            await rig.until(lambda: rig.v("M.a") == 6 and rig.q("M.a") == GOOD, "recovered by itself")
        await srv.stop()
    run(main())


async def _raw_server(reply):
    """A TCP server answering every chunk it receives with reply(chunk) (None: silence)."""
    async def handle(reader, writer):
        try:
            while data := await reader.read(256):
                answer = reply(data)
                if answer:
                    writer.write(answer)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _misbehaving(reply, counter: str, check):
    """The driver keeps trying, counts `counter` per attempt, never publishes GOOD."""
    async def main():
        rig = Rig()
        server = await _raw_server(reply)
        port = server.sockets[0].getsockname()[1]
        drv = ModbusDriver(device(port), [inp("M.a", "holding", 0, "INT16")], rig.port)
        async with driving(drv) as task:
            await rig.until(lambda: drv.stats()[counter] >= 3, f"three {counter}", timeout_s=5)
            assert not task.done()
            s = drv.stats()
            rig.take()
            assert all(u.quality != GOOD for u in rig.history)
            assert s["connects"] >= 3
            check(s)
        server.close()
        await server.wait_closed()
    run(main())


def test_garbage_on_the_socket_is_counted_and_survived():
    def check(s):
        assert s["timeouts"] == 0 and s["responses"] == 0
        assert "no Modbus answer" in s["last_error"]
    _misbehaving(lambda data: b"\x13\x37 not modbus \xff" * 3, "bad_responses", check)


def test_wrong_function_in_the_answer_is_a_bad_response():
    # a well-formed frame with our transaction id, but a coil answer to a register read
    def check(s):
        assert s["timeouts"] == 0 and "answered with function 1" in s["last_error"]
    _misbehaving(lambda data: data[:2] + b"\x00\x00\x00\x04\x01\x01\x01\x00", "bad_responses", check)


def test_server_that_accepts_and_never_answers():
    def check(s):
        assert s["responses"] == 0 and s["bad_responses"] == 0
        assert s["retry_in_s"] in (0.0, 0.2, 0.4)                 # the pause grows: no reset without an answer
    _misbehaving(lambda data: None, "timeouts", check)


def test_nobody_listening_counts_connect_failures():
    async def main():
        rig = Rig()
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        drv = ModbusDriver(device(port), [inp("M.a", "holding", 0, "INT16")], rig.port)
        async with driving(drv):
            await rig.until(lambda: drv.stats()["connect_failures"] >= 3, "retries")
            s = drv.stats()
        assert s["connects"] == 0 and s["requests"] == 0 and "cannot connect" in s["last_error"]
        assert rig.latest == {}        # never had a value: the engine keeps it WAITING
    run(main())
