"""OPC UA server, the parts without a network: the address space built from a
program (types, NodeIds, exposure and access), the snapshot and its diff,
the [opcua] config loader, password hashes, and the runtime alarms."""
from __future__ import annotations

import pytest

from runtime.alarms import AlarmError, alarm_set, load_table
from runtime.io.config import IoMap, Point
from runtime.opcua import space
from runtime.opcua.config import OpcuaConfig, OpcuaConfigError, compile_pattern, load_opcua
from runtime.opcua.snapshot import changed, compile_snapshot
from runtime.opcua.typemap import st_text, ua_type
from runtime.opcua.users import hash_password, verify_password
from runtime.site import _Reporter
from tests.stutil import build

SRC = """
TYPE Mode : (IDLE, RUN, FAULT); END_TYPE
TYPE Sparse : (LOW := 1, HIGH := 10); END_TYPE
TYPE Level : INT (0..100); END_TYPE
TYPE Stats : STRUCT vMin : REAL; vMax : REAL; END_STRUCT; END_TYPE

FUNCTION_BLOCK Str
VAR_INPUT en : BOOL; {attribute 'opcua' := 'operator'} limit : REAL := 3.6; END_VAR
VAR_OUTPUT st : Stats; n : INT;
  {attribute 'alarm' := 'severity=800; message=String over-voltage; latch'} ovTrip : BOOL; END_VAR
VAR hidden : INT; {attribute 'opcua' := 'ro'} shown : INT; t : TON; END_VAR
n := n + 1; st.vMax := st.vMax + 1.0; hidden := n; shown := n;
t(IN := en, PT := T#1s);
ovTrip := st.vMax > limit;
END_FUNCTION_BLOCK

PROGRAM Main
VAR
  {attribute 'opcua' := 'rw'} {attribute 'unit' := 'kW'} {attribute 'range' := '-500..500'} sp : REAL := 1.5;
  {attribute 'opcua' := 'none'} secret : INT;
  b : BOOL; si : SINT; i : INT; di : DINT; li : LINT; us : USINT; ui : UINT; ud : UDINT; ul : ULINT;
  bt : BYTE; w : WORD; dw : DWORD; lw : LWORD; r : REAL; lr : LREAL; s : STRING(10) := 'abc';
  ws : WSTRING; tm : TIME := T#1s; lt : LTIME; d : DATE; tod : TIME_OF_DAY; dt : DATE_AND_TIME;
  m : Mode; sparse : Sparse; lvl : Level; cells : ARRAY[1..4] OF REAL; grid : ARRAY[1..2, 1..3] OF INT;
  strs : ARRAY[1..2] OF Str;
  soc : REAL;
END_VAR
VAR CONSTANT k : INT := 7; END_VAR
strs[1](en := TRUE); strs[2](en := b);
cells[2] := cells[2] + 0.5;
END_PROGRAM
"""


@pytest.fixture()
def engine():
    e = build(SRC, interval="10ms")
    yield e
    e.close()


def _by(spec):
    return {v.nid: v for v in spec.variables}


def test_every_elementary_type_has_its_opcua_builtin_type(engine):
    spec, _ = space.build(engine, OpcuaConfig())
    v = _by(spec)
    want = {"b": "Boolean", "si": "SByte", "i": "Int16", "di": "Int32", "li": "Int64", "us": "Byte",
            "ui": "UInt16", "ud": "UInt32", "ul": "UInt64", "bt": "Byte", "w": "UInt16", "dw": "UInt32",
            "lw": "UInt64", "r": "Float", "lr": "Double", "s": "String", "ws": "String", "tm": "Duration",
            "lt": "Int64", "d": "DateTime", "tod": "UInt32", "dt": "DateTime", "m": "Int32", "lvl": "Int16"}
    assert {k: v[f"Main.{k}"].ut.datatype for k in want} == want
    assert v["Main.tm"].ut.variant == "Double" and v["Main.s"].ut.length == 10
    assert v["Main.m"].ut.enum == ((0, "IDLE"), (1, "RUN"), (2, "FAULT"))
    assert v["Main.sparse"].ut.enum == ((1, "LOW"), (10, "HIGH"))
    assert (v["Main.lvl"].ut.lo, v["Main.lvl"].ut.hi, v["Main.lvl"].range) == (0, 100, (0, 100))


def test_nodeids_are_tag_paths_in_the_plcopen_layout(engine):
    spec, _ = space.build(engine, OpcuaConfig(), site="demo")
    objs = {o.nid: o for o in spec.objects}
    assert objs["Main"].parent == "res:demo/Programs" and objs["Main"].kind == "program"
    assert objs["res:demo"].parent == "cfg:demo/Resources"
    assert objs["task:default"].parent == "res:demo/Tasks"
    assert objs["Main.strs"].kind == "array" and objs["Main.strs[1]"].kind == "fb"
    assert objs["Main.strs[1].st"].kind == "struct"
    v = _by(spec)
    assert v["Main.strs[2].st.vMax"].parent == "Main.strs[2].st"
    assert v["Main.cells"].dims == (4,) and v["Main.grid"].dims == (2, 3)
    assert v["Main.cells"].initial == (0.0, 0.0, 0.0, 0.0)
    # FB instances show their inputs and outputs; internals only with a pragma; std FBs none
    assert "Main.strs[1].en" in v and "Main.strs[1].n" in v and "Main.strs[1].shown" in v
    assert "Main.strs[1].hidden" not in v and not any(n.startswith("Main.strs[1].t") for n in v)
    assert "Main.secret" not in v


def test_access_from_pragmas_rules_and_what_is_never_writable(engine):
    engine.declare_input("Main.soc")
    spec, _ = space.build(engine, OpcuaConfig())
    v = _by(spec)
    assert v["Main.sp"].access == "rw" and v["Main.b"].access == "ro"
    assert v["Main.strs[1].limit"].access == "operator"
    cfg = OpcuaConfig(expose=[_rule("Main.*", "rw"), _rule("Main.strs[*].limit", "ro"), _rule("main.R", "none")])
    v = _by(space.build(engine, cfg)[0])
    assert v["Main.b"].access == "rw" and v["Main.strs[1].n"].access == "rw"
    assert v["Main.strs[2].limit"].access == "ro"            # the last matching rule wins
    assert "Main.r" not in v                                  # case-insensitive
    assert v["Main.soc"].access == "ro" and v["Main.soc"].field_input      # bound to field I/O
    assert v["Main.k"].access == "ro"                         # CONSTANT
    assert v["Main.cells"].access == "ro"                     # array-valued
    only = _by(space.build(engine, OpcuaConfig(default_access="none", expose=[_rule("Main.strs[1].*", "ro")]))[0])
    assert set(only) == {p for p in v if p.startswith("Main.strs[1].")} | \
        {"Main.sp", "Main.strs[2].limit", "Main.strs[2].shown"}         # pragmas still count
    objs = {o.nid for o in space.build(engine, OpcuaConfig(default_access="none"))[0].objects}
    assert "Main.strs[1]" in objs and "Main.strs[1].st" not in objs       # nothing visible left inside
    hidden = space.build(engine, OpcuaConfig(expose=[_rule("Main.strs", "none")]))[0]
    assert "Main.strs" not in {o.nid for o in hidden.objects}
    assert not any(v.nid.startswith("Main.strs") for v in hidden.variables)   # an explicit none hides inside


def test_units_and_ranges_come_from_the_io_map_before_pragmas(engine):
    engine.declare_input("Main.soc")
    m = IoMap("/x.toml", points=[Point("Main.soc", "bms", "input", unit="%", range=(0.0, 100.0)),
                                 Point("Main.sp", "pcs", "output", unit="W")])
    v = _by(space.build(engine, OpcuaConfig(), iomaps=[m])[0])
    assert (v["Main.soc"].unit, v["Main.soc"].range) == ("%", (0.0, 100.0))
    assert (v["Main.sp"].unit, v["Main.sp"].range) == ("W", (-500.0, 500.0))   # range from the pragma
    assert v["Main.r"].unit is None and v["Main.r"].range is None


def _rule(p, a):
    from runtime.opcua.config import ExposeRule
    return ExposeRule(p, a)


def test_snapshot_reads_every_value_and_the_diff_finds_the_changes(engine):
    spec, leaves = space.build(engine, OpcuaConfig())
    keys = list(engine.instances)
    snap = compile_snapshot(leaves, keys)
    insts = tuple(engine.instances[k] for k in keys)
    a = snap(insts)
    assert a == tuple(v.initial for v in spec.variables)
    engine.scan(0)
    b = snap(insts)
    names = [spec.variables[i].nid for i in changed(b, a)]
    assert set(names) == {"Main.cells", "Main.strs[1].en", "Main.strs[1].st.vMax", "Main.strs[1].n",
                          "Main.strs[2].st.vMax", "Main.strs[2].n", "Main.strs[1].shown", "Main.strs[2].shown"}
    assert changed(snap(insts), b) == []


def test_snapshot_follows_a_task_reset_that_replaces_the_program_objects(engine):
    _spec, leaves = space.build(engine, OpcuaConfig())
    keys = list(engine.instances)
    snap = compile_snapshot(leaves, keys)
    insts = tuple(engine.instances[k] for k in keys)
    idx = [leaf.path for leaf in leaves].index("Main.strs[1].n")
    engine.run(3)
    assert snap(insts)[idx] == 3
    engine.reset_task("default", "cold", "test")
    assert snap(insts)[idx] == 0
    engine.scan(40_000_000)
    assert snap(insts)[idx] == 1


def test_nan_that_stays_is_not_a_change():
    same = (float("nan"),)
    assert changed(same, same) == []
    assert changed((float("nan"),), (float("nan"),)) == [0]


def test_text_for_the_engine_round_trips_through_parse_value(engine):
    from runtime import tags
    for path, value in (("Main.sp", 2.5), ("Main.tm", 1500), ("Main.lt", 7), ("Main.m", 2),
                        ("Main.s", "it's"), ("Main.b", True), ("Main.lw", 2**64 - 1)):
        t = engine.tag(path)
        assert tags.parse_value(st_text(value, ua_type(t.type)), t.type) == value


# ------------------------------------------------------------------ config
def _site(tmp_path, body: str) -> str:
    p = tmp_path / "site.toml"
    p.write_text("[site]\nsources = [\"a.st\"]\n\n" + body)
    return str(p)


H = None


def _hash():
    global H
    if H is None:
        H = hash_password("correct horse", log2_n=4)
    return H


def test_config_reads_listen_security_users_and_rules(tmp_path):
    path = _site(tmp_path, f"""[opcua]
listen = "0.0.0.0:4841"
security = ["SignAndEncrypt"]
sample_interval = "50ms"

[opcua.users.alice]
role = "operator"
password = "{_hash()}"

[[opcua.expose]]
pattern = "Main.*"
access = "operator"
""")
    cfg = load_opcua(path, state_dir=str(tmp_path / "state"), site_name="s1")
    assert (cfg.host, cfg.port, cfg.security, cfg.sample_interval_ns) == ("0.0.0.0", 4841, ("SignAndEncrypt",), 50_000_000)
    assert cfg.users["alice"].role == "operator" and cfg.anonymous_role is None
    assert cfg.expose[0].access == "operator" and cfg.expose[0].line == 14
    assert cfg.application_uri == "urn:gridplc:s1"
    assert cfg.trust_dir == str(tmp_path / "state" / "opcua" / "trusted")


def test_config_without_section_is_none(tmp_path):
    assert load_opcua(_site(tmp_path, ""), state_dir=str(tmp_path), site_name="s") is None
    assert load_opcua(_site(tmp_path, "[opcua]\nenabled = false\n"), state_dir=str(tmp_path), site_name="s") is None


def test_an_insecure_production_config_is_refused_unless_allowed(tmp_path):
    body = f"""[opcua]
security = ["None", "Sign"]
anonymous = "viewer"

[opcua.users.bob]
role = "viewer"
password = "{_hash()}"
"""
    with pytest.raises(OpcuaConfigError) as ei:
        load_opcua(_site(tmp_path, body), state_dir=str(tmp_path), site_name="s")
    probs = ei.value.problems
    assert any(p.endswith(":5: opcua.security: \"None\" sends every value and write in clear text and unsigned; "
                          "remove it or set allow_insecure = true") for p in probs)
    assert any(":6: opcua.anonymous:" in p for p in probs)
    ok = load_opcua(_site(tmp_path, body.replace("[opcua]\n", "[opcua]\nallow_insecure = true\n")),
                    state_dir=str(tmp_path), site_name="s")
    assert ok.security == ("None", "Sign") and ok.anonymous_role == "viewer"


def test_config_problems_all_at_once_with_file_line_and_key(tmp_path):
    path = _site(tmp_path, """[opcua]
listen = "nowhere"
security = ["Basic128"]
colour = "blue"

[opcua.users.carol]
role = "admin"
password = "x"

[opcua.users.dave]
role = "engineer"
password = "plain text"

[[opcua.expose]]
pattern = "Main.a"
access = "rw"

[[opcua.expose]]
pattern = "Main.b"
access = "write"
""")
    with pytest.raises(OpcuaConfigError) as ei:
        load_opcua(path, state_dir=str(tmp_path), site_name="s")
    p = ei.value.problems
    assert f"{path}:5: opcua.listen: 'nowhere': expected host:port, e.g. \"0.0.0.0:4840\"" in p
    assert any(x.startswith(f"{path}:6: opcua.security: 'Basic128'") for x in p)
    assert any(x.startswith(f"{path}:7: opcua.colour: unknown key") for x in p)
    assert any(x.startswith(f"{path}:10: opcua.users.carol.role: 'admin'") for x in p)
    assert any(x.startswith(f"{path}:15: opcua.users.dave.password: not a password hash") and
               "never stored in clear text" in x for x in p)
    assert f"{path}:23: opcua.expose[1].access: 'write': one of none, ro, operator, rw" in p
    assert any("opcua.users: no users and anonymous = false" in x for x in p)


def test_patterns_treat_brackets_literally():
    rx = compile_pattern("Main.s[*].v?")
    assert rx.match("main.S[12].vA") and not rx.match("Main.s1.vA") and not rx.match("Main.s[1].vAB")


def test_password_hash_verifies_and_never_contains_the_password():
    h = hash_password("s3cret-pass", log2_n=4)
    assert h.startswith("scrypt$4$8$1$") and "s3cret" not in h
    assert verify_password("s3cret-pass", h) and not verify_password("s3cret-pasS", h)
    assert hash_password("s3cret-pass", log2_n=4) != h          # salted


def test_demo_config_is_loopback_with_anonymous_operator(tmp_path):
    cfg = OpcuaConfig.demo(str(tmp_path))
    assert cfg.host == "127.0.0.1" and cfg.anonymous_role == "operator" and "None" in cfg.security


# ------------------------------------------------------------------ alarms
def test_alarm_pragma_in_an_fb_type_is_one_alarm_per_instance(engine):
    alarms = alarm_set(engine)
    assert sorted(alarms.defs) == ["Main.strs[1].ovTrip", "Main.strs[2].ovTrip"]
    d = alarms.defs["Main.strs[1].ovTrip"]
    assert (d.severity, d.message, d.latch) == (800, "String over-voltage", True)


def test_alarm_states_active_ack_clear_and_unacked_return(engine):
    log = []
    src = """PROGRAM P VAR {attribute 'alarm' := 'severity=300; message=hot'} hot : BOOL; ack : BOOL; END_VAR END_PROGRAM"""
    e = build(src, interval="10ms")
    try:
        rep = _Reporter("site.toml", "[[alarms]]\ntag = \"P.ack\"\n")
        alarms = alarm_set(e, load_table(rep, [{"tag": "P.ack", "severity": 100}]), events=lambda k, d: log.append(d))
        seen = []
        alarms.listen(lambda tr: seen.append((tr.name, tr.what)))
        hot = e.tag("P.hot")
        st = alarms.states["P.hot"]
        hot.set(True)
        e.scan(0)
        alarms.after_scan(1, 0)
        assert (st.active, st.acked, st.retain) == (True, False, True)
        alarms.acknowledge("P.hot", "opcua:op", "seen it")
        with pytest.raises(AlarmError, match="already acknowledged"):
            alarms.acknowledge("p.HOT", "opcua:op")
        hot.set(False)
        alarms.after_scan(2, 10)
        assert (st.active, st.acked, st.retain) == (False, True, False)
        hot.set(True)
        alarms.after_scan(3, 20)
        hot.set(False)
        alarms.after_scan(4, 30)
        assert (st.active, st.acked, st.retain) == (False, False, True)   # gone before anyone saw it
        alarms.acknowledge("P.hot", "opcua:op")
        assert not st.retain
        assert seen == [("P.hot", w) for w in ("active", "acked", "cleared", "active", "cleared", "acked")]
        assert log[1] == {"name": "P.hot", "what": "acked", "severity": 300, "message": "hot", "active": True,
                          "acked": True, "who": "opcua:op", "comment": "seen it"}
        assert alarms.defs["P.ack"].severity == 100
    finally:
        e.close()


def test_latched_alarm_needs_a_reset_after_the_condition_is_gone_and_hooks_tell_the_program():
    src = """PROGRAM P VAR {attribute 'alarm' := 'message=trip; latch; ack=P.ackCmd; reset=P.rstCmd'} trip : BOOL;
    ackCmd : BOOL; rstCmd : BOOL; END_VAR END_PROGRAM"""
    e = build(src, interval="10ms")
    try:
        alarms = alarm_set(e)
        trip, st = e.tag("P.trip"), alarms.states["P.trip"]
        trip.set(True)
        alarms.after_scan(1, 0)
        trip.set(False)
        alarms.after_scan(2, 10)
        assert st.active                                         # latched
        trip.set(True)
        alarms.after_scan(3, 20)
        with pytest.raises(AlarmError, match="still present"):
            alarms.reset("P.trip", "opcua:eng")
        alarms.acknowledge("P.trip", "opcua:op")
        trip.set(False)
        alarms.after_scan(4, 30)
        alarms.reset("P.trip", "opcua:eng")
        assert not st.active and not st.retain
        with pytest.raises(AlarmError, match="not latched"):
            alarms.reset("P.trip", "opcua:eng")
        e.scan(40)
        assert e.tag("P.ackCmd").get() is True and e.tag("P.rstCmd").get() is True
    finally:
        e.close()


def test_alarm_declarations_that_are_wrong_are_refused_with_their_origin():
    e = build("PROGRAM P VAR x : INT; END_VAR END_PROGRAM", interval="10ms")
    try:
        rep = _Reporter("site.toml", "[[alarms]]\ntag = \"P.x\"\nseverity = 5000\n")
        table = load_table(rep, [{"tag": "P.x", "severity": 5000}, {"tag": "P.nope"}])
        assert rep.problems == ["site.toml:3: alarms[0].severity: an OPC UA severity 1..1000"]
        with pytest.raises(AlarmError) as ei:
            alarm_set(e, table)
        assert "site.toml:2: alarm: 'P.x' is INT; an alarm condition is a BOOL" in str(ei.value)
        assert "has no member 'nope'" in str(ei.value)
    finally:
        e.close()
