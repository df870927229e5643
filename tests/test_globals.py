"""VAR_GLOBAL as tags: `<Configuration>.var` (or `Globals.var`), readable,
writable at the scan boundary, retained when declared RETAIN."""
from __future__ import annotations

from tests.stutil import build

SRC = """
TYPE Bat : STRUCT soc : REAL; ok : BOOL; END_STRUCT; END_TYPE
PROGRAM Prod
VAR_EXTERNAL gBat : Bat; gTrips : INT; gLimit : REAL; END_VAR
gBat.soc := gBat.soc + 1.0;
gBat.ok := gBat.soc < gLimit;
END_PROGRAM
PROGRAM Cons
VAR_EXTERNAL gBat : Bat; gTrips : INT; END_VAR
VAR seen : REAL; END_VAR
seen := gBat.soc;
IF NOT gBat.ok THEN gTrips := gTrips + 1; END_IF
END_PROGRAM
CONFIGURATION Site
  VAR_GLOBAL gBat : Bat; gLimit : REAL := 3.0; END_VAR
  VAR_GLOBAL RETAIN gTrips : INT; END_VAR
  RESOURCE Cpu ON PLC
    TASK Fast(INTERVAL := T#100ms, PRIORITY := 1);
    PROGRAM P WITH Fast : Prod;
    PROGRAM C WITH Fast : Cons;
  END_RESOURCE
END_CONFIGURATION
"""


def test_globals_are_tags_under_the_configuration_name():
    e = build(SRC)
    try:
        e.run(2)
        assert e.tag("Site.gBat.soc").get() == 2.0 and e.tag("site.GBAT.OK").path == "Site.gBat.ok"
        e.queue_write("Site.gLimit", "10.0", "test")
        e.run(1, start_ns=200_000_000)
        assert e.tag("Site.gLimit").get() == 10.0 and e.tag("C.seen").get() == 3.0
    finally:
        e.close()


def test_global_retain_variables_are_retained():
    e = build(SRC)
    try:
        e.run(5)
        kept = e.retained()
        assert set(kept) == {"Site.gTrips"} and kept["Site.gTrips"][1] == 3
    finally:
        e.close()
    fresh = build(SRC)
    try:
        fresh.restore(kept)
        assert fresh.tag("Site.gTrips").get() == 3
    finally:
        fresh.close()
