"""I/O map files (`io_maps/*.toml`): devices, points, and the Modbus server view.

    [devices.bms]
    transport = "can"                # can | modbus | opcua | clock
    interface = "virtual"            # any python-can interface (socketcan on a real box)
    channel = "site-bms"
    dbc = "../../shared/io/bms_can.dbc"   # relative to this file
    timeout = "3s"                   # default staleness timeout of its points
    [[devices.bms.transmit]]
    message = "INV_Heartbeat_305"    # periodic and/or on change of its bound outputs
    period = "1s"

    [devices.pcs]
    transport = "modbus"
    host = "127.0.0.1"
    port = 1502
    unit = 1
    poll = "200ms"
    timeout = "1s"
    sunspec = true                   # discover the model chain at 40000 / 0 / 50000

    [devices.site_clock]
    transport = "clock"              # the wall clock's calendar (runtime/io/clock_driver.py)
    zone = "Europe/Berlin"           # IANA name; omitted: the system's local time

    [[points]]
    var = "Dispatch.clockSecOfDay"
    device = "site_clock"
    clock = "seconds_of_day"         # hour minute second day_of_week day month year ...

    [[points]]
    var = "Main.tBat"                # the program variable bound
    device = "bms"
    message = "BMS_Measurements_356"
    signal = "BatteryTemperature"
    unit = "degC"
    range = [-40.0, 100.0]           # outside it the input is BAD
    timeout = "2s"

    [[points]]
    var = "Main.pSet"
    device = "pcs"
    direction = "output"
    table = "holding"
    address = 40200
    type = "INT16"
    scale = 10.0                     # engineering = raw * scale + offset
    safe = "0.0"                     # what goes out while the task is faulted

    [modbus_server]                  # a register view for a legacy SCADA
    listen = "127.0.0.1:1503"
    [[modbus_server.points]]
    var = "Main.soc"
    table = "input"
    address = 0
    type = "UINT16"
    scale = 0.1

`load_iomap` checks the file on its own (keys, types, durations, devices,
overlapping registers, DBC messages and signals); `bind_iomap` checks it
against a built engine (unknown variables, a type that cannot hold the
mapped value, duplicate bindings) and declares the inputs and outputs.
Every problem is reported as `file:line: key: what is wrong`, all at once.
"""
from __future__ import annotations

import os
import re
import tomllib

from plc_lang.literals import LiteralError, parse_duration_ns
from plc_lang.types import BoolType, IntType, RealType, strip_subrange

from .config import CanTransmit, Device, IoMap, ModbusServer, Point, ServerPoint


class IoMapError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


TRANSPORTS = ("can", "modbus", "opcua", "clock")
TABLES = ("coil", "discrete", "input", "holding")
MODBUS_TYPES = {"BOOL": 1, "INT16": 1, "UINT16": 1, "INT32": 2, "UINT32": 2, "FLOAT32": 2, "FLOAT64": 4}
_INT_RANGE = {"INT16": (-32768, 32767), "UINT16": (0, 65535), "INT32": (-(1 << 31), (1 << 31) - 1),
              "UINT32": (0, (1 << 32) - 1)}

_DEVICE_KEYS = {
    "common": {"transport", "timeout", "period", "poll"},
    "can": {"interface", "channel", "bitrate", "dbc", "options", "transmit", "log"},
    "modbus": {"host", "port", "unit", "byte_order", "word_order", "sunspec", "sunspec_base", "max_gap",
               "backoff_max"},
    "opcua": {"endpoint", "security", "user", "password_env", "certificate", "private_key"},
    "clock": {"zone", "require_sync"},
}
_POINT_KEYS = {
    "common": {"var", "device", "direction", "unit", "range", "timeout", "substitute", "safe", "write", "period"},
    "can": {"message", "signal"},
    "modbus": {"table", "address", "type", "bit", "word_order", "byte_order", "scale", "offset", "scale_factor",
               "sunspec"},
    "opcua": {"node"},
    "clock": {"clock"},
}
_SERVER_POINT_KEYS = {"var", "table", "address", "type", "writable", "scale", "offset", "range", "word_order"}


class _Lines:
    """tomllib keeps no positions: remember where each table and key is.
    Arrays of tables are told apart by their index, so the second [[points]]
    entry's `var` has its own line."""

    def __init__(self, text: str):
        self.table: dict[tuple, int] = {}
        self.key: dict[tuple, int] = {}
        counts: dict[str, int] = {}
        cur: tuple = ()
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            m = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", s)
            if m:
                name = m.group(1).replace(" ", "")
                # a nested array ([[devices.bms.transmit]]) counts within its parent
                counts[name] = counts.get(name, -1) + 1
                cur = (name, counts[name])
                self.table[cur] = n
                continue
            m = re.match(r"^\[\s*([^\]]+?)\s*\]", s)
            if m:
                name = m.group(1).replace(" ", "")
                cur = (name, None)
                self.table[cur] = n
                for k in list(counts):
                    if k.startswith(name + "."):
                        del counts[k]
                continue
            m = re.match(r'^("?)([A-Za-z0-9_.\-]+)\1\s*=', s)
            if m:
                self.key.setdefault(cur + (m.group(2),), n)

    def of(self, table: tuple, key: str | None = None) -> int:
        if key is not None and table + (key,) in self.key:
            return self.key[table + (key,)]
        return self.table.get(table, 1)


class _Report:
    def __init__(self, path: str, lines: _Lines):
        self.path = path
        self.lines = lines
        self.problems: list[str] = []

    def error(self, table: tuple, key: str | None, label: str, message: str) -> None:
        self.problems.append(f"{self.path}:{self.lines.of(table, key)}: {label}: {message}")


def load_iomap(path: str) -> IoMap:
    m, problems = read_iomap(path)
    if problems:
        raise IoMapError(problems)
    return m


def read_iomap(path: str) -> tuple[IoMap | None, list[str]]:
    """The map with every point that could be read, and the problems found;
    `gridplc check` goes on to bind what loaded, so all errors come at once."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except OSError as e:
        return None, [f"{path}: cannot read: {e.strerror}"]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [f"{path}: not valid TOML: {e}"]
    lines = _Lines(text)
    rep = _Report(path, lines)
    base = os.path.dirname(os.path.abspath(path))
    m = IoMap(os.path.abspath(path), path)
    for k in doc:
        if k not in ("devices", "points", "modbus_server"):
            rep.error((k, None), None, k, "unknown section (known: devices, points, modbus_server)")
    devices = doc.get("devices", {})
    if not isinstance(devices, dict):
        rep.error(("devices", None), None, "devices", "write each device as [devices.NAME]")
        devices = {}
    for name, d in devices.items():
        dev = _device(rep, name, d, base)
        if dev is not None:
            m.devices[name] = dev
    pts = doc.get("points", [])
    if not isinstance(pts, list):
        rep.error(("points", None), None, "points", "write each point as [[points]]")
        pts = []
    for i, p in enumerate(pts):
        pt = _point(rep, i, p, m.devices, devices)
        if pt is not None:
            m.points.append(pt)
    if "modbus_server" in doc:
        m.modbus_server = _server(rep, doc["modbus_server"])
    _check_overlaps(rep, m)
    _check_dbc(rep, m)
    return m, rep.problems


# ---------------------------------------------------------------- devices
def _duration(rep, table, key, label, value, default=None):
    if value is None:
        return default
    if not isinstance(value, str):
        rep.error(table, key, label, f"expected a duration such as \"100ms\", found {value!r}")
        return default
    try:
        ns = parse_duration_ns(value.split("#", 1)[-1])
    except LiteralError as e:
        rep.error(table, key, label, str(e))
        return default
    if ns <= 0:
        rep.error(table, key, label, "must be greater than zero")
        return default
    return ns


def _device(rep: _Report, name: str, d, base: str) -> Device | None:
    table = (f"devices.{name}", None)
    label = f"devices.{name}"
    if not isinstance(d, dict):
        rep.error(table, None, label, "must be a table")
        return None
    tr = d.get("transport")
    if tr not in TRANSPORTS:
        rep.error(table, "transport", f"{label}.transport",
                  f"{'missing' if tr is None else repr(tr)}: one of {', '.join(TRANSPORTS)}")
        return None
    allowed = _DEVICE_KEYS["common"] | _DEVICE_KEYS[tr]
    for k in d:
        if k not in allowed:
            rep.error(table, k, f"{label}.{k}", f"unknown key for a {tr} device (known: {', '.join(sorted(allowed))})")
    dev = Device(name, tr, rep.lines.of(table))
    dev.timeout_ns = _duration(rep, table, "timeout", f"{label}.timeout", d.get("timeout"), dev.timeout_ns)
    period = d.get("poll", d.get("period"))
    dev.period_ns = _duration(rep, table, "poll" if "poll" in d else "period", f"{label}.poll", period, dev.period_ns)
    if tr == "can":
        for k in ("interface", "channel"):
            if "log" in d and k not in d:
                continue                    # a capture is the bus: no interface needed
            if not isinstance(d.get(k), str) and not (k == "channel" and isinstance(d.get(k), int)):
                rep.error(table, k, f"{label}.{k}", "missing: the python-can interface and channel "
                          "(e.g. interface = \"socketcan\", channel = \"can0\")")
        dev.interface = d.get("interface")
        dev.channel = None if d.get("channel") is None else str(d.get("channel"))
        dev.bitrate = d.get("bitrate")
        if "dbc" not in d:
            rep.error(table, None, f"{label}.dbc", "missing: the DBC file that decodes this bus")
        else:
            dev.dbc = os.path.normpath(os.path.join(base, str(d["dbc"])))
            if not os.path.isfile(dev.dbc):
                rep.error(table, "dbc", f"{label}.dbc", f"no such file: {d['dbc']}")
        if "log" in d:
            dev.log = os.path.normpath(os.path.join(base, str(d["log"])))
            if not os.path.isfile(dev.log):
                rep.error(table, "log", f"{label}.log", f"no such file: {d['log']}")
        opts = d.get("options", {})
        if not isinstance(opts, dict):
            rep.error(table, "options", f"{label}.options", "must be a table of can.Bus keyword arguments")
        else:
            dev.can_options = dict(opts)
        for j, t in enumerate(d.get("transmit", []) or []):
            tt = (f"devices.{name}.transmit", j)
            tl = f"{label}.transmit[{j}]"
            if not isinstance(t, dict) or not isinstance(t.get("message"), str):
                rep.error(tt, "message", f"{tl}.message", "missing: the DBC message to send")
                continue
            for k in t:
                if k not in ("message", "period", "on_change"):
                    rep.error(tt, k, f"{tl}.{k}", "unknown key (known: message, on_change, period)")
            dev.transmit.append(CanTransmit(t["message"], _duration(rep, tt, "period", f"{tl}.period", t.get("period")),
                                            bool(t.get("on_change", True)), rep.lines.of(tt)))
    elif tr == "modbus":
        host = d.get("host")
        if not isinstance(host, str):
            rep.error(table, "host", f"{label}.host", "missing: the device's address, e.g. host = \"192.168.1.20\"")
        dev.host = host
        port = d.get("port", 502)
        if not isinstance(port, int) or not 0 < port < 65536:
            rep.error(table, "port", f"{label}.port", f"{port!r} is not a TCP port")
        dev.port = port
        unit = d.get("unit", 1)
        if not isinstance(unit, int) or not 0 <= unit <= 255:
            rep.error(table, "unit", f"{label}.unit", f"{unit!r}: a unit id is 0..255")
        dev.unit = unit
        for k in ("byte_order", "word_order"):
            v = d.get(k, "big")
            if v not in ("big", "little"):
                rep.error(table, k, f"{label}.{k}", f"{v!r}: big or little")
            setattr(dev, k, v)
        dev.sunspec = bool(d.get("sunspec", False))
        if "sunspec_base" in d:
            dev.sunspec_base = d["sunspec_base"]
            dev.sunspec = True
        dev.max_gap = d.get("max_gap", dev.max_gap)
        dev.backoff_max_ns = _duration(rep, table, "backoff_max", f"{label}.backoff_max", d.get("backoff_max"),
                                       dev.backoff_max_ns)
    elif tr == "clock":
        from .clock_driver import zone_of
        zone = d.get("zone")
        if zone is not None:
            try:
                if not isinstance(zone, str):
                    raise ValueError(f"{zone!r} is not a time zone name")
                zone_of(zone)
            except ValueError as e:
                rep.error(table, "zone", f"{label}.zone", f"{e}; e.g. zone = \"Europe/Berlin\" or \"UTC\"")
            dev.zone = zone if isinstance(zone, str) else None
        rs = d.get("require_sync", True)
        if not isinstance(rs, bool):
            rep.error(table, "require_sync", f"{label}.require_sync", f"{rs!r}: true or false")
        dev.require_sync = rs is not False
    else:
        ep = d.get("endpoint")
        if not isinstance(ep, str) or not ep.startswith("opc.tcp://"):
            rep.error(table, "endpoint", f"{label}.endpoint", "missing or not an opc.tcp:// URL")
        dev.endpoint = ep
        sec = d.get("security", "None")
        if sec not in ("None", "Basic256Sha256,Sign", "Basic256Sha256,SignAndEncrypt"):
            rep.error(table, "security", f"{label}.security",
                      f"{sec!r}: None, Basic256Sha256,Sign or Basic256Sha256,SignAndEncrypt")
        dev.security = sec
        dev.user = d.get("user")
        dev.password_env = d.get("password_env")
        if "password" in d:
            rep.error(table, "password", f"{label}.password",
                      "passwords never go in the map: name an environment variable with password_env")
        for k in ("certificate", "private_key"):
            if k in d:
                setattr(dev, k, os.path.normpath(os.path.join(base, str(d[k]))))
                if not os.path.isfile(getattr(dev, k)):
                    rep.error(table, k, f"{label}.{k}", f"no such file: {d[k]}")
            elif sec != "None":
                rep.error(table, None, f"{label}.{k}", f"missing: security {sec} needs the client's {k.replace('_', ' ')}")
        # the driver re-stamps steady values on the server's keep-alives, a quarter of the timeout apart
        if dev.period_ns * 4 > dev.timeout_ns:
            rep.error(table, "period" if "period" in d else "timeout", f"{label}.period",
                      f"publishing every {dev.period_ns / 1e6:g} ms cannot prove freshness within the "
                      f"{dev.timeout_ns / 1e6:g} ms timeout: keep period <= timeout / 4")
    return dev


# ---------------------------------------------------------------- points
def _point(rep: _Report, i: int, p, devices: dict[str, Device], raw_devices: dict) -> Point | None:
    table = ("points", i)
    label = f"points[{i}]"
    if not isinstance(p, dict):
        rep.error(table, None, label, "must be a table")
        return None
    var = p.get("var")
    if not isinstance(var, str) or not var.strip():
        rep.error(table, "var", f"{label}.var", "missing: the program variable this point binds, e.g. var = \"Main.tMax\"")
        return None
    dname = p.get("device")
    dev = devices.get(dname) if isinstance(dname, str) else None
    if dev is None:
        if dname not in raw_devices:       # a broken device was reported already
            known = ", ".join(sorted(raw_devices)) or "none declared"
            rep.error(table, "device", f"{label}.device",
                      f"{'missing' if dname is None else repr(dname)}: name a device (devices: {known})")
        return None
    allowed = _POINT_KEYS["common"] | _POINT_KEYS[dev.transport]
    for k in p:
        if k not in allowed:
            rep.error(table, k, f"{label}.{k}", f"unknown key for a {dev.transport} point (known: {', '.join(sorted(allowed))})")
    direction = p.get("direction", "input")
    if direction not in ("input", "output"):
        rep.error(table, "direction", f"{label}.direction", f"{direction!r}: input or output")
        return None
    pt = Point(var.strip(), dname, direction, rep.lines.of(table))
    pt.unit = p.get("unit")
    if "range" in p:
        r = p["range"]
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                             for x in r) and r[0] <= r[1]):
            rep.error(table, "range", f"{label}.range", "expected [low, high] numbers, low <= high")
        else:
            pt.range = (float(r[0]), float(r[1]))
    pt.timeout_ns = _duration(rep, table, "timeout", f"{label}.timeout", p.get("timeout"),
                              dev.timeout_ns if direction == "input" else None)
    if direction == "input":
        for k in ("safe", "write", "period"):
            if k in p:
                rep.error(table, k, f"{label}.{k}", f"'{k}' is for outputs; this point is an input")
        if "substitute" in p:
            pt.substitute = _literal_text(p["substitute"])
    else:
        for k in ("substitute", "timeout"):
            if k in p:
                rep.error(table, k, f"{label}.{k}", f"'{k}' is for inputs; this point is an output")
        if "safe" in p:
            pt.safe = _literal_text(p["safe"])
        w = p.get("write", "on_change")
        if w not in ("on_change", "cyclic"):
            rep.error(table, "write", f"{label}.write", f"{w!r}: on_change or cyclic")
        pt.write = w
        pt.period_ns = _duration(rep, table, "period", f"{label}.period", p.get("period"))
    if dev.transport == "can":
        for k in ("message", "signal"):
            v = p.get(k)
            if not isinstance(v, str):
                rep.error(table, k, f"{label}.{k}", f"missing: the DBC {k} name")
        pt.message, pt.signal = p.get("message"), p.get("signal")
    elif dev.transport == "modbus":
        _modbus_point(rep, table, label, p, pt, dev)
    elif dev.transport == "clock":
        from .clock_driver import CLOCK_FIELDS
        if direction != "input":
            rep.error(table, "direction", f"{label}.direction", "a clock point is an input")
        c = p.get("clock")
        if c not in CLOCK_FIELDS:
            rep.error(table, "clock", f"{label}.clock", f"{'missing' if c is None else repr(c)}: one of "
                      f"{', '.join(CLOCK_FIELDS)}")
        else:
            pt.clock = c
    else:
        node = p.get("node")
        if not isinstance(node, str):
            rep.error(table, "node", f"{label}.node", "missing: the NodeId, e.g. node = \"ns=2;s=Feeder.P\"")
        else:
            err = _node_id_error(node)
            if err:
                rep.error(table, "node", f"{label}.node", err)
        pt.node = node
    return pt


def _literal_text(v) -> str:
    return str(v).upper() if isinstance(v, bool) else str(v)


def _modbus_point(rep, table, label, p, pt: Point, dev: Device) -> None:
    if "sunspec" in p:
        ss = p["sunspec"]
        if not isinstance(ss, str) or not re.fullmatch(r"\d+(:\d+)?\.[A-Za-z_][A-Za-z0-9_]*", ss):
            rep.error(table, "sunspec", f"{label}.sunspec", f"{ss!r}: write model.point, e.g. \"802.SoC\" "
                      "(a repeated model: \"802:2.SoC\")")
        elif not dev.sunspec:
            rep.error(table, "sunspec", f"{label}.sunspec", f"device '{dev.name}' is not a SunSpec device "
                      "(set sunspec = true on it)")
        else:
            from .sunspec import check_ref, point_access
            problem = check_ref(ss)
            if problem:
                rep.error(table, "sunspec", f"{label}.sunspec", problem)
            elif pt.direction == "output" and point_access(ss) != "RW":
                rep.error(table, "sunspec", f"{label}.sunspec", f"{ss} is read-only in its model: it cannot be an output")
        for k in ("table", "address", "type"):
            if k in p:
                rep.error(table, k, f"{label}.{k}", "a SunSpec point takes its register from the model; drop this key")
        pt.sunspec = ss if isinstance(ss, str) else None
        return
    tbl = p.get("table")
    if tbl not in TABLES:
        rep.error(table, "table", f"{label}.table", f"{'missing' if tbl is None else repr(tbl)}: one of {', '.join(TABLES)}")
    addr = p.get("address")
    if not isinstance(addr, int) or isinstance(addr, bool) or not 0 <= addr <= 65535:
        rep.error(table, "address", f"{label}.address", f"{'missing' if addr is None else repr(addr)}: "
                  "a 0-based register address 0..65535")
        addr = None
    typ = p.get("type", "BOOL" if tbl in ("coil", "discrete") else None)
    if typ not in MODBUS_TYPES:
        rep.error(table, "type", f"{label}.type", f"{'missing' if typ is None else repr(typ)}: one of "
                  f"{', '.join(MODBUS_TYPES)}")
        typ = None
    if tbl in ("coil", "discrete") and typ not in (None, "BOOL"):
        rep.error(table, "type", f"{label}.type", f"a {tbl} holds one bit: type BOOL")
    bit = p.get("bit")
    if bit is not None:
        if typ != "BOOL" or tbl not in ("input", "holding"):
            rep.error(table, "bit", f"{label}.bit", "bit selects a bit of an input or holding register: type = \"BOOL\"")
        elif not isinstance(bit, int) or not 0 <= bit <= 15:
            rep.error(table, "bit", f"{label}.bit", f"{bit!r}: 0..15")
    elif typ == "BOOL" and tbl in ("input", "holding"):
        rep.error(table, "type", f"{label}.type", "BOOL in a register needs bit = 0..15")
    if pt.direction == "output" and tbl in ("discrete", "input"):
        rep.error(table, "table", f"{label}.table", f"a {tbl} is read-only in Modbus: outputs go to coil or holding")
    for k in ("word_order", "byte_order"):
        v = p.get(k)
        if v is not None and v not in ("big", "little"):
            rep.error(table, k, f"{label}.{k}", f"{v!r}: big or little")
    for k in ("scale", "offset"):
        v = p.get(k)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            rep.error(table, k, f"{label}.{k}", f"{v!r} is not a number")
    if p.get("scale") == 0:
        rep.error(table, "scale", f"{label}.scale", "cannot be 0")
    sf = p.get("scale_factor")
    if sf is not None and (not isinstance(sf, int) or not 0 <= sf <= 65535):
        rep.error(table, "scale_factor", f"{label}.scale_factor", "the address of the INT16 scale-factor register")
    pt.table, pt.address, pt.type, pt.bit = tbl, addr, typ, bit
    pt.word_order, pt.byte_order = p.get("word_order"), p.get("byte_order")
    pt.scale = float(p.get("scale", 1.0)) if isinstance(p.get("scale", 1.0), (int, float)) else 1.0
    pt.offset = float(p.get("offset", 0.0)) if isinstance(p.get("offset", 0.0), (int, float)) else 0.0
    pt.scale_factor = sf


def _node_id_error(text: str) -> str | None:
    from .opcua_client import parse_node_id
    return parse_node_id(text)


def _server(rep: _Report, s) -> ModbusServer | None:
    table = ("modbus_server", None)
    if not isinstance(s, dict):
        rep.error(table, None, "modbus_server", "must be a table")
        return None
    for k in s:
        if k not in ("listen", "unit", "points"):
            rep.error(table, k, f"modbus_server.{k}", "unknown key (known: listen, points, unit)")
    srv = ModbusServer(line=rep.lines.of(table))
    listen = str(s.get("listen", "127.0.0.1:5502"))
    m = re.fullmatch(r"\[?([0-9A-Za-z.:]+?)\]?:(\d+)", listen)
    if not m:
        rep.error(table, "listen", "modbus_server.listen", f"{listen!r}: host:port, e.g. 127.0.0.1:5502")
    else:
        srv.host, srv.port = m.group(1), int(m.group(2))
    srv.unit = s.get("unit", 1)
    for i, p in enumerate(s.get("points", []) or []):
        t = ("modbus_server.points", i)
        label = f"modbus_server.points[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("var"), str):
            rep.error(t, "var", f"{label}.var", "missing: the program variable to expose")
            continue
        for k in p:
            if k not in _SERVER_POINT_KEYS:
                rep.error(t, k, f"{label}.{k}", f"unknown key (known: {', '.join(sorted(_SERVER_POINT_KEYS))})")
        tbl = p.get("table")
        if tbl not in TABLES:
            rep.error(t, "table", f"{label}.table", f"{'missing' if tbl is None else repr(tbl)}: one of {', '.join(TABLES)}")
            continue
        addr = p.get("address")
        if not isinstance(addr, int) or not 0 <= addr <= 65535:
            rep.error(t, "address", f"{label}.address", "a 0-based address 0..65535")
            continue
        typ = p.get("type", "BOOL" if tbl in ("coil", "discrete") else "INT16")
        if typ not in MODBUS_TYPES:
            rep.error(t, "type", f"{label}.type", f"{typ!r}: one of {', '.join(MODBUS_TYPES)}")
            continue
        writable = bool(p.get("writable", False))
        if writable and tbl not in ("coil", "holding"):
            rep.error(t, "writable", f"{label}.writable", f"a {tbl} cannot be written by a Modbus client")
        r = p.get("range")
        srv.points.append(ServerPoint(p["var"], tbl, addr, typ, writable, float(p.get("scale", 1.0)),
                                      float(p.get("offset", 0.0)), tuple(r) if isinstance(r, list) and len(r) == 2 else None,
                                      p.get("word_order", "big"), rep.lines.of(t)))
    return srv


# ---------------------------------------------------------------- cross-checks within the file
def _span(pt) -> tuple[int, int] | None:
    if pt.address is None or pt.type is None:
        return None
    return pt.address, pt.address + MODBUS_TYPES[pt.type] - 1


def _check_overlaps(rep: _Report, m: IoMap) -> None:
    """Two points on the same registers: outputs would fight; an output and an
    input on one register read back what we write. Inputs may share (a status
    word read bit by bit), and bits of one register are separate points."""
    by_reg: dict[tuple, list[tuple[int, Point]]] = {}
    for i, pt in enumerate(m.points):
        if pt.table is None:
            continue
        sp = _span(pt)
        if sp is None:
            continue
        for reg in range(sp[0], sp[1] + 1):
            by_reg.setdefault((pt.device, pt.table, reg), []).append((i, pt))
    reported = set()
    for (dev, tbl, reg), users in sorted(by_reg.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        for a in range(len(users)):
            for b in range(a + 1, len(users)):
                (i, p), (j, q) = users[a], users[b]
                if (i, j) in reported or (p.direction == "input" and q.direction == "input"):
                    continue
                if p.bit is not None and q.bit is not None and p.bit != q.bit:
                    continue
                reported.add((i, j))
                rep.error(("points", j), "address", f"points[{j}].address",
                          f"{tbl} register {reg} of '{dev}' is also used by points[{i}] ({p.var}, {p.direction})")
    if m.modbus_server is not None:
        seen: dict[tuple, int] = {}
        for i, sp in enumerate(m.modbus_server.points):
            for reg in range(sp.address, sp.address + MODBUS_TYPES[sp.type]):
                k = (sp.table, reg)
                if k in seen and seen[k] != i:
                    rep.error(("modbus_server.points", i), "address", f"modbus_server.points[{i}].address",
                              f"{sp.table} register {reg} is also served by modbus_server.points[{seen[k]}]")
                    break
                seen[k] = i


def _check_dbc(rep: _Report, m: IoMap) -> None:
    from .can_codec import CanConfigError, missing
    for dev in m.devices.values():
        if dev.transport != "can" or dev.dbc is None or not os.path.isfile(dev.dbc):
            continue
        try:
            for j, t in enumerate(dev.transmit):
                problem = missing(dev.dbc, t.message)
                if problem:
                    rep.error((f"devices.{dev.name}.transmit", j), "message", f"devices.{dev.name}.transmit[{j}].message",
                              problem)
            for i, pt in enumerate(m.points):
                if pt.device != dev.name or pt.message is None or pt.signal is None:
                    continue
                if missing(dev.dbc, pt.message):
                    rep.error(("points", i), "message", f"points[{i}].message", missing(dev.dbc, pt.message))
                elif missing(dev.dbc, pt.message, pt.signal):
                    rep.error(("points", i), "signal", f"points[{i}].signal", missing(dev.dbc, pt.message, pt.signal))
        except CanConfigError as e:
            rep.error((f"devices.{dev.name}", None), "dbc", f"devices.{dev.name}.dbc", str(e))


# ---------------------------------------------------------------- against the program
def bind_iomap(m: IoMap, engine, text: str | None = None) -> None:
    """Check the map against the engine's program and declare its inputs and
    outputs. Raises IoMapError with every problem."""
    problems = bind_problems(m, engine, text)
    if problems:
        raise IoMapError(problems)


def bind_problems(m: IoMap, engine, text: str | None = None) -> list[str]:
    from ..tags import TagError
    if text is None:
        with open(m.path, encoding="utf-8") as f:
            text = f.read()
    lines = _Lines(text)
    rep = _Report(m.shown or m.path, lines)
    bound: dict[str, int] = {}
    for i, pt in enumerate(m.points):
        table = ("points", i)
        label = f"points[{i}].var"
        try:
            tag = engine.scalar_tag(pt.var, "the point's variable")
        except TagError as e:
            rep.error(table, "var", label, str(e))
            continue
        pt.var = tag.path
        if tag.path in bound:
            rep.error(table, "var", label, f"'{tag.path}' is already bound by points[{bound[tag.path]}]")
            continue
        bound[tag.path] = i
        problem = _type_problem(pt, tag.type, m.devices[pt.device])
        if problem:
            rep.error(table, "var", label, problem)
            continue
        try:
            if pt.direction == "input":
                engine.declare_input(tag.path, pt.timeout_ns, pt.substitute, pt.range)
            else:
                engine.declare_output(tag.path, pt.safe)
        except TagError as e:
            key = "substitute" if pt.direction == "input" else "safe"
            rep.error(table, key, f"points[{i}].{key}", str(e))
    if m.modbus_server is not None:
        for i, sp in enumerate(m.modbus_server.points):
            table = ("modbus_server.points", i)
            try:
                tag = engine.scalar_tag(sp.var, "the served variable")
            except TagError as e:
                rep.error(table, "var", f"modbus_server.points[{i}].var", str(e))
                continue
            sp.var = tag.path
            if sp.writable and tag.path in engine.inputs:
                rep.error(table, "writable", f"modbus_server.points[{i}].writable",
                          f"'{tag.path}' is an input bound to the field; a SCADA cannot write it")
    return rep.problems


def _type_problem(pt: Point, t, dev: Device) -> str | None:
    """Whether the variable's type can hold what the point delivers."""
    ts = strip_subrange(t)
    if dev.transport == "can" and pt.message and pt.signal and dev.dbc and os.path.isfile(dev.dbc):
        from .can_codec import CanConfigError, signal_range
        try:
            r = signal_range(dev.dbc, pt.message, pt.signal)
        except CanConfigError:
            return None                 # reported by the map's own checks
        return _fits(t, ts, (r.minimum, r.maximum), r.integral, r.length == 1, f"signal {pt.signal}")
    if dev.transport == "clock" and pt.clock is not None:
        from .clock_driver import CLOCK_FIELDS
        return _fits(t, ts, CLOCK_FIELDS[pt.clock], True, False, f"clock field {pt.clock}")
    if dev.transport == "modbus":
        if pt.sunspec:
            if not isinstance(ts, (RealType, IntType)) or isinstance(ts, BoolType):
                return f"a SunSpec point is a number; {t} cannot hold it"
            return None
        if pt.type is None:
            return None
        if pt.type == "BOOL":
            return None if isinstance(ts, BoolType) else f"a {pt.table}{' bit' if pt.bit is not None else ''} is BOOL; {t} is not"
        if pt.type.startswith("FLOAT"):
            return None if isinstance(ts, RealType) else f"{pt.type} needs a REAL or LREAL variable, not {t}"
        lo, hi = _INT_RANGE[pt.type]
        if pt.scale_factor is not None:
            return None if isinstance(ts, RealType) else f"a value with a scale factor needs REAL or LREAL, not {t}"
        a, b = lo * pt.scale + pt.offset, hi * pt.scale + pt.offset
        return _fits(t, ts, (min(a, b), max(a, b)), _integral(pt.scale, pt.offset), False, f"{pt.type} x {pt.scale:g}")
    return None


def _integral(scale, offset) -> bool:
    return float(scale).is_integer() and float(offset).is_integer()


def _fits(t, ts, bounds: tuple[float, float], integral: bool, one_bit: bool, what: str) -> str | None:
    lo, hi = bounds
    if isinstance(ts, BoolType):
        return None if one_bit or (lo >= 0 and hi <= 1) else f"{what} spans {lo:g}..{hi:g}; BOOL cannot hold it"
    if isinstance(ts, RealType):
        return None
    if isinstance(ts, IntType):
        if not integral:
            return f"{what} has fractional values; {t} cannot hold them (use REAL)"
        if lo < ts.lo or hi > ts.hi:
            return f"{what} spans {lo:g}..{hi:g}; {t} holds {ts.lo}..{ts.hi}"
        return None
    return f"{t} cannot hold the number {what} delivers"
