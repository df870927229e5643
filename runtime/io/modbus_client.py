"""Modbus TCP points: a device's registers as inputs and outputs.

One connection per device (pymodbus's async TCP client, its own reconnect
and retries off: this driver decides). Every `device.period_ns` the inputs
are read with as few requests as `modbus_codec.plan_reads` allows (across
holes of up to `device.max_gap` registers); the updates of one poll are
published as one group, stamped with the engine clock when their response
arrived. A GOOD value that did not change is published again only once half
the input's timeout has passed since it was (the engine's staleness clock
needs that, the scan need not latch the same number every poll); a BAD one
only when it becomes BAD. Per input:

    a usable value                                GOOD   the value
    SunSpec "not implemented", NaN, or an unusable
      scale factor (not implemented, |sf| > 10)   BAD    None (the engine keeps the last value)
    the request answered with an exception        BAD    None
    a SunSpec name the device does not have       BAD    None (once per connection)
    no answer within `device.timeout_ns`, or the
      connection lost                             STALE  None (every input polled on it)

A merged read that a device refuses with 02 ILLEGAL DATA ADDRESS while it
spans a hole is split into hole-free reads for the rest of the connection
(devices that refuse unmapped registers inside a block are common).

A request without an answer in time, a connection the device closes, or a
response that is not one (garbage, another function's reply) ends the
connection: all inputs go STALE, and the driver reconnects after a pause
that doubles from 0.1 s up to `device.backoff_max_ns`. The pause starts
over only once a request of the new connection was answered, so a server
that accepts connections and never answers is retried at the slowest pace.
Pending responses of a dropped connection cannot be mistaken for new ones.

SunSpec devices (`device.sunspec`) are discovered on every (re)connect: the
marker at `device.sunspec_base` (or 40000, 0, 50000), then the model chain;
names are bound to registers afresh, so a firmware update that moves models
is followed. A device without the marker has its SunSpec points BAD and is
retried with the growing pause.

Polls of the devices of a site start at different phases of their period
(by a hash of the device name), so their responses do not reach the I/O
thread, and their updates the scan, in one burst.

Outputs: `write = "on_change"` writes when `port.output(var)` differs from
the value last written successfully (all again after every reconnect);
"cyclic" every `period` (the point's, else the device's poll period). A
value the registers cannot hold (out of the type's range after scaling) is
refused locally and not retried until it changes; one the device refuses
(an exception) is retried once per poll period. A BOOL on a register bit is
a read-modify-write of that register (FC3 then FC6). Scaled outputs with a
scale-factor register wait until the factor has been read.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from . import sunspec
from .config import Device, Point
from .image import BACKOFF_START_S, IoPort, Update, backoff, wake
from .modbus_codec import (WRITABLE_TABLES, CodecError, Field, ReadRequest, encode, field_of, has_holes,
                           make_decoder, plan_reads, scale_exponent, words_to_raw)
from .quality import BAD, GOOD, STALE

_log = logging.getLogger(__name__)

_RATE_WINDOW_NS = 10_000_000_000
_UNSENT = object()


class _Lost(Exception):
    """The connection is no longer usable."""


def _raise_if_cancelled() -> None:
    """Python 3.11's asyncio.wait_for (pymodbus awaits responses with it) can
    swallow a cancellation that arrives as the response does; the task still
    counts the request, so honour it here or the driver would never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class _Input:
    path: str
    point: Point
    confirm_ns: int                # re-publish a steady GOOD value this often (half its timeout)
    field: Field | None = None
    problem: str | None = None     # why it cannot be read on this connection
    q: int | None = None           # quality last published from a poll (None: none yet)
    ts_ns: int | None = None       # of the last GOOD value published, `value`
    value: object = None


@dataclass
class _Output:
    path: str
    point: Point
    cyclic_ns: int | None
    field: Field | None = None
    problem: str | None = None
    sent: object = _UNSENT         # last value written successfully on this connection
    refused: object = _UNSENT      # a value the registers cannot hold (not retried until it changes)
    failed: object = _UNSENT       # a value the device refused, retried at retry_ns
    retry_ns: int = 0
    due_ns: int = 0                # cyclic: next write (monotonic)


class ModbusDriver:
    """Driver for one `transport = "modbus"` device (see the module doc)."""

    def __init__(self, device: Device, points: list[Point], port: IoPort):
        if device.transport != "modbus":
            raise ValueError(f"device {device.name!r} is {device.transport!r}, not modbus")
        if not device.host or not device.port:
            raise ValueError(f"device {device.name!r}: host and port are needed")
        self.device = device
        self._port = port
        self._timeout_s = device.timeout_ns / 1e9
        self._period_ns = device.period_ns
        self._inputs: list[_Input] = []
        self._outputs: list[_Output] = []
        for p in points:
            if p.direction == "input":
                timeout = p.timeout_ns if p.timeout_ns is not None else device.timeout_ns
                self._inputs.append(_Input(p.var, p, timeout // 2))
            else:
                cyclic = (p.period_ns or device.period_ns) if p.write == "cyclic" else None
                self._outputs.append(_Output(p.var, p, cyclic))
        self._bind_static()
        self._spans: list[Field] = []
        self._plan: list[ReadRequest] = []
        # per readable input: (input, span index, decoder, scale-factor key or None, fixed exponent)
        self._readers: list[tuple] = []
        self._sf_span: dict[tuple[str, int], int] = {}
        self._sf: dict[tuple[str, int], int | None] = {}     # scale factors as last read
        self._smap: sunspec.SunSpecMap | None = None
        self._answered = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = False
        # stats
        self._state = "starting"
        self._connects = 0
        self._connect_failures = 0
        self._requests = 0
        self._responses = 0
        self._timeouts = 0
        self._bad_responses = 0
        self._rx_bytes = 0
        self._exceptions: dict[str, int] = {}
        self._polls = 0
        self._splits = 0
        self._points_read = 0
        self._rate: deque = deque(maxlen=1000)
        self._rtt_last_ns = 0
        self._rtt_max_ns = 0
        self._rtt_total_ns = 0
        self._writes_ok = 0
        self._write_errors: dict[str, int] = {}
        self._last_error: str | None = None
        self._retry_in_s = 0.0

    # ------------------------------------------------------------ contract
    def stats(self) -> dict:
        rate = 0.0
        if len(self._rate) >= 2:
            (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
            if t1 > t0:
                rate = (n1 - n0) * 1e9 / (t1 - t0)
        problems = {x.path: x.problem for x in (*self._inputs, *self._outputs) if x.problem}
        return {
            "device": self.device.name,
            "transport": "modbus",
            "endpoint": f"{self.device.host}:{self.device.port}",
            "state": self._state,
            "connects": self._connects,
            "reconnects": max(0, self._connects - 1),
            "connect_failures": self._connect_failures,
            "requests": self._requests,
            "responses": self._responses,
            "timeouts": self._timeouts,
            "exceptions": dict(self._exceptions),
            "bad_responses": self._bad_responses,
            "polls": self._polls,
            "reads_per_poll": len(self._plan),
            "split_reads": self._splits,
            "points_read": self._points_read,
            "points_per_s": round(rate, 1),
            "rtt_ms": {"last": self._rtt_last_ns / 1e6, "max": self._rtt_max_ns / 1e6,
                       "avg": self._rtt_total_ns / self._responses / 1e6 if self._responses else 0.0},
            "writes_ok": self._writes_ok,
            "writes_failed": sum(self._write_errors.values()),
            "write_errors": dict(self._write_errors),
            "point_errors": problems,
            "sunspec": None if self._smap is None else {"base": self._smap.base, "models": self._smap.describe()},
            "last_error": self._last_error,
            "retry_in_s": self._retry_in_s,
        }

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if not self._listening:
            self._port.outputs.listen(self._on_outputs)
            self._listening = True
        delay = BACKOFF_START_S
        while True:
            self._state = "connecting"
            try:
                await self._connection()
            except asyncio.CancelledError:
                self._state = "stopped"
                raise
            except _Lost as e:
                self._error(str(e))
            except Exception as e:  # noqa: BLE001 - every failure becomes a retry, never a crash
                self._error(f"{type(e).__name__}: {e}")
                _log.exception("%s: driver error", self.device.name)
            if self._answered:
                delay = BACKOFF_START_S
            delay = await backoff(self, delay, self.device.backoff_max_ns)

    # ------------------------------------------------------------ one connection
    async def _connection(self) -> None:
        d = self.device
        self._answered = False
        client = AsyncModbusTcpClient(d.host, port=d.port, name=d.name, timeout=self._timeout_s, retries=0,
                                      reconnect_delay=0, trace_packet=self._traced)
        connected = False
        try:
            if not await client.connect():
                self._connect_failures += 1
                raise _Lost(f"cannot connect to {d.host}:{d.port}")
            connected = True
            self._connects += 1
            self._state = "connected"
            _log.info("%s: connected to %s:%s", d.name, d.host, d.port)
            if d.sunspec:
                await self._discover(client)
            self._make_plan()
            for o in self._outputs:
                o.sent = o.failed = _UNSENT
            await self._serve(client)
        finally:
            client.close()
            if connected:
                self._all_stale()

    async def _serve(self, client) -> None:
        # devices of one site start polling at different phases of the period,
        # so their responses do not all land on the I/O thread in one burst
        next_poll = time.monotonic_ns() + zlib.crc32(self.device.name.encode()) % self._period_ns
        while True:
            _raise_if_cancelled()
            if not client.connected:
                raise _Lost("the device closed the connection")
            await self._write_pass(client)
            now = time.monotonic_ns()
            if now >= next_poll:
                await self._poll(client)
                next_poll += self._period_ns
                if next_poll <= now:
                    next_poll = now + self._period_ns     # behind: skip, never poll back to back
            # times already past were handled by the pass just made (or skipped for cause)
            now = time.monotonic_ns()
            due = [next_poll] + [t for o in self._outputs if o.field is not None
                                 for t in (o.due_ns if o.cyclic_ns is not None else 0,
                                           o.retry_ns if o.failed is not _UNSENT else 0) if t > now]
            wait = max(0.0, (min(due) - now) / 1e9)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    # ------------------------------------------------------------ requests
    async def _request(self, what: str, fc: int, call, *args, **kw):
        """The response, or the exception code (int) the device answered."""
        self._requests += 1
        rx = self._rx_bytes
        t0 = time.monotonic_ns()
        try:
            # pymodbus times out by itself; the outer bound only guards against it not doing so
            async with asyncio.timeout(self._timeout_s * 2 + 1):
                resp = await call(*args, device_id=self.device.unit, **kw)
        except (TimeoutError, ModbusIOException) as e:
            if isinstance(e, ModbusIOException) and "No response" not in str(e):
                self._bad_responses += 1
                raise _Lost(f"{what}: {e.message}") from None
            if self._rx_bytes > rx:
                # bytes came, no frame of ours among them: garbage, not silence
                self._bad_responses += 1
                raise _Lost(f"{what}: {self._rx_bytes - rx} bytes received, no Modbus answer among them") from None
            self._timeouts += 1
            raise _Lost(f"{what}: no answer within {self._timeout_s:g} s") from None
        except ConnectionException:
            raise _Lost(f"{what}: connection lost") from None
        except ModbusException as e:
            self._bad_responses += 1
            raise _Lost(f"{what}: {e}") from None
        _raise_if_cancelled()
        rtt = time.monotonic_ns() - t0
        self._responses += 1
        self._rtt_last_ns = rtt
        self._rtt_total_ns += rtt
        if rtt > self._rtt_max_ns:
            self._rtt_max_ns = rtt
        if resp.function_code == fc | 0x80:
            self._answered = True
            code = int(getattr(resp, "exception_code", 0))
            key = f"{code:02X}"
            self._exceptions[key] = self._exceptions.get(key, 0) + 1
            self._error(f"{what}: exception {key}")
            return code
        if resp.function_code != fc:
            self._bad_responses += 1
            raise _Lost(f"{what}: answered with function {resp.function_code}")
        return resp

    def _traced(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_bytes += len(data)
        return data

    async def _read(self, client, table: str, address: int, count: int):
        """The registers/bits read, or an exception code."""
        fc, call = {"coil": (1, client.read_coils), "discrete": (2, client.read_discrete_inputs),
                    "input": (4, client.read_input_registers), "holding": (3, client.read_holding_registers)}[table]
        what = f"read {table} {address}+{count}"
        resp = await self._request(what, fc, call, address, count=count)
        if isinstance(resp, int):
            return resp
        data = resp.bits if fc <= 2 else resp.registers
        if data is None or len(data) < count:
            self._bad_responses += 1
            raise _Lost(f"{what}: the answer holds {0 if data is None else len(data)} values")
        self._answered = True
        return data

    async def _write(self, client, f: Field, data: list):
        what = f"write {f.table} {f.address}"
        if f.bits:
            r = await self._request(what, 5, client.write_coil, f.address, bool(data[0]))
        elif len(data) == 1:
            r = await self._request(what, 6, client.write_register, f.address, data[0])
        else:
            r = await self._request(what, 16, client.write_registers, f.address, data)
        if not isinstance(r, int):
            self._answered = True
        return r

    # ------------------------------------------------------------ binding
    def _bind_static(self) -> None:
        for x in (*self._inputs, *self._outputs):
            p = x.point
            if p.sunspec:
                continue
            try:
                x.field = field_of(p, self.device)
            except CodecError as e:
                x.problem = str(e)
                continue
            if isinstance(x, _Output) and p.table not in WRITABLE_TABLES:
                x.field, x.problem = None, f"a {p.table} cannot be written"

    async def _discover(self, client) -> None:
        async def read(address, count):
            r = await self._read(client, "holding", address, count)
            return None if isinstance(r, int) else r
        try:
            self._smap = await sunspec.discover(read, self.device.sunspec_base)
        except sunspec.SunSpecError as e:
            self._smap = None
            for x in (*self._inputs, *self._outputs):
                if x.point.sunspec:
                    x.field, x.problem = None, str(e)
            self._publish_bad([i for i in self._inputs if i.point.sunspec])
            self._answered = False      # a device that is not SunSpec (yet) is retried ever slower
            raise _Lost(f"SunSpec discovery: {e}") from None
        for x in (*self._inputs, *self._outputs):
            if not x.point.sunspec:
                continue
            r = sunspec.resolve(self._smap, x.point.sunspec)
            x.field, x.problem = (None, r) if isinstance(r, str) else (r, None)
            if isinstance(x, _Output) and x.field is not None and sunspec.point_access(x.point.sunspec) != "RW":
                x.field, x.problem = None, f"{x.point.sunspec} is read-only in its model"
        self._publish_bad([i for i in self._inputs if i.point.sunspec and i.field is None])

    def _make_plan(self) -> None:
        spans: list[Field] = []
        self._readers = []
        for i in self._inputs:
            if i.field is not None:
                f = i.field
                sf_key = (f.table, f.sf_address) if f.sf_address is not None else None
                self._readers.append((i, len(spans), make_decoder(f), sf_key, f.sf_fixed or 0))
                spans.append(f)
        self._sf_span = {}
        for x in (*self._inputs, *self._outputs):
            f = x.field
            if f is not None and f.sf_address is not None and (f.table, f.sf_address) not in self._sf_span:
                self._sf_span[(f.table, f.sf_address)] = len(spans)
                spans.append(Field(f.table, f.sf_address, "INT16", not_implemented=-0x8000))
        self._spans = spans
        self._plan = plan_reads(spans, self.device.max_gap)
        self._sf = {}

    def _publish_bad(self, inputs: list[_Input]) -> None:
        if inputs:
            now = self._port.clock_ns()
            # their `q` stays as it is: what the device lacks is not made STALE when it goes away
            self._port.publish([Update(i.path, None, BAD, now) for i in inputs])

    # ------------------------------------------------------------ inputs
    async def _poll(self, client) -> None:
        blocks: dict[int, tuple] = {}            # span index -> (data or exception code, start, ts)
        k = 0
        while k < len(self._plan):
            req = self._plan[k]
            data = await self._read(client, req.table, req.address, req.count)
            if data == 2 and has_holes(req, self._spans):
                subs = plan_reads([self._spans[m] for m in req.members], 0)
                for s in subs:
                    s.members = [req.members[m] for m in s.members]
                self._plan[k:k + 1] = subs
                self._splits += 1
                continue                         # read the parts now
            ts = self._port.clock_ns()
            for m in req.members:
                blocks[m] = (data, req.address, ts)
            k += 1
        for key, si in self._sf_span.items():
            data, start, _ = blocks[si]
            self._sf[key] = None if isinstance(data, int) else scale_exponent(
                words_to_raw(data[key[1] - start:key[1] - start + 1], "INT16"))
        ups = []
        good = 0
        sfs = self._sf
        for inp, si, dec, sf_key, sf in self._readers:
            data, start, ts = blocks[si]
            q, value = BAD, None
            if not isinstance(data, int):
                if sf_key is not None:
                    sf = sfs.get(sf_key)
                if sf is not None:
                    value, problem = dec(data, start, sf)
                    if problem is None:
                        q = GOOD
            if q == GOOD:
                good += 1
                if inp.q == GOOD and value == inp.value and ts - inp.ts_ns < inp.confirm_ns:
                    continue        # unchanged and recently confirmed: nothing for the scan to latch
                inp.ts_ns, inp.value = ts, value
            elif inp.q == BAD:
                continue            # still BAD: said already (BAD does not go stale)
            inp.q = q
            ups.append(Update(inp.path, value, q, ts))
        self._polls += 1
        self._points_read += good
        self._rate.append((time.monotonic_ns(), self._points_read))
        while len(self._rate) > 2 and self._rate[-1][0] - self._rate[0][0] > _RATE_WINDOW_NS:
            self._rate.popleft()
        if ups:
            self._port.publish(ups)

    def _exponent(self, f: Field) -> int | None:
        if f.sf_address is None:
            return f.sf_fixed or 0
        return self._sf.get((f.table, f.sf_address))

    def _all_stale(self) -> None:
        ups = []
        for i in self._inputs:
            if i.q in (GOOD, BAD):
                ups.append(Update(i.path, None, STALE, i.ts_ns))
                i.q = STALE
        if ups:
            self._port.publish(ups)

    # ------------------------------------------------------------ outputs
    def _on_outputs(self) -> None:
        """Called from the scan thread after a commit that changed something."""
        wake(self._loop, self._wake)

    async def _write_pass(self, client) -> None:
        for o in self._outputs:
            f = o.field
            if f is None:
                continue
            v = self._port.output(o.path)
            if v is None:
                continue
            now = time.monotonic_ns()
            cyclic_due = o.cyclic_ns is not None and now >= o.due_ns
            if cyclic_due:
                o.due_ns = now + o.cyclic_ns
            elif v == o.sent or v == o.refused or (v == o.failed and now < o.retry_ns):
                continue
            if f.sf_address is not None and self._sf.get((f.table, f.sf_address)) is None:
                data = await self._read(client, f.table, f.sf_address, 1)
                self._sf[(f.table, f.sf_address)] = None if isinstance(data, int) else \
                    scale_exponent(words_to_raw(data[:1], "INT16"))
            sf = self._exponent(f)
            if sf is None:
                o.problem = "its scale factor is not usable"
                continue
            current = None
            if f.bit is not None:
                data = await self._read(client, f.table, f.address, 1)
                if isinstance(data, int):
                    self._write_failed(o, v, f"{data:02X}", f"{o.path}: cannot read register {f.address} to set bit {f.bit}")
                    continue
                current = data[0]
            try:
                words = encode(f, v, sf, current)
            except CodecError as e:
                o.refused, o.failed = v, _UNSENT
                self._write_errors["out_of_range"] = self._write_errors.get("out_of_range", 0) + 1
                self._error(f"{o.path}: {e}")
                continue
            r = await self._write(client, f, words)
            if isinstance(r, int):
                self._write_failed(o, v, f"{r:02X}", f"{o.path}: write refused with exception {r:02X}")
                continue
            o.sent, o.failed, o.problem = v, _UNSENT, None
            self._writes_ok += 1

    def _write_failed(self, o: _Output, v, code: str, message: str) -> None:
        o.failed = v
        o.retry_ns = time.monotonic_ns() + self._period_ns
        self._write_errors[code] = self._write_errors.get(code, 0) + 1
        self._error(message)

    def _error(self, message: str) -> None:
        self._last_error = message
