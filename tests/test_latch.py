"""The incremental input latch: a scan latches only the inputs that may have
changed (staged since, past their staleness deadline, forced or released,
or written since the last latch), and that must give exactly what latching
every input at every scan gave."""
from __future__ import annotations

import random

from runtime.io.image import Update
from runtime.io.quality import BAD, GOOD, STALE, WAITING
from tests.stutil import build

MS = 1_000_000

SRC = """
PROGRAM Main
VAR
    a : ARRAY[1..1000] OF REAL;
    t : REAL;
    bump : REAL;            (* an input the program writes in place *)
    n : INT;
    i : INT;
    sumA : REAL;
    qSum : DINT;
    tSeen : REAL;
    bumped : REAL;
    ageMs : DINT;
END_VAR
bump := bump + 1.0;
bumped := bump;
tSeen := t;
ageMs := TIME_TO_DINT(IO_AGE(t));
sumA := 0.0;
qSum := 0;
FOR i := 1 TO 1000 DO
    sumA := sumA + a[i];
    qSum := qSum + INT_TO_DINT(IO_QUALITY(a[i]));
END_FOR
END_PROGRAM
"""


def _engine(n_array: int = 1000):
    e = build(SRC, interval="10ms")
    for k in range(1, n_array + 1):
        e.declare_input(f"Main.a[{k}]", timeout_ns=3000 * MS)
    e.declare_input("Main.t", timeout_ns=300 * MS, substitute_text="99.0", valid_range=(-40.0, 100.0))
    e.declare_input("Main.bump", timeout_ns=None)
    e.declare_input("Main.n", timeout_ns=None)
    return e


def _get(e, path):
    return e.tag(path).get()


def test_stale_in_exactly_the_first_scan_past_the_deadline_with_nothing_else_happening():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 5 * MS)])
        for k in range(31):                         # 0 .. 300 ms: age up to 295 ms <= 300 ms
            e.scan(k * 10 * MS)
            assert e.quality("Main.t") == (GOOD, 5 * MS), k
            assert _get(e, "Main.tSeen") == 20.0
        e.scan(310 * MS)                            # 305 ms old: stale now, with no update in between
        assert e.quality("Main.t") == (STALE, 5 * MS)
        assert _get(e, "Main.t") == 99.0 and _get(e, "Main.tSeen") == 99.0     # the substitute
        assert _get(e, "Main.ageMs") == 305
        e.scan(320 * MS)
        assert e.quality("Main.t") == (STALE, 5 * MS) and _get(e, "Main.tSeen") == 99.0
    finally:
        e.close()


def test_a_deadline_exactly_at_a_scan_is_still_good():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0)])
        e.scan(0)
        e.scan(300 * MS)                            # exactly the timeout old: not older than it
        assert e.quality("Main.t")[0] == GOOD
        e.scan(300 * MS + 1)
        assert e.quality("Main.t")[0] == STALE
    finally:
        e.close()


def test_a_new_arrival_moves_the_deadline():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0)])
        t = 0
        while t <= 700 * MS:
            if t == 200 * MS:
                e.input_stage.publish([Update("Main.t", 21.0, GOOD, 200 * MS)])
            e.scan(t)
            want = GOOD if t <= 500 * MS else STALE
            assert e.quality("Main.t")[0] == want, t
            assert _get(e, "Main.tSeen") == (99.0 if want == STALE else 20.0 if t < 200 * MS else 21.0), t
            t += 10 * MS
    finally:
        e.close()


def test_an_older_source_timestamp_brings_the_deadline_forward():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 100 * MS)])
        e.scan(100 * MS)
        e.input_stage.publish([Update("Main.t", 20.5, GOOD, 0)])     # e.g. a replayed, older sample
        e.scan(110 * MS)
        e.scan(300 * MS)
        assert e.quality("Main.t") == (GOOD, 0)
        e.scan(310 * MS)
        assert e.quality("Main.t") == (STALE, 0) and _get(e, "Main.t") == 99.0
    finally:
        e.close()


def test_one_input_of_a_thousand_changing_latches_that_one_only():
    e = _engine()
    try:
        e.input_stage.publish([Update(f"Main.a[{k}]", 1.0, GOOD, 0) for k in range(1, 1001)])
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0), Update("Main.n", 1, GOOD, 0)])
        e.scan(0)
        # the first scan latches every input; the program then writes `bump` (no value from the field)
        assert e.latched_last == 1003
        assert _get(e, "Main.sumA") == 1000.0 and _get(e, "Main.qSum") == 0
        e.scan(10 * MS)
        assert e.latched_last == 1          # bump, which the program wrote: nothing else to look at
        e.input_stage.publish([Update("Main.a[500]", 3.0, GOOD, 15 * MS)])
        e.scan(20 * MS)
        assert e.latched_last == 2          # a[500] and bump
        assert _get(e, "Main.a[500]") == 3.0 and _get(e, "Main.sumA") == 1002.0
        assert e.quality("Main.a[500]") == (GOOD, 15 * MS) and e.quality("Main.a[499]") == (GOOD, 0)
    finally:
        e.close()


def test_a_program_writing_its_input_sees_the_field_value_again_every_scan():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.bump", 10.0, GOOD, 0)])
        for k in range(5):
            e.scan(k * 10 * MS)
            assert _get(e, "Main.bumped") == 11.0, k    # not 12, 13, ...: the latch puts 10 back
    finally:
        e.close()


def test_a_set_or_a_restore_between_scans_is_undone_by_the_latch():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0)])
        e.scan(0)
        e.set_text("Main.t", "50.0")
        e.scan(10 * MS)
        assert _get(e, "Main.tSeen") == 20.0
        e.restore({"Main.t": ("REAL", 60.0)})
        e.scan(20 * MS)
        assert _get(e, "Main.tSeen") == 20.0
    finally:
        e.close()


def test_force_and_release_latch_again_with_the_quality_the_input_has_by_then():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0)])
        e.scan(0)
        e.force("Main.t", "30.0", "test")
        e.scan(10 * MS)
        assert e.quality("Main.t")[0] == GOOD and _get(e, "Main.tSeen") == 30.0
        e.scan(400 * MS)                            # stale underneath, forced on top
        assert e.quality("Main.t")[0] == GOOD and _get(e, "Main.tSeen") == 30.0
        e.release("Main.t", "test")
        e.scan(410 * MS)
        assert e.quality("Main.t") == (STALE, 0) and _get(e, "Main.tSeen") == 99.0
        # forced and released straight through the dicts, as a journal replay does
        e.forced["Main.t"] = 31.0
        e._forced_tags["Main.t"] = e.tag("Main.t")
        e.scan(420 * MS)
        assert e.quality("Main.t")[0] == GOOD and _get(e, "Main.tSeen") == 31.0
        e.forced.pop("Main.t")
        e._forced_tags.pop("Main.t")
        e.scan(430 * MS)
        assert e.quality("Main.t")[0] == STALE and _get(e, "Main.tSeen") == 99.0
    finally:
        e.close()


def test_values_stored_straight_into_the_images_are_latched():
    e = _engine(0)
    try:
        e.scan(0)
        assert e.quality("Main.n")[0] == WAITING
        e.input_image["Main.n"] = 7                 # what journal replay does
        e.scan(10 * MS)
        assert e.quality("Main.n") == (GOOD, None) and _get(e, "Main.n") == 7
        e.input_quality["Main.n"] = (BAD, 10 * MS)
        e.scan(20 * MS)
        assert e.quality("Main.n") == (BAD, 10 * MS)
    finally:
        e.close()


def test_a_task_reset_latches_every_input_into_the_new_objects():
    e = _engine(0)
    try:
        e.input_stage.publish([Update("Main.t", 20.0, GOOD, 0), Update("Main.n", 3, GOOD, 0)])
        e.scan(0)
        e.reset_task("default", "cold", "test")
        assert _get(e, "Main.t") == 0.0             # a fresh object, before any latch
        e.scan(10 * MS)
        assert _get(e, "Main.t") == 20.0 and _get(e, "Main.n") == 3 and _get(e, "Main.tSeen") == 20.0
        assert e.quality("Main.t") == (GOOD, 0)
    finally:
        e.close()


def _state(e):
    tags = {p: pt.tag.get() for p, pt in e.input_points.items()}
    io = {p: e.ctx.io.get((id(pt.tag.holder), pt.tag.key)) for p, pt in e.input_points.items()}
    outs = {p: _get(e, p) for p in ("Main.sumA", "Main.qSum", "Main.tSeen", "Main.bumped", "Main.ageMs")}
    return tags, io, dict(e.latched_quality), outs


def test_the_incremental_latch_gives_what_latching_everything_every_scan_gives():
    """Twin engines, the same random history of updates, stale and bad
    reports, forces and releases, writes; one latches everything at every
    scan (the full pass), the other what changed."""
    for seed in range(6):
        rng = random.Random(seed)
        inc, full = _engine(40), _engine(40)
        paths = [f"Main.a[{k}]" for k in range(1, 41)] + ["Main.t", "Main.n", "Main.bump"]
        for e in (inc, full):
            e.input_points["Main.a[3]"].substitute = -1.0
            e.input_points["Main.a[4]"].timeout_ns = 25 * MS
        try:
            t = 0
            for scan in range(400):
                t += 10 * MS
                ops = []
                for _ in range(rng.randrange(4)):
                    p = rng.choice(paths)
                    kind = rng.random()
                    ts = t - rng.randrange(0, 400) * MS if rng.random() < 0.8 else None
                    if kind < 0.6:
                        v = rng.choice([1.5, 2.0, 250.0, -0.0]) if p != "Main.n" else rng.randrange(-3, 4)
                        ops.append(("pub", p, v, GOOD, ts))
                    elif kind < 0.7:
                        ops.append(("pub", p, None, rng.choice([STALE, BAD]), ts))
                    elif kind < 0.8:
                        ops.append(("stage", p, rng.choice([4.0, None]), rng.choice([GOOD, BAD]), ts))
                    elif kind < 0.87:
                        ops.append(("force", p, "5"))
                    elif kind < 0.94:
                        ops.append(("release", p))
                    else:
                        ops.append(("set", p, "8"))
                for e in (inc, full):
                    for op in ops:
                        if op[0] == "pub":
                            e.input_stage.publish([Update(*op[1:])])
                        elif op[0] == "stage":
                            e.stage_input(*op[1:])
                        elif op[0] == "force":
                            e.force(op[1], op[2], "test")
                        elif op[0] == "release" and op[1] in e.forced:
                            e.release(op[1], "test")
                        elif op[0] == "set":
                            e.set_text(op[1], op[2])
                full._latch_all = True
                inc.scan(t)
                full.scan(t)
                assert _state(inc) == _state(full), (seed, scan, ops)
        finally:
            inc.close()
            full.close()
