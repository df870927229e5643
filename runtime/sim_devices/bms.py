"""A battery management system on a CAN bus, speaking the DBC's LV profile.

From a `plant.Battery` it sends, every `period_s` (1 s, as Pylontech-style
BMSs do; per message in `periods`), the frames the controller's DBC
describes:

    0x351 BMS_Limits_351          charge voltage / current limits, discharge current / voltage limits
    0x355 BMS_SocSoh_355          SOC and SOH, whole percent
    0x356 BMS_Measurements_356    pack voltage, current (> 0 charging, the BMS convention), highest cell temperature
    0x359 BMS_ProtectionAlarm_359 protection and warning bits from `BmsParams` thresholds, module count, "PN"
    0x35C BMS_Request_35C         charge / discharge enable, force-charge requests
    0x35E BMS_Manufacturer_35E    the name, 8 ASCII bytes

and listens for the controller's keep-alive 0x305 (`keepalive_ok`). With
`require_keepalive`, a BMS that has not heard it for `keepalive_timeout_s`
does what a real one does on comm loss: limits to zero, enables off.

It only reads the battery; whoever simulates the power flow steps it.
Two ways to run it:

    sim.step(t_s)        send what is due at simulator time t_s (and read received frames):
                         deterministic, for tests
    sim.start() / .stop()   a thread on wall time; stop() is a dead BMS

Faults for tests and demos (`sim.faults`, changeable at any time):
`silent` (nothing sent), `freeze` (the frames of the moment repeated as
they were), `malformed` (names of messages sent one byte short, or "all"),
`unknown_id` (an extra frame each cycle with an id the DBC does not have),
`drop_probability` (each frame lost with this probability, from a seeded
generator), `forced` (signal name -> value, e.g. {"Prot_OverTemperature": 1}).

`record` (a list) collects every frame sent with its simulator time, so
`can_log.write_candump(path, sim.record)` turns a run into a capture.
"""
from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

import can

from ..io.can_codec import CanCodec, EncodeRefused
from .plant import Battery

SHARED_DBC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "io", "bms_can.dbc"))

MESSAGES = ("BMS_Limits_351", "BMS_SocSoh_355", "BMS_Measurements_356", "BMS_ProtectionAlarm_359",
            "BMS_Request_35C", "BMS_Manufacturer_35E")
KEEPALIVE_ID = 0x305


@dataclass
class BmsParams:
    soh_pct: float = 100.0
    modules: int = 1
    name: str = "GRIDPLC"
    cell_ov_protect_v: float = 3.65
    cell_ov_warn_v: float = 3.55
    cell_uv_protect_v: float = 2.50
    cell_uv_warn_v: float = 2.90
    ot_protect_c: float = 60.0
    ot_warn_c: float = 50.0
    ut_protect_c: float = -10.0
    ut_warn_c: float = 0.0
    overcurrent_factor: float = 1.1      # protection above this x the max current; warning above the max
    force_charge1_soc: float = 0.05
    force_charge2_soc: float = 0.15


@dataclass
class BmsFaults:
    silent: bool = False
    freeze: bool = False
    malformed: set[str] | str = field(default_factory=set)   # message names, or "all"
    unknown_id: int | None = None        # e.g. 0x7A5
    drop_probability: float = 0.0
    forced: dict[str, float] = field(default_factory=dict)


class BmsSimulator:
    def __init__(self, bus: can.BusABC, battery: Battery, dbc_path: str = SHARED_DBC, *, period_s: float = 1.0,
                 periods: dict[str, float] | None = None, params: BmsParams | None = None, seed: int = 0,
                 require_keepalive: bool = False, keepalive_timeout_s: float = 3.0,
                 messages: tuple[str, ...] = MESSAGES, record: list | None = None):
        self.bus = bus
        self.battery = battery
        self.record = record             # (t_s, id, data, False) of every frame sent, for write_candump
        self.codec = CanCodec(dbc_path)
        self.params = params or BmsParams()
        self.faults = BmsFaults()
        self.require_keepalive = require_keepalive
        self.keepalive_timeout_s = keepalive_timeout_s
        self.messages = tuple(self.codec.message(m).name for m in messages)
        self.periods = {m: (periods or {}).get(m, period_s) for m in self.messages}
        self._due = {m: 0.0 for m in self.messages}
        self._frozen: dict[str, bytes] = {}
        self._rng = random.Random(seed)
        self._unknown_due = 0.0
        self.t_s = 0.0
        self.last_keepalive_s: float | None = None
        self.keepalives = 0
        self.sent: dict[str, int] = {m: 0 for m in self.messages}
        self.dropped = 0
        self.send_errors = 0
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ what it says
    def keepalive_ok(self, t_s: float | None = None) -> bool:
        t = self.t_s if t_s is None else t_s
        return self.last_keepalive_s is not None and t - self.last_keepalive_s <= self.keepalive_timeout_s

    def signals(self, t_s: float | None = None) -> dict[str, dict[str, float]]:
        """Every message's signal values now (before faults)."""
        b, p = self.battery, self.params
        with b.lock:
            soc, cells, temps, i_dis = b.soc, b.cell_voltages(), b.cell_temps(), b.current_a
            ccl, dcl = b.charge_current_limit_a(), b.discharge_current_limit_a()
            bp = b.params
        vmax, vmin, tmax, tmin = max(cells), min(cells), max(temps), min(temps)
        charge_a = -i_dis
        prot = {
            "Prot_OverVoltage": vmax > p.cell_ov_protect_v,
            "Prot_UnderVoltage": vmin < p.cell_uv_protect_v,
            "Prot_OverTemperature": tmax > p.ot_protect_c,
            "Prot_UnderTemperature": tmin < p.ut_protect_c,
            "Prot_DischargeOverCurrent": i_dis > bp.max_discharge_a * p.overcurrent_factor,
            "Prot_ChargeOverCurrent": charge_a > bp.max_charge_a * p.overcurrent_factor,
            "Prot_SystemError": False,
        }
        warn = {
            "Warn_HighVoltage": vmax > p.cell_ov_warn_v,
            "Warn_LowVoltage": vmin < p.cell_uv_warn_v,
            "Warn_HighTemperature": tmax > p.ot_warn_c,
            "Warn_LowTemperature": tmin < p.ut_warn_c,
            "Warn_HighDischargeCurrent": i_dis > bp.max_discharge_a,
            "Warn_HighChargeCurrent": charge_a > bp.max_charge_a,
            "Warn_InternalCommFail": False,
        }
        alarms = {k: int(v) for k, v in {**prot, **warn}.items()}
        alarms.update({k: v for k, v in self.faults.forced.items() if k in alarms})
        tripped = any(alarms[k] for k in prot)
        lost = self.require_keepalive and not self.keepalive_ok(t_s)
        if lost or tripped:
            ccl = dcl = 0.0
        name = (p.name.encode("ascii", "replace") + b" " * 8)[:8]
        out = {
            "BMS_Limits_351": {"ChargeVoltageLimit": bp.charge_voltage_limit_v, "ChargeCurrentLimit": ccl,
                               "DischargeCurrentLimit": dcl, "DischargeVoltageLimit": bp.discharge_voltage_limit_v},
            "BMS_SocSoh_355": {"SOC": round(soc * 100.0), "SOH": round(p.soh_pct)},
            "BMS_Measurements_356": {"BatteryVoltage": sum(cells), "BatteryCurrent": charge_a,
                                     "BatteryTemperature": tmax},
            "BMS_ProtectionAlarm_359": {**alarms, "ModuleCount": p.modules, "Marker0": 0x50, "Marker1": 0x4E},
            "BMS_Request_35C": {"ChargeEnable": int(ccl > 0), "DischargeEnable": int(dcl > 0),
                                "ForceChargeRequest1": int(soc < p.force_charge1_soc),
                                "ForceChargeRequest2": int(soc < p.force_charge2_soc), "FullChargeRequest": 0},
            "BMS_Manufacturer_35E": {f"Char{i}": name[i] for i in range(8)},
        }
        for sigs in out.values():
            for k in self.faults.forced:
                if k in sigs:
                    sigs[k] = self.faults.forced[k]
        return out

    def payload(self, message: str, values: dict[str, float]) -> bytes:
        """The frame a BMS sends: a measurement beyond what the signal carries saturates."""
        clamped = {}
        for k, v in values.items():
            lo, hi = self.codec.bounds(message, k)
            clamped[k] = min(hi, max(lo, v))
        return self.codec.encode(message, clamped)

    # ------------------------------------------------------------ stepping
    def step(self, t_s: float) -> int:
        """Read what arrived, send what is due at `t_s`; returns frames sent."""
        self.t_s = t_s
        self._read(t_s, 0.0)
        f = self.faults
        if f.silent:        # back from silence, overdue frames go out at once and the schedule restarts
            return 0
        due = [m for m in self.messages if t_s >= self._due[m]]
        if not due and not (f.unknown_id is not None and t_s >= self._unknown_due):
            return 0
        values = self.signals(t_s)
        sent = 0
        for m in due:
            period = self.periods[m]
            self._due[m] = self._due[m] + period if self._due[m] + period > t_s else t_s + period
            if f.freeze and m in self._frozen:
                data = self._frozen[m]
            else:
                try:
                    data = self.payload(m, values[m])
                except EncodeRefused as e:      # a forced value that does not fit: say so, send nothing
                    self.last_error = str(e)
                    continue
                self._frozen[m] = data
            if f.malformed == "all" or m in f.malformed:
                data = data[:-1]
            sent += self._send(self.codec.message(m).frame_id, data, m)
        if f.unknown_id is not None and t_s >= self._unknown_due:
            self._unknown_due = t_s + min(self.periods.values())
            sent += self._send(f.unknown_id, bytes(8), None)
        return sent

    def _send(self, fid: int, data: bytes, name: str | None) -> int:
        if self.faults.drop_probability > 0 and self._rng.random() < self.faults.drop_probability:
            self.dropped += 1
            return 0
        try:
            self.bus.send(can.Message(arbitration_id=fid, data=data, is_extended_id=False))
        except (can.CanError, OSError) as e:
            self.send_errors += 1
            self.last_error = f"send: {e}"
            return 0
        if name is not None:
            self.sent[name] += 1
        if self.record is not None:
            self.record.append((self.t_s, fid, data, False))
        return 1

    def _read(self, t_s: float, timeout: float) -> None:
        try:
            msg = self.bus.recv(timeout)
            while msg is not None:
                if msg.arbitration_id == KEEPALIVE_ID and not msg.is_error_frame:
                    self.last_keepalive_s = t_s
                    self.keepalives += 1
                msg = self.bus.recv(0.0)
        except (can.CanError, OSError) as e:
            self.last_error = f"receive: {e}"

    def next_due_s(self) -> float:
        return min(self._due.values())

    # ------------------------------------------------------------ on wall time
    def start(self) -> "BmsSimulator":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bms-sim", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic() - t0
            self.step(now)
            # waiting in recv hears the keep-alive as it comes; overdue (silent) frames wait a little
            wait = min(0.1, max(0.01, self.next_due_s() - (time.monotonic() - t0)))
            self._read(time.monotonic() - t0, wait)

    def stop(self) -> None:
        """Stop sending (a BMS that died); the bus stays open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
