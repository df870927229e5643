"""The RETAIN / PERSISTENT store: retained variables survive a kill at any instant.

The store knows nothing of the compiler. It keeps a flat mapping of tag paths
(``"Main.energy"``) to a :class:`RetainEntry` (type signature, value) in one
JSON file, written atomically: the new contents go to a temporary file in the
same directory, which is flushed and fsync'd, then ``os.replace``'d onto the
store path, and the directory is fsync'd so the rename itself is durable. A
reader therefore sees either the complete old file or the complete new one,
whenever the writer dies.

File layout (one line of ASCII JSON)::

    {"format":"gridplc-retain","version":1,"sha256":"<hex>",
     "payload":{"program_hash":"...","scan":N,"entries":{PATH:{"type":T,"value":V},...}}}

``sha256`` is the digest of the canonical payload text: ``json.dumps(payload,
separators=(",", ":"), ensure_ascii=True, allow_nan=False)`` with keys in the
order written (JSON objects keep their order when parsed, so a reader re-dumps
what it parsed and compares digests; a flipped byte, a truncation or a
duplicated key all show up as a mismatch or a parse error, never as data).

Values are JSON values with two escapes, so every value round-trips exactly:

- a float that is NaN or infinite is written ``{"$f64":"<16 hex digits>"}``
  (its IEEE binary64 bit pattern, so the sign and payload of a NaN survive);
  finite floats are written with ``repr``, which round-trips exactly (``-0.0``
  included), and always contain ``.`` or ``e``, so they read back as floats;
- a struct (dict) field name starting with ``$`` is written with one more
  ``$`` in front, so no field name can be mistaken for an escape.

:class:`RetainWriter` takes snapshots from the scan thread (``offer`` only
swaps a reference) and writes them from a background thread at most once per
period, so the scan never waits on the disk.
"""
from __future__ import annotations

import hashlib
import json
import json.encoder
import logging
import math
import os
import re
import stat
import struct
import tempfile
import threading
import time
from dataclasses import dataclass

FORMAT_NAME = "gridplc-retain"
FORMAT_VERSION = 1

COLD_HINT = "start cold (gridplc run --cold) to discard it"

_log = logging.getLogger("gridplc.retain")

_F64_KEY = "$f64"

# What json.dumps(..., ensure_ascii=True) uses for strings, floats and ints.
_quote = json.encoder.encode_basestring_ascii
_float_repr = float.__repr__
_int_repr = int.__repr__


class RetainError(Exception):
    """A retain file that cannot be used, or a snapshot that cannot be stored.

    ``path`` is the store file, ``reason`` what is wrong with it."""

    def __init__(self, path: str, reason: str, *, hint: bool = True):
        self.path = path
        self.reason = reason
        msg = f"retain file {path}: {reason}"
        if hint:
            msg += f"; its retained values cannot be trusted. Restore the file from a backup, or {COLD_HINT}"
        super().__init__(msg)


@dataclass(frozen=True)
class RetainEntry:
    type: str          # type signature: "REAL", "ARRAY[1..8] OF REAL", "STRING(20)", "Mode", ...
    value: object      # bool, int, float, str, list (arrays, possibly nested), dict (structs)


@dataclass
class LoadedRetain:
    entries: dict[str, RetainEntry]
    program_hash: str
    scan: int


# --------------------------------------------------------------------------- values


class _Unstorable(Exception):
    pass


def _encode_value(v):
    t = type(v)
    if t is float:
        if v - v == 0.0:            # finite (inf - inf and nan - nan are nan)
            return v
        return {_F64_KEY: struct.pack(">d", v).hex()}
    if t is int or t is bool or t is str:
        return v
    if t is list or t is tuple:
        return [_encode_value(x) for x in v]
    if t is dict:
        out = {}
        for k, x in v.items():
            if type(k) is not str:
                raise _Unstorable(f"struct field name {k!r} is not a string")
            out["$" + k if k.startswith("$") else k] = _encode_value(x)
        return out
    # subclasses (IntEnum, numpy.float64, str subclasses) and scalars with .item() (numpy)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return _encode_value(float(v))
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_encode_value(x) for x in v]
    if isinstance(v, dict):
        return _encode_value(dict(v))
    item = getattr(v, "item", None)
    if callable(item):
        try:
            x = item()
        except Exception:  # noqa: BLE001 - not a scalar after all
            x = v
        if x is not v and type(x) in (bool, int, float, str):
            return _encode_value(x)
    raise _Unstorable(f"a value of type {type(v).__name__} ({v!r:.60}) is not storable")


class _BadValue(Exception):
    pass


def _decode_value(v):
    t = type(v)
    if t is list:
        return [_decode_value(x) for x in v]
    if t is dict:
        if _F64_KEY in v:
            h = v[_F64_KEY]
            if len(v) != 1 or type(h) is not str or len(h) != 16:
                raise _BadValue(f"malformed {_F64_KEY} escape {v!r:.80}")
            try:
                f = struct.unpack(">d", bytes.fromhex(h))[0]
            except ValueError:
                raise _BadValue(f"malformed {_F64_KEY} escape {v!r:.80}") from None
            if math.isfinite(f):
                raise _BadValue(f"{_F64_KEY} escape {h} holds a finite number")
            return f
        out = {}
        for k, x in v.items():
            if k.startswith("$"):
                if not k.startswith("$$"):
                    raise _BadValue(f"unknown escape {k!r}")
                k = k[1:]
            out[k] = _decode_value(x)
        return out
    if t is float:
        if v - v != 0.0:
            raise _BadValue("a non-finite number outside a $f64 escape")
        return v
    return v        # bool, int, str (None is rejected by the entry check)


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _reject_constant(name):
    raise ValueError(f"{name} is not valid in a retain file")


# --------------------------------------------------------------------------- types

_SPACE_AROUND = re.compile(r"\s*([\[\](),.:;=*])\s*")
_SPACES = re.compile(r"\s+")


def normalize_type(sig: str) -> str:
    """A type signature compared as ST compares it: case-insensitive, and
    insensitive to spacing around punctuation (``array [1..8] of real`` is
    ``ARRAY[1..8] OF REAL``)."""
    s = _SPACES.sub(" ", sig.strip().upper())
    return _SPACE_AROUND.sub(r"\1", s)


# --------------------------------------------------------------------------- store


class RetainStore:
    """One retain file. ``save`` replaces it atomically; ``load`` verifies it."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self._dir = os.path.dirname(os.path.abspath(self.path)) or "."
        self._base = os.path.basename(self.path)
        # temp names carry the writer's pid, so stale ones from a killed
        # process can be told from a live writer's: .<base>.<pid>.<random>.tmp
        self._tmp_prefix = f".{self._base}."
        self._lock = threading.Lock()
        self._swept = False

    # ---- encoding (separate so RetainWriter can compare snapshots cheaply)

    def encode_entries(self, entries: dict[str, RetainEntry]) -> str:
        """The canonical JSON text of ``entries`` (as it appears in the file).

        The same text as ``json.dumps`` of the encoded mapping (the reader
        checks it that way), built entry by entry: scalars, the bulk of any
        program, are formatted directly, which allocates no containers (little
        work for the garbage collector) and leaves no long C call holding the
        GIL, so the scan thread keeps its timing while this runs in the writer."""
        if not isinstance(entries, dict):
            raise RetainError(self.path, f"entries must be a dict, not {type(entries).__name__}", hint=False)
        parts = []
        append = parts.append
        types: dict[str, str] = {}
        quote = _quote
        for p, e in entries.items():
            if type(p) is not str or not p:
                raise RetainError(self.path, f"cannot store entry {p!r}: a path must be a non-empty string", hint=False)
            if type(e) is not RetainEntry and not isinstance(e, RetainEntry):
                raise RetainError(self.path, f"cannot store {p!r}: {type(e).__name__} is not a RetainEntry", hint=False)
            t = e.type
            tq = types.get(t) if type(t) is str else None
            if tq is None:
                if not isinstance(t, str) or not t:
                    raise RetainError(self.path, f"cannot store {p!r}: its type signature must be a non-empty string",
                                      hint=False)
                tq = quote(str(t))
                if type(t) is str:
                    types[t] = tq
            v = e.value
            vt = type(v)
            try:
                if vt is float:
                    vs = _float_repr(v) if v - v == 0.0 else _dumps(_encode_value(v))
                elif vt is bool:
                    vs = "true" if v else "false"
                elif vt is int:
                    vs = _int_repr(v)
                elif vt is str:
                    vs = quote(v)
                else:
                    vs = _dumps(_encode_value(v))
            except _Unstorable as ex:
                raise RetainError(self.path, f"cannot store {p!r}: {ex}", hint=False) from None
            except (ValueError, RecursionError) as ex:      # an int too long to print, nesting too deep
                raise RetainError(self.path, f"cannot store {p!r}: {ex}", hint=False) from None
            append(f'{quote(p)}:{{"type":{tq},"value":{vs}}}')
        return "{" + ",".join(parts) + "}"

    def _document(self, entries_text: str, program_hash: str, scan: int) -> bytes:
        if not isinstance(program_hash, str):
            raise RetainError(self.path, f"program_hash must be a string, not {type(program_hash).__name__}", hint=False)
        if type(scan) is not int:
            if isinstance(scan, int) and not isinstance(scan, bool):
                scan = int(scan)
            else:
                raise RetainError(self.path, f"scan must be an integer, not {type(scan).__name__}", hint=False)
        payload = '{"program_hash":' + _dumps(program_hash) + ',"scan":' + str(scan) + ',"entries":' + entries_text + "}"
        pb = payload.encode("ascii")
        digest = hashlib.sha256(pb).hexdigest()
        head = '{"format":"%s","version":%d,"sha256":"%s","payload":' % (FORMAT_NAME, FORMAT_VERSION, digest)
        return head.encode("ascii") + pb + b"}\n"

    # ---- save

    def save(self, entries: dict[str, RetainEntry], *, program_hash: str, scan: int) -> None:
        """Replace the file with these entries, atomically and durably."""
        self.save_encoded(self.encode_entries(entries), program_hash=program_hash, scan=scan)

    def save_encoded(self, entries_text: str, *, program_hash: str, scan: int) -> None:
        """``save`` for entries already passed through :meth:`encode_entries`."""
        data = self._document(entries_text, program_hash, scan)
        with self._lock:
            if not self._swept:
                self._swept = True
                self._sweep_stale_temps()
            self._write_atomically(data)

    def _write_atomically(self, data: bytes) -> None:
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except FileNotFoundError:
            mode = 0o644
        except OSError as ex:
            raise RetainError(self.path, f"cannot write: {ex.strerror or ex}", hint=False) from None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{self._tmp_prefix}{os.getpid()}.", suffix=".tmp", dir=self._dir)
        except OSError as ex:
            raise RetainError(self.path, f"cannot create a temporary file in {self._dir}: {ex.strerror or ex}",
                              hint=False) from None
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException as ex:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(ex, OSError):
                raise RetainError(self.path, f"cannot write: {ex.strerror or ex}", hint=False) from None
            raise
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
        try:
            dfd = os.open(self._dir, flags)
        except OSError:
            return          # platforms where a directory cannot be opened (Windows)
        try:
            os.fsync(dfd)
        except OSError:
            pass            # some filesystems refuse fsync on a directory
        finally:
            os.close(dfd)

    def _sweep_stale_temps(self) -> None:
        """Remove temp files left by writers that were killed mid-save."""
        try:
            names = os.listdir(self._dir)
        except OSError:
            return
        me = os.getpid()
        for name in names:
            if not name.startswith(self._tmp_prefix):
                continue
            rest = name[len(self._tmp_prefix):].split(".")      # <pid>.<random>.tmp, exactly
            if len(rest) != 3 or rest[2] != "tmp" or not rest[0].isdigit():
                continue
            pid = int(rest[0])
            if pid == me or _pid_alive(pid):
                continue    # ours (this save holds the lock), or a live writer's (or a reused pid): leave it
            try:
                os.unlink(os.path.join(self._dir, name))
            except OSError:
                pass

    # ---- load

    def load(self) -> LoadedRetain | None:
        """The stored snapshot, or None when there is no file.

        Raises RetainError for a file that is empty, truncated, not JSON, of an
        unknown format or version, fails its checksum, or is malformed."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise RetainError(self.path, "is a directory, not a retain file") from None
        except OSError as ex:
            raise RetainError(self.path, f"cannot be read: {ex.strerror or ex}") from None
        return self._parse(data)

    def _parse(self, data: bytes) -> LoadedRetain:
        bad = lambda reason: RetainError(self.path, reason)  # noqa: E731
        if not data.strip():
            raise bad("is empty (0 bytes)" if not data else f"is blank ({len(data)} bytes of whitespace)")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as ex:
            raise bad(f"is corrupt: byte 0x{data[ex.start]:02x} at offset {ex.start} "
                      f"cannot occur in a retain file") from None
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as ex:
            stripped = text.rstrip()
            if stripped.startswith("{") and (ex.pos >= len(stripped) or not stripped.endswith("}")):
                raise bad(f"is truncated: it ends after {len(data)} bytes, in the middle of the data") from None
            raise bad(f"is not valid JSON (line {ex.lineno} column {ex.colno}: {ex.msg})") from None
        except (ValueError, RecursionError) as ex:
            raise bad(f"is corrupt: {ex}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise bad(f"is not a gridplc retain file (no \"format\": \"{FORMAT_NAME}\" header)")
        version = doc.get("version")
        if type(version) is not int:
            raise bad(f"has no valid format version (found {version!r:.40})")
        if version != FORMAT_VERSION:
            newer = " (written by a newer gridplc)" if version > FORMAT_VERSION else ""
            raise bad(f"has format version {version}{newer}; this gridplc reads version {FORMAT_VERSION}")
        stored = doc.get("sha256")
        payload = doc.get("payload")
        if type(stored) is not str or not isinstance(payload, dict):
            raise bad("is corrupt: the sha256 or payload field is missing")
        extra = set(doc) - {"format", "version", "sha256", "payload"}
        if extra:
            raise bad(f"is corrupt: unexpected field(s) {sorted(extra)}")
        try:
            computed = hashlib.sha256(_dumps(payload).encode("ascii")).hexdigest()
        except (ValueError, RecursionError) as ex:
            raise bad(f"is corrupt: {ex}") from None
        if computed != stored:
            raise bad(f"is corrupt: checksum mismatch (stored sha256 {stored[:16]}..., "
                      f"contents hash to {computed[:16]}...)")
        # The checksum holds, so from here on a problem is a writer bug or a
        # hand edit, not bit rot; still refuse anything that is not well formed.
        program_hash = payload.get("program_hash")
        scan = payload.get("scan")
        raw = payload.get("entries")
        if type(program_hash) is not str or type(scan) is not int or not isinstance(raw, dict) \
                or set(payload) != {"program_hash", "scan", "entries"}:
            raise bad("is malformed: the payload needs exactly program_hash (string), scan (integer), entries (object)")
        entries = {}
        for p, e in raw.items():
            if not isinstance(e, dict) or set(e) != {"type", "value"} or type(e["type"]) is not str \
                    or e["value"] is None:
                raise bad(f"is malformed: entry {p!r:.80} is not {{\"type\": ..., \"value\": ...}}")
            try:
                value = _decode_value(e["value"])
            except _BadValue as ex:
                raise bad(f"is malformed: entry {p!r:.80}: {ex}") from None
            entries[p] = RetainEntry(e["type"], value)
        return LoadedRetain(entries=entries, program_hash=program_hash, scan=scan)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True         # cannot tell: keep the file
    return True


# --------------------------------------------------------------------------- matching


def match_declarations(stored: dict[str, RetainEntry], declared: dict[str, str]
                       ) -> tuple[dict[str, RetainEntry], list[str]]:
    """Which stored entries the current program can take back.

    ``declared`` maps each retained variable the program declares to its type
    signature. Returns the entries to restore (keyed by the declared path, with
    the declared type signature) and report lines for everything not restored.
    Paths and type signatures compare as ST names do, ignoring case (and, for
    types, spacing around punctuation)."""
    restore: dict[str, RetainEntry] = {}
    report: list[str] = []
    declared_by_key: dict[str, str] = {}
    for path in declared:
        declared_by_key.setdefault(path.casefold(), path)
    matched: set[str] = set()
    for spath, entry in stored.items():
        dpath = spath if spath in declared else declared_by_key.get(spath.casefold())
        if dpath is None or dpath in matched:
            report.append(f"'{spath}' is no longer declared (renamed or removed): not restored")
            continue
        matched.add(dpath)
        dtype = declared[dpath]
        if normalize_type(entry.type) != normalize_type(dtype):
            report.append(f"'{spath}' was {entry.type}, is now {dtype}: not restored")
            continue
        restore[dpath] = RetainEntry(dtype, entry.value)
    for dpath in declared:
        if dpath not in matched:
            report.append(f"'{dpath}' has no stored value: starts from its initial value")
    return restore, report


# --------------------------------------------------------------------------- writer


class RetainWriter:
    """Writes snapshots in a background thread at a bounded rate, so the scan
    thread never waits on the disk.

    ``offer`` hands over a snapshot: the caller must not mutate the dict or
    its values afterwards (build a fresh one per offer). The thread writes the
    latest offered snapshot at most once per ``period_s``, and only when
    something changed since the last write: a snapshot whose entries and
    program hash equal what is on disk is not written again (a new scan number
    alone does not wear the disk; ``flush`` writes it).

    Stats: ``writes``, ``last_write_s`` (seconds the last write took, encoding
    included), ``max_write_s``, ``skipped`` (offers found unchanged),
    ``errors`` and ``last_error``."""

    def __init__(self, store: RetainStore, period_s: float = 1.0):
        if not period_s > 0:
            raise ValueError("period_s must be positive")
        self.store = store
        self.period_s = float(period_s)
        self.writes = 0
        self.errors = 0
        self.skipped = 0
        self.last_write_s = 0.0
        self.max_write_s = 0.0
        self.last_error: Exception | None = None
        self._latest = None                 # (entries, program_hash, scan), replaced whole by offer
        self._handled = None                # the snapshot object last written or found unchanged
        self._on_disk = None                # (program_hash, scan, entries_text) last written by us
        self._io = threading.Lock()         # serialises writes (thread and flush)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._failing = False
        self._last_attempt = -1e18
        self._thread = threading.Thread(target=self._run, name="gridplc-retain", daemon=True)
        self._thread.start()

    def offer(self, entries: dict[str, RetainEntry], *, program_hash: str, scan: int) -> None:
        """Called from the scan thread: keeps a reference, never touches the disk."""
        if self._closed:
            raise RuntimeError("RetainWriter.offer after close()")
        self._latest = (entries, program_hash, scan)
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> None:
        """Write the latest offered snapshot now, if it is not on disk yet (blocking).
        Raises RetainError if the write fails."""
        self._write_latest(final=True)

    def close(self) -> None:
        """Flush, then stop the thread. Further offers raise."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._stop.set()
            self._wake.set()
            self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            delay = self._last_attempt + self.period_s - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            self._wake.clear()
            try:
                self._write_latest(final=False)
            except RetainError:
                pass                        # counted and logged; retried after the period
            except Exception:               # noqa: BLE001 - the thread must survive anything
                _log.exception("retain writer: unexpected error")

    def _write_latest(self, *, final: bool) -> None:
        with self._io:
            snap = self._latest
            if snap is None:
                return
            if snap is self._handled and (not final or self._on_disk_is(snap)):
                return
            entries, program_hash, scan = snap
            t0 = time.perf_counter()
            self._last_attempt = time.monotonic()
            try:
                text = self.store.encode_entries(entries)
                disk = self._on_disk
                if disk is not None and disk[0] == program_hash and disk[2] == text \
                        and (not final or disk[1] == scan):
                    self._handled = snap
                    self.skipped += 1
                    return
                self.store.save_encoded(text, program_hash=program_hash, scan=scan)
            except Exception as ex:
                self.errors += 1
                if not self._failing or str(self.last_error) != str(ex):
                    _log.error("retain write failed (retrying every %.3g s): %s", self.period_s, ex)
                self._failing = True
                self.last_error = ex
                if not final:
                    self._wake.set()        # try again after the period
                raise
            dt = time.perf_counter() - t0
            if self._failing:
                self._failing = False
                _log.warning("retain writes work again (after %d failed)", self.errors)
            self._handled = snap
            self._on_disk = (program_hash, scan, text)
            self.writes += 1
            self.last_write_s = dt
            if dt > self.max_write_s:
                self.max_write_s = dt

    def _on_disk_is(self, snap) -> bool:
        d = self._on_disk
        return d is not None and d[0] == snap[1] and d[1] == snap[2]
