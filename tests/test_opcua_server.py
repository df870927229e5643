"""The OPC UA server against real asyncua clients on 127.0.0.1.

One server process for the module (the bridge starts it, as `gridplc run`
would); the test drives scans by hand on the engine, under the lock the
bridge snapshots with, so every published value belongs to a known scan.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from runtime.alarms import alarm_set
from runtime.io.config import Device, IoMap
from runtime.io.quality import BAD, GOOD, STALE
from runtime.opcua.bridge import OpcuaBridge
from runtime.opcua.certs import make_certificate
from runtime.opcua.config import ExposeRule, OpcuaConfig
from runtime.opcua.users import UserEntry, hash_password
from tests.stutil import build

N_CELLS = 500                     # 2 tags each: the 1,000-tag subscription
SRC = f"""
TYPE Mode : (IDLE, CHARGE, DISCHARGE); END_TYPE
TYPE Level : INT (0..100); END_TYPE
TYPE Cell : STRUCT v : REAL; t : REAL; END_STRUCT; END_TYPE

FUNCTION_BLOCK Guard
VAR_INPUT {{attribute 'opcua' := 'operator'}} limit : REAL := 3.65; v : REAL; END_VAR
VAR_OUTPUT {{attribute 'alarm' := 'severity=700; message=Cell over-voltage; latch'}} ov : BOOL; END_VAR
ov := v > limit;
END_FUNCTION_BLOCK

PROGRAM Main
VAR
  {{attribute 'opcua' := 'operator'}} {{attribute 'unit' := 'kW'}} {{attribute 'range' := '-500..500'}}
  setpoint : REAL;
  {{attribute 'opcua' := 'rw'}} mode : Mode;
  {{attribute 'opcua' := 'rw'}} divisor : INT := 1;
  {{attribute 'opcua' := 'rw'}} label : STRING(8);
  {{attribute 'opcua' := 'rw'}} hold : TIME;
  {{attribute 'opcua' := 'rw'}} lvl : Level;
  {{attribute 'opcua' := 'rw'}} vMeas : REAL;
  {{attribute 'alarm' := 'severity=900; message=Rack too hot'}} hot : BOOL;
  counter : DINT;
  quot : INT;
  cells : ARRAY[1..{N_CELLS}] OF Cell;
  trend : ARRAY[1..3] OF REAL;
  g : Guard;
  k : INT;
END_VAR
counter := counter + 1;
quot := 100 / divisor;
FOR k := 1 TO {N_CELLS} DO
  cells[k].v := cells[k].v + 1.0;
  cells[k].t := DINT_TO_REAL(counter);
END_FOR;
trend[1] := setpoint;
hot := vMeas > 50.0;
g(v := vMeas / 10.0);
END_PROGRAM

PROGRAM Aux
VAR {{attribute 'opcua' := 'operator'}} x : INT; runs : INT; END_VAR
runs := runs + 1;
END_PROGRAM

CONFIGURATION Site
  RESOURCE Cpu ON PLC
    TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);
    TASK Slow(INTERVAL := T#50ms, PRIORITY := 2);
    PROGRAM Main WITH Fast : Main;
    PROGRAM Aux WITH Slow : Aux;
  END_RESOURCE
END_CONFIGURATION
"""
PW = {"vera": "viewer-pass", "otto": "operator-pass", "erin": "engineer-pass", "lena": "lockout-pass"}
ROLE = {"vera": "viewer", "otto": "operator", "erin": "engineer", "lena": "viewer"}
PERIOD = 10_000_000


class Rig:
    """Engine + alarms + bridge + server process, and the scan the test drives."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.engine = build(SRC, interval="10ms")
        self.engine.declare_input("Main.vMeas")
        self.log: list[tuple[str, dict]] = []
        self.engine.events = self._event
        self.alarms = alarm_set(self.engine, events=self._event)
        self.lock = threading.Lock()
        self.now = 0
        pki = os.path.join(tmp, "pki")
        users = {u: UserEntry(u, ROLE[u], hash_password(p, log2_n=4)) for u, p in PW.items()}
        self.cfg = OpcuaConfig(port=0, security=("None", "Sign", "SignAndEncrypt"), allow_insecure=True,
                               users=users, pki_dir=pki, trust_dir=os.path.join(pki, "trusted"),
                               application_uri="urn:gridplc:test", expose=[ExposeRule("Main.cells*", "ro")])
        for name in ("trusted", "stranger"):
            make_certificate(os.path.join(tmp, f"{name}.der"), os.path.join(tmp, f"{name}.pem"),
                             application_uri=f"urn:gridplc:test:{name}", common_name=name, client=True)
        os.makedirs(self.cfg.trust_dir)
        shutil.copy(os.path.join(tmp, "trusted.der"), self.cfg.trust_dir)
        self.io = {"bms": {"state": "connected", "frames": 12, "errors": {"timeout": 1}}}
        iomap = IoMap("/site/io.toml", devices={"bms": Device("bms", "can")})
        self.bridge = OpcuaBridge(self.engine, self.cfg, lock=self.lock, clock_ns=lambda: self.now,
                                  events=self._event, alarms=self.alarms, site="test", version="gridplc test",
                                  iomaps=[iomap], io_stats=lambda: self.io)
        self.port = self.bridge.start()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/gridplc/"

    def _event(self, kind, data):
        self.log.append((kind, data))

    def scan(self, n: int = 1) -> None:
        for _ in range(n):
            with self.lock:
                self.now += PERIOD
                self.engine.scan(self.now)
                self.alarms.after_scan(self.engine.scan_count, self.now)
                self.bridge.after_scan(self.engine.scan_count, self.now)
            time.sleep(0.005)


    def events(self, kind, at_least: int = 0):
        """The logged events of a kind. Those the server process reports reach
        the log through the bridge's receiver thread, after the client has its
        answer: wait (a little) until there are at_least of them."""
        end = time.monotonic() + 5
        while True:
            found = [d for k, d in self.log if k == kind]
            if len(found) >= at_least or time.monotonic() > end:
                return found
            time.sleep(0.01)

    def client(self, user: str | None = None, password: str | None = None, *, cert: str | None = None,
               mode=ua.MessageSecurityMode.SignAndEncrypt) -> "Session":
        return Session(self, user, password, cert, mode)


class Session:
    def __init__(self, rig, user, password, cert, mode):
        self.rig, self.user, self.password, self.cert, self.mode = rig, user, password, cert, mode

    async def __aenter__(self):
        c = Client(self.rig.url, timeout=10)
        if self.user is not None:
            c.set_user(self.user)
            c.set_password(self.password if self.password is not None else PW[self.user])
        if self.cert is not None:
            c.application_uri = f"urn:gridplc:test:{self.cert}"
            await c.set_security(SecurityPolicyBasic256Sha256, os.path.join(self.rig.tmp, f"{self.cert}.der"),
                                 os.path.join(self.rig.tmp, f"{self.cert}.pem"), mode=self.mode)
        await c.connect()
        self.c = c
        self.idx = await c.get_namespace_index("urn:gridplc")
        return self

    async def __aexit__(self, *exc):
        await self.c.disconnect()

    def node(self, path: str):
        return self.c.get_node(ua.NodeId(path, self.idx))

    async def write(self, path: str, value, vtype) -> str:
        dv = ua.DataValue(ua.Variant(value, vtype))
        params = ua.WriteParameters()
        params.NodesToWrite = [ua.WriteValue(NodeId=ua.NodeId(path, self.idx), AttributeId=ua.AttributeIds.Value,
                                             Value=dv)]
        return (await self.c.uaclient.write(params))[0].name


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(str(tmp_path_factory.mktemp("opcua")))
    r.scan()
    yield r
    r.bridge.stop()
    r.engine.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def until(fn, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        v = await fn()
        if v or time.monotonic() > end:
            return v
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ address space
def test_browse_follows_configuration_resource_task_program(rig):
    async def go():
        async with rig.client("vera") as s:
            objs = {(await n.read_browse_name()).Name: n for n in await s.c.nodes.objects.get_children()}
            cfg = objs["Site"]
            names = lambda ns: asyncio.gather(*(n.read_browse_name() for n in ns))   # noqa: E731
            assert {q.Name for q in await names(await cfg.get_children())} >= {"Resources", "Diagnostics", "Alarms"}
            res = (await (await cfg.get_child(f"{s.idx}:Resources")).get_children())[0]
            assert (await res.read_browse_name()).Name == "Cpu"
            tasks = await (await res.get_child(f"{s.idx}:Tasks")).get_children()
            assert [q.Name for q in await names(tasks)] == ["Fast", "Slow"]
            progs = await (await res.get_child(f"{s.idx}:Programs")).get_children()
            assert [p.nodeid for p in progs] == [ua.NodeId("Main", s.idx), ua.NodeId("Aux", s.idx)]
            inside = {q.Name for q in await names(await progs[0].get_children())}
            assert {"setpoint", "mode", "cells", "g", "trend"} <= inside
            cell = s.node("Main.cells[7]")
            assert {q.Name for q in await names(await cell.get_children())} == {"v", "t"}
            assert {q.Name for q in await names(await s.node("Main.g").get_children())} == {"limit", "v", "ov"}
    run(go())


def test_nodes_carry_builtin_types_units_ranges_and_enum_strings(rig):
    async def go():
        async with rig.client("vera") as s:
            sp = s.node("Main.setpoint")
            assert await sp.read_data_type() == ua.NodeId(ua.ObjectIds.Float)
            eu = await (await sp.get_child(f"{s.idx}:EngineeringUnits")).read_value()
            assert eu.DisplayName.Text == "kW" and eu.UnitId == 4937556            # UNECE KWT
            rng = await (await sp.get_child(f"{s.idx}:EURange")).read_value()
            assert (rng.Low, rng.High) == (-500.0, 500.0)
            mode = s.node("Main.mode")
            assert await mode.read_data_type() == ua.NodeId(ua.ObjectIds.Int32)
            strings = await (await mode.get_child(f"{s.idx}:EnumStrings")).read_value()
            assert [t.Text for t in strings] == ["IDLE", "CHARGE", "DISCHARGE"]
            assert await s.node("Main.hold").read_data_type() == ua.NodeId(ua.ObjectIds.Duration)
            assert await s.node("Main.trend").read_value() == [0.0, 0.0, 0.0]
            assert await s.node("Main.trend").read_value_rank() == 1
            assert await s.node("Main.counter").read_data_type() == ua.NodeId(ua.ObjectIds.Int32)
    run(go())


def test_values_carry_the_scan_time_and_the_input_quality(rig):
    async def go():
        async with rig.client("vera") as s:
            rig.engine.stage_input("Main.vMeas", 12.5, GOOD)
            before = time.time()
            rig.scan()                   # the test's clock stands still after it: no age
            after = time.time()
            counter = rig.engine.tag("Main.counter").get()

            async def fresh():
                dv = await s.node("Main.counter").read_data_value()
                return dv if dv.Value.Value == counter else None
            dv = await until(fresh)
            assert before <= dv.SourceTimestamp.timestamp() <= after + 0.5
            vm = s.node("Main.vMeas")
            assert (await until(lambda: _value_if(vm, 12.5))).StatusCode.is_good()
            rig.engine.stage_input("Main.vMeas", None, STALE, 0)
            rig.scan()
            dv = await until(lambda: _status_if(vm, "UncertainLastUsableValue"))
            assert dv.Value.Value == 12.5                      # Uncertain keeps the value
            rig.engine.stage_input("Main.vMeas", None, BAD, 0)
            rig.scan()
            dv = await until(lambda: _status_if(vm, "BadCommunicationError"))
            assert dv.StatusCode.name == "BadCommunicationError"
            rig.engine.stage_input("Main.vMeas", 12.5, GOOD)
            rig.scan()
            assert (await until(lambda: _status_if(vm, "Good"))) is not None
    run(go())


async def _value_if(node, want):
    dv = await node.read_data_value(raise_on_bad_status=False)
    return dv if dv.Value is not None and dv.Value.Value == want else None


async def _status_if(node, name):
    dv = await node.read_data_value(raise_on_bad_status=False)
    return dv if dv.StatusCode.name == name else None


# ------------------------------------------------------------------ subscriptions
class Changes:
    def __init__(self):
        self.values: dict = {}
        self.count = 0
        self.events: list = []

    def datachange_notification(self, node, val, data):
        self.values[node.nodeid.Identifier] = val
        self.count += 1

    def event_notification(self, event):
        self.events.append(event)


def test_a_thousand_tag_subscription_gets_the_changes_of_every_scan(rig):
    paths = [f"Main.cells[{i}].{f}" for i in range(1, N_CELLS + 1) for f in ("v", "t")]
    assert len(paths) == 1000

    async def go():
        async with rig.client("vera") as s:
            h = Changes()
            sub = await s.c.create_subscription(20, h)
            await sub.subscribe_data_change([s.node(p) for p in paths], queuesize=1)
            await until(lambda: _true(h.count >= 1000))
            for _ in range(3):
                before = h.count
                rig.scan()
                want = float(rig.engine.tag("Main.counter").get())
                await until(lambda: _true(h.count >= before + 1000 and h.values["Main.cells[500].t"] == want))
                assert h.count - before >= 1000
                assert all(h.values[f"Main.cells[{i}].t"] == want for i in range(1, N_CELLS + 1))
                assert h.values["Main.cells[3].v"] == float(rig.engine.tag("Main.cells[3].v").get())
            await sub.delete()
    run(go())


async def _true(v):
    return v


def test_a_client_that_vanishes_mid_subscription_leaves_the_others_served(rig):
    async def go():
        gone = Client(rig.url, timeout=5)
        gone.set_user("vera")
        gone.set_password(PW["vera"])
        await gone.connect()
        idx = await gone.get_namespace_index("urn:gridplc")
        sub = await gone.create_subscription(20, Changes())
        await sub.subscribe_data_change([gone.get_node(ua.NodeId("Main.counter", idx))])
        gone.uaclient.protocol.transport.abort()             # no CloseSession: the socket just dies
        rig.scan(3)
        async with rig.client("vera") as s:
            h = Changes()
            sub2 = await s.c.create_subscription(20, h)
            await sub2.subscribe_data_change([s.node("Main.counter")])
            rig.scan()
            want = rig.engine.tag("Main.counter").get()
            assert await until(lambda: _true(h.values.get("Main.counter") == want))
    run(go())


def test_twenty_clients_at_once(rig):
    async def one(i):
        async with rig.client("vera", cert=None) as s:
            return await s.node("Main.counter").read_value()

    async def go():
        return await asyncio.gather(*(one(i) for i in range(20)))
    values = run(go())
    assert len(values) == 20 and all(v == rig.engine.tag("Main.counter").get() for v in values)


# ------------------------------------------------------------------ writes
def test_writes_are_checked_queued_applied_at_the_next_scan_and_logged(rig):
    async def go():
        async with rig.client("otto") as s:
            assert await s.write("Main.setpoint", 42.5, ua.VariantType.Float) == "Good"
            assert rig.engine.tag("Main.setpoint").get() == 0.0            # queued, not applied yet
            rig.scan()
            assert rig.engine.tag("Main.setpoint").get() == 42.5
            assert rig.engine.tag("Main.trend[1]").get() == 42.5             # the program saw it in that scan
            assert await until(lambda: _value_if(s.node("Main.setpoint"), 42.5))
            assert await s.write("Main.g.limit", 3.7, ua.VariantType.Float) == "Good"
    run(go())
    w = [d for d in rig.events("write") if d["path"] == "Main.setpoint"]
    assert w[-1] == {"path": "Main.setpoint", "old": 0.0, "new": 42.5, "who": "opcua:otto"}


def test_a_write_to_a_task_that_did_not_run_is_published_after_the_scan_that_applied_it(rig):
    async def go():
        async with rig.client("otto") as s:
            while (rig.now + PERIOD) % 50_000_000 == 0:       # the next scan must not run Slow
                rig.scan()
            runs = rig.engine.tag("Aux.runs").get()
            assert await s.write("Aux.x", 77, ua.VariantType.Int16) == "Good"
            rig.scan()
            assert rig.engine.tag("Aux.runs").get() == runs and rig.engine.tag("Aux.x").get() == 77
            assert await until(lambda: _value_if(s.node("Aux.x"), 77))
    run(go())


def test_every_write_refusal_has_its_status_code_and_is_logged(rig):
    V = ua.VariantType

    async def go():
        out = {}
        async with rig.client("vera") as s:
            out["viewer"] = await s.write("Main.setpoint", 1.0, V.Float)
        async with rig.client("otto") as s:
            out["operator on rw"] = await s.write("Main.mode", 1, V.Int32)
        async with rig.client("erin") as s:
            out["read-only"] = await s.write("Main.counter", 5, V.Int32)
            out["field input"] = await s.write("Main.vMeas", 5.0, V.Float)
            out["array"] = await s.write("Main.trend", [1.0, 2.0, 3.0], V.Float)
            out["double to float"] = await s.write("Main.setpoint", 1.0, V.Double)
            out["range"] = await s.write("Main.setpoint", 600.0, V.Float)
            out["subrange"] = await s.write("Main.lvl", 101, V.Int16)
            out["enum"] = await s.write("Main.mode", 7, V.Int32)
            out["string"] = await s.write("Main.label", "nine char", V.String)
            out["time"] = await s.write("Main.hold", 1.5, V.Double)
            out["engineer ok"] = await s.write("Main.mode", 2, V.Int32)
            out["time ok"] = await s.write("Main.hold", 1500.0, V.Double)
            out["string ok"] = await s.write("Main.label", "it's ok", V.String)
        return out
    before = len(rig.events("opcua_write_refused"))
    out = run(go())
    assert out == {"viewer": "BadUserAccessDenied", "operator on rw": "BadUserAccessDenied",
                   "read-only": "BadNotWritable", "field input": "BadNotWritable", "array": "BadNotWritable",
                   "double to float": "BadTypeMismatch", "range": "BadOutOfRange", "subrange": "BadOutOfRange",
                   "enum": "BadOutOfRange", "string": "BadOutOfRange", "time": "BadOutOfRange",
                   "engineer ok": "Good", "time ok": "Good", "string ok": "Good"}
    refused = rig.events("opcua_write_refused", before + 11)[before:]
    assert len(refused) == 11
    assert refused[0] == {"user": "vera", "path": "Main.setpoint", "status": "BadUserAccessDenied",
                          "reason": "operator variables need the role operator"}
    rig.scan()
    assert (rig.engine.tag("Main.mode").get(), rig.engine.tag("Main.hold").get(),
            rig.engine.tag("Main.label").get()) == (2, 1500, "it's ok")
    assert rig.engine.tag("Main.setpoint").get() != 600.0 and rig.engine.tag("Main.lvl").get() <= 100


def test_writes_to_standard_nodes_and_attributes_are_refused(rig):
    async def go():
        async with rig.client("erin") as s:
            p = ua.WriteParameters()
            p.NodesToWrite = [
                ua.WriteValue(NodeId=ua.NodeId(ua.ObjectIds.Server_ServiceLevel), AttributeId=ua.AttributeIds.Value,
                              Value=ua.DataValue(ua.Variant(1, ua.VariantType.Byte))),
                ua.WriteValue(NodeId=ua.NodeId("Main.mode", s.idx), AttributeId=ua.AttributeIds.DisplayName,
                              Value=ua.DataValue(ua.Variant(ua.LocalizedText("x")))),
            ]
            return [r.name for r in await s.c.uaclient.write(p)]
    assert run(go()) == ["BadNotWritable", "BadNotWritable"]


def test_user_access_level_is_what_the_logged_in_role_may_do(rig):
    async def level(user):
        async with rig.client(user) as s:
            return [await s.node(p).read_attribute(ua.AttributeIds.UserAccessLevel)
                    for p in ("Main.setpoint", "Main.mode", "Main.counter")]

    def bits(dvs):
        return [dv.Value.Value for dv in dvs]
    assert bits(run(level("vera"))) == [1, 1, 1]
    assert bits(run(level("otto"))) == [3, 1, 1]
    assert bits(run(level("erin"))) == [3, 3, 1]


# ------------------------------------------------------------------ security
def test_signed_and_encrypted_sessions_with_a_trusted_certificate(rig):
    async def go(mode):
        async with rig.client("otto", cert="trusted", mode=mode) as s:
            assert s.c.security_policy.Mode == mode
            return await s.write("Main.setpoint", 7.0, ua.VariantType.Float)
    assert run(go(ua.MessageSecurityMode.Sign)) == "Good"
    assert run(go(ua.MessageSecurityMode.SignAndEncrypt)) == "Good"


def test_an_untrusted_certificate_is_refused_logged_and_kept_for_review(rig):
    async def go():
        with pytest.raises(ua.UaStatusCodeError) as ei:
            async with rig.client("erin", cert="stranger"):
                pass
        return ei.value
    err = run(go())
    assert isinstance(err, ua.uaerrors.BadCertificateUntrusted)
    refused = rig.events("opcua_certificate_refused", 1)
    assert refused and refused[-1]["application"] == "urn:gridplc:test:stranger"
    assert os.listdir(os.path.join(rig.cfg.pki_dir, "rejected"))


@pytest.mark.parametrize("user,password,reason", [
    ("otto", "wrong", "wrong password"),
    ("mallory", "anything", "unknown user"),
    ("admin", "anything", "unknown user"),          # asyncua's built-in admin is shut
])
def test_bad_logins_get_the_protocol_error_and_are_logged(rig, user, password, reason):
    before = len(rig.events("opcua_login_failed"))

    async def go():
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            async with rig.client(user, password):
                pass
    run(go())
    assert rig.events("opcua_login_failed", before + 1)[-1] == {"user": user, "reason": reason}


def test_repeated_wrong_passwords_lock_the_user_out_for_a_while(rig):
    before = len(rig.events("opcua_login_failed"))

    async def attempt(user, pw):
        try:
            async with rig.client(user, pw):
                return "in"
        except ua.uaerrors.BadUserAccessDenied:
            return "denied"

    async def go():
        tries = [await attempt("lena", "guess") for _ in range(5)]
        return tries + [await attempt("lena", PW["lena"]), await attempt("vera", PW["vera"])]
    assert run(go()) == ["denied"] * 6 + ["in"]          # the right password too, for a while; others unaffected
    assert [d for d in rig.events("opcua_login_failed", before + 6) if d["user"] == "lena"][-1] == \
        {"user": "lena", "reason": "locked out after repeated failures"}


def test_anonymous_is_off_unless_configured(rig):
    before = len(rig.events("opcua_login_failed"))

    async def go():
        with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
            async with rig.client(None):
                pass
    run(go())
    assert rig.events("opcua_login_failed", before + 1)[-1] == {"user": None, "reason": "BadIdentityTokenRejected"}


def test_no_logged_in_role_can_change_the_address_space(rig):
    async def go():
        async with rig.client("erin") as s:
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await s.c.nodes.objects.add_folder(s.idx, "intruder")
    run(go())


# ------------------------------------------------------------------ diagnostics and faults
def test_task_diagnostics_show_a_fault_with_its_location_and_an_engineer_resets_it(rig):
    async def go():
        async with rig.client("erin") as eng, rig.client("otto") as op:
            task = eng.node("task:Fast")
            assert await eng.write("Main.divisor", 0, ua.VariantType.Int16) == "Good"
            rig.scan()
            assert rig.engine.tasks[0].faulted is not None
            faulted = eng.node("task:Fast/Faulted")
            assert await until(lambda: _value_if(faulted, True))
            assert await eng.node("task:Fast/FaultText").read_value() == "division by zero"
            assert (await eng.node("task:Fast/FaultLocation").read_value()).startswith("t.st:")
            reset = ua.NodeId("task:Fast/Reset", eng.idx)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await op.node("task:Fast").call_method(reset, ua.Variant("warm", ua.VariantType.String))
            await task.call_method(reset, ua.Variant("warm", ua.VariantType.String))
            assert rig.engine.tasks[0].faulted is None
            rig.scan()
            assert await until(lambda: _value_if(faulted, False))
            assert await eng.node("task:Fast/ScanCount").read_value() == rig.engine.tasks[0].scans
            assert await eng.node("diag:ProgramHash").read_value() == rig.engine.project.source_hash
            assert await eng.node("diag:RuntimeVersion").read_value() == "gridplc test"
    run(go())
    assert rig.events("reset")[-1] == {"task": "Fast", "mode": "warm", "who": "opcua:erin"}
    assert rig.events("opcua_call_refused", 1)[-1]["user"] == "otto"


def test_io_device_status_and_counters(rig):
    async def go():
        async with rig.client("vera") as s:
            state = s.node("dev:bms/state")
            assert await until(lambda: _value_if(state, "connected"))
            assert await s.node("dev:bms/frames").read_value() == 12.0
            assert await s.node("dev:bms/errors.timeout").read_value() == 1.0
            rig.io = {"bms": {"state": "reconnecting", "frames": 12, "errors": {"timeout": 2}}}
            assert await until(lambda: _value_if(state, "reconnecting"), timeout=5)
            assert await s.node("dev:bms/errors.timeout").read_value() == 2.0
    run(go())


# ------------------------------------------------------------------ alarms
def test_alarms_are_condition_events_that_an_operator_acknowledges(rig):
    async def go():
        async with rig.client("otto") as s, rig.client("vera") as viewer:
            h = Changes()
            sub = await s.c.create_subscription(20, h)
            await sub.subscribe_events(ua.ObjectIds.Server, ua.ObjectIds.AlarmConditionType)
            rig.engine.stage_input("Main.vMeas", 60.0, GOOD)
            rig.scan()
            assert await until(lambda: _true(any(e.SourceName == "Main.hot" for e in h.events)))
            ev = [e for e in h.events if e.SourceName == "Main.hot"][-1]
            assert (ev.Severity, ev.Message.Text, ev.Retain) == (900, "Rack too hot", True)
            assert getattr(ev, "ActiveState/Id") is True and getattr(ev, "AckedState/Id") is False
            alarms = s.node("alarms")
            ack = ua.NodeId("alarms/Acknowledge", s.idx)
            args = (ua.Variant("Main.hot", ua.VariantType.String), ua.Variant("on it", ua.VariantType.String))
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await viewer.node("alarms").call_method(ack, *args)
            await alarms.call_method(ack, *args)
            assert await until(lambda: _true(getattr(h.events[-1], "AckedState/Id") is True))
            assert h.events[-1].ClientUserId == "opcua:otto"
            assert await s.node("alarm:Main.hot/Acked").read_value() is True
            # the standard AcknowledgeableCondition method with the EventId, on the latched Guard alarm
            ov = [e for e in h.events if e.SourceName == "Main.g.ov"][-1]
            cond = s.node("alarm:Main.g.ov")
            await cond.call_method(ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
                                   ua.Variant(ov.EventId, ua.VariantType.ByteString),
                                   ua.Variant(ua.LocalizedText("seen"), ua.VariantType.LocalizedText))
            assert rig.alarms.states["Main.g.ov"].acked
            with pytest.raises(ua.uaerrors.BadEventIdUnknown):
                await cond.call_method(ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
                                       ua.Variant(b"stale", ua.VariantType.ByteString),
                                       ua.Variant(ua.LocalizedText(""), ua.VariantType.LocalizedText))
            rig.engine.stage_input("Main.vMeas", 10.0, GOOD)
            rig.scan()
            assert await until(lambda: _true(any(e.SourceName == "Main.hot" and not e.Retain for e in h.events)))
            assert rig.alarms.states["Main.g.ov"].active               # latched until reset
            await alarms.call_method(ua.NodeId("alarms/Reset", s.idx), ua.Variant("Main.g.ov", ua.VariantType.String))
            assert not rig.alarms.states["Main.g.ov"].retain
            await sub.delete()
    run(go())
    acked = [d for d in rig.events("alarm") if d["what"] == "acked"]
    assert acked[0]["who"] == "opcua:otto" and acked[0]["comment"] == "on it"
    assert rig.events("alarm")[-1]["what"] == "reset"
