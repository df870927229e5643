"""A Modbus TCP server: program variables as registers for a legacy SCADA.

Reads answer with the values of the last completed scan: the runtime hands
them over after each scan with `refresh(values_by_var)` (one reference
stored, nothing encoded on the scan thread; the dict must not be changed
afterwards), or the server calls a `snapshot()` function per request.
Values are encoded at read time as the ServerPoint says (type, word order,
raw = (value - offset) / scale). A value the type cannot hold is served as
the SunSpec "not implemented" pattern of the type (0x8000, 0xFFFF,
0x80000000, 0xFFFFFFFF, NaN), never wrapped or clipped into a plausible
number; `stats()["unencodable"]` counts them.

Writes go to the program only through `queue_write(var, value_text, who)`
(the engine's external write path, applied at the start of the next scan);
they are never applied to the served registers directly. `who` is
"modbus:<peer ip:port>". Answers:

    unmapped address, or a read-only point          02 ILLEGAL DATA ADDRESS
    a write covering only part of a multi-register
      value (the address/length combination is
      invalid: the Modbus spec's case for 02)        02 ILLEGAL DATA ADDRESS
    value outside ServerPoint.range, a BOOL register
      other than 0/1, NaN, or a value the variable's
      type refuses (when `types` is given)           03 ILLEGAL DATA VALUE
    queue_write refused (TagError)                   04 SERVER DEVICE FAILURE
    a read before the first refresh                  06 SERVER DEVICE BUSY
    another unit id than the configured one          0B GATEWAY TARGET FAILED TO RESPOND

A write request covering several points is checked whole before anything is
queued, so a refused value queues nothing; only a queue_write refusal
part-way (the engine's queue full) can leave the earlier points queued.

The pymodbus plumbing (`TcpRegisterServer`) is shared with the simulated
field devices: it serves any `RegisterStore`, and can fall silent (accept
and read requests, answer none) to play a hung device.
"""
from __future__ import annotations

import asyncio
import contextvars
import math
from typing import Callable, Mapping, Protocol

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from ..tags import TagError, parse_value
from .config import ModbusServer, ServerPoint
from .modbus_codec import CodecError, Field, from_engineering, raw_to_words, to_engineering, words_to_raw

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
DEVICE_FAILURE = 0x04
DEVICE_BUSY = 0x06
GATEWAY_NO_RESPONSE = 0x0B

_FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input",
             3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}

_PEER: contextvars.ContextVar[str] = contextvars.ContextVar("modbus_peer", default="?")
# what a write just stored, for the echo pymodbus reads back for FC5/FC6
_ECHO: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("modbus_echo", default=None)


class RegisterStore(Protocol):
    """What a TcpRegisterServer serves. An int result is a Modbus exception code."""

    async def read(self, table: str, address: int, count: int, peer: str) -> list | int: ...

    async def write(self, table: str, address: int, values: list, peer: str) -> int | None: ...


class _Context(ModbusServerContext):
    """pymodbus's datastore interface over a RegisterStore."""

    def __init__(self, owner: "TcpRegisterServer"):
        # No super().__init__: it builds (and warns about) a simulator store
        # this class replaces. pymodbus 3.16 uses a context flagged
        # old_simulator as the datastore as it is.
        self.old_simulator = True
        self.simdevices = []
        self._owner = owner

    def device_ids(self):
        return [self._owner.unit or 0]

    async def async_getValues(self, device_id, func_code, address, count=1):
        owner = self._owner
        if owner.unit is not None and device_id != owner.unit:
            owner.wrong_unit += 1
            return ExcCodes.GATEWAY_NO_RESPONSE
        echo = _ECHO.get()
        if func_code in (5, 6) and echo is not None and echo[0] == address:
            return list(echo[1][:count])
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        res = await owner.store.read(table, address, count, _PEER.get())
        return ExcCodes(res) if isinstance(res, int) else res

    async def async_setValues(self, device_id, func_code, address, values):
        owner = self._owner
        if owner.unit is not None and device_id != owner.unit:
            owner.wrong_unit += 1
            return ExcCodes.GATEWAY_NO_RESPONSE
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        res = await owner.store.write(table, address, vals, _PEER.get())
        if res:
            return ExcCodes(res)
        _ECHO.set((address, vals))
        return None


class _Handler(ServerRequestHandler):
    async def handle_request(self):
        owner = self.server.owner
        if owner.silent:
            return              # read, never answered: a hung device
        peer = self.transport.get_extra_info("peername") if self.transport else None
        _PEER.set(f"{peer[0]}:{peer[1]}" if peer else "?")
        owner.requests += 1
        await super().handle_request()


class _Server(ModbusTcpServer):
    def __init__(self, owner: "TcpRegisterServer", **kw):
        self.owner = owner
        super().__init__(_Context(owner), **kw)

    def callback_new_connection(self):
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class TcpRegisterServer:
    """A pymodbus TCP server over a RegisterStore, in the running loop."""

    def __init__(self, store: RegisterStore, host: str = "127.0.0.1", port: int = 0, unit: int | None = None):
        self.store = store
        self.host = host
        self.port = port
        self.unit = unit
        self.silent = False
        self.requests = 0
        self.wrong_unit = 0             # requests for another unit id (answered 0B)
        self._server: _Server | None = None

    async def start(self) -> int:
        """Listen; returns the port (the one picked when asked for 0)."""
        server = _Server(self, address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            raise OSError(f"cannot listen on {self.host}:{self.port} (in use, or not an address of this host)") \
                from None
        self._server = server
        self.port = server.transport.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None


# ---------------------------------------------------------------- the SCADA view
_NOT_IMPLEMENTED = {"INT16": -0x8000, "UINT16": 0xFFFF, "INT32": -0x80000000, "UINT32": 0xFFFFFFFF,
                    "FLOAT32": math.nan, "FLOAT64": math.nan}


def value_text(v) -> str:
    """An engineering value as ST literal text for queue_write."""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


class ScadaServer:
    """The `[modbus_server]` of an I/O map (see the module doc)."""

    def __init__(self, config: ModbusServer, queue_write: Callable[[str, str, str], None], *,
                 types: Mapping | None = None, snapshot: Callable[[], Mapping] | None = None):
        self.config = config
        self._queue_write = queue_write
        self._types = types
        self._snapshot = snapshot
        self._values: Mapping | None = None
        self._fields: list[Field] = []
        # (table, address) -> (point index, word index within the value)
        self._cells: dict[tuple[str, int], tuple[int, int]] = {}
        for i, sp in enumerate(config.points):
            f = Field(sp.table, sp.address, sp.type, word_order=sp.word_order, scale=sp.scale, offset=sp.offset)
            self._fields.append(f)
            for k in range(f.count):
                self._cells[(sp.table, sp.address + k)] = (i, k)
        self._tcp = TcpRegisterServer(self, config.host, config.port, config.unit)
        self.reads = 0
        self.writes_queued = 0
        self.unencodable = 0
        self.refused: dict[str, int] = {}
        self.last_error: str | None = None

    @property
    def variables(self) -> list[str]:
        """The variables whose values `refresh` should carry."""
        return list(dict.fromkeys(sp.var for sp in self.config.points))

    @property
    def port(self) -> int:
        return self._tcp.port

    def refresh(self, values_by_var: Mapping) -> None:
        """Called from the scan thread after each scan: one reference stored."""
        self._values = values_by_var

    async def start(self) -> int:
        return await self._tcp.start()

    async def stop(self) -> None:
        await self._tcp.stop()

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def stats(self) -> dict:
        refused = dict(self.refused)
        if self._tcp.wrong_unit:
            refused[f"{GATEWAY_NO_RESPONSE:02X}"] = self._tcp.wrong_unit
        return {
            "listen": f"{self.config.host}:{self.port}",
            "state": "listening" if self._tcp.running else "stopped",
            "requests": self._tcp.requests,
            "reads": self.reads,
            "writes_queued": self.writes_queued,
            "refused": refused,
            "unencodable": self.unencodable,
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------ RegisterStore
    async def read(self, table: str, address: int, count: int, peer: str) -> list | int:
        values = self._snapshot() if self._snapshot is not None else self._values
        if values is None:
            return self._refuse(DEVICE_BUSY, f"{peer}: read before the first scan")
        out: list = []
        words: dict[int, list] = {}
        for a in range(address, address + count):
            cell = self._cells.get((table, a))
            if cell is None:
                return self._refuse(ILLEGAL_ADDRESS, f"{peer}: {table} {a} is not served")
            i, k = cell
            if i not in words:
                w = self._encode(i, values.get(self.config.points[i].var))
                if w is None:
                    return self._refuse(DEVICE_FAILURE, f"{peer}: {self.config.points[i].var} has no value")
                words[i] = w
            out.append(words[i][k])
        self.reads += 1
        return out

    def _encode(self, i: int, v) -> list | None:
        f = self._fields[i]
        if f.bits or f.type == "BOOL":
            if v is None:
                return None
            return [bool(v)] if f.bits else [1 if v else 0]
        try:
            raw = from_engineering(f, v) if v is not None else None
        except CodecError:
            raw = None
        if raw is None:
            self.unencodable += 1
            raw = _NOT_IMPLEMENTED[f.type]
        return raw_to_words(raw, f.type, f.word_order)

    async def write(self, table: str, address: int, values: list, peer: str) -> int | None:
        end = address + len(values)
        todo: list[tuple[ServerPoint, str]] = []
        a = address
        while a < end:
            cell = self._cells.get((table, a))
            if cell is None:
                return self._refuse(ILLEGAL_ADDRESS, f"{peer}: {table} {a} is not served")
            i, k = cell
            sp, f = self.config.points[i], self._fields[i]
            if not sp.writable:
                return self._refuse(ILLEGAL_ADDRESS, f"{peer}: {table} {a} ({sp.var}) is read-only")
            if k != 0 or f.end > end:
                return self._refuse(ILLEGAL_ADDRESS, f"{peer}: write of {table} {address}..{end - 1} covers "
                                    f"part of {sp.var} ({f.address}..{f.end - 1})")
            text = self._value(sp, f, values[a - address:a - address + f.count])
            if isinstance(text, tuple):
                return self._refuse(ILLEGAL_VALUE, f"{peer}: {sp.var}: {text[0]}")
            todo.append((sp, text))
            a = f.end
        who = f"modbus:{peer}"
        for sp, text in todo:
            try:
                self._queue_write(sp.var, text, who)
            except TagError as e:
                return self._refuse(DEVICE_FAILURE, f"{peer}: {sp.var} := {text} refused: {e}")
            self.writes_queued += 1
        return None

    def _value(self, sp: ServerPoint, f: Field, data: list) -> str | tuple[str]:
        """ST literal text for what was written, or (why not,)."""
        if f.bits:
            v = bool(data[0])
        elif f.type == "BOOL":
            if data[0] not in (0, 1):
                return (f"{data[0]} is not a BOOL (0 or 1)",)
            v = bool(data[0])
        else:
            raw = words_to_raw(data, f.type, f.word_order)
            if isinstance(raw, float) and math.isnan(raw):
                return ("NaN",)
            v = to_engineering(f, raw)
            if sp.range is not None and not sp.range[0] <= v <= sp.range[1]:
                return (f"{v!r} is outside {sp.range[0]:g}..{sp.range[1]:g}",)
        text = value_text(v)
        if self._types is not None and sp.var in self._types:
            try:
                parse_value(text, self._types[sp.var])
            except TagError as e:
                return (str(e),)
        return text

    def _refuse(self, code: int, message: str) -> int:
        key = f"{code:02X}"
        self.refused[key] = self.refused.get(key, 0) + 1
        self.last_error = message
        return code
