"""CAN frames <-> point values through a DBC (cantools).

Inputs: `CanCodec.decode(id, data, ts_ns)` turns one received frame into the
`Update`s of the points bound to its signals, all in one list so the driver
publishes a frame atomically. A frame shorter than its DBC length, or one
cantools cannot decode, makes every point of that frame BAD (value None: the
engine keeps the last value, flagged) and is counted. A frame longer than
the DBC says is decoded from the bytes the DBC defines: vendors extend
frames that way (the SMA variant of 0x355 sends 6 bytes where the Pylontech
profile has 4), and the signals the map binds are all there. An id the DBC
does not know is counted, nothing else.

Outputs: `encode(message, values_by_signal)` packs engineering values with
the DBC's scale and offset. A value outside what the signal can carry (its
raw width, narrowed by the DBC's [min|max] when those are set) is never
clamped: the frame is refused (`EncodeRefused`) and the driver counts and
reports it, because a clamped limit is a wrong limit the BMS side would
trust. Signals of the message no output binds are sent at their DBC initial
value (raw 0 when none is given, moved into the signal's range).

Validation for the I/O map loader: `missing(dbc, message, signal)` says
what does not exist and names the close matches; `signal_range(...)` gives
the signal's span and resolution, and `SignalRange.holds(type_name)` whether
an ST elementary type can hold every value it decodes to (a 16-bit signed
0.1-scale signal needs REAL, not INT).

Messages are named by DBC name or by id text ("0x356", "854").
"""
from __future__ import annotations

import difflib
import math
import os
import threading
from dataclasses import dataclass
from typing import Iterable

from .config import CanTransmit, Point
from .image import Update
from .quality import BAD, GOOD


class CanConfigError(ValueError):
    """A message or signal the DBC does not have, or a DBC that cannot be read."""


class EncodeRefused(ValueError):
    """An output value the signal cannot carry: the frame is not sent."""


# ---------------------------------------------------------------- the DBC
_DBC_CACHE: dict[str, tuple[float, object]] = {}
_DBC_LOCK = threading.Lock()


def load_dbc(path: str):
    """The cantools database of `path`, read once per file version."""
    import cantools
    try:
        mtime = os.stat(path).st_mtime
    except OSError as e:
        raise CanConfigError(f"{path}: cannot read the DBC: {e.strerror}") from None
    with _DBC_LOCK:
        hit = _DBC_CACHE.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
    try:
        db = cantools.database.load_file(path, strict=False)
    except Exception as e:  # noqa: BLE001 - cantools raises parser-specific errors
        raise CanConfigError(f"{path}: cannot read the DBC: {e}") from None
    with _DBC_LOCK:
        _DBC_CACHE[path] = (mtime, db)
    return db


def find_message(db, ref: str):
    """The message named `ref`, or with the id `ref` ("0x356", "854"); None if absent."""
    try:
        return db.get_message_by_name(ref)
    except KeyError:
        pass
    try:
        return db.get_message_by_frame_id(int(str(ref), 0))
    except (KeyError, ValueError):
        return None


def _message_problem(db, dbc_path: str, message: str) -> str | None:
    if find_message(db, message) is not None:
        return None
    names = [m.name for m in db.messages]
    close = difflib.get_close_matches(str(message), names, 3, 0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (messages: {', '.join(names)})"
    return f"no message '{message}' in {os.path.basename(dbc_path)}{hint}"


def missing(dbc_path: str, message: str, signal: str | None = None) -> str | None:
    """None when the message (and the signal, if given) exist; else a one-line
    problem naming the close matches."""
    db = load_dbc(dbc_path)
    problem = _message_problem(db, dbc_path, message)
    if problem or signal is None:
        return problem
    msg = find_message(db, message)
    sigs = [s.name for s in msg.signals]
    if signal in sigs:
        return None
    close = difflib.get_close_matches(signal, sigs, 3, 0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (signals: {', '.join(sigs)})"
    return f"message {msg.name} has no signal '{signal}'{hint}"


# ---------------------------------------------------------------- signal ranges
_INT_TYPES = (("USINT", 0, 255), ("SINT", -128, 127), ("UINT", 0, 65535), ("INT", -32768, 32767),
              ("UDINT", 0, 2**32 - 1), ("DINT", -2**31, 2**31 - 1),
              ("ULINT", 0, 2**64 - 1), ("LINT", -2**63, 2**63 - 1))
_INT_BOUNDS = {name: (lo, hi) for name, lo, hi in _INT_TYPES}
_INT_BOUNDS.update(BYTE=(0, 255), WORD=(0, 65535), DWORD=(0, 2**32 - 1), LWORD=(0, 2**64 - 1))


@dataclass(frozen=True)
class SignalRange:
    message: str
    signal: str
    minimum: float            # engineering span: raw width x scale + offset, narrowed by the DBC [min|max]
    maximum: float
    scale: float
    offset: float
    is_signed: bool
    length: int               # bits
    is_float: bool
    unit: str | None = None

    @property
    def integral(self) -> bool:
        """Every decoded value is a whole number."""
        return not self.is_float and float(self.scale).is_integer() and float(self.offset).is_integer()

    def describe(self) -> str:
        kind = "float" if self.is_float else ("signed" if self.is_signed else "unsigned")
        return (f"signal {self.signal} ({self.length}-bit {kind}, scale {self.scale:g}, offset {self.offset:g}) "
                f"spans {self.minimum:g}..{self.maximum:g}")

    def st_type(self) -> str:
        """The smallest ST elementary type that holds every value."""
        if self.length == 1 and self.integral and self.minimum >= 0 and self.maximum <= 1:
            return "BOOL"
        if self.integral:
            for name, lo, hi in _INT_TYPES:
                if lo <= self.minimum and self.maximum <= hi:
                    return name
        return "REAL" if self.length <= 24 and not (self.is_float and self.length > 32) else "LREAL"

    def holds(self, type_name: str) -> str | None:
        """None when `type_name` (an ST elementary type) holds every value; else why not."""
        t = type_name.upper()
        if t in ("REAL", "LREAL"):
            return None
        if t == "BOOL":
            if self.minimum >= 0 and self.maximum <= 1 and self.integral:
                return None
            return f"{self.describe()}; BOOL cannot hold it (use {self.st_type()})"
        if t in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[t]
            if not self.integral:
                return f"{self.describe()} in steps of {self.scale:g}; {t} cannot hold fractions (use REAL)"
            if self.minimum < lo or self.maximum > hi:
                return f"{self.describe()}; {t} holds {lo}..{hi} (use {self.st_type()})"
            return None
        return f"{t} cannot hold the number signal {self.signal} delivers (use {self.st_type()})"


def _bounds(sig) -> tuple[float, float]:
    if sig.is_float:
        top = 3.4028234663852886e38 if sig.length == 32 else 1.7976931348623157e308
        lo, hi = -top, top
    else:
        raw_lo = -(1 << (sig.length - 1)) if sig.is_signed else 0
        raw_hi = (1 << (sig.length - 1)) - 1 if sig.is_signed else (1 << sig.length) - 1
        a, b = raw_lo * sig.scale + sig.offset, raw_hi * sig.scale + sig.offset
        lo, hi = min(a, b), max(a, b)
    # a DBC writes [0|0] for "no limits"; cantools reads that as None
    if sig.minimum is not None and sig.maximum is not None and sig.minimum < sig.maximum:
        lo, hi = max(lo, sig.minimum), min(hi, sig.maximum)
    return lo, hi


def _range_of(msg, sig) -> SignalRange:
    lo, hi = _bounds(sig)
    return SignalRange(msg.name, sig.name, lo, hi, sig.scale, sig.offset, sig.is_signed,
                       sig.length, sig.is_float, sig.unit or None)


def signal_range(dbc_path: str, message: str, signal: str) -> SignalRange:
    """The signal's span and resolution; CanConfigError when it does not exist."""
    problem = missing(dbc_path, message, signal)
    if problem:
        raise CanConfigError(problem)
    msg = find_message(load_dbc(dbc_path), message)
    return _range_of(msg, msg.get_signal_by_name(signal))


# ---------------------------------------------------------------- the codec
@dataclass
class RxFrame:
    message: object                      # cantools Message
    bindings: list[tuple[str, str]]      # (signal, var) in point order

    def __post_init__(self):
        # read per frame: plain attributes, not cantools properties
        self.name = self.message.name
        self.length = self.message.length
        self.extended = self.message.is_extended_frame


@dataclass
class TxFrame:
    message: object                      # cantools Message
    bindings: list[tuple[str, str]]      # (signal, var) of the output points bound to it
    period_ns: int | None                # None: not periodic
    on_change: bool

    @property
    def name(self) -> str:
        return self.message.name


class CanCodec:
    """Decodes the frames bound to input points and encodes the transmitted ones.

    `points` are the device's points (inputs and outputs); `transmits` its
    `CanTransmit` entries. An output point whose message has no transmit
    entry is sent on change (and every `period_ns` of the point when its
    write = "cyclic"). Counters (`stats()`) are written by the one thread
    that decodes."""

    def __init__(self, dbc_path: str, points: Iterable[Point] = (), transmits: Iterable[CanTransmit] = (),
                 default_period_ns: int | None = None):
        self.dbc_path = dbc_path
        self.db = load_dbc(dbc_path)
        self.rx: dict[int, RxFrame] = {}
        self.tx: dict[str, TxFrame] = {}
        self._ranges: dict[tuple[str, str], tuple[float, float]] = {}
        self._defaults: dict[str, dict[str, float]] = {}
        cyclic: dict[str, list[int]] = {}
        for p in points:
            msg = self._resolve(p.message, p.signal, p.var)
            if p.direction == "input":
                self.rx.setdefault(msg.frame_id, RxFrame(msg, [])).bindings.append((p.signal, p.var))
            else:
                self._tx_frame(msg).bindings.append((p.signal, p.var))
                if p.write == "cyclic":
                    cyclic.setdefault(msg.name, []).append(p.period_ns or default_period_ns or 0)
        explicit = set()
        for t in transmits:
            msg = self._resolve(t.message, None, f"transmit {t.message}", need_signal=False)
            f = self._tx_frame(msg)
            f.period_ns, f.on_change = t.period_ns, t.on_change
            explicit.add(msg.name)
        for name, f in self.tx.items():
            if name not in explicit:
                periods = [x for x in cyclic.get(name, []) if x > 0]
                f.period_ns, f.on_change = (min(periods) if periods else None), True
        # counters
        self.rx_frames = 0
        self.rx_by_message: dict[str, int] = {m.name: 0 for m in self.db.messages}
        self.last_rx_ns: dict[str, int] = {}
        self.decode_failures = 0
        self.long_frames = 0
        self.unknown_ids = 0
        self.last_unknown_id: int | None = None
        self.last_decode_error: str | None = None

    def _resolve(self, message, signal, who, need_signal=True):
        if message is None or (need_signal and signal is None):
            raise CanConfigError(f"{who}: a CAN point needs both a DBC message and a signal")
        problem = missing(self.dbc_path, message, signal)
        if problem:
            raise CanConfigError(f"{who}: {problem}")
        return find_message(self.db, message)

    def _tx_frame(self, msg) -> TxFrame:
        if msg.name not in self.tx:
            self.tx[msg.name] = TxFrame(msg, [], None, True)
        return self.tx[msg.name]

    def message(self, ref: str):
        msg = find_message(self.db, ref)
        if msg is None:
            raise CanConfigError(_message_problem(self.db, self.dbc_path, ref))
        return msg

    # ------------------------------------------------------------ inputs
    def decode(self, arbitration_id: int, data: bytes, ts_ns: int | None,
               is_extended: bool | None = None) -> list[Update]:
        """The updates of the points bound to this frame (an empty list for a
        frame nothing binds, or an id the DBC does not have). With
        `is_extended` given, a 29-bit id never matches an 11-bit message or
        the reverse."""
        f = self.rx.get(arbitration_id)
        if f is None or (is_extended is not None and is_extended != f.extended):
            try:
                msg = self.db.get_message_by_frame_id(arbitration_id)
                if is_extended is not None and is_extended != msg.is_extended_frame:
                    raise KeyError(arbitration_id)
            except KeyError:
                self.unknown_ids += 1
                self.last_unknown_id = arbitration_id
                return []
            self.rx_frames += 1
            self.rx_by_message[msg.name] += 1
            self.last_rx_ns[msg.name] = ts_ns
            return []
        name, length = f.name, f.length
        self.rx_frames += 1
        self.rx_by_message[name] += 1
        self.last_rx_ns[name] = ts_ns
        values = None
        n = len(data)
        if n < length:
            self.last_decode_error = f"{name}: {n} bytes, the DBC says {length}"
        else:
            if n > length:
                self.long_frames += 1
                data = data[:length]
            try:
                values = f.message.decode(data, decode_choices=False)
            except Exception as e:  # noqa: BLE001 - cantools raises several kinds for a bad payload
                self.last_decode_error = f"{name}: {e}"
        if values is None:
            self.decode_failures += 1
            return [Update(var, None, BAD, ts_ns) for _, var in f.bindings]
        # a multiplexed message carries only some signals per frame: the others keep their value
        return [Update(var, values[sig], GOOD, ts_ns) for sig, var in f.bindings if sig in values]

    # ------------------------------------------------------------ outputs
    def encode(self, message: str, values_by_signal: dict[str, object]) -> bytes:
        """The frame's payload; EncodeRefused when a value cannot be carried."""
        msg = self.message(message)
        data = dict(self._defaults_of(msg))
        for name, v in values_by_signal.items():
            lo, hi = self.bounds(msg.name, name)
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
                raise EncodeRefused(f"{msg.name}.{name}: {v!r} is not a number")
            # a hair of tolerance: a limit computed as raw x scale (327.67000000000002) is still the limit
            tol = 1e-9 * max(1.0, abs(lo), abs(hi))
            if not lo - tol <= v <= hi + tol:
                raise EncodeRefused(f"{msg.name}.{name} = {v:g} is outside {lo:g}..{hi:g}")
            data[name] = min(hi, max(lo, v))
        try:
            return msg.encode(data, strict=False)
        except Exception as e:  # noqa: BLE001 - cantools raises several kinds
            raise EncodeRefused(f"{msg.name}: {e}") from None

    def bounds(self, message: str, signal: str) -> tuple[float, float]:
        """The engineering values the signal can carry (see SignalRange.minimum)."""
        key = (message, signal)
        r = self._ranges.get(key)
        if r is None:
            msg = self.message(message)
            try:
                sig = msg.get_signal_by_name(signal)
            except KeyError:
                raise EncodeRefused(f"message {msg.name} has no signal '{signal}'") from None
            r = self._ranges[key] = _bounds(sig)
        return r

    def _defaults_of(self, msg) -> dict[str, float]:
        d = self._defaults.get(msg.name)
        if d is None:
            d = {}
            for sig in msg.signals:
                lo, hi = _bounds(sig)
                v = sig.initial if sig.initial is not None else sig.offset
                d[sig.name] = min(hi, max(lo, v))
            self._defaults[msg.name] = d
        return d

    # ------------------------------------------------------------ stats
    def stats(self) -> dict:
        return {
            "rx_frames": self.rx_frames,
            "decode_failures": self.decode_failures,
            "long_frames": self.long_frames,
            "unknown_ids": self.unknown_ids,
            "last_unknown_id": None if self.last_unknown_id is None else f"0x{self.last_unknown_id:X}",
            "last_decode_error": self.last_decode_error,
        }
