"""Runs the drivers of the I/O maps in one asyncio loop on its own thread.

The scan never waits on it: drivers publish into the engine's input stage
and read the output image (image.py). A driver that crashes is logged and
restarted after a pause; its points go stale by their timeouts meanwhile,
which the program sees.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import traceback

from .config import IoMap
from .image import IoPort

# transport -> "module:Class"; each class takes (device, points, port)
DRIVERS = {
    "can": "runtime.io.can_driver:CanDriver",
    "modbus": "runtime.io.modbus_client:ModbusDriver",
    "opcua": "runtime.io.opcua_client:OpcUaClientDriver",
}
RESTART_PAUSE_S = 1.0


def driver_class(transport: str):
    mod, cls = DRIVERS[transport].split(":")
    return getattr(importlib.import_module(mod), cls)


class IoManager:
    def __init__(self, engine, maps: list[IoMap], clock_ns, events=None, queue_write=None):
        self.engine = engine
        self.maps = maps
        self.port = IoPort(engine.input_stage, engine.io_outputs, clock_ns)
        self.events = events or (lambda kind, data: None)
        self.drivers: dict[str, object] = {}
        self.crashes: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._tasks: list[asyncio.Task] = []
        self._served: list = []           # (ScadaServer, [(var, tag)])
        for m in maps:
            for name, dev in m.devices.items():
                pts = m.points_of(name)
                if not pts and not dev.transmit:
                    continue
                self.drivers[name] = driver_class(dev.transport)(dev, pts, self.port)
                self.crashes[name] = 0
            if m.modbus_server is not None and m.modbus_server.points:
                from .modbus_server import ScadaServer
                srv_tags = {sp.var: engine.tag(sp.var) for sp in m.modbus_server.points}
                srv = ScadaServer(m.modbus_server, queue_write or engine.queue_write,
                                  types={v: t.type for v, t in srv_tags.items()})
                name = "modbus_server" if "modbus_server" not in self.drivers else f"modbus_server:{m.shown}"
                self.drivers[name] = srv
                self.crashes[name] = 0
                self._served.append((srv, list(srv_tags.items())))

    def after_scan(self) -> None:
        """On the scan thread: hand the Modbus server this scan's values
        (a handful of reads; the server encodes them when a client asks)."""
        for srv, served in self._served:
            srv.refresh({v: t.get() for v, t in served})

    def start(self) -> None:
        if not self.drivers:
            return
        # asyncua prints a traceback at ERROR for every lost connection; the
        # driver's stats and the inputs' quality already say it, once
        logging.getLogger("asyncua").setLevel(logging.CRITICAL)
        # python-can's socketcand bus warns on every frame split across TCP segments
        logging.getLogger("can").setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._run, name="gridplc-io", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._tasks = [loop.create_task(self._supervise(n, d)) for n, d in self.drivers.items()]
        self._started.set()
        try:
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _supervise(self, name: str, drv) -> None:
        while True:
            try:
                await drv.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a driver bug must not take the runtime down
                self.crashes[name] += 1
                self.events("io_driver_crash", {"device": name, "error": f"{type(e).__name__}: {e}",
                                                "trace": traceback.format_exc(limit=5)})
                await asyncio.sleep(RESTART_PAUSE_S)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is None or self._thread is None:
            return
        for t in self._tasks:
            self._loop.call_soon_threadsafe(t.cancel)
        self._thread.join(timeout_s)
        self._loop = None

    def stats(self) -> dict:
        out = {}
        for name, d in self.drivers.items():
            try:
                s = dict(d.stats())
            except Exception as e:  # noqa: BLE001 - stats must never break status
                s = {"state": "unknown", "stats_error": str(e)}
            s["crashes"] = self.crashes[name]
            out[name] = s
        return out
