"""Input quality in the engine: what drivers publish, what a scan latches.

An input that goes stale beyond its timeout must never silently keep its
last value: the next scan sees the quality change."""
from __future__ import annotations

import threading

from runtime.io.image import Update
from runtime.io.quality import BAD, GOOD, STALE, WAITING
from tests.stutil import build

SRC = """
PROGRAM Main
VAR
    t : REAL;
    n : INT;
    flag : BOOL;
    out : REAL;
    cmd : REAL;
END_VAR
out := t * 2.0;
IF cmd > 100.0 THEN out := out / INT_TO_REAL(n - n); END_IF  (* a fault on demand *)
END_PROGRAM
"""
MS = 1_000_000


def _engine():
    e = build(SRC, interval="100ms")
    e.declare_input("Main.t", timeout_ns=300 * MS, substitute_text="99.0", valid_range=(-40.0, 100.0))
    e.declare_input("Main.n", timeout_ns=None)
    e.declare_input("Main.flag", timeout_ns=300 * MS)
    e.declare_output("Main.out", "-1.0")
    return e


def test_waiting_until_the_first_value_then_good():
    e = _engine()
    try:
        e.scan(0)
        assert e.quality("Main.t")[0] == WAITING and e.quality("Main.n")[0] == WAITING
        assert e.tag("Main.t").get() == 99.0           # the substitute while not GOOD
        e.input_stage.publish([Update("Main.t", 20.5, GOOD, 50 * MS)])
        e.scan(100 * MS)
        assert e.quality("Main.t") == (GOOD, 50 * MS)
        assert e.tag("Main.t").get() == 20.5 and e.output_image["Main.out"] == 41.0
    finally:
        e.close()


def test_stale_in_the_first_scan_after_the_timeout():
    e = _engine()
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0)])
        for k in range(4):                              # scans at 0, 100, 200, 300 ms: age <= 300 ms
            e.scan(k * 100 * MS)
            assert e.quality("Main.t")[0] == GOOD, k
        e.scan(400 * MS)                                # 400 ms old: stale now, not a scan later
        assert e.quality("Main.t") == (STALE, 0)
        assert e.tag("Main.t").get() == 99.0            # never the last value silently
        e.input_stage.publish([Update("Main.t", 21.0, GOOD, 450 * MS)])
        e.scan(500 * MS)
        assert e.quality("Main.t")[0] == GOOD and e.tag("Main.t").get() == 21.0
    finally:
        e.close()


def test_without_substitute_the_last_value_stays_but_quality_says_stale():
    e = _engine()
    try:
        e.input_stage.publish([Update("Main.flag", True, GOOD, 0)])
        e.scan(0)
        e.scan(1000 * MS)
        assert e.quality("Main.flag")[0] == STALE and e.tag("Main.flag").get() is True
    finally:
        e.close()


def test_out_of_range_or_unholdable_values_are_bad_and_not_stored():
    e = _engine()
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0), Update("Main.n", 7, GOOD, 0)])
        e.scan(0)
        e.input_stage.publish([Update("Main.t", 150.0, GOOD, 10 * MS), Update("Main.n", 40000, GOOD, 10 * MS)])
        e.scan(100 * MS)
        assert e.quality("Main.t")[0] == BAD and e.tag("Main.t").get() == 99.0
        assert e.quality("Main.n")[0] == BAD and e.tag("Main.n").get() == 7     # INT cannot hold 40000
        e.input_stage.publish([Update("Main.n", 12.5, GOOD, 20 * MS)])           # ties to even
        e.scan(200 * MS)
        assert e.quality("Main.n")[0] == GOOD and e.tag("Main.n").get() == 12
    finally:
        e.close()


def test_a_driver_reports_bad_or_stale_keeping_the_value():
    e = _engine()
    try:
        e.input_stage.publish([Update("Main.n", 5, GOOD, 0)])
        e.scan(0)
        e.input_stage.publish([Update("Main.n", None, STALE, 50 * MS)])
        e.scan(100 * MS)
        assert e.quality("Main.n") == (STALE, 50 * MS) and e.tag("Main.n").get() == 5
    finally:
        e.close()


def test_a_group_published_together_is_latched_together():
    e = _engine()
    seen = []
    stop = threading.Event()

    def driver():
        k = 0
        while not stop.is_set():
            k += 1
            e.input_stage.publish([Update("Main.t", float(k % 50), GOOD, None), Update("Main.n", k % 50, GOOD, None)])

    th = threading.Thread(target=driver)
    th.start()
    try:
        for s in range(300):
            e.scan(s * 100 * MS)
            seen.append((e.tag("Main.t").get(), e.tag("Main.n").get()))
    finally:
        stop.set()
        th.join()
        e.close()
    got = [(t, n) for t, n in seen if t != 99.0]
    assert got and all(t == float(n) for t, n in got)


def test_forcing_an_input_makes_it_good():
    e = _engine()
    try:
        e.force("Main.t", "30.0", "test")
        e.scan(0)
        assert e.quality("Main.t")[0] == GOOD and e.tag("Main.t").get() == 30.0
    finally:
        e.close()


def test_output_image_changes_are_announced_and_a_fault_sends_safe_values():
    e = _engine()
    calls = []
    e.io_outputs.listen(lambda: calls.append(e.io_outputs.seq))
    try:
        e.input_stage.publish([Update("Main.t", 10.0, GOOD, 0)])
        e.scan(0)
        assert e.io_outputs.values["Main.out"] == 20.0 and len(calls) == 1
        e.scan(100 * MS)
        assert len(calls) == 1                      # nothing changed, nobody woken
        e.tag("Main.cmd").set(200.0)                # the next scan divides by zero
        faults = e.scan(200 * MS)
        assert faults and e.io_outputs.values["Main.out"] == -1.0 and len(calls) == 2
    finally:
        e.close()


def test_offline_stage_input_is_fresh_every_scan_unless_told():
    e = _engine()
    try:
        e.stage_input("Main.t", 12.0)
        e.scan(0)
        e.scan(5000 * MS)
        assert e.quality("Main.t")[0] == GOOD       # no timestamp given: the trajectory is the source
        e.stage_input("Main.t", None, BAD)
        e.scan(5100 * MS)
        assert e.quality("Main.t")[0] == BAD and e.tag("Main.t").get() == 99.0
    finally:
        e.close()


def test_a_journal_replays_quality_and_substitutes_exactly(tmp_path):
    from plc_lang.source import SourceFile
    from runtime.journal import JournalWriter, replay
    e = _engine()
    try:
        j = JournalWriter(str(tmp_path), e, [SourceFile("t.st", SRC)], program=None, interval_ns=100 * MS,
                          restored={}, safe={"Main.out": -1.0})
        e.input_stage.publish([Update("Main.t", 10.0, GOOD, 0)])
        outs = []
        for k in range(8):
            if k == 6:
                e.input_stage.publish([Update("Main.t", 11.0, GOOD, k * 100 * MS)])
            due = e.due(k * 100 * MS)
            e.scan(k * 100 * MS, due)
            j.record(due)
            outs.append(e.output_image["Main.out"])
        j.close()
    finally:
        e.close()
    assert outs == [20.0, 20.0, 20.0, 20.0, 198.0, 198.0, 22.0, 22.0]   # stale after 300 ms: the substitute
    r = replay(str(tmp_path))
    assert r.ok and r.scans == 8, r.divergence


def test_variables_marked_log_go_to_the_event_log_on_change():
    e = build("""
PROGRAM Main
VAR
    {attribute 'log'}
    clampLog : STRING;
    n : INT;
END_VAR
n := n + 1;
IF n = 2 THEN clampLog := 'clamp: requested 5000.0 W, applied 2800.0 W'; END_IF
IF n = 4 THEN clampLog := ''; END_IF
END_PROGRAM
""", interval="100ms")
    got = []
    e.events = lambda kind, data: got.append((kind, data, e.scan_count))
    try:
        e.run(5)
    finally:
        e.close()
    assert got == [("log", {"path": "Main.clampLog", "value": "clamp: requested 5000.0 W, applied 2800.0 W",
                            "was": ""}, 2),
                   ("log", {"path": "Main.clampLog", "value": "", "was": "clamp: requested 5000.0 W, applied 2800.0 W"}, 4)]
