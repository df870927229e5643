"""The RETAIN store: exact round-trips, atomic replacement, corrupt files
refused with a clear message, declaration matching, the rate-bounded writer,
and a child process killed with SIGKILL at random instants, hundreds of times."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import struct
import subprocess
import sys
import time

import pytest

from runtime.retain import (COLD_HINT, LoadedRetain, RetainEntry, RetainError, RetainStore, RetainWriter,
                            match_declarations)
from tests.retain_writer_child import PROGRAM_HASH, snapshot

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "retain_writer_child.py")


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x: float) -> str:
    return struct.pack(">d", x).hex()


def same(a, b) -> bool:
    """Equal in type and value; floats bit for bit (so -0.0 != 0.0, NaN == NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return bits(a) == bits(b)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def same_entries(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(a[k].type == b[k].type and same(a[k].value, b[k].value) for k in a)


def temps(d) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.endswith(".tmp"))


NAN_PAYLOAD = struct.unpack(">d", bytes.fromhex("7ff8000000c0ffee"))[0]
NEG_NAN = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]

VALUES = {
    "Main.t": RetainEntry("BOOL", True),
    "Main.f": RetainEntry("BOOL", False),
    "Main.zero": RetainEntry("INT", 0),
    "Main.neg": RetainEntry("INT", -1),
    "Main.lmax": RetainEntry("LINT", 2**63 - 1),
    "Main.lmin": RetainEntry("LINT", -2**63),
    "Main.ulmax": RetainEntry("ULINT", 2**64 - 1),
    "Main.r": RetainEntry("LREAL", 0.1),
    "Main.r32": RetainEntry("REAL", f32(3.65)),
    "Main.r32max": RetainEntry("REAL", f32(3.4028234663852886e38)),
    "Main.r32tiny": RetainEntry("REAL", f32(1.401298464324817e-45)),
    "Main.sub": RetainEntry("LREAL", 5e-324),
    "Main.big": RetainEntry("LREAL", 1.7976931348623157e308),
    "Main.whole": RetainEntry("LREAL", 1e16),
    "Main.one": RetainEntry("LREAL", 1.0),
    "Main.negzero": RetainEntry("REAL", -0.0),
    "Main.nan": RetainEntry("REAL", math.nan),
    "Main.nanpayload": RetainEntry("LREAL", NAN_PAYLOAD),
    "Main.negnan": RetainEntry("LREAL", NEG_NAN),
    "Main.inf": RetainEntry("REAL", math.inf),
    "Main.ninf": RetainEntry("REAL", -math.inf),
    "Main.empty": RetainEntry("STRING(20)", ""),
    "Main.uni": RetainEntry("WSTRING(40)", "Grüße ⚡ 電池 😀"),
    "Main.quotes": RetainEntry("STRING(40)", "say \"hi\" 'there' \\ $ $$ \n\t\x00\x7f"),
    "Main.surrogate": RetainEntry("WSTRING(4)", "\ud800"),
    "Main.lookalike": RetainEntry("STRING(60)", '{"$f64":"7ff8000000000000"}'),
    "Main.mode": RetainEntry("Mode", "DISCHARGE"),
    "Main.arr": RetainEntry("ARRAY[1..4] OF REAL", [1.5, -0.0, math.nan, math.inf]),
    "Main.grid": RetainEntry("ARRAY[0..1, 0..2] OF INT", [[1, 2, 3], [-4, -5, 2**63 - 1]]),
    "Main.none": RetainEntry("ARRAY[1..0] OF INT", []),
    "Main.tuple": RetainEntry("ARRAY[1..2] OF INT", [7, 8]),
    "Main.cell": RetainEntry("CellState", {"v": f32(3.3), "ok": True, "name": "c1",
                                           "hist": [0.0, math.nan], "inner": {"x": -0.0, "ys": [[1], [2, 3]]}}),
    "Main.dollar": RetainEntry("Odd", {"$f64": 1.0, "$$x": "a", "$": [math.inf], "plain": {"$f64": "y"}}),
    "Main.structs": RetainEntry("ARRAY[1..2] OF Pair", [{"a": 1, "b": 2.5}, {"a": -1, "b": -math.inf}]),
    "Main.µ.ü": RetainEntry("INT", 3),
}


# --------------------------------------------------------------------------- round trip


def test_round_trip_of_every_value_kind(tmp_path):
    path = tmp_path / "plc.retain"
    store = RetainStore(str(path))
    assert store.load() is None
    store.save(VALUES, program_hash="abc123", scan=2**63 - 1)
    got = store.load()
    assert isinstance(got, LoadedRetain)
    assert got.program_hash == "abc123" and got.scan == 2**63 - 1
    assert same_entries(got.entries, VALUES), [k for k in VALUES if not same(VALUES[k].value, got.entries[k].value)]
    # spot checks that `same` is as strict as it should be
    assert math.copysign(1.0, got.entries["Main.negzero"].value) == -1.0
    assert bits(got.entries["Main.nanpayload"].value) == "7ff8000000c0ffee"
    assert bits(got.entries["Main.negnan"].value) == "fff8000000000000"
    assert type(got.entries["Main.one"].value) is float and type(got.entries["Main.lmax"].value) is int
    assert type(got.entries["Main.t"].value) is bool
    # a fresh store object reads the same file identically, and saving what was
    # loaded writes the same bytes
    again = RetainStore(str(path)).load()
    assert same_entries(again.entries, got.entries)
    first = path.read_bytes()
    store.save(got.entries, program_hash=got.program_hash, scan=got.scan)
    assert path.read_bytes() == first


def test_tuples_and_subclasses_store_as_plain_values(tmp_path):
    import enum

    class Mode(enum.IntEnum):
        IDLE = 0
        RUN = 2

    class Name(str):
        pass

    store = RetainStore(str(tmp_path / "r.json"))
    store.save({"A.t": RetainEntry("ARRAY[1..2] OF INT", (1, (2, 3))),
                "A.m": RetainEntry("Mode", Mode.RUN),
                "A.s": RetainEntry("STRING", Name("x"))}, program_hash="h", scan=1)
    got = store.load().entries
    assert same(got["A.t"].value, [1, [2, 3]])
    assert same(got["A.m"].value, 2) and same(got["A.s"].value, "x")


def test_file_is_ascii_json_with_version_hash_scan_and_checksum(tmp_path):
    import hashlib
    path = tmp_path / "r.json"
    RetainStore(str(path)).save({"Main.x": RetainEntry("REAL", math.nan)}, program_hash="ph", scan=42)
    raw = path.read_bytes()
    raw.decode("ascii")
    doc = json.loads(raw)
    assert doc["format"] == "gridplc-retain" and doc["version"] == 1
    assert doc["payload"]["program_hash"] == "ph" and doc["payload"]["scan"] == 42
    assert doc["payload"]["entries"]["Main.x"] == {"type": "REAL", "value": {"$f64": bits(math.nan)}}
    canonical = json.dumps(doc["payload"], separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    assert doc["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_entry_text_is_canonical_json(tmp_path):
    """encode_entries formats scalars itself; its text must be exactly what
    json.dumps gives for the same data, as the reader's checksum relies on it."""
    store = RetainStore(str(tmp_path / "r.json"))
    many = {f"Main.v{i}": RetainEntry(["REAL", "INT", "BOOL"][i % 3], [i / 3, i * -7, i % 2 == 0][i % 3])
            for i in range(1000)}
    for entries in (VALUES, many, {}):
        text = store.encode_entries(entries)
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        store.save(entries, program_hash="h", scan=0)
        assert same_entries(store.load().entries, entries)


@pytest.mark.parametrize("bad, what", [
    ({"Main.x": RetainEntry("SET", {1, 2})}, "set"),
    ({"Main.x": RetainEntry("REF", None)}, "NoneType"),
    ({"Main.x": RetainEntry("S", {1: 2})}, "field name"),
    ({"Main.x": ("REAL", 1.0)}, "RetainEntry"),
    ({"": RetainEntry("REAL", 1.0)}, "path"),
    ({"Main.x": RetainEntry("", 1.0)}, "type signature"),
])
def test_unstorable_snapshot_is_refused_and_the_old_file_kept(tmp_path, bad, what):
    path = tmp_path / "r.json"
    store = RetainStore(str(path))
    store.save({"Main.x": RetainEntry("REAL", 1.0)}, program_hash="h", scan=1)
    before = path.read_bytes()
    with pytest.raises(RetainError) as ei:
        store.save(bad, program_hash="h", scan=2)
    assert str(path) in str(ei.value) and what in str(ei.value)
    assert path.read_bytes() == before and temps(tmp_path) == []


# --------------------------------------------------------------------------- atomicity


def test_save_leaves_no_temp_files_and_replaces_whole(tmp_path):
    path = tmp_path / "r.json"
    store = RetainStore(str(path))
    a = {f"Main.a{i}": RetainEntry("INT", i) for i in range(50)}
    b = {f"Main.b{i}": RetainEntry("REAL", i + 0.5) for i in range(3)}
    store.save(a, program_hash="A", scan=1)
    assert os.listdir(tmp_path) == ["r.json"]
    inode = os.stat(path).st_ino
    store.save(b, program_hash="B", scan=2)
    assert os.listdir(tmp_path) == ["r.json"]
    got = store.load()
    assert got.program_hash == "B" and same_entries(got.entries, b)     # nothing of A is left over
    assert os.stat(path).st_ino != inode          # a new file renamed into place, not rewritten in place


def test_existing_file_mode_is_kept(tmp_path):
    path = tmp_path / "r.json"
    store = RetainStore(str(path))
    store.save({}, program_hash="h", scan=0)
    os.chmod(path, 0o600)
    store.save({}, program_hash="h", scan=1)
    assert os.stat(path).st_mode & 0o777 == 0o600


FSIZE_CHILD = r"""
import os, resource, signal, sys
sys.path.insert(0, sys.argv[2])
from runtime.retain import RetainEntry, RetainError, RetainStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an over-limit write then fails with EFBIG
store = RetainStore(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
try:
    store.save({f"Main.v{i}": RetainEntry("LREAL", i / 7) for i in range(5000)}, program_hash="B", scan=2)
except RetainError as ex:
    print("refused:", ex)
else:
    print("saved")
"""


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path):
    """A real I/O failure part way through the temp file (RLIMIT_FSIZE: the
    write returns EFBIG after 20 kB of a ~250 kB file)."""
    path = tmp_path / "r.json"
    old = {"Main.x": RetainEntry("REAL", 1.25)}
    RetainStore(str(path)).save(old, program_hash="A", scan=1)
    before = path.read_bytes()
    r = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(path), os.path.dirname(HERE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused:") and str(path) in r.stdout and "cannot write" in r.stdout, r.stdout
    assert path.read_bytes() == before and temps(tmp_path) == []
    assert same_entries(RetainStore(str(path)).load().entries, old)


def test_stale_temp_files_of_dead_writers_are_swept(tmp_path):
    path = tmp_path / "r.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".r.json.{dead.pid}.abc123.tmp"
    stale.write_bytes(b'{"format":"gridplc-re')
    live = tmp_path / f".r.json.{os.getppid()}.def456.tmp"     # a live process's: not ours to delete
    live.write_bytes(b"")
    unrelated = tmp_path / ".other.json.1.x.tmp"
    unrelated.write_bytes(b"")
    other_store = tmp_path / f".r.json.{dead.pid}.{os.getpid()}.ghi789.tmp"   # the temp of a store "r.json.<n>"
    other_store.write_bytes(b"")
    RetainStore(str(path)).save({}, program_hash="h", scan=0)
    assert not stale.exists() and live.exists() and unrelated.exists() and other_store.exists()


# --------------------------------------------------------------------------- corrupt files


def _good_file(tmp_path, entries=None, name="plc.retain"):
    path = tmp_path / name
    entries = entries if entries is not None else {
        "Main.soc": RetainEntry("REAL", f32(0.55)),
        "Main.count": RetainEntry("DINT", 123456),
        "Main.on": RetainEntry("BOOL", True),
        "Main.nan": RetainEntry("REAL", math.nan),
        "Main.name": RetainEntry("STRING(10)", "bay \"1\" é"),
        "Main.arr": RetainEntry("ARRAY[1..3] OF INT", [1, -2, 3]),
        "Main.cell": RetainEntry("Cell", {"v": 3.3, "$f": [0.0]}),
    }
    store = RetainStore(str(path))
    store.save(entries, program_hash="hash", scan=77)
    return path, store, entries


def _refused(store, path, *fragments) -> str:
    with pytest.raises(RetainError) as ei:
        store.load()
    msg = str(ei.value)
    assert str(path) in msg, msg
    assert COLD_HINT in msg, msg
    assert ei.value.path == str(path)
    for f in fragments:
        assert f in msg, msg
    return msg


def test_truncated_at_every_offset_is_refused(tmp_path):
    path, store, entries = _good_file(tmp_path)
    data = path.read_bytes()
    assert data.endswith(b"}\n")
    for n in range(len(data) - 1):          # everything short of the final newline
        path.write_bytes(data[:n])
        _refused(store, path, "empty" if n == 0 else "")
    path.write_bytes(data[:-1])             # only the trailing newline lost: still the whole document
    assert same_entries(store.load().entries, entries)


def test_truncated_large_file_says_truncated(tmp_path):
    entries = {f"Main.v{i}": RetainEntry("REAL", i * 0.25) for i in range(2000)}
    path, store, _ = _good_file(tmp_path, entries)
    data = path.read_bytes()
    for n in (1, 10, 50, 4096, len(data) // 2, len(data) - 3, len(data) - 2):
        path.write_bytes(data[:n])
        _refused(store, path, "truncated")


def test_flipped_byte_in_payload_is_a_checksum_mismatch(tmp_path):
    path, store, _ = _good_file(tmp_path)
    data = path.read_bytes()
    i = data.index(b"123456") + 2           # a digit of Main.count: still valid JSON
    path.write_bytes(data[:i] + b"9" + data[i + 1:])
    _refused(store, path, "checksum mismatch")
    i = data.index(b"bay") + 1              # inside a string
    path.write_bytes(data[:i] + b"e" + data[i + 1:])
    _refused(store, path, "checksum mismatch")


def test_a_bit_flip_anywhere_is_refused_or_harmless(tmp_path):
    """Every single-bit flip (bit 0 and the ASCII case bit, at every offset) is
    refused, except one that changes only the spelling, not the data: the case
    of a hex digit in a \\u escape (\\u00e9 and \\u00E9 are the same character)."""
    path, store, entries = _good_file(tmp_path)
    data = path.read_bytes()
    harmless = []
    for i in range(len(data)):
        for mask in (0x01, 0x20):
            path.write_bytes(data[:i] + bytes([data[i] ^ mask]) + data[i + 1:])
            try:
                got = store.load()
            except RetainError as ex:
                assert str(path) in str(ex) and COLD_HINT in str(ex)
                continue
            assert got.scan == 77 and same_entries(got.entries, entries), f"flip at {i} loaded different data"
            harmless.append(data[i - 5:i + 1])
    assert all(b"\\u" in h for h in harmless), harmless


def test_random_damage_never_yields_garbage(tmp_path):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path, store, entries = _good_file(tmp_path)
    data = path.read_bytes()
    for _ in range(800):
        b = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0:                                   # a few random bytes
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == 1:                                 # a block of zeros (a torn sector)
            i = rng.randrange(len(b))
            b[i:i + rng.randint(1, 64)] = bytes(min(64, len(b) - i))
        elif kind == 2:                                 # a deleted span
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 20)]
        else:                                           # a duplicated span
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 20)]
        path.write_bytes(bytes(b))
        try:
            got = store.load()
        except RetainError as ex:
            assert str(path) in str(ex) and COLD_HINT in str(ex), f"seed {seed}: {ex}"
            continue
        assert got.program_hash == "hash" and got.scan == 77 and same_entries(got.entries, entries), \
            f"seed {seed}: damaged file loaded as different data: {bytes(b)!r}"


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty"),
    (b"   \n", "blank"),
    (b"hello, world\n", "not valid JSON"),
    (b"\x00\xff\xfe garbage", "corrupt"),
    (b"[1, 2, 3]\n", "not a gridplc retain file"),
    (b'{"some": "other json"}\n', "not a gridplc retain file"),
    (b'{"format": "gridplc-retain", "version": 1, "sha256": "00", "payload": {"x": NaN}}', "corrupt"),
])
def test_not_a_retain_file(tmp_path, content, fragment):
    path = tmp_path / "plc.retain"
    path.write_bytes(content)
    _refused(RetainStore(str(path)), path, fragment)


def _rewrite(path, payload=None, **head):
    """Rewrite the file with a correct checksum over whatever payload is given."""
    import hashlib
    doc = json.loads(path.read_bytes())
    if payload is not None:
        doc["payload"] = payload
    doc["sha256"] = hashlib.sha256(json.dumps(doc["payload"], separators=(",", ":"),
                                              ensure_ascii=True).encode()).hexdigest()
    doc.update(head)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("version, fragment", [
    (2, "format version 2 (written by a newer gridplc); this gridplc reads version 1"),
    (0, "format version 0"),
    ("1", "no valid format version"),
    (None, "no valid format version"),
])
def test_wrong_version(tmp_path, version, fragment):
    path, store, _ = _good_file(tmp_path)
    _rewrite(path, version=version)
    _refused(store, path, fragment)


@pytest.mark.parametrize("payload", [
    {"program_hash": "h", "scan": 1},
    {"program_hash": 5, "scan": 1, "entries": {}},
    {"program_hash": "h", "scan": 1.5, "entries": {}},
    {"program_hash": "h", "scan": 1, "entries": [], },
    {"program_hash": "h", "scan": 1, "entries": {}, "extra": 1},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": 1.0}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": "REAL"}}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": 1, "value": 1}}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": "REAL", "value": None}}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": "REAL", "value": {"$f64": "zz"}}}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": "REAL", "value": {"$f64": "3ff0000000000000"}}}},
    {"program_hash": "h", "scan": 1, "entries": {"M.x": {"type": "S", "value": {"$oops": 1}}}},
])
def test_checksummed_but_malformed_payload_is_refused(tmp_path, payload):
    path, store, _ = _good_file(tmp_path)
    _rewrite(path, payload)
    _refused(store, path, "malformed")


def test_unreadable_paths(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    _refused(RetainStore(str(d)), d, "directory")


# --------------------------------------------------------------------------- declarations


def test_match_declarations_reports_and_skips_renamed_and_retyped():
    stored = {
        "Main.x": RetainEntry("REAL", 1.5),
        "Main.kept": RetainEntry("ARRAY[1..8] OF REAL", [0.0] * 8),
        "Main.old": RetainEntry("INT", 4),
        "Main.mode": RetainEntry("Mode", "RUN"),
        "Main.s": RetainEntry("STRING(20)", "abc"),
        "Main.Case": RetainEntry("bool", True),
    }
    declared = {
        "Main.x": "INT",                          # retyped
        "Main.kept": "array [1..8] of real",      # the same type, spelled differently
        "Main.new": "INT",                        # renamed from Main.old
        "Main.mode": "Mode",
        "Main.s": "STRING(30)",                   # retyped: a different length
        "MAIN.CASE": "BOOL",                      # ST names ignore case
        "Main.y": "REAL",
    }
    restore, report = match_declarations(stored, declared)
    assert set(restore) == {"Main.kept", "Main.mode", "MAIN.CASE"}
    assert same(restore["Main.kept"].value, [0.0] * 8) and restore["Main.mode"].value == "RUN"
    assert restore["MAIN.CASE"] == RetainEntry("BOOL", True)
    assert report == [
        "'Main.x' was REAL, is now INT: not restored",
        "'Main.old' is no longer declared (renamed or removed): not restored",
        "'Main.s' was STRING(20), is now STRING(30): not restored",
        "'Main.new' has no stored value: starts from its initial value",
        "'Main.y' has no stored value: starts from its initial value",
    ]


def test_match_declarations_all_match_is_silent():
    stored = {"A.a": RetainEntry("INT", 1), "A.b": RetainEntry("Mode", "X")}
    restore, report = match_declarations(stored, {"A.a": "INT", "A.b": "Mode"})
    assert restore == stored and report == []
    assert match_declarations({}, {}) == ({}, [])


# --------------------------------------------------------------------------- writer


def _snap(k, n=20):
    return {f"Main.v{i}": RetainEntry("REAL", k + i / 8) for i in range(n)} | {"Main.k": RetainEntry("DINT", k)}


def test_writer_bounds_the_write_rate_and_flush_writes_the_last(tmp_path):
    store = RetainStore(str(tmp_path / "r.json"))
    w = RetainWriter(store, period_s=0.2)
    try:
        for k in range(1000):
            w.offer(_snap(k), program_hash="h", scan=k)
        burst_writes = w.writes
        # the same again, paced over about a second
        t0 = time.monotonic()
        for k in range(1000, 2000):
            w.offer(_snap(k), program_hash="h", scan=k)
            time.sleep(0.001)
        elapsed = time.monotonic() - t0
        paced_writes = w.writes
        assert burst_writes <= 3
        assert paced_writes <= burst_writes + elapsed / 0.2 + 2, (paced_writes, elapsed)
        w.flush()
        got = store.load()
        assert got.scan == 1999 and same_entries(got.entries, _snap(1999))
        assert w.writes <= paced_writes + 1 and w.errors == 0
        assert w.last_write_s > 0
        n = w.writes
        w.flush()                                   # nothing new: no write
        assert w.writes == n
    finally:
        w.close()
    assert temps(tmp_path) == []


def test_writer_writes_in_the_background_within_a_period(tmp_path):
    store = RetainStore(str(tmp_path / "r.json"))
    w = RetainWriter(store, period_s=0.05)
    try:
        w.offer(_snap(1), program_hash="h", scan=1)
        deadline = time.monotonic() + 10
        while w.writes < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert store.load().scan == 1
        w.offer(_snap(2), program_hash="h", scan=2)
        while w.writes < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert store.load().scan == 2
    finally:
        w.close()


def test_writer_skips_unchanged_values_and_flush_records_the_scan(tmp_path):
    store = RetainStore(str(tmp_path / "r.json"))
    w = RetainWriter(store, period_s=0.02)
    try:
        for scan in range(30):
            w.offer(_snap(5), program_hash="h", scan=scan)     # same values every scan
            time.sleep(0.005)
        time.sleep(0.1)
        assert w.writes == 1 and w.skipped >= 1
        w.flush()
        assert w.writes == 2 and store.load().scan == 29
        w.offer(_snap(5), program_hash="other", scan=30)        # a new program hash is a change
        w.flush()
        assert store.load().program_hash == "other"
    finally:
        w.close()


def test_close_flushes_and_stops(tmp_path):
    store = RetainStore(str(tmp_path / "r.json"))
    w = RetainWriter(store, period_s=60)
    w.offer(_snap(1), program_hash="h", scan=1)
    w.offer(_snap(2), program_hash="h", scan=2)         # inside the 60 s period: waits
    w.close()
    assert store.load().scan == 2
    assert not w._thread.is_alive()
    with pytest.raises(RuntimeError):
        w.offer(_snap(3), program_hash="h", scan=3)
    w.close()                                           # idempotent


def test_writer_counts_errors_and_keeps_going(tmp_path):
    store = RetainStore(str(tmp_path / "missing-dir" / "r.json"))
    w = RetainWriter(store, period_s=0.02)
    try:
        w.offer(_snap(1), program_hash="h", scan=1)
        deadline = time.monotonic() + 10
        while w.errors < 2 and time.monotonic() < deadline:     # retried after each period
            time.sleep(0.01)
        assert w.errors >= 2 and w.writes == 0
        assert isinstance(w.last_error, RetainError) and "missing-dir" in str(w.last_error)
        (tmp_path / "missing-dir").mkdir()
        w.offer(_snap(2), program_hash="h", scan=2)
        w.flush()
        assert store.load().scan == 2
    finally:
        w.close()
    w2 = RetainWriter(RetainStore(str(tmp_path / "nope" / "r.json")), period_s=60)
    w2.offer(_snap(1), program_hash="h", scan=1)
    with pytest.raises(RetainError):
        w2.close()                                      # a failed final write is not silent
    assert not w2._thread.is_alive()


def test_offer_does_not_wait_for_a_write_in_progress(tmp_path):
    """While a write of a big snapshot is in progress (it holds the write lock
    for a long time), offer() from the scan thread returns at once."""
    store = RetainStore(str(tmp_path / "r.json"))
    big = {f"Main.v{i}": RetainEntry("REAL", i / 8) for i in range(100_000)}
    w = RetainWriter(store, period_s=60)
    try:
        w.offer(big, program_hash="h", scan=1)
        deadline = time.monotonic() + 20
        while not w._io.locked() and time.monotonic() < deadline:   # the thread has started writing
            time.sleep(0.0005)
        assert w._io.locked()
        t0 = time.perf_counter()
        for k in range(2, 100):
            w.offer(_snap(k), program_hash="h", scan=k)
        took = time.perf_counter() - t0
        still_writing = w._io.locked() and w.writes == 0
        assert still_writing, "the big write finished before the offers did: make it bigger"
        w.flush()
        assert store.load().scan == 99
        print(f"98 offers during a {w.max_write_s * 1e3:.0f} ms write took {took * 1e3:.2f} ms")
    finally:
        w.close()


# --------------------------------------------------------------------------- the kill test

KILL_VALUES = 300
KILLS = 210


def _check_snapshot(got, seed, context):
    k = got.scan
    want = snapshot(k, KILL_VALUES)
    assert got.program_hash == PROGRAM_HASH, f"seed {seed} {context}"
    assert got.entries["Main.k"].value == k, f"seed {seed} {context}: Main.k disagrees with scan {k}"
    bad = [p for p in want if p not in got.entries or not same(got.entries[p].value, want[p].value)]
    assert not bad and len(got.entries) == len(want), \
        f"seed {seed} {context}: values not all from snapshot {k}: {bad[:5]}"
    return k


def test_sigkill_at_random_instants_never_loses_or_tears_the_file(tmp_path):
    seed = int(os.environ.get("RETAIN_KILL_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    path = tmp_path / "plc.retain"
    store = RetainStore(str(path))
    stats = {"kills": 0, "mid_write": 0, "unreported": 0, "before_first_save": 0}
    last = -1                                  # the last k known complete (-1: no file yet)
    t_start = time.monotonic()
    for it in range(KILLS):
        ctx = f"(kill {it})"
        proc = subprocess.Popen([sys.executable, CHILD, str(path), str(KILL_VALUES)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready = proc.stdout.readline().decode()
            assert ready.startswith("ready "), f"seed {seed} {ctx}: child said {ready!r}: {proc.stderr.read()!r}"
            assert int(ready.split()[1]) == last + 1, f"seed {seed} {ctx}: child resumed at {ready!r}, expected {last + 1}"
            time.sleep(rng.uniform(0.0, 0.030))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            out = proc.stdout.read().decode()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, f"seed {seed} {ctx}: child exited with {proc.returncode}"
        stats["kills"] += 1
        lines = out.split("\n")[:-1]           # complete lines only
        reported = int(lines[-1]) if lines else last
        if temps(tmp_path):
            stats["mid_write"] += 1
        try:
            got = store.load()
        except RetainError as ex:
            pytest.fail(f"seed {seed} {ctx}: the store did not load after a kill: {ex}")
        if got is None:
            assert reported == -1 and last == -1, f"seed {seed} {ctx}: file vanished after k={reported}"
            stats["before_first_save"] += 1
            continue
        k = _check_snapshot(got, seed, ctx)
        assert k in (reported, reported + 1), \
            f"seed {seed} {ctx}: file holds k={k}, the child last reported k={reported}"
        stats["unreported"] += k == reported + 1
        last = k
    elapsed = time.monotonic() - t_start
    print(f"kill test: seed {seed}, {stats}, final k={last}, {elapsed:.1f} s")
    assert stats["kills"] >= 200
    assert stats["mid_write"] > 0, f"seed {seed}: no kill landed inside a save: {stats}"
    assert last > KILLS, f"seed {seed}: the child made too little progress to mean anything: k={last}"
    # the next writer sweeps the dead writers' temp files
    store.save({}, program_hash="h", scan=0)
    assert temps(tmp_path) == []
