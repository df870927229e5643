"""The I/O map as data: devices, their transports, and the points they bind.

`io_maps/*.toml` is read into these by `runtime/io/iomap.py`; drivers take
them as they are, so a test can build one by hand without a TOML file.
Durations are nanoseconds; paths are canonical tag paths ("Main.cellVMax").
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Point:
    var: str                     # canonical tag path of the bound program variable
    device: str                  # device name in the map
    direction: str               # "input" | "output"
    line: int = 0                # line of the [[points]] entry, for messages
    unit: str | None = None      # engineering unit ("V", "A", "degC", "%")
    range: tuple[float, float] | None = None   # valid range: outside it an input is BAD, an output refused
    timeout_ns: int | None = None  # input: stale when no update for this long (None: the device's)
    substitute: str | None = None  # input: value the program sees while quality is not GOOD (None: keep last)
    safe: str | None = None        # output: value sent while its task is faulted (ST literal text)
    write: str = "on_change"       # output: "on_change" | "cyclic"
    period_ns: int | None = None   # output "cyclic": how often (None: the device's poll/publish period)
    # --- CAN
    message: str | None = None   # DBC message name, or its id as "0x356"
    signal: str | None = None    # DBC signal name
    # --- Modbus
    table: str | None = None     # "coil" | "discrete" | "input" | "holding"
    address: int | None = None   # 0-based protocol address (40001-style numbers are not used)
    type: str | None = None      # BOOL INT16 UINT16 INT32 UINT32 FLOAT32 FLOAT64 (a register's bit: BOOL + bit)
    bit: int | None = None       # 0..15, bit in a 16-bit register
    word_order: str | None = None  # "big" (high word first) | "little"; None: the device's
    byte_order: str | None = None  # "big" | "little" within each register; None: the device's
    scale: float = 1.0           # engineering = raw * scale + offset
    offset: float = 0.0
    scale_factor: int | None = None   # address of an INT16 power-of-ten scale register (SunSpec *_SF)
    sunspec: str | None = None   # "802.SoC" or "124.WChaMax" (model.point[, instance as "802:2.SoC"])
    # --- OPC UA client
    node: str | None = None      # NodeId text, e.g. "ns=2;s=Feeder.P"
    # --- site clock
    clock: str | None = None     # a field of runtime/io/clock_driver.CLOCK_FIELDS, e.g. "seconds_of_day"


@dataclass
class Device:
    name: str
    transport: str               # "can" | "modbus" | "opcua" | "clock"
    line: int = 0
    timeout_ns: int = 1_000_000_000      # default input staleness timeout / request timeout
    period_ns: int = 100_000_000         # Modbus poll period, OPC UA publish/sampling, CAN output default
    # --- CAN
    interface: str | None = None  # any python-can interface ("socketcan", "virtual", "socketcand", ...)
    channel: str | None = None
    bitrate: int | None = None
    dbc: str | None = None        # absolute path
    can_options: dict = field(default_factory=dict)   # passed to can.Bus(**options), e.g. host/port for socketcand
    transmit: list["CanTransmit"] = field(default_factory=list)
    log: str | None = None        # candump/ASC file: the bus is this capture, in real time (can_log.LogBus)
    # --- Modbus
    host: str | None = None
    port: int | None = None
    unit: int = 1
    byte_order: str = "big"
    word_order: str = "big"
    sunspec_base: int | None = None   # None with sunspec=True: discover at 40000, 0, 50000
    sunspec: bool = False
    max_gap: int = 8              # merge reads across holes up to this many registers
    backoff_max_ns: int = 10_000_000_000
    # --- OPC UA client
    endpoint: str | None = None
    security: str = "None"        # "None" | "Basic256Sha256,Sign" | "Basic256Sha256,SignAndEncrypt"
    user: str | None = None
    password_env: str | None = None   # name of the environment variable holding the password
    certificate: str | None = None
    private_key: str | None = None
    # --- site clock
    zone: str | None = None       # IANA time zone; None: the system's local time
    require_sync: bool = True     # BAD quality while the kernel says the clock is unsynchronised


@dataclass
class CanTransmit:
    """A frame the controller sends: periodic (period_ns) and/or when a bound output changes."""
    message: str
    period_ns: int | None = None
    on_change: bool = True
    line: int = 0


@dataclass
class ServerPoint:
    """A program variable exposed by the Modbus server (SCADA view)."""
    var: str
    table: str                  # "coil" | "discrete" | "input" | "holding"
    address: int
    type: str = "INT16"
    writable: bool = False      # only holding registers and coils can be
    scale: float = 1.0
    offset: float = 0.0
    range: tuple[float, float] | None = None
    word_order: str = "big"
    line: int = 0


@dataclass
class ModbusServer:
    host: str = "127.0.0.1"
    port: int = 5502
    unit: int = 1
    points: list[ServerPoint] = field(default_factory=list)
    line: int = 0


@dataclass
class IoMap:
    path: str                    # absolute
    shown: str = ""              # as the user named it, for messages
    devices: dict[str, Device] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    modbus_server: ModbusServer | None = None

    def inputs(self) -> list[Point]:
        return [p for p in self.points if p.direction == "input"]

    def outputs(self) -> list[Point]:
        return [p for p in self.points if p.direction == "output"]

    def points_of(self, device: str) -> list[Point]:
        return [p for p in self.points if p.device == device]
