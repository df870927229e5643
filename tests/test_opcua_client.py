"""OPC UA client points against a real asyncua server on 127.0.0.1.

The server runs in its own thread and event loop (as another process would);
each test runs the driver in a fresh loop with a real InputStage and
OutputImage, and watches what the driver publishes.
"""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from runtime.io.config import Device, Point
from runtime.io.image import InputStage, IoPort, OutputImage
from runtime.io.opcua_client import OpcUaClientDriver, parse_node_id, quality_of
from runtime.io.quality import BAD, GOOD, STALE, WAITING

NS_URI = "urn:gridplc:test:field"
USER, PASSWORD = "scada", "s3cret-field"
VT = ua.VariantType
INPUTS = {"F32": (1.5, VT.Float), "F64": (2.25, VT.Double), "I16": (-7, VT.Int16),
          "B": (True, VT.Boolean), "S": ("hello", VT.String)}
OUTPUTS = {"OF32": (0.0, VT.Float), "OI16": (0, VT.Int16), "OB": (False, VT.Boolean),
           "OS": ("", VT.String), "OCYC": (0, VT.Int32)}
READ_ONLY = {"RO": (0.0, VT.Float)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def make_certificate(folder, name: str, use) -> tuple[str, str]:
    key, cert = folder / f"{name}.pem", folder / f"{name}.der"
    await setup_self_signed_certificate(key, cert, f"urn:gridplc:test:{name}", socket.gethostname(),
                                        [use], {"organizationName": "gridplc tests"})
    return str(cert), str(key)


class Users:
    """Anonymous sessions, or the one user with the right password."""

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is None or (username == USER and password == PASSWORD):
            return User(role=UserRole.User)
        return None


class FieldServer:
    """An asyncua server in a thread of its own; `call` runs a coroutine there."""

    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/field/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nodes: dict[str, object] = {}
        self.idx = self.call(self._start())

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> int:
        self.server = Server(user_manager=Users())
        await self.server.init()
        self.server.set_endpoint(self.url)
        cert, key = await make_certificate(self.folder, "server", ExtendedKeyUsageOID.SERVER_AUTH)
        await self.server.load_certificate(cert)
        await self.server.load_private_key(key)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity,
                                         ua.SecurityPolicyType.Basic256Sha256_Sign,
                                         ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        idx = await self.server.register_namespace(NS_URI)
        objects = self.server.nodes.objects
        for name, (v, vt) in {**INPUTS, **OUTPUTS, **READ_ONLY}.items():
            self.nodes[name] = await objects.add_variable(f"ns={idx};s={name}", name, ua.Variant(v, vt))
        for name in OUTPUTS:
            await self.nodes[name].set_writable()
        await self.server.start()
        return idx

    def node(self, name: str) -> str:
        return f"ns={self.idx};s={name}"

    def write(self, name: str, value, status=ua.StatusCodes.Good, source: datetime | None = None):
        vt = {**INPUTS, **OUTPUTS}[name][1]
        dv = ua.DataValue(ua.Variant(value, vt), StatusCode=ua.StatusCode(status), SourceTimestamp=source)
        self.call(self.nodes[name].write_value(dv))

    def read(self, name: str) -> ua.Variant:
        return self.call(self.nodes[name].read_data_value()).Value

    def stop(self):
        self.call(self.server.stop())

    def restart(self):
        self.call(self.server.start())

    def freeze(self, seconds: float):
        """The server process hangs: its socket stays open, nothing answers."""
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def close(self):
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    srv = FieldServer(tmp_path_factory.mktemp("opcua-pki"))
    yield srv
    srv.close()


class Rig:
    """A driver with a real port; `seen` keeps every update in arrival order."""

    def __init__(self, device: Device, points: list[Point]):
        self.stage = InputStage()
        self.outputs = OutputImage()
        self.port = IoPort(self.stage, self.outputs, time.monotonic_ns)
        self.driver = OpcUaClientDriver(device, points, self.port)
        self.seen: list = []
        self.latest: dict = {}

    def collect(self):
        for u in self.stage.drain().values():
            self.seen.append(u)
            self.latest[u.path] = u

    async def until(self, pred, timeout=3.0, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            self.collect()
            if pred():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; latest={self.latest} "
                                     f"stats={self.driver.stats()}")
            await asyncio.sleep(0.01)

    def is_(self, path, quality, value=...):
        u = self.latest.get(path)
        return u is not None and u.quality == quality and (value is ... or u.value == value)

    def set_outputs(self, **values):
        for k, v in values.items():
            self.outputs.values[f"Main.{k}"] = v
        threading.Thread(target=self.outputs.changed).start()    # as the scan thread would


def device(url: str, **kw) -> Device:
    kw.setdefault("period_ns", 50_000_000)
    kw.setdefault("timeout_ns", 1_000_000_000)
    return Device("feeder", "opcua", endpoint=url, **kw)


def run(coro, timeout=20):
    asyncio.run(asyncio.wait_for(coro, timeout))


async def running(rig: Rig, body):
    """Run the driver around `body`; nothing but the cancellation may escape it."""
    task = asyncio.create_task(rig.driver.run())
    try:
        await body()
        assert not task.done(), "the driver stopped on its own"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def inp(var, node, **kw) -> Point:
    return Point(f"Main.{var}", "feeder", "input", node=node, **kw)


def out(var, node, **kw) -> Point:
    return Point(f"Main.{var}", "feeder", "output", node=node, **kw)


# ---------------------------------------------------------------- inputs
def test_data_changes_arrive_as_good_updates_with_python_values(field):
    points = [inp(n.lower(), field.node(n)) for n in INPUTS]
    points.append(inp("byuri", f"nsu={NS_URI};s=F64"))
    points.append(inp("missing", field.node("NoSuchNode")))
    rig = Rig(device(field.url), points)

    async def body():
        await rig.until(lambda: all(rig.is_(f"Main.{n.lower()}", GOOD) for n in INPUTS), what="initial values")
        got = {n: rig.latest[f"Main.{n.lower()}"].value for n in INPUTS}
        assert got == {n: v for n, (v, _) in INPUTS.items()}
        assert type(got["I16"]) is int and type(got["B"]) is bool and type(got["F32"]) is float
        await rig.until(lambda: rig.is_("Main.byuri", GOOD, 2.25), what="nsu= NodeId")
        await rig.until(lambda: rig.is_("Main.missing", BAD, None), what="unknown node BAD")
        assert rig.driver.stats()["item_errors"] == {"Main.missing": "BadNodeIdUnknown"}

        field.write("F64", 3.75)
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 3.75), what="data change")
        field.write("S", "world")
        await rig.until(lambda: rig.is_("Main.s", GOOD, "world"), what="string change")
        st = rig.driver.stats()
        assert st["state"] == "connected" and st["connects"] == 1 and st["notifications"] >= 8

    run(running(rig, body))
    field.write("F64", 2.25)
    field.write("S", "hello")


def test_status_codes_map_to_quality(field):
    rig = Rig(device(field.url), [inp("f32", field.node("F32"))])
    S = ua.StatusCodes

    async def body():
        await rig.until(lambda: rig.is_("Main.f32", GOOD, 1.5))
        field.write("F32", 9.0, S.UncertainLastUsableValue)
        await rig.until(lambda: rig.is_("Main.f32", STALE, 9.0), what="Uncertain -> STALE, value kept")
        field.write("F32", 0.0, S.BadSensorFailure)
        await rig.until(lambda: rig.is_("Main.f32", BAD, None), what="Bad -> BAD, no value")
        field.write("F32", 0.0, S.BadWaitingForInitialData)
        await rig.until(lambda: rig.is_("Main.f32", WAITING, None), what="BadWaitingForInitialData -> WAITING")
        field.write("F32", 4.5)
        await rig.until(lambda: rig.is_("Main.f32", GOOD, 4.5), what="Good again")

    run(running(rig, body))
    field.write("F32", 1.5)


def test_quality_of_status_codes():
    S = ua.StatusCodes
    cases = {S.Good: GOOD, S.GoodLocalOverride: GOOD, S.UncertainSensorNotAccurate: STALE,
             S.UncertainLastUsableValue: STALE, S.BadWaitingForInitialData: WAITING,
             S.BadSensorFailure: BAD, S.BadCommunicationError: BAD}
    assert {c: quality_of(ua.StatusCode(c)) for c in cases} == cases
    assert quality_of(None) == GOOD


def test_timestamps_follow_the_source_timestamp_on_the_engine_clock(field):
    rig = Rig(device(field.url), [inp("f64", field.node("F64"), timeout_ns=2_000_000_000)])

    async def body():
        await rig.until(lambda: rig.is_("Main.f64", GOOD))
        t0 = time.monotonic_ns()
        field.write("F64", 5.5, source=datetime.now(timezone.utc) - timedelta(milliseconds=300))
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 5.5))
        t1 = time.monotonic_ns()
        ts = rig.latest["Main.f64"].ts_ns
        assert t0 - 300_000_000 - 20_000_000 <= ts <= t1 - 300_000_000 + 20_000_000
        # older than half the timeout: stamped when the server vouched for it
        t0 = time.monotonic_ns()
        field.write("F64", 6.5, source=datetime.now(timezone.utc) - timedelta(hours=1))
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 6.5))
        assert t0 <= rig.latest["Main.f64"].ts_ns <= time.monotonic_ns()

    run(running(rig, body))
    field.write("F64", 2.25)


def test_steady_input_is_vouched_for_within_its_timeout(field):
    timeout = 300_000_000
    rig = Rig(device(field.url), [inp("i16", field.node("I16"), timeout_ns=timeout)])

    async def body():
        await rig.until(lambda: rig.is_("Main.i16", GOOD, -7))
        worst = 0
        end = time.monotonic() + 0.7          # no change on the server meanwhile
        while time.monotonic() < end:
            rig.collect()
            worst = max(worst, time.monotonic_ns() - rig.latest["Main.i16"].ts_ns)
            await asyncio.sleep(0.02)
        assert rig.is_("Main.i16", GOOD, -7)
        assert worst < timeout, f"the engine would have seen it stale ({worst / 1e6:.0f} ms old)"
        assert sum(1 for u in rig.seen if u.path == "Main.i16") >= 3     # re-stamped, not sent once

    run(running(rig, body))


# ---------------------------------------------------------------- outputs
def test_outputs_are_written_with_the_node_type(field):
    points = [out("f", field.node("OF32")), out("i", field.node("OI16")), out("b", field.node("OB")),
              out("s", field.node("OS")), out("ro", field.node("RO")), out("gone", field.node("Gone"))]
    rig = Rig(device(field.url), points)

    async def body():
        await rig.until(lambda: rig.driver.stats()["state"] == "connected")
        rig.set_outputs(f=0.1, i=1234, b=True, s="run")
        await rig.until(lambda: rig.driver.stats()["writes_ok"] == 4, what="4 writes")
        assert field.read("OF32") == ua.Variant(0.10000000149011612, VT.Float)     # Float stays Float
        assert field.read("OI16") == ua.Variant(1234, VT.Int16)
        assert field.read("OB") == ua.Variant(True, VT.Boolean)
        assert field.read("OS") == ua.Variant("run", VT.String)

        rig.set_outputs(i=70000.0, ro=1.0, gone=1.0)
        await rig.until(lambda: rig.driver.stats()["writes_failed"] == 3, what="3 refusals")
        assert rig.driver.stats()["write_errors"] == {
            "BadOutOfRange": 1,                   # refused here: an Int16 cannot hold 70000
            "BadUserAccessDenied": 1,             # the server: RO is not writable
            "BadNodeIdUnknown": 1,                # its DataType could not be read
        }
        assert field.read("OI16") == ua.Variant(1234, VT.Int16)

        rig.set_outputs(f=-2.5)                                   # only what changed goes out
        await rig.until(lambda: field.read("OF32") == ua.Variant(-2.5, VT.Float), what="second write")
        await asyncio.sleep(0.1)
        assert rig.driver.stats()["writes_ok"] == 5

    run(running(rig, body))


def test_cyclic_output_is_rewritten_every_period(field):
    rig = Rig(device(field.url), [out("c", field.node("OCYC"), write="cyclic", period_ns=50_000_000)])

    async def body():
        rig.outputs.values["Main.c"] = 42
        await rig.until(lambda: rig.driver.stats()["writes_ok"] >= 1, what="first write")
        n = rig.driver.stats()["writes_ok"]
        await asyncio.sleep(0.3)
        assert rig.driver.stats()["writes_ok"] - n >= 3
        assert field.read("OCYC") == ua.Variant(42, VT.Int32)

    run(running(rig, body))


# ---------------------------------------------------------------- connection
def test_server_loss_makes_inputs_stale_then_reconnect_restores_values_and_outputs(field):
    rig = Rig(device(field.url, timeout_ns=500_000_000),
              [inp("f64", field.node("F64")), inp("b", field.node("B")), out("f", field.node("OF32"))])

    async def body():
        rig.outputs.values["Main.f"] = 12.5
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 2.25) and rig.is_("Main.b", GOOD, True))
        await rig.until(lambda: field.read("OF32") == ua.Variant(12.5, VT.Float), what="output written")

        await asyncio.to_thread(field.stop)
        await rig.until(lambda: rig.is_("Main.f64", STALE, None) and rig.is_("Main.b", STALE, None),
                        timeout=1.0, what="STALE after loss")
        await rig.until(lambda: rig.driver.stats()["connect_failures"] >= 1, what="a failed retry")
        assert rig.driver.stats()["state"] in ("connecting", "backoff")

        field.write("OF32", -1.0)          # the server comes back without our setpoint
        field.write("F64", 8.25)
        await asyncio.to_thread(field.restart)
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 8.25) and rig.is_("Main.b", GOOD, True),
                        timeout=5.0, what="values after reconnect")
        await rig.until(lambda: field.read("OF32") == ua.Variant(12.5, VT.Float), what="output rewritten")
        st = rig.driver.stats()
        assert st["state"] == "connected" and st["reconnects"] == 1

    run(running(rig, body))
    field.write("F64", 2.25)


def test_wrong_endpoint_keeps_retrying_without_raising():
    url = f"opc.tcp://127.0.0.1:{free_port()}/nobody/"
    rig = Rig(device(url, backoff_max_ns=200_000_000), [inp("x", "ns=2;s=X"), out("y", "ns=2;s=Y")])

    async def body():
        rig.set_outputs(y=1.0)
        await rig.until(lambda: rig.driver.stats()["connect_failures"] >= 3, what="three failed attempts")
        st = rig.driver.stats()
        assert st["connects"] == 0 and st["state"] in ("connecting", "backoff")
        assert "ConnectionRefused" in st["last_error"]
        assert rig.seen == []            # nothing heard: the engine keeps the input WAITING

    run(running(rig, body))


def test_missing_password_variable_is_reported_and_retried(field):
    name = "GRIDPLC_TEST_OPCUA_PASSWORD_UNSET"
    os.environ.pop(name, None)
    rig = Rig(device(field.url, user="scada", password_env=name), [inp("x", field.node("F32"))])

    async def body():
        await rig.until(lambda: rig.driver.stats()["connect_failures"] >= 2)
        assert rig.driver.stats()["last_error"] == f"environment variable {name} (the password) is not set"

    run(running(rig, body))


def test_parse_node_id():
    for good in ("ns=2;s=Feeder.P", "i=2258", "ns=3;i=1001", "ns=2;s=a;b=c", "nsu=urn:site:x;s=P",
                 "ns=1;g=09087e75-8e5e-499b-954f-f2a9603db28a", "ns=1;b=aGVsbG8="):
        assert parse_node_id(good) is None, good
    for bad, why in (("Feeder.P", "not a NodeId"), ("ns=2;s=", "empty"), ("ns=2;i=x", "numeric"),
                     ("ns=70000;i=1", "65535"), ("ns=1;g=nope", "GUID"), ("ns=1;b=@@", "base64"),
                     ("ns=2;q=1", "not a NodeId"), ("", "not a NodeId")):
        err = parse_node_id(bad)
        assert err is not None and why in err and "\n" not in err, (bad, err)


def test_hung_server_is_detected_and_left_for_a_fresh_connection(field):
    rig = Rig(device(field.url, timeout_ns=300_000_000), [inp("f64", field.node("F64"))])

    async def body():
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 2.25))
        field.freeze(0.9)
        await rig.until(lambda: rig.is_("Main.f64", STALE, None), timeout=1.0, what="STALE while hung")
        await rig.until(lambda: rig.is_("Main.f64", GOOD, 2.25), timeout=4.0, what="values after the hang")
        assert rig.driver.stats()["reconnects"] == 1

    run(running(rig, body))


@pytest.mark.parametrize("security", ["Basic256Sha256,Sign", "Basic256Sha256,SignAndEncrypt"])
def test_secure_channel_with_user_and_password(field, monkeypatch, security):
    cert, key = asyncio.run(make_certificate(field.folder, "client", ExtendedKeyUsageOID.CLIENT_AUTH))
    monkeypatch.setenv("GRIDPLC_TEST_OPCUA_PASSWORD", PASSWORD)
    rig = Rig(device(field.url, security=security, certificate=cert, private_key=key, user=USER,
                     password_env="GRIDPLC_TEST_OPCUA_PASSWORD"),
              [inp("f32", field.node("F32")), out("i", field.node("OI16"))])

    async def body():
        rig.outputs.values["Main.i"] = -321
        await rig.until(lambda: rig.is_("Main.f32", GOOD, 1.5), what="value over a secure channel")
        await rig.until(lambda: field.read("OI16") == ua.Variant(-321, VT.Int16), what="secure write")

    run(running(rig, body))


def test_wrong_password_is_refused_and_retried(field, monkeypatch):
    monkeypatch.setenv("GRIDPLC_TEST_OPCUA_PASSWORD", "not-it")
    rig = Rig(device(field.url, user=USER, password_env="GRIDPLC_TEST_OPCUA_PASSWORD"),
              [inp("f32", field.node("F32"))])

    async def body():
        await rig.until(lambda: rig.driver.stats()["connect_failures"] >= 2, what="refused twice")
        st = rig.driver.stats()
        assert st["connects"] == 0 and st["last_error"].startswith("BadUserAccessDenied")
        assert rig.seen == []

    run(running(rig, body))
