"""The sequence-of-events log: append-only, hash-chained JSON Lines.

What a safety reviewer reads after the fact: start/stop, mode changes, faults,
resets, operator writes (who, what, old and new value), alarm transitions, the
program version at start. One record per line, UTF-8, keys in this order:

    seq    0, 1, 2, ... with no gaps
    scan   the engine's scan number (0 before the first scan)
    t_ns   the scan's latched time in ns (deterministic; replays reproduce it)
    wall   UTC wall time, "2026-12-01T20:31:05.123456Z" (informative only)
    kind   "start", "stop", "fault", "reset", "write", "force", "release",
           "mode", "alarm", "retain", "config", "recovered", "overflow", ...
    data   an object with the kind's fields (a write: path, old, new, who)
    prev   the previous record's `hash`; 64 zeros for the first record
    hash   sha256 (hex) of canonical_json(record without `hash`)

canonical_json is json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False), encoded as UTF-8. Floats are written with repr, so they
read back bit for bit; NaN and the infinities, which JSON lacks, are written
as {"$float": "nan" | "inf" | "-inf"} and read back as floats by read_log.
A dict whose only key is "$float" is therefore reserved and refused as data.

What the chain catches, and what it cannot: an edited field (hash mismatch),
a deleted, inserted, duplicated or moved record (seq or prev mismatch), a line
that is not JSON, a torn last line. It cannot catch removal of records from
the end, nor records forged and appended at the end by someone who can run
this code: the file has no secret and nothing after the end vouches for the
end. Only an external anchor can: copy `EventLog.head` (seq, hash) somewhere
the writer of the file cannot change (OPC UA history, a remote syslog, a
printed shift report) and compare it with VerifyResult.head_*.

Crash safety: each record is one write() of the line including its newline,
flushed to the OS on every append and fsync'ed at most every `fsync_period_s`
(and on close), so a power loss can lose the records of the last period and
can leave a torn last line. On open, a torn tail (bytes after the last
newline) is never chained onto: it is cut off and a "recovered" record says
how many bytes were dropped. (If the tail is in fact a whole, correctly
chained record that only lacks its newline, the newline is added instead and
nothing is dropped.) A log whose last complete line is not a record is not
appended to at all: EventLogError, so the evidence stays as it is.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

try:                                    # POSIX; elsewhere the log is not locked
    import fcntl
except ImportError:                     # pragma: no cover
    fcntl = None

__all__ = ["EventLog", "AsyncEventLog", "EventLogError", "VerifyResult", "read_log",
           "verify_log", "filter_records", "record_hash", "canonical_json", "parse_wall",
           "GENESIS_PREV", "KEYS"]

GENESIS_PREV = "0" * 64
KEYS = ("seq", "scan", "t_ns", "wall", "kind", "data", "prev", "hash")
FSYNC_PERIOD_S = 1.0
QUEUE_LEN_MAX = 65_536          # AsyncEventLog: records waiting to be written
_TAIL_CHUNK_BYTES = 65_536
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_HEX = frozenset("0123456789abcdef")


class EventLogError(Exception):
    """The log cannot be opened or written, or a line cannot be read."""


# ------------------------------------------------------------------ encoding
def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def record_hash(record: Mapping) -> str:
    """sha256 over the canonical JSON of `record` without its `hash` key.
    `record` is in its stored form (non-finite floats as {"$float": ...})."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _clean_str(s: str) -> str:
    # A lone surrogate cannot be written as UTF-8; keep it visible as \udxxx.
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _to_stored(v):
    """A deep copy of `v` in stored form: dict/list/str/int/float/bool/None,
    non-finite floats as {"$float": ...}. Raises TypeError for anything else."""
    t = type(v)
    if t is str:
        return _clean_str(v)
    if t is int or t is bool or v is None:
        return v
    if t is float:
        if math.isfinite(v):
            return v
        return {"$float": "nan" if v != v else ("inf" if v > 0 else "-inf")}
    if isinstance(v, Mapping):
        if len(v) == 1 and "$float" in v:
            raise ValueError('event data: a dict whose only key is "$float" is reserved')
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"event data: key {k!r} is not a string")
            out[_clean_str(str(k))] = _to_stored(x)
        return out
    if isinstance(v, (list, tuple)):
        return [_to_stored(x) for x in v]
    if isinstance(v, str):
        return _clean_str(str(v))
    if isinstance(v, int):              # IntEnum, IntFlag, bool handled above
        return int(v)
    if isinstance(v, float):
        return _to_stored(float(v))
    if hasattr(v, "tolist"):            # numpy scalars and arrays, without importing numpy
        return _to_stored(v.tolist())
    raise TypeError(f"event data: a {type(v).__name__} is not a JSON value")


def _decode_hook(d: dict):
    if len(d) == 1:
        s = d.get("$float")
        if isinstance(s, str) and s in _NONFINITE:
            return _NONFINITE[s]
    return d


def _decoded(v):
    """Stored form -> Python values (the inverse of _to_stored)."""
    if isinstance(v, dict):
        if len(v) == 1 and "$float" in v:
            return _decode_hook(v)
        return {k: _decoded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decoded(x) for x in v]
    return v


def _format_wall(dt: datetime) -> str:
    if not isinstance(dt, datetime) or dt.utcoffset() is None:
        raise ValueError(f"event log wall clock must return an aware datetime, got {dt!r}")
    d = dt.astimezone(timezone.utc)
    return f"{d:%Y-%m-%dT%H:%M:%S}.{d.microsecond:06d}Z"


def parse_wall(value) -> datetime | None:
    """An ISO 8601 time (str) or a datetime -> aware UTC datetime; a time
    without an offset is taken as UTC. None for anything unreadable."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if dt.utcoffset() is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _check_int(name: str, v) -> int:
    if type(v) is not int:
        if isinstance(v, int) and not isinstance(v, bool):
            return int(v)
        raise TypeError(f"event log: {name} must be an int, got {v!r}")
    return v


def _check_kind(kind) -> str:
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"event log: kind must be a non-empty string, got {kind!r}")
    return str(kind)


def _problem(obj) -> str | None:
    """What is structurally wrong with a parsed line, or None."""
    if not isinstance(obj, dict):
        return "malformed record: not a JSON object"
    missing = [k for k in KEYS if k not in obj]
    if missing:
        return f"malformed record: missing {', '.join(missing)}"
    extra = [k for k in obj if k not in KEYS]
    if extra:
        return f"malformed record: unexpected key {', '.join(extra)}"
    for k in ("seq", "scan", "t_ns"):
        if type(obj[k]) is not int:
            return f"malformed record: {k} is not an integer"
    for k in ("wall", "kind"):
        if not isinstance(obj[k], str):
            return f"malformed record: {k} is not a string"
    if not isinstance(obj["data"], dict):
        return "malformed record: data is not an object"
    for k in ("prev", "hash"):
        h = obj[k]
        if not (isinstance(h, str) and len(h) == 64 and _HEX.issuperset(h)):
            return f"malformed record: {k} is not 64 lowercase hex digits"
    return None


def _parse_line(raw: bytes):
    """-> (record in stored form, None) or (None, reason)."""
    if not raw.strip():
        return None, "blank line"
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except ValueError as e:
        return None, f"not JSON ({e.msg} at column {e.colno})"
    bad = _problem(obj)
    return (None, bad) if bad else (obj, None)


def _hash_ok(obj: dict) -> bool:
    try:
        return record_hash(obj) == obj["hash"]
    except ValueError:                  # e.g. 1e999 in the file reads as inf
        return False


# -------------------------------------------------------------------- writer
class EventLog:
    """Synchronous writer. append() is thread-safe; each record is written and
    flushed before append returns; fsync at most every fsync_period_s and on
    close. Only one EventLog may have a file open at a time (flock)."""

    def __init__(self, path: str, *, clock_wall=None, fsync_period_s: float = FSYNC_PERIOD_S):
        if fsync_period_s < 0:
            raise ValueError("fsync_period_s must be >= 0")
        self.path = os.fspath(path)
        self.fsync_period_s = float(fsync_period_s)
        self._clock_wall = clock_wall or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._closed = False
        self._dirty = False
        self._last_fsync = time.monotonic()
        created = not os.path.exists(self.path)
        self._f = open(self.path, "a+b")       # O_APPEND: every write goes to the end
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise EventLogError(f"{self.path}: already open for writing by another "
                                        f"EventLog (this or another process)") from None
            if created:
                _fsync_dir(self.path)
            self._seq, self._hash, recovered = self._open_tail()
        except BaseException:
            self._f.close()
            raise
        if recovered is not None:
            self.append("recovered", recovered)

    # -------------------------------------------------------------- open
    def _open_tail(self):
        """Reads the last record; deals with a torn tail. -> (next seq, last
        hash, data of the "recovered" record to write or None)."""
        f = self._f
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0, GENESIS_PREV, None
        tail_start, last, tail = _read_tail(f, size)
        if last is None:
            seq, prev = 0, GENESIS_PREV
        else:
            obj, why = _parse_line(last)
            if obj is None:
                raise EventLogError(f"{self.path}: the last complete line is not a record "
                                    f"({why}); not appending to it. Run `gridplc log verify`.")
            seq, prev = obj["seq"] + 1, obj["hash"]
        if not tail:
            return seq, prev, None
        obj, _ = _parse_line(tail)
        if obj is not None and obj["seq"] == seq and obj["prev"] == prev and _hash_ok(obj):
            # A whole record that only lost its newline: complete it, drop nothing.
            f.write(b"\n")
            self._sync()
            return seq + 1, obj["hash"], {"dropped_bytes": 0, "offset": size,
                                          "reason": "last line lacked its newline; completed"}
        f.truncate(tail_start)
        self._sync()
        return seq, prev, {"dropped_bytes": len(tail), "offset": tail_start,
                           "reason": "torn last line"}

    # ------------------------------------------------------------- write
    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written; (-1, 64 zeros) if none.
        Keep a copy elsewhere to anchor the end of the chain."""
        with self._lock:
            return self._seq - 1, self._hash

    def append(self, kind: str, data: dict | None = None, *, scan: int = 0, t_ns: int = 0) -> dict:
        """Writes one record and returns it (data as read_log would return it)."""
        kind = _check_kind(kind)
        scan = _check_int("scan", scan)
        t_ns = _check_int("t_ns", t_ns)
        stored = _to_stored({} if data is None else data)
        if not isinstance(stored, dict):
            raise TypeError("event log: data must be a dict")
        with self._lock:
            wall = _format_wall(self._clock_wall())
            rec = self._write(kind, stored, scan, t_ns, wall, flush=True)
        rec["data"] = _decoded(rec["data"])
        return rec

    def _write(self, kind, stored, scan, t_ns, wall, *, flush) -> dict:
        """Caller holds self._lock. `stored` is already in stored form."""
        if self._closed:
            raise EventLogError(f"{self.path}: the event log is closed")
        rec = {"seq": self._seq, "scan": scan, "t_ns": t_ns, "wall": wall, "kind": kind,
               "data": stored, "prev": self._hash}
        rec["hash"] = record_hash(rec)
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._f.write(line.encode("utf-8") + b"\n")
        self._seq += 1
        self._hash = rec["hash"]
        self._dirty = True
        if flush:
            self._f.flush()
            self._sync_if_due()
        return rec

    def flush(self) -> None:
        """Records are flushed on every append; here for parity with AsyncEventLog."""
        with self._lock:
            if not self._closed:
                self._f.flush()

    def sync(self) -> None:
        """Flush and fsync now."""
        with self._lock:
            if not self._closed:
                self._sync()

    def _sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._dirty = False
        self._last_fsync = time.monotonic()

    def _sync_if_due(self) -> None:
        if self._dirty and time.monotonic() - self._last_fsync >= self.fsync_period_s:
            self._sync()

    def _fsync_due_in_s(self) -> float | None:
        """Seconds until a pending fsync is due; None if nothing is pending."""
        if not self._dirty:
            return None
        return max(0.0, self._last_fsync + self.fsync_period_s - time.monotonic())

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._sync()
            finally:
                self._f.close()         # also releases the flock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:                     # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:                     # pragma: no cover
        pass
    finally:
        os.close(fd)


def _read_tail(f, size: int):
    """-> (offset just past the last newline, the last complete line without
    its newline or None, the bytes after the last newline)."""
    pos, buf = size, b""
    while True:
        step = min(_TAIL_CHUNK_BYTES, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        last_nl = buf.rfind(b"\n")
        if last_nl >= 0:
            prev_nl = buf.rfind(b"\n", 0, last_nl)
            if prev_nl >= 0 or pos == 0:
                return pos + last_nl + 1, buf[prev_nl + 1:last_nl], buf[last_nl + 1:]
        elif pos == 0:
            return 0, None, buf


# -------------------------------------------------------------- async writer
_STOP = object()


class _FlushMark:
    __slots__ = ("done",)

    def __init__(self):
        self.done = threading.Event()


class AsyncEventLog:
    """append() copies the data, reads the wall clock and enqueues; a
    background thread writes, in enqueue order. It never blocks on the disk:
    if more than queue_len_max records are waiting, further ones are counted
    and dropped, and an "overflow" record with that count is written once the
    queue drains. If writing fails (disk full), later append/flush/close raise
    EventLogError. Other keywords go to EventLog (clock_wall, fsync_period_s)."""

    def __init__(self, path: str, *, queue_len_max: int = QUEUE_LEN_MAX, **kw):
        if queue_len_max < 1:
            raise ValueError("queue_len_max must be >= 1")
        self._log = EventLog(path, **kw)
        self._clock_wall = self._log._clock_wall
        self.queue_len_max = queue_len_max
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._dropped = 0               # overflowed, not yet reported (guarded by _lock)
        self.dropped_total = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gridplc-eventlog", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def at_exit():                  # a forgotten close() still writes the queue out
            s = ref()
            if s is not None:
                s._close_quietly()
        self._atexit = at_exit
        atexit.register(at_exit)

    @property
    def path(self) -> str:
        return self._log.path

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record written (call flush() first)."""
        return self._log.head

    def append(self, kind: str, data: dict | None = None, *, scan: int = 0, t_ns: int = 0) -> None:
        kind = _check_kind(kind)
        scan = _check_int("scan", scan)
        t_ns = _check_int("t_ns", t_ns)
        stored = _to_stored({} if data is None else data)
        if not isinstance(stored, dict):
            raise TypeError("event log: data must be a dict")
        with self._lock:
            self._raise_if_unusable()
            dt = self._clock_wall()
            if not isinstance(dt, datetime) or dt.utcoffset() is None:
                raise ValueError(f"event log wall clock must return an aware datetime, got {dt!r}")
            if self._q.qsize() >= self.queue_len_max:
                self._dropped += 1
                self.dropped_total += 1
                return
            self._q.put((kind, stored, scan, t_ns, dt))

    def flush(self) -> None:
        """Blocks until every record enqueued before the call is written and flushed."""
        with self._lock:
            self._raise_if_unusable()
            mark = _FlushMark()
            self._q.put(mark)
        mark.done.wait()
        if self.error is not None:
            raise EventLogError(f"{self.path}: writing the event log failed: {self.error!r}") \
                from self.error

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._q.put(_STOP)
        self._thread.join()
        atexit.unregister(self._atexit)
        try:
            self._log.close()
        finally:
            if self.error is not None:
                raise EventLogError(f"{self.path}: writing the event log failed: "
                                    f"{self.error!r}") from self.error

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception:               # at interpreter exit there is no one to tell
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _raise_if_unusable(self) -> None:
        if self._closed:
            raise EventLogError(f"{self.path}: the event log is closed")
        if self.error is not None:
            raise EventLogError(f"{self.path}: writing the event log failed: {self.error!r}") \
                from self.error

    # ------------------------------------------------------- the writer
    def _run(self) -> None:
        log, q = self._log, self._q
        while True:
            timeout = None if self.error is not None else log._fsync_due_in_s()
            try:
                item = q.get(timeout=timeout)
            except queue.Empty:         # idle with unsynced records: fsync is due
                self._guarded(log.sync)
                continue
            if item is _STOP:
                self._guarded(self._end_of_burst)
                return
            if isinstance(item, _FlushMark):
                self._guarded(self._end_of_burst)
                item.done.set()
                continue
            self._guarded(self._write_item, item)
            if q.empty():               # end of a burst: one flush for all of it
                self._guarded(self._end_of_burst)

    def _write_item(self, item) -> None:
        kind, stored, scan, t_ns, dt = item
        with self._log._lock:
            self._log._write(kind, stored, scan, t_ns, _format_wall(dt), flush=False)

    def _end_of_burst(self) -> None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        log = self._log
        with log._lock:
            if dropped:
                wall = _format_wall(self._clock_wall())
                log._write("overflow", {"dropped": dropped, "queue_len_max": self.queue_len_max},
                           0, 0, wall, flush=False)
            if not log._closed:
                log._f.flush()
                log._sync_if_due()

    def _guarded(self, fn, *args) -> None:
        if self.error is not None:
            return
        try:
            fn(*args)
        except BaseException as e:      # keep draining so flush() waiters wake up
            self.error = e


# -------------------------------------------------------------------- reading
def _read_lines(path: str):
    """-> ([(line number, raw bytes without newline)], torn tail bytes or None)."""
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(b"\n")
    torn = parts.pop()                  # b"" when the file ends with a newline
    return list(enumerate(parts, 1)), (torn or None)


def read_log(path: str) -> list[dict]:
    """Every complete record, floats decoded ({"$float": "nan"} -> nan). A torn
    last line (no newline yet) is not a record and is skipped. Does not check
    the chain (verify_log does). EventLogError on a line that is not JSON."""
    out = []
    lines, _torn = _read_lines(path)
    for lineno, raw in lines:
        try:
            obj = json.loads(raw.decode("utf-8"), object_hook=_decode_hook)
        except ValueError as e:         # includes UnicodeDecodeError
            raise EventLogError(f"{path}:{lineno}: not a JSON record ({e})") from None
        if not isinstance(obj, dict):
            raise EventLogError(f"{path}:{lineno}: not a JSON object")
        out.append(obj)
    return out


@dataclass
class VerifyResult:
    ok: bool
    records: int                        # records checked good (all of them when ok)
    first_bad: int | None               # 1-based line number of the first bad line
    reason: str
    head_seq: int | None = None         # the last good record, to compare with an anchor
    head_hash: str | None = None


def verify_log(path: str) -> VerifyResult:
    """Checks every line: JSON, structure, its own hash, seq continuing, prev
    linking to the line before. Stops at the first bad line. An empty file is
    a valid empty log. Removal of records from the end cannot be detected
    here (see the module docstring). OSError if the file cannot be read."""
    lines, torn = _read_lines(path)
    expected_seq, prev_hash, good = 0, GENESIS_PREV, 0
    head_seq = None

    def bad(lineno, reason):
        return VerifyResult(False, good, lineno, reason, head_seq, prev_hash if good else None)

    for lineno, raw in lines:
        obj, why = _parse_line(raw)
        if obj is None:
            return bad(lineno, why)
        if not _hash_ok(obj):
            return bad(lineno, "hash mismatch: the record was altered after it was written")
        seq = obj["seq"]
        if seq > expected_seq:
            return bad(lineno, f"seq gap: expected {expected_seq}, found {seq} "
                               f"(a record deleted or moved)")
        if seq < expected_seq:
            return bad(lineno, f"seq out of order: expected {expected_seq}, found {seq} "
                               f"(records reordered, duplicated or inserted)")
        if obj["prev"] != prev_hash:
            where = "64 zeros for the first record" if lineno == 1 else \
                f"the hash of line {lineno - 1}"
            return bad(lineno, f"prev does not match {where} (a record inserted or replaced)")
        expected_seq, prev_hash, good, head_seq = seq + 1, obj["hash"], good + 1, seq
    if torn is not None:
        return bad(len(lines) + 1, "torn last line")
    return VerifyResult(True, good, None, "chain intact", head_seq, prev_hash if good else None)


# -------------------------------------------------------------------- filters
def _matches(rec: Mapping, kinds, since_ns, until_ns, since_wall, until_wall) -> bool:
    if kinds is not None and rec.get("kind") not in kinds:
        return False
    if since_ns is not None or until_ns is not None:
        t = rec.get("t_ns")
        if type(t) is not int:
            return False
        if since_ns is not None and t < since_ns:
            return False
        if until_ns is not None and t > until_ns:
            return False
    if since_wall is not None or until_wall is not None:
        w = parse_wall(rec.get("wall"))
        if w is None:
            return False
        if since_wall is not None and w < since_wall:
            return False
        if until_wall is not None and w > until_wall:
            return False
    return True


def _wall_bound(value, name):
    if value is None:
        return None
    w = parse_wall(value)
    if w is None:
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 time")
    return w


def filter_records(records, *, kinds: set[str] | None = None, since_ns: int | None = None,
                   until_ns: int | None = None, since_wall=None, until_wall=None) -> list[dict]:
    """Records matching every given condition; bounds are inclusive. since_ns/
    until_ns compare with t_ns (latched time: it restarts with each run, so a
    log spanning several runs matches in each). since_wall/until_wall: an
    aware datetime or ISO 8601 text (no offset = UTC), compared with `wall`."""
    kinds = None if kinds is None else set(kinds)
    sw = _wall_bound(since_wall, "since_wall")
    uw = _wall_bound(until_wall, "until_wall")
    return [r for r in records if _matches(r, kinds, since_ns, until_ns, sw, uw)]
