"""The OPC UA server with zero configuration (gridplc sim / demo), a server
that cannot start, and the `gridplc opcua` helper commands."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from asyncua import Client, ua
from cryptography import x509

from runtime.opcua.bridge import BridgeError, OpcuaBridge
from runtime.opcua.config import OpcuaConfig
from runtime.opcua.users import verify_password
from runtime.scheduler import Scheduler
from tests.stutil import build

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = """PROGRAM Main
VAR {attribute 'opcua' := 'operator'} request : REAL; {attribute 'opcua' := 'rw'} mode : INT; n : INT; END_VAR
n := n + 1;
END_PROGRAM"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """As `gridplc run` wires it: the real scheduler at 20 ms, the runtime lock
    around each scan, the bridge sampling halfway between scans."""
    state = str(tmp_path_factory.mktemp("demo"))
    e = build(SRC, interval="20ms")
    log = []
    lock = threading.Lock()

    def tick(now_ns, due):
        with lock:
            e.scan(now_ns, due)
            b.after_scan(e.scan_count, now_ns)
    sched = Scheduler(e.tasks, tick)
    b = OpcuaBridge(e, OpcuaConfig.demo(state, port=0), lock=lock, events=lambda k, d: log.append((k, d)),
                    clock_ns=lambda: sched.clock.now_ns() - sched.start_ns, sample_phase=0.5)
    e.events = lambda k, d: log.append((k, d))
    b.start()
    sched.start()
    yield e, b, lock, log, state
    sched.stop()
    b.stop()
    e.close()


async def _read_until(node, want, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        dv = await node.read_data_value()
        if want(dv.Value.Value):
            return dv
        await asyncio.sleep(0.02)
    return None


def test_zero_configuration_serves_anonymous_operators_on_loopback(demo):
    e, b, lock, log, _state = demo

    async def go():
        async with Client(b.endpoint, timeout=10) as c:
            idx = await c.get_namespace_index("urn:gridplc")
            req = c.get_node(ua.NodeId("Main.request", idx))
            assert await req.read_value() == 0.0
            await req.write_attribute(ua.AttributeIds.Value, ua.DataValue(ua.Variant(5.0, ua.VariantType.Float)))
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await c.get_node(ua.NodeId("Main.mode", idx)).write_value(ua.Variant(1, ua.VariantType.Int16))
            assert await _read_until(req, lambda v: v == 5.0)            # applied by a scan, then published
            n = c.get_node(ua.NodeId("Main.n", idx))
            first = (await n.read_data_value()).Value.Value
            dv = await _read_until(n, lambda v: v >= first + 3)          # the scans go on being published
            age = time.time() - dv.SourceTimestamp.timestamp()
            assert 0 <= age < 2.0
    asyncio.run(go())
    assert ("write", {"path": "Main.request", "old": 0.0, "new": 5.0, "who": "opcua:anonymous"}) in log
    assert b.endpoint.startswith("opc.tcp://127.0.0.1:")


def test_a_server_certificate_is_made_on_first_start(demo):
    _e, _b, _lock, log, state = demo
    path = os.path.join(state, "opcua", "server_cert.der")
    cert = x509.load_der_x509_certificate(open(path, "rb").read())
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:gridplc:demo" in uris.get_values_for_type(x509.UniformResourceIdentifier)
    assert oct(os.stat(os.path.join(state, "opcua", "server_key.pem")).st_mode & 0o777) == "0o600"
    assert [d for k, d in log if k == "opcua_certificate"] == [{"made": path}]


def test_a_port_in_use_is_one_clear_line(demo):
    _e, b, _lock, _log, state = demo
    e = build(SRC, interval="100ms")
    try:
        other = OpcuaBridge(e, OpcuaConfig.demo(state, port=b.port))
        with pytest.raises(BridgeError) as ei:
            other.start()
        msg = str(ei.value)
        assert msg.startswith(f"OPC UA server on 127.0.0.1:{b.port}: ") and "\n" not in msg
        assert other.proc is None and other.port is None
    finally:
        e.close()


def test_a_server_process_that_dies_is_restarted_on_the_same_port(demo):
    e, b, lock, log, _state = demo
    port, old = b.port, b.proc
    old.kill()
    deadline = time.monotonic() + 30
    while (b.proc is old or not [d for k, d in log if k == "opcua_start"][1:]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b.proc is not old and b.port == port
    assert [d for k, d in log if k == "opcua_server_exit"][-1]["returncode"] == -9

    async def go():
        async with Client(b.endpoint, timeout=10) as c:
            idx = await c.get_namespace_index("urn:gridplc")
            n = c.get_node(ua.NodeId("Main.n", idx))
            assert await _read_until(n, lambda v: v > 0)               # the new server got everything again
            assert await c.get_node(ua.NodeId("Main.request", idx)).read_value() == 5.0
    asyncio.run(go())


def _gridplc(*args, stdin: str = ""):
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_hash_password_prints_a_hash_for_the_config():
    r = _gridplc("opcua", "hash-password", "--stdin", "--user", "alice", "--role", "operator",
                 stdin="long enough pw\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["[opcua.users.alice]", 'role = "operator"']
    h = lines[2].split('"')[1]
    assert verify_password("long enough pw", h) and "long enough" not in r.stdout
    short = _gridplc("opcua", "hash-password", "--stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


def test_gen_cert_makes_a_client_certificate(tmp_path):
    r = _gridplc("opcua", "gen-cert", str(tmp_path), "--client", "scada", "--uri", "urn:site:scada")
    assert r.returncode == 0, r.stderr
    cert = x509.load_der_x509_certificate((tmp_path / "scada_cert.der").read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "gridplc scada"
    again = _gridplc("opcua", "gen-cert", str(tmp_path), "--client", "scada")
    assert again.returncode == 2 and "exists" in again.stderr
