"""The live CAN driver: one python-can bus, decoded and encoded through a DBC.

Receiving runs on a reader thread of its own, not in the asyncio loop: the
thread blocks in `bus.recv`, decodes (`CanCodec`) and publishes straight into
the thread-safe input stage, so a frame reaches the next scan without a hop
through the event loop that the Modbus and OPC UA drivers share (a busy loop
would delay every frame), and without python-can's Notifier, which on most
interfaces runs a thread anyway and lets a receive error kill it. The thread
is the only writer of the receive counters.

Transmitting runs in the loop: each transmitted message (`CanTransmit`, or an
output point's message) goes out every `period_ns` on an absolute schedule,
and/or when one of its bound outputs changes (the driver listens on the
OutputImage; a frame is re-sent only when its signal values differ from the
last ones sent). A message with bound outputs waits until the engine has
committed all of them. `bus.send` runs on a one-thread executor: it may
block (a full TX queue, a TCP socket) and must not stall the loop. A value
the signal cannot carry refuses the whole frame (`CanCodec.encode`), counted
per message with the reason.

Timestamps. A frame's own timestamp is in the interface's clock (wall time
for socketcan, virtual and socketcand; a hardware counter elsewhere). The
driver maps it into the engine clock with the smallest `arrival - frame`
difference seen over a sliding window (`FrameClock`): that difference is
the clock offset plus the fastest delivery, so a frame that waited in a
queue while the reader thread was not scheduled keeps its bus time, never
gets a time after its arrival, and any interface epoch works. When a frame
maps more than `max_lag` before its arrival (the interface clock stepped
back), the estimate restarts from that frame.

With `interface = "socketcand"` the driver asks python-can for `tcp_tune`
(TCP_NODELAY) unless the options say otherwise: a frame is a few dozen bytes
and Nagle's algorithm would hold it up to 40 ms (bench/can_bench.py).

Staleness is the engine's (each point's timeout_ns); the driver reports per
message the count, age of the last frame and whether that age exceeds the
shortest timeout of its points. A bus that fails (a receive error, an
interface that returns from `recv` at once without frames, as python-can's
socketcand bus does on a closed socket) is shut down and opened again with
exponential backoff (0.1 s doubling to `device.backoff_max_ns`); meanwhile
the state is "disconnected" and the inputs go stale by their timeouts.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import can

from .can_codec import CanCodec, EncodeRefused, TxFrame
from .config import Device, Point
from .image import IoPort, wake

RX_POLL_S = 0.1             # how often the reader looks at its stop flag
SCAN_STALL_NS = 1_000_000_000
SEND_TIMEOUT_S = 0.05
BACKOFF_MIN_S = 0.1
STABLE_S = 5.0              # a connection up this long resets the backoff
_SPIN_POLLS = 5             # empty polls that burned CPU in a row: the interface does not block


def _shutdown_when_made(f) -> None:
    if not f.cancelled() and f.exception() is None:
        f.result().shutdown()


class FrameClock:
    """Frame timestamps (seconds, any epoch) into engine-clock nanoseconds."""

    def __init__(self, window_ns: int = 5_000_000_000, max_lag_ns: int = 1_000_000_000):
        self.window_ns = window_ns
        self.max_lag_ns = max_lag_ns
        self._prev: int | None = None    # smallest arrival - frame of the last window
        self._cur: int | None = None     # ... of the current one
        self._start = 0

    def map(self, frame_ts_s: float | None, arrival_ns: int) -> int:
        if not frame_ts_s or frame_ts_s <= 0:        # the interface gives no time
            return arrival_ns
        frame_ns = round(frame_ts_s * 1e9)
        sample = arrival_ns - frame_ns
        if self._cur is None or arrival_ns - self._start >= self.window_ns:
            # a new window forgets estimates older than two windows: clocks drift
            self._prev, self._cur, self._start = self._cur, sample, arrival_ns
        elif sample < self._cur:
            self._cur = sample
        off = self._cur if self._prev is None else min(self._prev, self._cur)
        ts = frame_ns + off
        if arrival_ns - ts > self.max_lag_ns:
            self._prev, self._cur, self._start = None, sample, arrival_ns
            return arrival_ns
        return ts


class _Reader(threading.Thread):
    def __init__(self, driver: "CanDriver", bus):
        super().__init__(name=f"can-rx-{driver.device.name}", daemon=True)
        self.driver = driver
        self.bus = bus
        self.stopping = threading.Event()
        self.clock = FrameClock()

    def run(self) -> None:
        spins = 0
        try:
            while not self.stopping.is_set():
                t0, c0 = time.monotonic(), time.thread_time()
                msg = self.bus.recv(RX_POLL_S)
                if msg is None:
                    # a blocking recv costs no CPU; one that spun for its whole timeout
                    # has an interface that cannot block any more
                    elapsed = time.monotonic() - t0
                    spun = elapsed > RX_POLL_S / 2 and time.thread_time() - c0 > 0.25 * elapsed
                    spins = spins + 1 if spun else 0
                    if spins >= _SPIN_POLLS:
                        raise ConnectionError("the interface returns without frames and without waiting "
                                              "(connection closed?)")
                    continue
                spins = 0
                self.driver._on_frame(msg, self.clock)
        except Exception as e:  # noqa: BLE001 - any receive failure means: reconnect
            if not self.stopping.is_set():
                self.driver._reader_failed(self, e)


class CanDriver:
    """Driver for one `transport = "can"` device (see the module doc)."""

    def __init__(self, device: Device, points: list[Point], port: IoPort):
        if device.transport != "can":
            raise ValueError(f"device {device.name!r} is {device.transport!r}, not can")
        self.device = device
        self._port = port
        self.codec = CanCodec(device.dbc, points, device.transmit, device.period_ns)
        self._timeout_ns: dict[str, int] = {}
        for p in points:
            if p.direction == "input":
                name = self.codec.message(p.message).name
                t = p.timeout_ns if p.timeout_ns is not None else device.timeout_ns
                self._timeout_ns[name] = min(t, self._timeout_ns.get(name, t))
        self._on_change = [f for f in self.codec.tx.values() if f.on_change and f.bindings]
        self._periodic = [f for f in self.codec.tx.values() if f.period_ns]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._changed = True
        self._reader: _Reader | None = None
        self._lost: str | None = None
        if self._on_change:
            port.outputs.listen(self._outputs_changed)
        # stats
        self._state = "starting"
        self._connects = 0
        self._connect_failures = 0
        self._disconnects = 0
        self._retry_in_s = 0.0
        self._last_error: str | None = None
        self._frames_rx = 0
        self._error_frames = 0
        self._remote_frames = 0
        self._frames_tx = 0
        self._send_failures = 0
        self._tx: dict[str, dict] = {f.name: {"sent": 0, "refused": 0, "waiting": 0, "send_failures": 0,
                                              "last_error": None} for f in self.codec.tx.values()}
        self._log_bus = None

    # ------------------------------------------------------------ contract
    def stats(self) -> dict:
        """state: starting | connecting | connected | disconnected | stopped.
        `rx` holds, per DBC message received or bound, the frame count, the
        age of the last one and `stale` when that age exceeds the shortest
        timeout of its points; `tx` per transmitted message."""
        now = self._port.clock_ns()
        c = self.codec
        counts = dict(c.rx_by_message)
        last = dict(c.last_rx_ns)
        rx = {}
        for name, n in counts.items():
            if n == 0 and name not in self._timeout_ns:
                continue
            seen = last.get(name)
            age = None if seen is None else max(0, now - seen) / 1e9
            e = {"frames": n, "age_s": None if age is None else round(age, 3)}
            if name in self._timeout_ns:
                e["timeout_s"] = self._timeout_ns[name] / 1e9
                e["stale"] = age is None or age * 1e9 > self._timeout_ns[name]
            rx[name] = e
        return {
            "device": self.device.name,
            "transport": "can",
            "interface": self.device.interface,
            "channel": self.device.channel,
            "state": self._state,
            "connects": self._connects,
            "reconnects": max(0, self._connects - 1),
            "connect_failures": self._connect_failures,
            "disconnects": self._disconnects,
            "retry_in_s": self._retry_in_s,
            "frames_rx": self._frames_rx,
            "frames_tx": self._frames_tx,
            "error_frames": self._error_frames,
            "remote_frames": self._remote_frames,
            "send_failures": self._send_failures,
            **{k: v for k, v in c.stats().items() if k != "rx_frames"},     # frames_rx counts every frame
            "last_error": self._last_error,
            "rx": rx,
            "tx": {k: dict(v) for k, v in self._tx.items()},
            **({"log": self.device.log, "replay_finished": self._log_bus.finished,
                "replay_error": self._log_bus.error} if self._log_bus is not None else {}),
        }

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"can-tx-{self.device.name}")
        backoff = BACKOFF_MIN_S
        try:
            while True:
                self._state = "connecting"
                bus = await self._open()
                if bus is not None:
                    up = time.monotonic()
                    try:
                        await self._serve(bus, pool)
                    finally:
                        await self._close(bus)
                    self._disconnects += 1
                    if time.monotonic() - up >= STABLE_S:
                        backoff = BACKOFF_MIN_S
                self._state = "disconnected"
                self._retry_in_s = round(backoff, 3)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max(BACKOFF_MIN_S, self.device.backoff_max_ns / 1e9))
        finally:
            self._state = "stopped"
            self._retry_in_s = 0.0
            pool.shutdown(wait=False)

    # ------------------------------------------------------------ connection
    def _bus_kwargs(self) -> dict:
        kw = dict(self.device.can_options)
        kw["interface"] = self.device.interface
        kw["channel"] = self.device.channel
        if self.device.bitrate is not None:
            kw["bitrate"] = self.device.bitrate
        if kw["interface"] == "socketcand":
            # TCP_NODELAY: without it Nagle and delayed ACKs hold a lone frame up to 40 ms
            kw.setdefault("tcp_tune", True)
        return kw

    async def _open(self):
        if self.device.log is not None:
            # a capture replayed as the bus, in real time, from the start at every (re)open
            from .can_log import LogBus
            self._log_bus = LogBus(self.device.log)
            self._connects += 1
            return self._log_bus
        kw = self._bus_kwargs()
        try:
            if kw["interface"] == "socketcand":
                # python-can's socketcand bus retries a refused connect for 10 s in a busy
                # loop; a quick probe keeps that out of a backoff cycle
                _, w = await asyncio.wait_for(asyncio.open_connection(kw.get("host"), kw.get("port")),
                                              self.device.timeout_ns / 1e9)
                w.close()
            fut = self._loop.run_in_executor(None, lambda: can.Bus(**kw))
            try:
                bus = await asyncio.shield(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(_shutdown_when_made)      # cancelled while opening: close what opens
                raise
        except Exception as e:  # noqa: BLE001 - any interface problem is a failed connect
            self._connect_failures += 1
            self._last_error = f"open {kw['interface']}:{kw['channel']}: {type(e).__name__}: {e}"
            return None
        self._connects += 1
        return bus

    async def _close(self, bus) -> None:
        r, self._reader = self._reader, None
        if r is not None:
            r.stopping.set()

        def close():
            if r is not None:
                r.join(RX_POLL_S * 5)
            bus.shutdown()
        try:
            await asyncio.shield(self._loop.run_in_executor(None, close))
        except Exception as e:  # noqa: BLE001 - a bus that fails to close is gone anyway
            self._last_error = f"shutdown: {type(e).__name__}: {e}"

    # ------------------------------------------------------------ receive (reader thread)
    def _on_frame(self, msg: can.Message, clock: FrameClock) -> None:
        arrival = self._port.clock_ns()
        self._frames_rx += 1
        if msg.is_error_frame:
            self._error_frames += 1
            return
        if msg.is_remote_frame:
            self._remote_frames += 1
            return
        updates = self.codec.decode(msg.arbitration_id, msg.data, clock.map(msg.timestamp, arrival),
                                    msg.is_extended_id)
        if updates:
            self._port.publish(updates)

    def _reader_failed(self, reader: _Reader, e: Exception) -> None:
        reason = f"receive: {type(e).__name__}: {e}"
        loop = self._loop

        def lost():
            if self._reader is reader:
                self._lost = reason
                self._last_error = reason
                self._wake.set()
        try:
            loop.call_soon_threadsafe(lost)
        except RuntimeError:        # the loop is closed: the driver is gone
            pass

    # ------------------------------------------------------------ transmit (loop)
    def _outputs_changed(self) -> None:
        # called from the scan thread: a flag and a wake-up, nothing more
        self._changed = True
        wake(self._loop, self._wake)

    async def _serve(self, bus, pool) -> None:
        self._lost = None
        self._reader = _Reader(self, bus)
        self._reader.start()
        self._state = "connected"
        self._retry_in_s = 0.0
        loop = self._loop
        due = {f.name: loop.time() for f in self._periodic}       # the first frames go out at once
        last: dict[str, dict] = {}       # values last sent (or refused) per message, for on-change
        self._changed = True             # a (re)connect sends every on-change frame again
        while True:
            self._wake.clear()
            if self._lost is not None:
                return
            if self._changed:
                self._changed = False
                for f in self._on_change:
                    vals = self._values(f)
                    if vals is not None and vals != last.get(f.name):
                        last[f.name] = vals
                        await self._send(bus, pool, f, vals)
            now = loop.time()
            stalled = self._scans_stalled()
            for f in self._periodic:
                if now >= due[f.name]:
                    vals = None if stalled else self._values(f)
                    if stalled:
                        self._tx[f.name]["held_scans_stalled"] = self._tx[f.name].get("held_scans_stalled", 0) + 1
                    if vals is not None:
                        last[f.name] = vals
                        await self._send(bus, pool, f, vals)
                    period = f.period_ns / 1e9
                    nxt = due[f.name] + period
                    due[f.name] = nxt if nxt > now else now + period     # behind: skip, no burst
            wait = min(due.values()) - loop.time() if due else None
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(None if wait is None else max(0.0, wait)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _scans_stalled(self) -> bool:
        """No scan for SCAN_STALL_NS: a heartbeat sent now would vouch for a
        controller that is not running, so periodic frames are held."""
        c = self._port.outputs.committed_ns
        return c is not None and self._port.clock_ns() - c > SCAN_STALL_NS

    def _values(self, f: TxFrame) -> dict | None:
        vals = {}
        for sig, var in f.bindings:
            v = self._port.output(var)
            if v is None:            # the engine has not committed this output yet
                self._tx[f.name]["waiting"] += 1
                return None
            vals[sig] = v
        return vals

    async def _send(self, bus, pool, f: TxFrame, vals: dict) -> None:
        st = self._tx[f.name]
        try:
            payload = self.codec.encode(f.name, vals)
        except EncodeRefused as e:
            st["refused"] += 1
            st["last_error"] = str(e)
            self._last_error = f"refused: {e}"
            return
        msg = can.Message(arbitration_id=f.message.frame_id, is_extended_id=f.message.is_extended_frame,
                          data=payload, is_fd=bool(getattr(f.message, "is_fd", False)))
        try:
            await self._loop.run_in_executor(pool, bus.send, msg, SEND_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - a failed send is counted; the reader sees a dead bus
            self._send_failures += 1
            st["send_failures"] += 1
            st["last_error"] = f"send: {type(e).__name__}: {e}"
            self._last_error = st["last_error"]
            return
        self._frames_tx += 1
        st["sent"] += 1
