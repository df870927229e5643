"""OPC UA client points: nodes of another server as inputs and outputs.

Inputs come from one subscription with a monitored item per node, published
and sampled every `device.period_ns` (queue size 1: the image wants the
latest value, not the history). Every data change becomes an `Update` whose
quality follows the StatusCode the server sent with it:

    Good*                        GOOD     the value
    Uncertain*                   STALE    the value (the server's, kept but not trusted)
    Bad_WaitingForInitialData    WAITING  None
    any other Bad*               BAD      None (the engine keeps the last value, flagged)

A value that is not a scalar bool/int/float/string (arrays, structures,
dates, byte strings) is BAD as well: the I/O map bound it to a scalar.

Timestamps. `ts_ns` is the value's SourceTimestamp (ServerTimestamp when the
server sent none) carried into the engine clock by its age: `port.clock_ns()`
at arrival minus (wall clock now - SourceTimestamp), the age clamped at zero
so a server clock running ahead never dates a value in the future. The wall
clock is read here, in the driver, never in a scan. A server clock lagging
ours makes values look older than they are; the next rule bounds that.

OPC UA reports by exception: a value that does not change is not sent again,
and its SourceTimestamp can be hours old while the server still vouches for
it. The engine marks an input STALE when its timestamp is older than the
point's timeout, so every time the server speaks (a data change, or a
publish response or keep-alive of the live subscription) a GOOD input whose
timestamp is older than half its timeout is re-stamped with that moment.
The keep-alive count is chosen so the server speaks at least every quarter
of the shortest input timeout (this needs `period` <= timeout / 4). So the
engine's timeout means "no word from the server for this long", and a
recent change keeps its source time.

Outputs are written when `port.output(var)` changes (the driver listens on
the OutputImage), every `period` for points with write = "cyclic", and all of
them again after every (re)connect. Each is written with the Variant type of
the node's own DataType, read once per connection: a Python float goes out
as Float to a Float node (asyncua alone would send Double, which a Float
node refuses). A value the node type cannot hold is refused locally and
counted like a server refusal (BadOutOfRange, BadTypeMismatch). Failures are
counted by status code name; a failed value is not retried until it changes
or the connection is renewed.

Connection. asyncua's client supervisor (auto_reconnect off) probes the
server every `timeout` and turns a dropped socket or a dead server into a
state change; the driver then publishes STALE for every input that has a
value, drops the client and connects afresh with exponential backoff (0.1 s
doubling to `device.backoff_max_ns`). A fresh session and subscription,
rather than asyncua's own reconnect that transfers the old subscription,
because new monitored items make the server send every current value again
(transferred ones only send what changes, leaving steady inputs STALE), the
namespace indices and data types are read again, and the outputs rewritten.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.ua_utils import data_type_to_variant_type
from asyncua.crypto import security_policies

from .config import Device, Point
from .image import BACKOFF_START_S, IoPort, Update, backoff, wake
from .quality import BAD, GOOD, STALE, WAITING

_log = logging.getLogger(__name__)

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NO_TIME = datetime(1601, 1, 2, tzinfo=timezone.utc)    # DateTime.MinValue and near it: "not set"
# A client that vanishes without closing its session should not leave its
# subscription on the other server for asyncua's default hour.
_SESSION_TIMEOUT_MS = 60_000
_SUBSCRIPTION_LIFETIME_S = 10.0
_F32_MAX = 3.4028234663852886e38

_VT = ua.VariantType
_INT_RANGES = {
    _VT.SByte: (-2**7, 2**7 - 1), _VT.Byte: (0, 2**8 - 1),
    _VT.Int16: (-2**15, 2**15 - 1), _VT.UInt16: (0, 2**16 - 1),
    _VT.Int32: (-2**31, 2**31 - 1), _VT.UInt32: (0, 2**32 - 1),
    _VT.Int64: (-2**63, 2**63 - 1), _VT.UInt64: (0, 2**64 - 1),
}
_SECURITY_MODES = {
    "Basic256Sha256,Sign": ua.MessageSecurityMode.Sign,
    "Basic256Sha256,SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
SECURITY_CHOICES = ("None", *_SECURITY_MODES)
# Service results that mean the session is gone, not that one request was refused.
_SESSION_GONE = {
    ua.StatusCodes.BadSessionIdInvalid, ua.StatusCodes.BadSessionClosed, ua.StatusCodes.BadSessionNotActivated,
    ua.StatusCodes.BadSecureChannelIdInvalid, ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadConnectionClosed, ua.StatusCodes.BadServerNotConnected, ua.StatusCodes.BadShutdown,
    ua.StatusCodes.BadCommunicationError, ua.StatusCodes.BadNotConnected,
}


# ---------------------------------------------------------------- NodeId text
_NODE_RE = re.compile(r"(?:ns=(\d+);|nsu=([^;]+);)?([isgb])=(.*)", re.S)


@dataclass(frozen=True)
class NodeRef:
    """A NodeId as written in the I/O map; `uri` set when given as nsu=...,
    resolved to an index against the server's namespace array on connect."""
    text: str
    ns: int
    uri: str | None
    ident: object


def _parse(text: str) -> NodeRef | str:
    m = _NODE_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return (f"{text!r} is not a NodeId (expected e.g. \"ns=2;s=Feeder.P\", \"ns=2;i=1001\" "
                f"or \"nsu=urn:site;s=Feeder.P\")")
    ns_text, uri, kind, raw = m.groups()
    ns = int(ns_text) if ns_text is not None else 0
    if ns > 0xFFFF:
        return f"{text!r}: namespace index {ns} is above 65535"
    if kind == "i":
        if not raw.isdigit() or int(raw) > 0xFFFFFFFF:
            return f"{text!r}: a numeric identifier is 0..4294967295"
        ident: object = int(raw)
    elif kind == "s":
        if not raw:
            return f"{text!r}: the string identifier is empty"
        ident = raw
    elif kind == "g":
        try:
            ident = uuid.UUID(raw)
        except ValueError:
            return f"{text!r}: {raw!r} is not a GUID"
    else:
        try:
            ident = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            ident = b""
        if not ident:
            return f"{text!r}: {raw!r} is not a base64 byte string"
    return NodeRef(text, ns, uri, ident)


def parse_node_id(text: str) -> str | None:
    """None when `text` is a NodeId this driver can use, else what is wrong
    (one line, for the I/O map loader's `file:line: key: ...` messages)."""
    r = _parse(text)
    return r if isinstance(r, str) else None


# ---------------------------------------------------------------- conversions
def quality_of(status: ua.StatusCode | None) -> int:
    """The input quality an OPC UA StatusCode stands for."""
    code = status.value if status is not None else 0
    if code == ua.StatusCodes.BadWaitingForInitialData:
        return WAITING
    severity = code >> 30
    return GOOD if severity == 0 else STALE if severity == 1 else BAD


def _py_value(variant: ua.Variant | None):
    """bool/int/float/str, or None when the value is no scalar the image holds."""
    v = variant.Value if variant is not None else None
    if isinstance(v, bool) or isinstance(v, (float, str)):
        return v
    if isinstance(v, int):
        return int(v)           # enumerations arrive as IntEnum members
    if isinstance(v, ua.LocalizedText):
        return v.Text
    return None


def _variant(v, vt: ua.VariantType | None) -> ua.Variant | str:
    """`v` as a Variant of the node's type, or the status name of why not."""
    if vt is None or vt == _VT.Variant:
        return ua.Variant(v)            # BaseDataType / Number: the server takes any
    if vt == _VT.String:
        return ua.Variant(v, vt) if isinstance(v, str) else "BadTypeMismatch"
    if isinstance(v, str):
        return "BadTypeMismatch"
    if vt == _VT.Boolean:
        return ua.Variant(bool(v), vt) if isinstance(v, int) else "BadTypeMismatch"
    if vt in _INT_RANGES:
        if isinstance(v, float):
            if not math.isfinite(v):
                return "BadOutOfRange"
            v = round(v)                # ties to even, like REAL_TO_INT
        lo, hi = _INT_RANGES[vt]
        return ua.Variant(int(v), vt) if lo <= v <= hi else "BadOutOfRange"
    if vt in (_VT.Float, _VT.Double):
        x = float(v)
        if vt == _VT.Float and math.isfinite(x) and abs(x) > _F32_MAX:
            return "BadOutOfRange"
        return ua.Variant(x, vt)
    return "BadTypeMismatch"


def _unix_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _UNIX_EPOCH) // timedelta(microseconds=1) * 1000


def _status_name(code: int) -> str:
    return ua.StatusCode(code).name


class _ConfigProblem(Exception):
    """Something in the device's settings that no retry will fix."""


def _one_line(e: BaseException) -> str:
    if isinstance(e, _ConfigProblem):
        return str(e)
    if isinstance(e, ua.UaStatusCodeError):
        return _status_name(e.code)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# ---------------------------------------------------------------- the driver
@dataclass
class _Input:
    path: str
    ref: NodeRef
    half_timeout_ns: int
    q: int | None = None          # None: never heard of since start
    value: object = None
    ts_ns: int | None = None


_UNSENT = object()


@dataclass
class _Output:
    path: str
    ref: NodeRef
    cyclic_ns: int | None
    node: ua.NodeId | None = None
    vtype: ua.VariantType | None = None
    unusable: str | None = None   # status name when the node cannot be written this session
    sent: object = _UNSENT
    due_ns: int = 0               # monotonic, for cyclic writes


class _Handler:
    """asyncua calls these from one task per notification; they only queue."""

    def __init__(self, driver: "OpcUaClientDriver", session: int):
        self._driver = driver
        self._session = session

    def datachange_notification(self, node, val, data) -> None:
        self._driver._on_change(self._session, node.nodeid, data.monitored_item.Value)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        self._driver._on_subscription_status(self._session, status.Status)


class OpcUaClientDriver:
    """Driver for one `transport = "opcua"` device (see the module doc)."""

    def __init__(self, device: Device, points: list[Point], port: IoPort):
        if device.transport != "opcua":
            raise ValueError(f"device {device.name!r} is {device.transport!r}, not opcua")
        self.device = device
        self._port = port
        self._period_s = device.period_ns / 1e9
        self._timeout_s = device.timeout_ns / 1e9
        self._inputs: list[_Input] = []
        self._outputs: list[_Output] = []
        for p in points:
            ref = _parse(p.node)
            if isinstance(ref, str):
                raise ValueError(f"{p.var}: {ref}")
            if p.direction == "input":
                timeout = p.timeout_ns if p.timeout_ns is not None else device.timeout_ns
                self._inputs.append(_Input(p.var, ref, timeout // 2))
            else:
                cyclic = (p.period_ns or device.period_ns) if p.write == "cyclic" else None
                self._outputs.append(_Output(p.var, ref, cyclic))
        shortest = min((2 * i.half_timeout_ns for i in self._inputs), default=device.timeout_ns)
        self._keepalive_count = max(1, shortest // 4 // max(device.period_ns, 1))
        self._by_node: dict[ua.NodeId, list[_Input]] = {}
        self._session = 0                 # which connection notifications belong to; 0: none
        self._pending: list[Update] = []
        self._flush_due = False
        self._wake: asyncio.Event | None = None
        self._lost: asyncio.Event | None = None
        self._lost_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = False
        self._app_uri: str | None = None
        # stats
        self._state = "starting"
        self._connects = 0
        self._connect_failures = 0
        self._notifications = 0
        self._writes_ok = 0
        self._write_errors: dict[str, int] = {}
        self._item_errors: dict[str, str] = {}
        self._last_error: str | None = None
        self._retry_in_s = 0.0

    # ------------------------------------------------------------ contract
    def stats(self) -> dict:
        """state: starting | connecting | connected | backoff | stopped;
        connects counts sessions opened, reconnects those after the first;
        write_errors and item_errors are keyed by status code name / point."""
        return {
            "device": self.device.name,
            "transport": "opcua",
            "endpoint": self.device.endpoint,
            "state": self._state,
            "connects": self._connects,
            "reconnects": max(0, self._connects - 1),
            "connect_failures": self._connect_failures,
            "notifications": self._notifications,
            "writes_ok": self._writes_ok,
            "writes_failed": sum(self._write_errors.values()),
            "write_errors": dict(self._write_errors),
            "item_errors": dict(self._item_errors),
            "last_error": self._last_error,
            "retry_in_s": self._retry_in_s,
        }

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        if not self._listening:
            self._port.outputs.listen(self._on_outputs)
            self._listening = True
        delay = BACKOFF_START_S
        while True:
            self._state = "connecting"
            try:
                if await self._session_run():
                    delay = BACKOFF_START_S
            except asyncio.CancelledError:
                self._state = "stopped"
                raise
            except Exception as e:  # noqa: BLE001 - every failure becomes a retry, never a crash
                self._connect_failures += 1
                self._error(_one_line(e))
            delay = await backoff(self, delay, self.device.backoff_max_ns)

    # ------------------------------------------------------------ one connection
    async def _session_run(self) -> bool:
        """Connect, serve until the connection is lost. True when it got as far
        as serving (so the backoff starts over)."""
        client = await self._client()
        session = 0
        try:
            await client.connect()
            self._connects += 1
            self._session += 1
            session = self._session
            self._lost.clear()
            ns = await self._namespaces(client)
            await self._prepare_outputs(client, ns)
            sub = await self._subscribe(client, ns, session)
            self._state = "connected"
            _log.info("%s: connected to %s", self.device.name, self.device.endpoint)
            for o in self._outputs:
                o.sent = _UNSENT
            self._wake.set()
            jobs = [self._until_lost(client), self._writer(client)]
            if sub is not None:
                jobs.append(self._confirmer(sub))
            tasks = [asyncio.create_task(c) for c in jobs]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                e = t.exception()
                self._error(_one_line(e) if e is not None else t.result())
            _log.warning("%s: %s; reconnecting", self.device.name, self._last_error)
            return True
        finally:
            if session == self._session:
                self._session = 0           # late notifications of this connection are ignored
            if session:
                self._flush()
                self._all_stale()
            await self._drop(client)

    async def _client(self) -> Client:
        d = self.device
        if not d.endpoint:
            raise _ConfigProblem("no endpoint")
        client = Client(d.endpoint, timeout=self._timeout_s, watchdog_intervall=self._timeout_s)
        client.session_timeout = _SESSION_TIMEOUT_MS
        if d.user is not None:
            client.set_user(d.user)
            if d.password_env is not None:
                password = os.environ.get(d.password_env)
                if password is None:
                    raise _ConfigProblem(f"environment variable {d.password_env} (the password) is not set")
                client.set_password(password)
        if d.security != "None":
            mode = _SECURITY_MODES.get(d.security)
            if mode is None:
                raise _ConfigProblem(f"security {d.security!r}: one of {', '.join(SECURITY_CHOICES)}")
            if not d.certificate or not d.private_key:
                raise _ConfigProblem(f"security {d.security!r} needs certificate and private_key")
            if self._app_uri is None:
                self._app_uri = _certificate_uri(d.certificate)
            if self._app_uri:
                client.application_uri = self._app_uri   # servers check it against the certificate
            await client.set_security(security_policies.SecurityPolicyBasic256Sha256,
                                      d.certificate, d.private_key, mode=mode)
        return client

    async def _drop(self, client: Client) -> None:
        try:
            await asyncio.wait_for(client.disconnect(), self._timeout_s)
        except asyncio.CancelledError:
            client.disconnect_socket()
            raise
        except Exception:  # noqa: BLE001 - the connection is being thrown away anyway
            client.disconnect_socket()

    async def _namespaces(self, client: Client) -> dict[str, int]:
        if not any(r.ref.uri for r in (*self._inputs, *self._outputs)):
            return {}
        return {uri: i for i, uri in enumerate(await client.get_namespace_array())}

    def _node(self, ref: NodeRef, ns: dict[str, int]) -> ua.NodeId | None:
        if ref.uri is None:
            return ua.NodeId(ref.ident, ref.ns)
        idx = ns.get(ref.uri)
        return None if idx is None else ua.NodeId(ref.ident, idx)

    async def _prepare_outputs(self, client: Client, ns: dict[str, int]) -> None:
        for o in self._outputs:
            o.node = self._node(o.ref, ns)
            o.vtype = None
            o.unusable = None if o.node is not None else "BadNodeIdUnknown"
        outs = [o for o in self._outputs if o.node is not None]
        if not outs:
            return
        dvs = await client.read_attributes([client.get_node(o.node) for o in outs], ua.AttributeIds.DataType)
        for o, dv in zip(outs, dvs):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                o.unusable = dv.StatusCode.name
                continue
            try:
                o.vtype = await data_type_to_variant_type(client.get_node(dv.Value.Value))
            except ua.UaError:
                o.vtype = _VT.Variant     # a type we cannot place: let asyncua pick from the value

    async def _subscribe(self, client: Client, ns: dict[str, int], session: int):
        self._by_node = {}
        self._item_errors = {}
        bad: list[Update] = []
        for i in self._inputs:
            node = self._node(i.ref, ns)
            if node is None:
                self._item_errors[i.path] = f"namespace {i.ref.uri!r} is not on the server"
                bad.append(self._mark(i, BAD))
            else:
                self._by_node.setdefault(node, []).append(i)
        if not self._by_node:
            if bad:
                self._port.publish(bad)
            return None
        period_ms = self.device.period_ns / 1e6
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=period_ms,
            RequestedLifetimeCount=max(3 * self._keepalive_count,
                                       math.ceil(_SUBSCRIPTION_LIFETIME_S / self._period_s)),
            RequestedMaxKeepAliveCount=self._keepalive_count,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        sub = await client.create_subscription(params, _Handler(self, session))
        nodes = list(self._by_node)
        results = await sub.subscribe_data_change([client.get_node(n) for n in nodes], queuesize=1,
                                                  sampling_interval=period_ms)
        for node, r in zip(nodes, results):
            if isinstance(r, ua.StatusCode):
                for i in self._by_node.pop(node):
                    self._item_errors[i.path] = r.name
                    bad.append(self._mark(i, BAD))
        if bad:
            self._port.publish(bad)
        return sub

    async def _until_lost(self, client: Client) -> str:
        """Returns why, once asyncua says the connection is gone or the server
        ended the subscription."""
        lost = asyncio.create_task(self._lost.wait())
        try:
            async with client.subscribe_state() as states:
                while client.state is UaClientState.CONNECTED and not self._lost.is_set():
                    change = asyncio.create_task(states.next_change())
                    await asyncio.wait((change, lost), return_when=asyncio.FIRST_COMPLETED)
                    change.cancel()
        finally:
            lost.cancel()
        return self._lost_reason if self._lost.is_set() else "connection lost"

    # ------------------------------------------------------------ inputs
    def _on_change(self, session: int, node: ua.NodeId, dv: ua.DataValue) -> None:
        if session != self._session:
            return
        arrival = self._port.clock_ns()
        wall = time.time_ns()
        for i in self._by_node.get(node, ()):
            self._notifications += 1
            q = quality_of(dv.StatusCode)
            value = None
            if q in (GOOD, STALE):
                value = _py_value(dv.Value)
                if value is None:
                    q = BAD
                    self._item_errors[i.path] = f"unsupported value type {dv.Value.VariantType.name}"
                else:
                    self._item_errors.pop(i.path, None)
            src = dv.SourceTimestamp or dv.ServerTimestamp
            ts = arrival if src is None or src < _NO_TIME else arrival - max(0, wall - _unix_ns(src))
            if q == GOOD and ts < arrival - i.half_timeout_ns:
                ts = arrival
            i.q, i.ts_ns = q, ts
            if value is not None:
                i.value = value
            self._pending.append(Update(i.path, value, q, ts))
        if self._pending and not self._flush_due:
            # asyncua dispatches the items of one publish response as tasks queued
            # back to back; flushing after them keeps one response one group.
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self._pending:
            ups, self._pending = self._pending, []
            self._port.publish(ups)

    def _on_subscription_status(self, session: int, status: ua.StatusCode) -> None:
        if session == self._session and status is not None and status.is_bad():
            self._lost_reason = f"subscription ended by the server: {status.name}"
            self._lost.set()

    async def _confirmer(self, sub) -> None:
        """Re-stamps steady GOOD inputs whenever the live subscription speaks."""
        seen = sub.last_publish_at
        while True:
            await asyncio.sleep(self._period_s)
            at = sub.last_publish_at
            if at is None or at == seen:
                continue
            seen = at
            at_ns = self._port.clock_ns() - max(0, time.monotonic_ns() - int(at * 1e9))
            ups = []
            for i in self._inputs:
                if i.q == GOOD and i.ts_ns is not None and i.ts_ns < at_ns - i.half_timeout_ns:
                    i.ts_ns = at_ns
                    ups.append(Update(i.path, i.value, GOOD, at_ns))
            if ups:
                self._port.publish(ups)

    def _mark(self, i: _Input, q: int) -> Update:
        i.q = q
        return Update(i.path, None, q, i.ts_ns)

    def _all_stale(self) -> None:
        ups = [self._mark(i, STALE) for i in self._inputs if i.value is not None]
        if ups:
            self._port.publish(ups)

    # ------------------------------------------------------------ outputs
    def _on_outputs(self) -> None:
        """Called from the scan thread after a commit that changed something."""
        wake(self._loop, self._wake)

    async def _writer(self, client: Client) -> None:
        while True:
            due = [o.due_ns for o in self._outputs if o.cyclic_ns is not None and o.sent is not _UNSENT]
            timeout = max(0.0, (min(due) - time.monotonic_ns()) / 1e9) if due else None
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self._write_pass(client)

    async def _write_pass(self, client: Client) -> None:
        now = time.monotonic_ns()
        outs, nodes, dvs = [], [], []
        for o in self._outputs:
            v = self._port.output(o.path)
            if v is None:
                continue
            cyclic_due = o.cyclic_ns is not None and now >= o.due_ns
            if o.sent is not _UNSENT and v == o.sent and not cyclic_due:
                continue
            o.sent = v
            if o.cyclic_ns is not None:
                o.due_ns = now + o.cyclic_ns
            var = o.unusable or _variant(v, o.vtype)
            if isinstance(var, str):
                self._write_failed(var, f"{o.path}: {v!r} not written to {o.ref.text}: {var}")
                continue
            outs.append(o)
            nodes.append(o.node)
            dvs.append(ua.DataValue(var))   # no timestamps: many servers refuse a client's
        if not outs:
            return
        try:
            results = await client.uaclient.write_attributes(nodes, dvs, ua.AttributeIds.Value)
        except ua.UaStatusCodeError as e:
            for o in outs:
                self._write_failed(_status_name(e.code), f"{o.path}: write refused: {_status_name(e.code)}")
            if e.code in _SESSION_GONE:
                raise
            return
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            for o in outs:
                self._write_failed("BadCommunicationError", f"{o.path}: write failed: {_one_line(e)}")
            raise
        for o, sc in zip(outs, results):
            if sc.is_good():
                self._writes_ok += 1
            else:
                self._write_failed(sc.name, f"{o.path}: write refused: {sc.name}")

    def _write_failed(self, code: str, message: str) -> None:
        self._write_errors[code] = self._write_errors.get(code, 0) + 1
        self._error(message)

    def _error(self, message: str) -> None:
        self._last_error = message


def _certificate_uri(path: str) -> str:
    """The application URI in the certificate's subjectAltName ('' if none)."""
    from cryptography import x509
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise _ConfigProblem(f"certificate {path}: {e.strerror}") from None
    try:
        cert = (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(data))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ""
    except ValueError as e:
        raise _ConfigProblem(f"certificate {path}: not a PEM or DER certificate ({e})") from None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else ""
