"""The sequence-of-events log (runtime/eventlog.py) and `gridplc log verify/show`
(runtime/log_cli.py), on real files in tmp_path:

  chain        many appends verify; reopening continues seq and prev
  tampering    edit, delete, swap, insert (forged hash), non-JSON, torn tail
               each found at the right line; dropping the last line is not
  crash        a torn tail is cut on reopen, with a "recovered" record
  threads      EventLog.append and AsyncEventLog keep per-thread order
  values       floats round-trip bit for bit, NaN and the infinities included
  filters      by kind, latched time and wall time
  CLI          output and return codes of cmd_log_verify and cmd_log_show
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import threading
from datetime import datetime, timedelta, timezone

import pytest

from runtime import eventlog
from runtime.eventlog import (GENESIS_PREV, KEYS, AsyncEventLog, EventLog, EventLogError,
                              canonical_json, filter_records, read_log, record_hash, verify_log)
from runtime.log_cli import cmd_log_show, cmd_log_verify, format_record

T0 = datetime(2026, 12, 1, 20, 31, 5, 123456, tzinfo=timezone.utc)


class FakeWall:
    """A wall clock that advances one second per reading."""

    def __init__(self, start=T0, step=timedelta(seconds=1)):
        self.now, self.step = start, step
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            t = self.now
            self.now += self.step
            return t


def write_log(path, n, **kw):
    with EventLog(str(path), clock_wall=kw.pop("clock_wall", FakeWall()), **kw) as log:
        for i in range(n):
            log.append("write", {"path": f"Main.v{i}", "old": i, "new": i + 1, "who": "op"},
                       scan=i + 1, t_ns=(i + 1) * 10_000_000)
    return path


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def set_lines(path, lines):
    path.write_bytes(b"".join(lines))


def forge(rec: dict) -> bytes:
    """A line with a correctly recomputed hash (what a forger would write)."""
    rec = {k: v for k, v in rec.items() if k != "hash"}
    rec["hash"] = record_hash(rec)
    return (json.dumps(rec, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------- the chain
def test_many_appends_form_a_verified_chain(tmp_path):
    p = write_log(tmp_path / "log.jsonl", 300)
    res = verify_log(str(p))
    assert (res.ok, res.records, res.first_bad, res.reason) == (True, 300, None, "chain intact")
    recs = read_log(str(p))
    assert [r["seq"] for r in recs] == list(range(300))
    assert recs[0]["prev"] == GENESIS_PREV
    for a, b in zip(recs, recs[1:]):
        assert b["prev"] == a["hash"]
    for r in recs:
        body = {k: v for k, v in r.items() if k != "hash"}
        assert r["hash"] == eventlog.hashlib.sha256(canonical_json(body).encode()).hexdigest()
    assert (res.head_seq, res.head_hash) == (299, recs[-1]["hash"])
    # the fixed key order, one record per line
    for raw in lines_of(p):
        assert tuple(json.loads(raw)) == KEYS
    assert recs[0]["wall"] == "2026-12-01T20:31:05.123456Z"
    assert recs[1]["wall"] == "2026-12-01T20:31:06.123456Z"
    assert (recs[4]["scan"], recs[4]["t_ns"], recs[4]["kind"]) == (5, 50_000_000, "write")


def test_append_returns_the_record_written(tmp_path):
    p = tmp_path / "log.jsonl"
    with EventLog(str(p), clock_wall=FakeWall()) as log:
        rec = log.append("start", {"program": "bess", "version": "1.4.2"}, scan=0, t_ns=0)
        assert log.head == (0, rec["hash"])
    assert read_log(str(p)) == [rec]
    assert rec["seq"] == 0 and rec["data"] == {"program": "bess", "version": "1.4.2"}


def test_reopening_continues_the_chain(tmp_path):
    p = write_log(tmp_path / "log.jsonl", 3)
    first = read_log(str(p))
    with EventLog(str(p), clock_wall=FakeWall()) as log:
        rec = log.append("stop", {"reason": "operator"}, scan=9, t_ns=90_000_000)
        log.append("start", {"version": "2"})
    recs = read_log(str(p))
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4]
    assert recs[:3] == first
    assert rec["seq"] == 3 and rec["prev"] == first[-1]["hash"]
    assert recs[4]["prev"] == recs[3]["hash"]
    assert "recovered" not in {r["kind"] for r in recs}
    assert verify_log(str(p)).ok


def test_empty_log_verifies_and_an_empty_file_is_a_fresh_chain(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_bytes(b"")
    assert verify_log(str(p)).ok and verify_log(str(p)).records == 0
    with EventLog(str(p)) as log:
        assert log.head == (-1, GENESIS_PREV)
        assert log.append("start", {})["seq"] == 0


def test_second_writer_on_the_same_file_is_refused(tmp_path):
    p = tmp_path / "log.jsonl"
    with EventLog(str(p)):
        with pytest.raises(EventLogError, match="already open"):
            EventLog(str(p))
    EventLog(str(p)).close()            # released on close


def test_append_after_close_raises(tmp_path):
    log = EventLog(str(tmp_path / "log.jsonl"))
    log.close()
    log.close()                         # idempotent
    with pytest.raises(EventLogError, match="closed"):
        log.append("start", {})


# --------------------------------------------------------------- tampering
N = 10                                  # records in the tampering fixture


@pytest.fixture
def log10(tmp_path):
    return write_log(tmp_path / "log.jsonl", N)


def test_edited_value_is_a_hash_mismatch_on_its_line(log10):
    lines = lines_of(log10)
    assert b'"new":5' in lines[4]
    lines[4] = lines[4].replace(b'"new":5', b'"new":500')
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad, res.records) == (False, 5, 4)
    assert "hash mismatch" in res.reason


def test_edited_who_and_edited_hash_both_detected(log10):
    lines = lines_of(log10)
    lines[2] = lines[2].replace(b'"who":"op"', b'"who":"xx"')
    set_lines(log10, lines)
    assert verify_log(str(log10)).first_bad == 3
    lines = lines_of(log10)
    rec = json.loads(lines[2])
    lines[2] = forge(rec)               # hash recomputed over the edit: the next line breaks
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert res.first_bad == 4 and "prev" in res.reason


def test_deleted_middle_line_is_a_seq_gap_at_the_next_line(log10):
    lines = lines_of(log10)
    del lines[4]                        # line 5 (seq 4)
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 5)
    assert "seq gap: expected 4, found 5" in res.reason


def test_swapped_lines_are_found_at_the_first_of_them(log10):
    lines = lines_of(log10)
    lines[3], lines[4] = lines[4], lines[3]     # lines 4 and 5
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 4)
    assert "seq" in res.reason


def test_inserted_forged_line_with_wrong_prev(log10):
    lines = lines_of(log10)
    rec = json.loads(lines[4])          # forge a copy of seq 4 with new content
    rec["data"]["new"] = 999
    rec["prev"] = "ab" * 32
    lines.insert(4, forge(rec))         # between lines 4 and 5; its seq fits, its prev not
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 5)
    assert res.reason.startswith("prev does not match the hash of line 4")


def test_inserted_forged_line_with_right_prev_breaks_the_next_line(log10):
    lines = lines_of(log10)
    prev = json.loads(lines[3])
    rec = {"seq": 4, "scan": 0, "t_ns": 0, "wall": "2026-12-01T20:31:05.000000Z",
           "kind": "write", "data": {"path": "Main.x", "old": 0, "new": 1, "who": "mallory"},
           "prev": prev["hash"]}
    lines.insert(4, forge(rec))
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 6)    # the real seq 4 no longer fits
    assert "seq out of order" in res.reason


def test_duplicated_line_is_detected(log10):
    lines = lines_of(log10)
    lines.insert(3, lines[2])
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 4) and "seq out of order" in res.reason


def test_first_record_must_start_the_chain(log10):
    lines = lines_of(log10)
    rec = json.loads(lines[0])
    rec["prev"] = "1" * 64
    lines[0] = forge(rec)
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert res.first_bad == 1 and "64 zeros" in res.reason


def test_dropping_the_last_line_is_not_detectable_by_the_chain(log10):
    # A hash chain proves each record follows the one before; nothing follows
    # the last one, so cutting records off the end leaves a valid, shorter
    # chain. Only an external anchor (a copy of EventLog.head kept where the
    # log's writer cannot change it) can catch this: compare it with head_*.
    anchor = verify_log(str(log10))
    lines = lines_of(log10)
    set_lines(log10, lines[:-1])
    res = verify_log(str(log10))
    assert res.ok and res.records == N - 1
    assert (res.head_seq, res.head_hash) != (anchor.head_seq, anchor.head_hash)


def test_non_json_line(log10):
    lines = lines_of(log10)
    lines[6] = b"this is not json\n"
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad) == (False, 7) and res.reason.startswith("not JSON")


@pytest.mark.parametrize("line, why", [
    (b"\n", "blank line"),
    (b"[1, 2]\n", "not a JSON object"),
    (b'{"seq": 3}\n', "missing"),
    (b"\xff\xfe\n", "not UTF-8"),
])
def test_malformed_lines(log10, line, why):
    lines = lines_of(log10)
    lines[3] = line
    set_lines(log10, lines)
    res = verify_log(str(log10))
    assert res.first_bad == 4 and why in res.reason


def test_torn_last_line_fails_verify(log10):
    with open(log10, "ab") as f:
        f.write(b'{"seq":10,"scan":11,"t_ns":1100')
    res = verify_log(str(log10))
    assert (res.ok, res.first_bad, res.reason, res.records) == (False, N + 1, "torn last line", N)


# ------------------------------------------------------------------ crashes
def test_torn_tail_is_cut_on_reopen_with_a_recovered_record(log10):
    good = read_log(str(log10))
    size = log10.stat().st_size
    partial = b'{"seq":10,"scan":11,"t_ns":110000000,"wall":"2026-12-01T20:3'
    with open(log10, "ab") as f:        # the crash: a write cut short
        f.write(partial)
    with EventLog(str(log10), clock_wall=FakeWall()) as log:
        log.append("start", {"version": "1"})
    recs = read_log(str(log10))
    assert recs[:N] == good
    rec = recs[N]
    assert rec["kind"] == "recovered" and rec["seq"] == N and rec["prev"] == good[-1]["hash"]
    assert rec["data"] == {"dropped_bytes": len(partial), "offset": size,
                           "reason": "torn last line"}
    assert recs[N + 1]["kind"] == "start" and recs[N + 1]["seq"] == N + 1
    assert verify_log(str(log10)).ok


def test_torn_tail_of_zero_bytes_and_of_a_lone_partial_first_line(tmp_path):
    p = write_log(tmp_path / "a.jsonl", 2)
    with open(p, "ab") as f:            # what some filesystems leave after power loss
        f.write(b"\0" * 5000)
    EventLog(str(p)).close()
    recs = read_log(str(p))
    assert recs[-1]["kind"] == "recovered" and recs[-1]["data"]["dropped_bytes"] == 5000
    assert verify_log(str(p)).ok

    q = tmp_path / "b.jsonl"
    q.write_bytes(b'{"seq":0,"sc')
    EventLog(str(q)).close()
    recs = read_log(str(q))
    assert len(recs) == 1 and recs[0]["seq"] == 0 and recs[0]["prev"] == GENESIS_PREV
    assert recs[0]["data"]["dropped_bytes"] == 12
    assert verify_log(str(q)).ok


def test_whole_record_missing_only_its_newline_is_kept(log10):
    lines = lines_of(log10)
    set_lines(log10, lines[:-1] + [lines[-1].rstrip(b"\n")])
    assert verify_log(str(log10)).reason == "torn last line"
    EventLog(str(log10)).close()
    recs = read_log(str(log10))
    assert len(recs) == N + 1 and recs[N - 1]["data"]["new"] == N
    assert recs[N]["data"]["dropped_bytes"] == 0
    assert verify_log(str(log10)).ok


def test_last_complete_line_not_a_record_refuses_to_append(log10):
    lines = lines_of(log10)
    set_lines(log10, lines + [b"garbage\n"])
    before = log10.read_bytes()
    with pytest.raises(EventLogError, match="last complete line is not a record"):
        EventLog(str(log10))
    assert log10.read_bytes() == before         # the evidence is left alone
    set_lines(log10, lines)                     # and the lock was released
    EventLog(str(log10)).close()


def test_long_records_and_long_torn_tail(tmp_path):
    # lines longer than the backwards-reading chunk
    p = tmp_path / "log.jsonl"
    with EventLog(str(p)) as log:
        log.append("config", {"blob": "x" * 200_000})
        log.append("config", {"blob": "y" * 150_000})
    with open(p, "ab") as f:
        f.write(b"{" + b"z" * 100_000)
    with EventLog(str(p)) as log:
        assert log.head[0] == 2
    recs = read_log(str(p))
    assert [r["kind"] for r in recs] == ["config", "config", "recovered"]
    assert recs[2]["data"]["dropped_bytes"] == 100_001
    assert verify_log(str(p)).ok


# ------------------------------------------------------------------ threads
def _hammer(append, threads=4, per_thread=400):
    def work(tid):
        for k in range(per_thread):
            append("write", {"thread": tid, "n": k}, scan=k, t_ns=k)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _check_per_thread_order(recs, threads, per_thread):
    assert len(recs) == threads * per_thread
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    seen = {i: [] for i in range(threads)}
    for r in recs:
        seen[r["data"]["thread"]].append(r["data"]["n"])
    assert all(v == list(range(per_thread)) for v in seen.values())


def test_eventlog_append_is_thread_safe(tmp_path):
    p = tmp_path / "log.jsonl"
    with EventLog(str(p)) as log:
        _hammer(log.append, threads=4, per_thread=400)
    _check_per_thread_order(read_log(str(p)), 4, 400)
    assert verify_log(str(p)).ok


def test_async_log_keeps_per_thread_order(tmp_path):
    p = tmp_path / "log.jsonl"
    alog = AsyncEventLog(str(p))
    _hammer(alog.append, threads=5, per_thread=500)
    alog.flush()                        # everything enqueued is on disk now
    _check_per_thread_order(read_log(str(p)), 5, 500)
    alog.close()
    assert verify_log(str(p)).ok
    with pytest.raises(EventLogError, match="closed"):
        alog.append("x", {})


def test_async_log_wall_is_read_at_append_and_data_is_copied(tmp_path):
    p = tmp_path / "log.jsonl"
    wall = FakeWall()
    with AsyncEventLog(str(p), clock_wall=wall) as alog:
        d = {"path": "Main.sp", "old": 1, "new": 2}
        alog.append("write", d)
        d["new"] = 3                    # mutating after append does not change the record
        alog.append("mode", {"to": "RUN"})
    recs = read_log(str(p))
    assert recs[0]["data"]["new"] == 2
    assert [r["wall"] for r in recs] == ["2026-12-01T20:31:05.123456Z",
                                         "2026-12-01T20:31:06.123456Z"]


def test_async_log_overflow_is_counted_and_recorded(tmp_path):
    p = tmp_path / "log.jsonl"
    alog = AsyncEventLog(str(p), queue_len_max=8)
    with alog._log._lock:               # stall the writer as a slow disk would
        for k in range(50):
            alog.append("write", {"n": k})
    alog.close()
    recs = read_log(str(p))
    writes = [r for r in recs if r["kind"] == "write"]
    over = [r for r in recs if r["kind"] == "overflow"]
    assert len(over) == 1 and over[0]["data"]["queue_len_max"] == 8
    assert len(writes) + over[0]["data"]["dropped"] == 50 == len(writes) + alog.dropped_total
    assert [r["data"]["n"] for r in writes] == list(range(len(writes)))
    assert verify_log(str(p)).ok


def test_async_write_failure_is_reported(tmp_path):
    p = tmp_path / "log.jsonl"
    alog = AsyncEventLog(str(p))

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    alog._log._write = boom
    alog.append("write", {"n": 1})
    with pytest.raises(EventLogError, match="No space left"):
        alog.flush()
    with pytest.raises(EventLogError):
        alog.append("write", {"n": 2})
    with pytest.raises(EventLogError):
        alog.close()


def test_fsync_at_most_every_period_and_on_close(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(eventlog.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    log = EventLog(str(tmp_path / "a.jsonl"), fsync_period_s=3600)
    fd = log._f.fileno()
    for k in range(50):
        log.append("write", {"n": k})
    assert calls.count(fd) == 0
    log.close()
    assert calls.count(fd) == 1

    calls.clear()
    log = EventLog(str(tmp_path / "b.jsonl"), fsync_period_s=0)
    fd = log._f.fileno()
    for k in range(5):
        log.append("write", {"n": k})
    assert calls.count(fd) == 5
    log.close()


# ------------------------------------------------------------------- values
SPECIAL = [0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 1e16,
           123456789.12345679, math.nan, math.inf, -math.inf]


def _bits(x):
    return struct.pack("<d", x)


def test_floats_round_trip_exactly(tmp_path):
    p = tmp_path / "log.jsonl"
    data = {"floats": SPECIAL, "one": math.nan, "nested": {"inf": -math.inf, "x": [0.1, math.inf]},
            "big": 2**64 + 1, "tuple": (1.5, 2)}
    with EventLog(str(p)) as log:
        ret = log.append("write", data)
    (rec,) = read_log(str(p))
    for got in (rec["data"], ret["data"]):
        assert [_bits(x) for x in got["floats"]] == [_bits(x) for x in SPECIAL]
        assert math.isnan(got["one"])
        assert got["nested"]["inf"] == -math.inf and got["nested"]["x"] == [0.1, math.inf]
        assert got["big"] == 2**64 + 1 and got["tuple"] == [1.5, 2]
    raw = p.read_text()
    assert '{"$float":"nan"}' in raw and '{"$float":"-inf"}' in raw
    assert "NaN" not in raw and "Infinity" not in raw
    assert verify_log(str(p)).ok


def test_unicode_and_line_separators_stay_on_one_line(tmp_path):
    p = tmp_path / "log.jsonl"
    text = "Überstrom\u2028zweite Zeile\nnew line \u00e9 \U0001F50B \ud800"
    with EventLog(str(p)) as log:
        log.append("alarm", {"text": text, "ключ": "значение"})
    assert p.read_bytes().count(b"\n") == 1
    (rec,) = read_log(str(p))
    assert rec["data"]["text"].startswith("Überstrom\u2028zweite Zeile\nnew line é \U0001F50B")
    assert rec["data"]["ключ"] == "значение"
    assert "\u00dcberstrom".encode() in p.read_bytes()      # ensure_ascii=False
    assert verify_log(str(p)).ok


def test_bad_data_is_refused_at_append(tmp_path):
    with EventLog(str(tmp_path / "log.jsonl")) as log:
        with pytest.raises(TypeError, match="not a JSON value"):
            log.append("write", {"x": object()})
        with pytest.raises(TypeError, match="key"):
            log.append("write", {1: "x"})
        with pytest.raises(ValueError, match="reserved"):
            log.append("write", {"x": {"$float": "nan"}})
        with pytest.raises(TypeError):
            log.append("", {})
        with pytest.raises(TypeError):
            log.append("write", {}, scan=True)
        assert log.append("ok", None)["seq"] == 0     # nothing half-written


def test_numpy_values_are_written_as_plain_numbers(tmp_path):
    np = pytest.importorskip("numpy")   # process images hold numpy scalars
    p = tmp_path / "log.jsonl"
    with EventLog(str(p)) as log:
        log.append("write", {"r": np.float32(0.1), "d": np.float64(math.nan), "i": np.int16(-7),
                             "b": np.bool_(True), "a": np.arange(3)})
    (rec,) = read_log(str(p))
    d = rec["data"]
    assert d["r"] == float(np.float32(0.1)) and math.isnan(d["d"])
    assert (d["i"], d["b"], d["a"]) == (-7, True, [0, 1, 2])
    assert type(d["b"]) is bool and verify_log(str(p)).ok


def test_naive_wall_clock_is_refused(tmp_path):
    with EventLog(str(tmp_path / "log.jsonl"), clock_wall=lambda: datetime(2026, 1, 1)) as log:
        with pytest.raises(ValueError, match="aware"):
            log.append("start", {})


def test_wall_clock_in_another_zone_is_written_as_utc(tmp_path):
    cet = timezone(timedelta(hours=1))
    with EventLog(str(tmp_path / "log.jsonl"),
                  clock_wall=lambda: datetime(2026, 12, 1, 21, 31, 5, 7, tzinfo=cet)) as log:
        assert log.append("start", {})["wall"] == "2026-12-01T20:31:05.000007Z"


# ------------------------------------------------------------------ filters
@pytest.fixture
def mixed(tmp_path):
    p = tmp_path / "log.jsonl"
    with EventLog(str(p), clock_wall=FakeWall()) as log:
        log.append("start", {"version": "1.4.2"})                                  # t=0
        log.append("mode", {"from": "STOP", "to": "RUN"}, scan=1, t_ns=0)          # t=0
        log.append("write", {"path": "Main.sp", "old": 1.5, "new": 2.5, "who": "alice"},
                   scan=120, t_ns=1_190_000_000)                                  # 1.19 s
        log.append("fault", {"task": "Fast", "what": "division by zero",
                             "where": "main.st:12:5"}, scan=300, t_ns=2_990_000_000)
        log.append("reset", {"who": "bob"}, scan=400, t_ns=3_990_000_000)
        log.append("alarm", {"name": "OverTemp", "state": "active"}, scan=500, t_ns=5_000_000_000)
    return p


def test_filter_by_kind(mixed):
    recs = read_log(str(mixed))
    assert [r["kind"] for r in filter_records(recs, kinds={"fault", "reset"})] == ["fault", "reset"]
    assert filter_records(recs, kinds=set()) == []
    assert filter_records(recs) == recs


def test_filter_by_latched_time(mixed):
    recs = read_log(str(mixed))
    got = filter_records(recs, since_ns=1_190_000_000, until_ns=3_990_000_000)
    assert [r["kind"] for r in got] == ["write", "fault", "reset"]        # bounds inclusive
    assert [r["kind"] for r in filter_records(recs, until_ns=0)] == ["start", "mode"]


def test_filter_by_wall_time(mixed):
    recs = read_log(str(mixed))      # walls are T0 + 0 s, 1 s, 2 s, ...
    got = filter_records(recs, since_wall="2026-12-01T20:31:07Z",
                         until_wall=T0 + timedelta(seconds=3))
    assert [r["kind"] for r in got] == ["write", "fault"]
    got = filter_records(recs, since_wall=datetime(2026, 12, 1, 21, 31, 10,
                                                   tzinfo=timezone(timedelta(hours=1))))
    assert [r["kind"] for r in got] == ["alarm"]
    got = filter_records(recs, kinds={"write", "alarm"}, since_wall="2026-12-01T20:31:06")
    assert [r["kind"] for r in got] == ["write", "alarm"]
    with pytest.raises(ValueError):
        filter_records(recs, since_wall="yesterday")


# ---------------------------------------------------------------------- CLI
def test_cli_verify_ok(log10):
    out = io.StringIO()
    assert cmd_log_verify(str(log10), out=out) == 0
    assert out.getvalue() == f"ok: {N} records, chain intact\n"


def test_cli_verify_tampered(log10):
    lines = lines_of(log10)
    del lines[6]
    set_lines(log10, lines)
    out = io.StringIO()
    assert cmd_log_verify(str(log10), out=out) == 1
    assert out.getvalue() == f"{log10}:7: tampered: seq gap: expected 6, found 7 " \
                             f"(a record deleted or moved)\n"


def test_cli_verify_torn_and_missing(log10, tmp_path):
    with open(log10, "ab") as f:
        f.write(b'{"seq":')
    out = io.StringIO()
    assert cmd_log_verify(str(log10), out=out) == 1
    assert out.getvalue() == f"{log10}:{N + 1}: tampered: torn last line\n"
    out, err = io.StringIO(), io.StringIO()
    assert cmd_log_verify(str(tmp_path / "nope.jsonl"), out=out, err=err) == 2
    assert out.getvalue() == "" and "no such file" in err.getvalue()


def show(path, **kw):
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("kinds", None)
    kw.setdefault("since", None)
    kw.setdefault("until", None)
    kw.setdefault("as_json", False)
    rc = cmd_log_show(str(path), out=out, err=err, **kw)
    return rc, out.getvalue().splitlines(), err.getvalue()


def test_cli_show_human_lines(mixed):
    rc, lines, err = show(mixed)
    assert rc == 0 and err == ""
    assert lines == [
        "2026-12-01T20:31:05.123456Z scan=0 t=0.000 start version=1.4.2",
        "2026-12-01T20:31:06.123456Z scan=1 t=0.000 mode from=STOP to=RUN",
        "2026-12-01T20:31:07.123456Z scan=120 t=1.190 write Main.sp: 1.5 -> 2.5 (by alice)",
        '2026-12-01T20:31:08.123456Z scan=300 t=2.990 fault task=Fast what="division by zero" '
        'where=main.st:12:5',
        "2026-12-01T20:31:09.123456Z scan=400 t=3.990 reset who=bob",
        "2026-12-01T20:31:10.123456Z scan=500 t=5.000 alarm name=OverTemp state=active",
    ]


def test_cli_show_filters(mixed):
    rc, lines, _ = show(mixed, kinds=["fault", "reset"])
    assert rc == 0 and [ln.split()[3] for ln in lines] == ["fault", "reset"]
    rc, lines, _ = show(mixed, kinds=["write,alarm"])
    assert [ln.split()[3] for ln in lines] == ["write", "alarm"]
    rc, lines, _ = show(mixed, since="1s", until="T#3s")
    assert [ln.split()[3] for ln in lines] == ["write", "fault"]
    rc, lines, _ = show(mixed, since="1500ms")
    assert [ln.split()[3] for ln in lines] == ["fault", "reset", "alarm"]
    rc, lines, _ = show(mixed, since="2026-12-01T20:31:09Z")
    assert [ln.split()[3] for ln in lines] == ["reset", "alarm"]
    rc, lines, _ = show(mixed, until="2026-12-01T20:31:06.123456Z", kinds=["mode"])
    assert [ln.split()[3] for ln in lines] == ["mode"]


def test_cli_show_json_prints_the_raw_lines(mixed):
    rc, lines, _ = show(mixed, kinds=["write", "fault"], as_json=True)
    raw = mixed.read_text(encoding="utf-8").splitlines()
    assert rc == 0 and lines == [raw[2], raw[3]]


@pytest.mark.parametrize("bad", ["10x", "soon", "2026-13-45T00:00:00Z", "T#", "-5s"])
def test_cli_show_bad_filter_text(mixed, bad):
    rc, lines, err = show(mixed, since=bad)
    assert rc == 2 and lines == [] and "--since" in err
    rc, lines, err = show(mixed, until=bad)
    assert rc == 2 and "--until" in err


def test_cli_show_missing_file_torn_tail_and_bad_lines(mixed, tmp_path):
    assert show(tmp_path / "nope.jsonl")[0] == 2
    with open(mixed, "ab") as f:
        f.write(b'{"seq":6,')
    rc, lines, err = show(mixed)
    assert rc == 0 and len(lines) == 6 and "torn last line" in err
    raw = lines_of(mixed)
    raw[1] = b"###\n"
    set_lines(mixed, raw)
    rc, lines, err = show(mixed)
    assert rc == 1 and len(lines) == 5 and f"{mixed}:2: skipped" in err


def test_format_record_values():
    rec = {"wall": "W", "scan": 3, "t_ns": 12_345_678_901, "kind": "force",
           "data": {"path": "IO.K1", "old": False, "new": True, "who": "op 2",
                    "x": math.nan, "s": "", "l": [1, 2.5], "n": None, "q": "true", "i": "12",
                    "v": "1.4.2", "e": "a=b"}}
    assert format_record(rec) == ('W scan=3 t=12.345 force IO.K1: false -> true (by "op 2") '
                                  'x=nan s="" l=[1,2.5] n=null q="true" i="12" v=1.4.2 e="a=b"')
