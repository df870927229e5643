"""CAN captures: read candump and Vector ASC logs, replay them on the virtual clock.

    read_log(path) -> iterator of (t_s, arbitration_id, data, is_extended)

`t_s` is seconds since the first frame of the file, to the microsecond
the formats carry. Formats, told apart by
the file's content (ASC also by its .asc name):

    candump -L          (1436509052.249713) vcan0 356#5A1485FFFF00
    candump -ta / -tz   (1436509052.249713)  vcan0  356   [6]  5A 14 85 FF FF 00
    Vector ASC          0.250000 1  356   Rx   d 6 5A 14 85 FF FF 00

candump -L and ASC go through python-can's `CanutilsLogReader` and
`ASCReader`; the bracketed candump form is parsed here. A candump listing
without timestamps (plain `candump`), or with `-td` deltas, cannot be
replayed in time and is refused. Error and remote frames are skipped.
Problems are `CanLogError`s worded `file:line: what is wrong`.

    LogBus(path, speed=1.0)

The same capture as a live bus, in real time (an io_map CAN device with
`log = "FILE"`, in `gridplc run`): see the class.

    LogReplay(path, codec, start_ns=0, speed=1.0)
    replay.updates_until(t_ns) -> list[Update]

The offline bus for a scenario's "can log" input: a frame at log time t
(relative to the first frame) happens at virtual time start_ns + t / speed;
each call returns the decoded updates (`CanCodec.decode`) of the frames not
yet returned whose virtual time is <= t_ns, in file order, each stamped
with its frame's virtual time. The scenario runner calls it once per scan
with the scan's time and publishes the result. `done` tells when the log is
exhausted, `next_ns` when its next frame is due. The file is read lazily, so
a day-long capture costs no memory; a malformed line deep in the file
raises its CanLogError when the replay reaches it.

    write_candump(path, frames, channel="can0")

writes `candump -L` lines from (t_s, id, data[, is_extended]) tuples or
`can.Message`s, for tests and the BMS simulator.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

from .can_codec import CanCodec
from .image import Update

Frame = tuple[float, int, bytes, bool]


class CanLogError(ValueError):
    pass


_CANDUMP_L = re.compile(r"^\(\s*\d+(\.\d+)?\)\s+\S+\s+[0-9A-Fa-f]+#")
_CANDUMP_T = re.compile(r"^\(\s*(?P<t>\d+(?:\.\d+)?)\)\s+(?P<ch>\S+)\s+(?P<id>[0-9A-Fa-f]{1,8})\s+"
                        r"\[(?P<n>\d+)\]\s*(?P<rest>.*)$")
_CANDUMP_PLAIN = re.compile(r"^\S+\s+[0-9A-Fa-f]{1,8}\s+\[\d+\]")


class _Lines:
    """A text file that knows the number of the line last read (for messages)."""

    def __init__(self, path: str):
        self.f = open(path, encoding="utf-8", errors="replace")
        self.n = 0

    def __iter__(self):
        for line in self.f:
            self.n += 1
            yield line

    def close(self):
        self.f.close()


def _format_of(path: str) -> str:
    if path.lower().endswith(".asc"):
        return "asc"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                if s.split()[0].lower() in ("date", "base", "begin", "internal", "//"):
                    return "asc"
                if _CANDUMP_L.match(s):
                    return "candump-L"
                if _CANDUMP_T.match(s):
                    return "candump-t"
                if _CANDUMP_PLAIN.match(s):
                    raise CanLogError(f"{path}:{n}: a candump listing without timestamps cannot be replayed "
                                      "in time; record with `candump -L` (or -ta)")
                raise CanLogError(f"{path}:{n}: not a candump (-L or -ta) or Vector ASC line: {s[:60]!r}")
    except OSError as e:
        raise CanLogError(f"{path}: cannot read: {e.strerror}") from None
    raise CanLogError(f"{path}: no CAN frames in the file")


def read_log(path: str) -> Iterator[Frame]:
    """The data frames of a capture, timed from its first frame (see the module doc)."""
    fmt = _format_of(path)
    frames = _read_bracketed(path) if fmt == "candump-t" else _read_python_can(path, fmt)
    t0 = None
    for t, fid, data, ext in frames:
        if t0 is None:
            t0 = t
        # logs carry microseconds; an epoch-sized double would add noise below that
        yield round(t - t0, 6), fid, data, ext


def _read_python_can(path: str, fmt: str) -> Iterator[Frame]:
    import can
    lines = _Lines(path)
    reader = can.ASCReader(lines) if fmt == "asc" else can.CanutilsLogReader(lines)
    it = iter(reader)
    try:
        while True:
            try:
                msg = next(it)
            except StopIteration:
                return
            except (ValueError, IndexError, KeyError) as e:
                raise CanLogError(f"{path}:{lines.n}: cannot read this {'ASC' if fmt == 'asc' else 'candump -L'} "
                                  f"line ({e})") from None
            if msg.is_error_frame or msg.is_remote_frame:
                continue
            yield msg.timestamp, msg.arbitration_id, bytes(msg.data), msg.is_extended_id
    finally:
        lines.close()


def _read_bracketed(path: str) -> Iterator[Frame]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = _CANDUMP_T.match(s)
            if m is None:
                raise CanLogError(f"{path}:{n}: not a candump -ta line: {s[:60]!r}")
            rest = m["rest"].split("'")[0].strip()      # candump -a appends the bytes as ASCII in quotes
            if rest.lower().startswith("remote"):
                continue
            try:
                data = bytes(int(b, 16) for b in rest.split())
            except ValueError:
                raise CanLogError(f"{path}:{n}: the data bytes are not hex: {rest[:40]!r}") from None
            if len(data) != int(m["n"]):
                raise CanLogError(f"{path}:{n}: [{m['n']}] bytes announced, {len(data)} given")
            yield float(m["t"]), int(m["id"], 16), data, len(m["id"]) > 3


class LogReplay:
    """A capture replayed as the bus on the virtual clock (see the module doc)."""

    def __init__(self, path: str, codec: CanCodec, start_ns: int = 0, speed: float = 1.0):
        if not speed > 0:
            raise ValueError(f"replay speed must be > 0, not {speed}")
        self.path = path
        self.codec = codec
        self.start_ns = int(start_ns)
        self.speed = float(speed)
        self.frames_replayed = 0
        self._frames = read_log(path)
        self._next = next(self._frames, None)    # a file that is not a log fails here, at set-up

    @property
    def done(self) -> bool:
        return self._next is None

    @property
    def next_ns(self) -> int | None:
        return None if self._next is None else self._at(self._next[0])

    def _at(self, t_s: float) -> int:
        return self.start_ns + round(t_s * 1e9 / self.speed)

    def updates_until(self, t_ns: int) -> list[Update]:
        out: list[Update] = []
        while self._next is not None:
            t_s, fid, data, ext = self._next
            at = self._at(t_s)
            if at > t_ns:
                break
            out.extend(self.codec.decode(fid, data, at, ext))
            self.frames_replayed += 1
            self._next = next(self._frames, None)
        return out


class LogBus:
    """A capture as a live bus: an io_map CAN device with `log = "FILE"` in
    `gridplc run` (a dry run of a site's logic against what its BMS sent).
    Each frame comes out of recv() when its time comes, as recorded, counted
    from when the bus was opened; frames the controller sends are accepted
    and dropped (a capture has no listener). After the last frame, or at a
    line it cannot read (kept in `error`), the bus is silent: the inputs go
    stale by their timeouts, as they would when a BMS stops talking."""

    def __init__(self, path: str, speed: float = 1.0, clock=None):
        import time
        self._clock = clock or time.monotonic
        self._sleep = time.sleep
        self._frames = read_log(path)
        self._t0 = self._clock()
        self.speed = speed
        self._next: Frame | None = None
        self.finished = False
        self.error: str | None = None
        self.received = 0
        self.sent = 0

    def recv(self, timeout: float | None = None):
        import can
        if self._next is None and not self.finished:
            try:
                self._next = next(self._frames)
            except StopIteration:
                self.finished = True
            except CanLogError as e:
                self.finished, self.error = True, str(e)
        if self.finished:
            self._sleep(timeout or 0.0)     # a blocking recv that found nothing
            return None
        t, fid, data, ext = self._next
        due = self._t0 + t / self.speed
        wait = due - self._clock()
        if wait > 0:
            if timeout is not None and wait > timeout:
                self._sleep(timeout)
                return None
            self._sleep(wait)
        self._next = None
        self.received += 1
        return can.Message(timestamp=due, arbitration_id=fid, data=data, is_extended_id=ext)

    def send(self, msg, timeout: float | None = None) -> None:
        self.sent += 1

    def shutdown(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


def write_candump(path: str, frames: Iterable, channel: str = "can0") -> int:
    """Write `candump -L` lines; returns the number of frames written."""
    n = 0
    with open(path, "w", encoding="ascii") as f:
        for fr in frames:
            if hasattr(fr, "arbitration_id"):
                t, fid, data, ext = fr.timestamp, fr.arbitration_id, bytes(fr.data), fr.is_extended_id
            else:
                t, fid, data = fr[0], fr[1], bytes(fr[2])
                ext = fr[3] if len(fr) > 3 and fr[3] is not None else fid > 0x7FF
            ident = f"{fid:08X}" if ext else f"{fid:03X}"
            f.write(f"({t:.6f}) {channel} {ident}#{data.hex().upper()}\n")
            n += 1
    return n


def log_duration_s(path: str) -> float:
    """Seconds from the first frame to the last (reads the whole file)."""
    last = 0.0
    for t, *_ in read_log(path):
        last = t
    return last

