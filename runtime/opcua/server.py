"""The OPC UA server process (asyncua): `python -m runtime.opcua.server FD`.

Started by the bridge with one end of a socket pair on FD; it receives the
address space (space.Spec) and the config, builds the nodes, listens, and
then applies what the runtime sends: changed values after each scan,
diagnostics, alarm transitions. Client writes and method calls go back to
the runtime, which answers each one. When the runtime's end closes, the
server stops: it never outlives the runtime.

Security, as asyncua 2.1 needs it shut:
  * our own user manager (users.py roles), and remote admin off: asyncua's
    default manager makes any "admin" an Admin that bypasses access checks;
  * every external session is a GridSession, which answers Write itself
    (nothing a client writes reaches a node: values change when the runtime
    publishes them), reports UserAccessLevel per user, and passes the user
    to method calls;
  * client certificates are checked against the trust list (certs.py).
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import itertools
import json
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from asyncua import Node, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.event_generator import EventGenerator
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.monitored_item_service import MonitoredItemValues

from ..io.quality import BAD, GOOD, STALE, WAITING
from . import ipc
from .certs import TrustList, server_certificate
from .space import Spec, VariableNode
from .typemap import DATATYPE_IDS, st_text
from .uavalues import WriteRefused, from_client, variant, variant_type
from .units import eu_information
from .users import (ACK_ROLE, ALARM_RESET_ROLE, TASK_RESET_ROLE, WRITE_ROLE, PasswordHashError, at_least,
                    verify_password)

QUALITY_STATUS = {
    GOOD: ua.StatusCode(ua.StatusCodes.Good),
    STALE: ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
    BAD: ua.StatusCode(ua.StatusCodes.BadCommunicationError),
    WAITING: ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData),
}
SECURITY = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
_READ, _WRITE = ua.AccessLevel.CurrentRead.mask, ua.AccessLevel.CurrentWrite.mask
_CURRENT_USER: contextvars.ContextVar = contextvars.ContextVar("gridplc_opcua_user", default=None)
_log = logging.getLogger("gridplc.opcua")


@dataclass
class GridUser(User):
    grid_role: str = "viewer"


def _status(name: str) -> ua.StatusCode:
    return ua.StatusCode(getattr(ua.StatusCodes, name))


# ------------------------------------------------------------------ users and sessions
class GridUsers:
    """asyncua user manager over the config's users; never returns an Admin.

    A password check costs ~0.1 s of scrypt on the server's event loop, so a
    password already verified this run is recognised by its salted SHA-256
    (kept in memory only), and a user with LOCKOUT_FAILURES wrong passwords
    within LOCKOUT_S is refused for LOCKOUT_S without checking: guessing
    stays slow and cannot stall the other sessions."""

    LOCKOUT_FAILURES = 5
    LOCKOUT_S = 30.0

    def __init__(self, cfg, event):
        self.cfg = cfg
        self.event = event
        self._verified: dict[str, bytes] = {}
        self._failures: dict[str, list[float]] = {}
        self._pepper = os.urandom(16)

    def get_user(self, iserver, username=None, password=None, certificate=None):
        # `certificate` is the secure channel's client certificate, whatever the
        # token; X509 user tokens are not offered, so no username means anonymous
        if username is None:
            if self.cfg.anonymous_role is not None:
                return GridUser(role=UserRole.User, name="anonymous", grid_role=self.cfg.anonymous_role)
            self.event("opcua_login_failed", {"user": None, "reason": "anonymous access is off"})
            return None
        now = time.monotonic()
        recent = [t for t in self._failures.get(username, ()) if now - t < self.LOCKOUT_S]
        self._failures[username] = recent
        if len(recent) >= self.LOCKOUT_FAILURES:
            self.event("opcua_login_failed", {"user": username, "reason": "locked out after repeated failures"})
            return None
        u = self.cfg.users.get(username)
        digest = hashlib.sha256(self._pepper + (password or "").encode("utf-8")).digest()
        ok = u is not None and self._verified.get(username) == digest
        if u is not None and not ok:
            try:
                ok = verify_password(password or "", u.password_hash)
            except PasswordHashError:
                ok = False
            if ok:
                self._verified[username] = digest
        if not ok:
            recent.append(now)
            self.event("opcua_login_failed", {"user": username,
                                              "reason": "unknown user" if u is None else "wrong password"})
            return None
        return GridUser(role=UserRole.User, name=username, grid_role=u.role)


class GridSession(InternalSession):
    def activate_session(self, params, peer_certificate):
        try:
            result = super().activate_session(params, peer_certificate)
        except ServiceError as e:
            if e.code != ua.StatusCodes.BadUserAccessDenied:       # the user manager logged those
                self.iserver.grid.event("opcua_login_failed", {"user": None, "reason": ua.StatusCode(e.code).name})
            raise
        self.iserver.grid.event("opcua_session", {"user": self.user.name, "what": "open",
                                                  "role": getattr(self.user, "grid_role", None)})
        return result

    async def close_session(self, delete_subs: bool = True) -> None:
        was_open = self.state.name == "Activated"
        await super().close_session(delete_subs)
        if was_open:
            self.iserver.grid.event("opcua_session", {"user": self.user.name, "what": "close"})

    async def read(self, params):
        results = await super().read(params)
        grid = self.iserver.grid
        for i, rv in enumerate(params.NodesToRead):
            if rv.AttributeId == ua.AttributeIds.UserAccessLevel:
                var = grid.by_node.get(rv.NodeId)
                if var is not None:
                    level = _READ | (_WRITE if grid.may_write(self.user, var) else 0)
                    results[i] = ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
        return results

    async def write(self, params):
        return [await self.iserver.grid.client_write(self.user, wv) for wv in params.NodesToWrite]

    async def call(self, params):
        token = _CURRENT_USER.set(self.user)
        try:
            return await super().call(params)
        finally:
            _CURRENT_USER.reset(token)


def _share_published_values() -> None:
    """asyncua deep-copies the DataValue for every monitored item on every
    change (~50 us each: 5 clients x 1,000 changes took longer than the
    100 ms scan). Every DataValue this process writes is built afresh and
    never changed afterwards, so the monitored items can share it."""
    def set_current_datavalue(self, cur_val):
        self.old_dvalue = self.current_dvalue
        self.current_dvalue = cur_val
    MonitoredItemValues.set_current_datavalue = set_current_datavalue


class GridInternalServer(InternalServer):
    grid: "GridServer"

    def create_session(self, name, user=User(role=UserRole.Anonymous), external=False):
        return GridSession(self, self.aspace, self.subscription_service, name, user=user, external=external)


# ------------------------------------------------------------------ building nodes in bulk
class _Loader:
    """Adds nodes straight into the address space: asyncua's add_nodes checks
    every sibling for each new child (42 s for 10,000 under one parent)."""

    def __init__(self, iserver: InternalServer, idx: int):
        self.aspace = iserver.aspace
        self.mgt = iserver.node_mgt_service
        self.idx = idx
        self.admin = User(role=UserRole.Admin)

    def nid(self, s: str) -> ua.NodeId:
        return ua.NodeId(s, self.idx)

    def add(self, nodeid: ua.NodeId, parent: ua.NodeId, name: str, cls: ua.NodeClass, typedef: int,
            attrs, ref: int) -> ua.NodeId:
        item = ua.AddNodesItem(RequestedNewNodeId=nodeid, BrowseName=ua.QualifiedName(name, self.idx),
                               NodeClass=cls, ParentNodeId=ua.NodeId(), ReferenceTypeId=ua.NodeId(ref),
                               TypeDefinition=ua.NodeId(typedef), NodeAttributes=attrs)
        res = self.mgt._add_node(item, self.admin, check=False)
        if not res.StatusCode.is_good():
            raise RuntimeError(f"cannot add node {nodeid}: {res.StatusCode.name}")
        pdata, cdata = self.aspace[parent], self.aspace[nodeid]
        pattrs = pdata.attributes
        pdata.references.append(ua.ReferenceDescription(
            ReferenceTypeId=ua.NodeId(ref), IsForward=True, NodeId=nodeid, BrowseName=item.BrowseName,
            DisplayName=attrs.DisplayName, NodeClass=cls, TypeDefinition=ua.NodeId(typedef)))
        cdata.references.append(ua.ReferenceDescription(
            ReferenceTypeId=ua.NodeId(ref), IsForward=False, NodeId=parent,
            BrowseName=pattrs[ua.AttributeIds.BrowseName].value.Value.Value,
            DisplayName=pattrs[ua.AttributeIds.DisplayName].value.Value.Value,
            NodeClass=pattrs[ua.AttributeIds.NodeClass].value.Value.Value))
        return nodeid

    def obj(self, nodeid, parent, name, *, folder=False, ref=ua.ObjectIds.HasComponent, description=None,
            notifier=False) -> ua.NodeId:
        a = ua.ObjectAttributes()
        a.DisplayName = ua.LocalizedText(name)
        if description:
            a.Description = ua.LocalizedText(description)
        a.EventNotifier = 1 if notifier else 0
        return self.add(nodeid, parent, name, ua.NodeClass.Object,
                        ua.ObjectIds.FolderType if folder else ua.ObjectIds.BaseObjectType, a, ref)

    def var(self, nodeid, parent, name, value: ua.Variant, datatype: int, *, access: int = _READ,
            rank: int = -1, dims=None, description=None, prop=False, typedef=None) -> ua.NodeId:
        a = ua.VariableAttributes()
        a.DisplayName = ua.LocalizedText(name)
        if description:
            a.Description = ua.LocalizedText(description)
        a.Value = value
        a.DataType = ua.NodeId(datatype)
        a.ValueRank = rank
        a.ArrayDimensions = list(dims) if dims else []
        a.AccessLevel = access
        a.UserAccessLevel = access
        a.WriteMask = 0
        a.UserWriteMask = 0
        a.Historizing = False
        a.MinimumSamplingInterval = 0.0
        if prop:
            return self.add(nodeid, parent, name, ua.NodeClass.Variable, ua.ObjectIds.PropertyType, a,
                            ua.ObjectIds.HasProperty)
        return self.add(nodeid, parent, name, ua.NodeClass.Variable, typedef or ua.ObjectIds.BaseDataVariableType,
                        a, ua.ObjectIds.HasComponent)


# ------------------------------------------------------------------ the server
class GridServer:
    def __init__(self, spec: Spec, cfg, writer: asyncio.StreamWriter):
        self.spec = spec
        self.cfg = cfg
        self.writer = writer
        self.server: Server | None = None
        self.port = 0
        self.vars: list[VariableNode] = spec.variables
        self.by_node: dict[ua.NodeId, VariableNode] = {}
        self.node_of: list[ua.NodeId] = []
        self.vtypes: list[ua.VariantType] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self.diag_nodes: dict[str, tuple[ua.NodeId, str]] = {}
        self.alarm_nodes: dict[str, dict] = {}
        self.alarm_by_node: dict[ua.NodeId, str] = {}
        self._event_template = None
        self._last_event_id: dict[str, bytes] = {}
        self.trust = TrustList(cfg.trust_dir, f"{cfg.pki_dir}/rejected")
        self.apply_max_ms = 0.0
        self._backlog: dict[int, tuple] = {}

    # -------------------------------------------------------- messages to the runtime
    def send(self, msg) -> None:
        ipc.write_message(self.writer, msg)

    def event(self, kind: str, data: dict) -> None:
        self.send(("event", kind, data))

    async def request(self, kind: str, user, *args):
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self.send((kind, rid, user.name, *args))
        try:
            return await asyncio.wait_for(fut, self.cfg.write_timeout_s)
        except asyncio.TimeoutError:
            return ("BadTimeout", "the runtime did not answer in time")
        finally:
            self._pending.pop(rid, None)

    # -------------------------------------------------------- start
    async def start(self) -> None:
        cfg = self.cfg
        if cfg.port:
            # fail in a moment, not after building every node
            socket.create_server((cfg.host, cfg.port), family=socket.AF_INET6 if ":" in cfg.host
                                 else socket.AF_INET).close()
        iserver = GridInternalServer(user_manager=GridUsers(cfg, self.event))
        iserver.grid = self
        iserver.bind_condition_methods = True
        server = Server(iserver=iserver)
        server.name = f"gridplc {self.spec.site}"
        server.manufacturer_name = "gridplc"
        server.product_uri = "urn:gridplc"
        server.allow_remote_admin(False)
        await server.init()
        server.set_endpoint(cfg.endpoint)
        await server.set_application_uri(cfg.application_uri)
        server.set_security_policy([SECURITY[m] for m in cfg.security])
        tokens = [ua.UserNameIdentityToken] + ([ua.AnonymousIdentityToken] if cfg.anonymous_role else [])
        server.set_identity_tokens(tokens)
        cert, key, made = server_certificate(cfg)
        if made:
            self.event("opcua_certificate", {"made": cert})
        await server.load_certificate(cert)
        await server.load_private_key(key)
        server.set_certificate_validator(self._validate_client)
        self.server = server
        self.idx = await server.register_namespace(self.spec.namespace_uri)
        await self._build()
        await server.start()
        self.port = server.bserver.port
        url = cfg.endpoint.replace(f":{cfg.port}/", f":{self.port}/")
        for edp in iserver.endpoints:
            edp.EndpointUrl = url
            edp.Server.DiscoveryUrls = [url]

    async def _validate_client(self, cert, app_description) -> None:
        reason = self.trust.check(cert)
        if reason is not None:
            self.event("opcua_certificate_refused", {"application": app_description.ApplicationUri,
                                                     "subject": cert.subject.rfc4514_string(), "reason": reason})
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted if reason == "untrusted"
                               else ua.StatusCodes.BadCertificateTimeInvalid)

    async def _build(self) -> None:
        spec, L = self.spec, _Loader(self.server.iserver, self.idx)
        objects = ua.NodeId(ua.ObjectIds.ObjectsFolder)
        kinds = {}
        for o in spec.objects:
            parent = objects if not o.parent else L.nid(o.parent)
            folder = o.kind == "folder"
            ref = ua.ObjectIds.Organizes if (not o.parent or kinds.get(o.parent) == "folder") else ua.ObjectIds.HasComponent
            desc = o.description or (f"{o.kind} {o.type_name}" if o.type_name else None)
            L.obj(L.nid(o.nid), parent, o.name, folder=folder, ref=ref, description=desc,
                  notifier=o.nid == "alarms")
            kinds[o.nid] = o.kind
        for v in spec.variables:
            self._add_tag(L, v, kinds)
        self._add_program_info(L)
        for t in spec.tasks:
            await self._add_task(L, t)
        await self._add_alarms(L)

    def _add_tag(self, L: _Loader, v: VariableNode, kinds) -> None:
        nid = L.nid(v.nid)
        vt = variant_type(v.ut)
        writable = v.access in WRITE_ROLE
        L.var(nid, L.nid(v.parent), v.name, variant(v.initial, v.ut, vt, v.dims), DATATYPE_IDS[v.ut.datatype],
              access=_READ | (_WRITE if writable else 0), rank=len(v.dims) if v.dims else -1, dims=v.dims,
              description=v.description or v.st_type,
              typedef=ua.ObjectIds.AnalogItemType if v.range is not None and v.ut.codec == "plain"
              and v.ut.datatype not in ("Boolean", "String") else None)
        if v.unit:
            L.var(L.nid(f"{v.nid}/EngineeringUnits"), nid, "EngineeringUnits",
                  ua.Variant(eu_information(v.unit), ua.VariantType.ExtensionObject), ua.ObjectIds.EUInformation,
                  prop=True)
        if v.range is not None:
            L.var(L.nid(f"{v.nid}/EURange"), nid, "EURange",
                  ua.Variant(ua.Range(Low=float(v.range[0]), High=float(v.range[1])), ua.VariantType.ExtensionObject),
                  ua.ObjectIds.Range, prop=True)
        if v.ut.enum:
            values = [k for k, _ in v.ut.enum]
            if values == list(range(len(values))):
                L.var(L.nid(f"{v.nid}/EnumStrings"), nid, "EnumStrings",
                      ua.Variant([ua.LocalizedText(n) for _, n in v.ut.enum], ua.VariantType.LocalizedText),
                      ua.ObjectIds.LocalizedText, rank=1, dims=[len(values)], prop=True)
            else:
                L.var(L.nid(f"{v.nid}/EnumValues"), nid, "EnumValues",
                      ua.Variant([ua.EnumValueType(Value=k, DisplayName=ua.LocalizedText(n)) for k, n in v.ut.enum],
                                 ua.VariantType.ExtensionObject), ua.ObjectIds.EnumValueType, rank=1,
                      dims=[len(values)], prop=True)
        self.by_node[nid] = v
        self.node_of.append(nid)
        self.vtypes.append(vt)
        if v.field_input:
            # nothing latched yet: the first scan's publication says what the field gave
            self.server.iserver.aspace[nid].attributes[ua.AttributeIds.Value].value = ua.DataValue(
                ua.Variant(None, ua.VariantType.Null), StatusCode=QUALITY_STATUS[WAITING])

    def _add_program_info(self, L: _Loader) -> None:
        d = L.nid("diag")
        for name, value in (("RuntimeVersion", self.spec.version), ("ProgramHash", self.spec.program_hash),
                            ("Site", self.spec.site)):
            L.var(L.nid(f"diag:{name}"), d, name, ua.Variant(value, ua.VariantType.String), ua.ObjectIds.String)
        self._diag_var(L, "diag:Scan", d, "Scan", "UInt64")
        self._diag_var(L, "diag:ClientWrites", d, "ClientWrites", "UInt64")
        self._diag_var(L, "diag:PublishApplyLastMs", d, "PublishApplyLastMs", "Double")
        self._diag_var(L, "diag:PublishApplyMaxMs", d, "PublishApplyMaxMs", "Double")

    def _diag_var(self, L: _Loader, nid: str, parent: ua.NodeId, name: str, kind: str, initial=None) -> ua.NodeId:
        vt = getattr(ua.VariantType, kind)
        default = {"Boolean": False, "String": "", "Double": 0.0}.get(kind, 0)
        node = L.var(L.nid(nid), parent, name, ua.Variant(default if initial is None else initial, vt),
                     DATATYPE_IDS[kind])
        self.diag_nodes[nid] = (node, kind)
        return node

    async def _add_task(self, L: _Loader, t) -> None:
        tn = L.nid(t.nid)
        L.var(L.nid(f"{t.nid}/Interval"), tn, "Interval", ua.Variant(t.interval_ns / 1e6, ua.VariantType.Double),
              ua.ObjectIds.Duration, prop=True)
        L.var(L.nid(f"{t.nid}/Priority"), tn, "Priority", ua.Variant(t.priority, ua.VariantType.Int32),
              ua.ObjectIds.Int32, prop=True)
        L.var(L.nid(f"{t.nid}/Programs"), tn, "Programs", ua.Variant(t.programs, ua.VariantType.String),
              ua.ObjectIds.String, rank=1, dims=[len(t.programs)], prop=True)
        for name, kind in (("ScanCount", "UInt64"), ("ExecLastMs", "Double"), ("ExecMaxMs", "Double"),
                           ("JitterP99Ms", "Double"), ("JitterMaxMs", "Double"), ("Overruns", "UInt64"),
                           ("Faulted", "Boolean"), ("FaultText", "String"), ("FaultLocation", "String"),
                           ("FaultScan", "UInt64")):
            self._diag_var(L, f"{t.nid}/{name}", tn, name, kind)
        task_name = t.name

        async def reset(parent, mode=None):
            mode_s = mode.Value if isinstance(mode, ua.Variant) and mode.Value else "warm"
            return await self._call("reset_task", TASK_RESET_ROLE, (task_name, mode_s))

        await Node(self.server.iserver.isession, tn).add_method(
            L.nid(f"{t.nid}/Reset"), ua.QualifiedName("Reset", self.idx), reset, [ua.VariantType.String], [])

    async def _add_alarms(self, L: _Loader) -> None:
        folder = L.nid("alarms")
        gen = EventGenerator(self.server.iserver.isession)
        await gen.init(ua.ObjectIds.AlarmConditionType, emitting_node=ua.ObjectIds.Server)
        self._event_template = gen.event
        for a in self.spec.alarms:
            an = L.obj(L.nid(a.nid), folder, a.name, description=a.message)
            nodes = {}
            for name, kind, init in (("Active", "Boolean", False), ("Acked", "Boolean", True),
                                     ("Retain", "Boolean", False), ("Severity", "UInt16", a.severity),
                                     ("Message", "String", a.message), ("Latching", "Boolean", a.latch)):
                nodes[name] = self._diag_var(L, f"{a.nid}/{name}", an, name, kind, init)
            self.alarm_nodes[a.name] = {"node": an, "spec": a}
            self.alarm_by_node[an] = a.name

        async def ack(parent, name, comment=None):
            return await self._call("ack", ACK_ROLE, (_text(name), _text(comment)))

        async def reset(parent, name):
            return await self._call("alarm_reset", ALARM_RESET_ROLE, (_text(name),))

        async def standard_ack(parent, event_id, comment=None):
            # AcknowledgeableConditionType.Acknowledge, called on the condition with its EventId
            name = self.alarm_by_node.get(parent)
            if name is None:
                return ua.StatusCode(ua.StatusCodes.BadNodeIdInvalid)
            if self._last_event_id.get(name) != (event_id.Value if isinstance(event_id, ua.Variant) else event_id):
                return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)
            return await self._call("ack", ACK_ROLE, (name, _text(comment)))

        fnode = Node(self.server.iserver.isession, folder)
        await fnode.add_method(L.nid("alarms/Acknowledge"), ua.QualifiedName("Acknowledge", self.idx), ack,
                               [ua.VariantType.String, ua.VariantType.String], [])
        await fnode.add_method(L.nid("alarms/Reset"), ua.QualifiedName("Reset", self.idx), reset,
                               [ua.VariantType.String], [])
        self.server.iserver.isession.add_method_callback(
            ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), standard_ack)

    # -------------------------------------------------------- client actions
    def may_write(self, user, var: VariableNode) -> bool:
        need = WRITE_ROLE.get(var.access)
        return need is not None and at_least(getattr(user, "grid_role", "viewer"), need)

    async def client_write(self, user, wv: ua.WriteValue) -> ua.StatusCode:
        var = self.by_node.get(wv.NodeId)
        path = var.nid if var is not None else wv.NodeId.to_string()
        try:
            if var is None:
                known = wv.NodeId in self.server.iserver.aspace
                raise WriteRefused("BadNotWritable" if known else "BadNodeIdUnknown", "not a writable tag")
            if wv.AttributeId != ua.AttributeIds.Value:
                raise WriteRefused("BadNotWritable", f"attribute {wv.AttributeId} is not writable")
            if wv.IndexRange:
                raise WriteRefused("BadWriteNotSupported", "index ranges are not supported")
            if var.access not in WRITE_ROLE:
                raise WriteRefused("BadNotWritable", "bound to field I/O" if var.field_input else "read-only")
            if not self.may_write(user, var):
                raise WriteRefused("BadUserAccessDenied", f"{var.access} variables need the role "
                                                          f"{WRITE_ROLE[var.access]}")
            value = from_client(wv.Value.Value if wv.Value is not None else None, var.ut, var.range)
        except WriteRefused as r:
            self.event("opcua_write_refused", {"user": user.name, "path": path, "status": r.status,
                                               "reason": r.reason})
            return _status(r.status)
        status, reason = await self.request("write", user, var.nid, st_text(value, var.ut))
        if status != "Good":
            self.event("opcua_write_refused", {"user": user.name, "path": var.nid, "status": status,
                                               "reason": reason})
        return _status(status)

    async def _call(self, what: str, role: str, args: tuple):
        user = _CURRENT_USER.get()
        if user is None or not at_least(getattr(user, "grid_role", "viewer"), role):
            self.event("opcua_call_refused", {"user": getattr(user, "name", None), "what": what,
                                              "args": list(args), "reason": f"needs the role {role}"})
            return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        status, reason = await self.request("call", user, what, args)
        if status != "Good":
            self.event("opcua_call_refused", {"user": user.name, "what": what, "args": list(args),
                                              "status": status, "reason": reason})
        return _status(status)

    # -------------------------------------------------------- runtime messages
    async def apply_values(self, batch: dict) -> None:
        """Write the changed values into their nodes (asyncua then notifies the
        subscriptions); the cost of each batch is a diagnostic of its own."""
        t0 = time.perf_counter()
        now = datetime.now(timezone.utc)
        stamps: dict[int, datetime] = {}
        write = self.server.iserver.aspace.write_attribute_value
        vars_, nodes, vts, status = self.vars, self.node_of, self.vtypes, QUALITY_STATUS
        value_attr = ua.AttributeIds.Value
        for idx, (value, q, wall_ns) in batch.items():
            ts = stamps.get(wall_ns)
            if ts is None:
                ts = stamps[wall_ns] = datetime.fromtimestamp(wall_ns // 1000 / 1e6, timezone.utc)
            v = vars_[idx]
            dv = ua.DataValue(variant(value, v.ut, vts[idx], v.dims), StatusCode=status[q],
                              SourceTimestamp=ts, ServerTimestamp=now)
            await write(nodes[idx], value_attr, dv)
        ms = (time.perf_counter() - t0) * 1e3
        self.apply_max_ms = max(self.apply_max_ms, ms)
        await self._set("diag:PublishApplyLastMs", ms)
        await self._set("diag:PublishApplyMaxMs", self.apply_max_ms)

    async def apply_diag(self, d: dict) -> None:
        await self._set("diag:Scan", d.get("scan", 0))
        await self._set("diag:ClientWrites", d.get("writes", 0))
        for name, t in d.get("tasks", {}).items():
            base = f"task:{name}"
            for k, v in t.items():
                await self._set(f"{base}/{k}", v)
        L = _Loader(self.server.iserver, self.idx)
        for dev, stats in d.get("io", {}).items():
            parent = L.nid(f"dev:{dev}")
            if parent not in self.server.iserver.aspace:
                continue
            for k, v in _flatten(stats):
                nid = f"dev:{dev}/{k}"
                if nid not in self.diag_nodes:
                    kind = "Boolean" if isinstance(v, bool) else "Double" if isinstance(v, (int, float)) else "String"
                    self._diag_var(L, nid, parent, k, kind)
                await self._set(nid, v)

    async def _set(self, nid: str, value) -> None:
        ent = self.diag_nodes.get(nid)
        if ent is None:
            return
        node, kind = ent
        if kind == "String":
            value = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        elif kind == "Boolean":
            value = bool(value)
        elif kind == "Double":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return
            value = float(value)
        else:
            if not isinstance(value, int):
                return
            value = max(0, value) if kind.startswith("U") else value
        await self.server.iserver.aspace.write_attribute_value(
            node, ua.AttributeIds.Value, ua.DataValue(ua.Variant(value, getattr(ua.VariantType, kind))))

    async def apply_alarms(self, states, wall_ns: int) -> None:
        for st in states:
            ent = self.alarm_nodes.get(st.name)
            if ent is None:
                continue
            a = ent["spec"]
            base = a.nid
            await self._set(f"{base}/Active", st.active)
            await self._set(f"{base}/Acked", st.acked)
            await self._set(f"{base}/Retain", st.retain)
            await self._fire(st, ent["node"], a, wall_ns)

    async def _fire(self, st, node: ua.NodeId, a, wall_ns: int) -> None:
        ev = type(self._event_template)()
        for k, v in vars(self._event_template).items():
            setattr(ev, k, v)
        ev.emitting_node = ua.NodeId(ua.ObjectIds.Server)
        eid = uuid.uuid4().bytes
        self._last_event_id[st.name] = eid
        when = datetime.fromtimestamp(wall_ns // 1000 / 1e6, timezone.utc)
        now = datetime.now(timezone.utc)
        ev.EventId = ua.Variant(eid, ua.VariantType.ByteString)
        ev.Time, ev.ReceiveTime = when, now
        ev.SourceNode = ua.NodeId(a.source, self.idx) if a.source else node
        ev.SourceName = st.name
        ev.NodeId = node
        ev.ConditionName = st.name
        ev.Message = ua.LocalizedText(st.message)
        ev.Severity = st.severity
        ev.Retain = st.retain
        ev.Quality = ua.StatusCode(ua.StatusCodes.Good)
        setattr(ev, "EnabledState", ua.LocalizedText("Enabled"))
        setattr(ev, "EnabledState/Id", True)
        setattr(ev, "ActiveState", ua.LocalizedText("Active" if st.active else "Inactive"))
        setattr(ev, "ActiveState/Id", st.active)
        setattr(ev, "AckedState", ua.LocalizedText("Acknowledged" if st.acked else "Unacknowledged"))
        setattr(ev, "AckedState/Id", st.acked)
        if a.latch:
            setattr(ev, "LatchedState", ua.LocalizedText("Latched" if st.active else "Unlatched"))
            setattr(ev, "LatchedState/Id", st.active)
        ev.ClientUserId = st.who or ""
        ev.Comment = ua.LocalizedText(st.comment or "")
        await self.server.iserver.subscription_service.trigger_event(ev)

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Read the runtime's messages as they come; a second task applies them.
        Values wait in one dict (index -> newest value): when the nodes cannot
        be written as fast as scans change them, a batch carries the newest
        value of each variable, so the server falls behind by one batch at
        most, never by a growing queue (subscriptions have queue size 1 anyway).
        Answers to client writes never wait behind values."""
        work: asyncio.Queue = asyncio.Queue()
        applier = asyncio.create_task(self._apply_loop(work))
        try:
            while True:
                msg = await ipc.read_message(reader)
                if msg is None or msg[0] == "stop":
                    return
                kind = msg[0]
                if kind == "values":
                    if not self._backlog:
                        work.put_nowait(("values",))
                    wall = msg[2]
                    for idx, value, q in msg[3]:
                        self._backlog[idx] = (value, q, wall)
                elif kind == "reply":
                    fut = self._pending.get(msg[1])
                    if fut is not None and not fut.done():
                        fut.set_result((msg[2], msg[3]))
                elif kind in ("diag", "alarms"):
                    work.put_nowait(msg)
        finally:
            applier.cancel()

    async def _apply_loop(self, work: asyncio.Queue) -> None:
        while True:
            msg = await work.get()
            kind = msg[0]
            try:
                if kind == "values":
                    batch, self._backlog = self._backlog, {}
                    await self.apply_values(batch)
                elif kind == "diag":
                    await self.apply_diag(msg[1])
                elif kind == "alarms":
                    await self.apply_alarms(msg[1], msg[2])
            except Exception as e:  # noqa: BLE001 - one bad message must not stop SCADA's view
                _log.exception("OPC UA server: %s message failed", kind)
                self.event("opcua_server_error", {"message": kind, "error": f"{type(e).__name__}: {e}"})
            await self.writer.drain()


def _text(v) -> str:
    if isinstance(v, ua.Variant):
        v = v.Value
    if isinstance(v, ua.LocalizedText):
        v = v.Text
    return "" if v is None else str(v)


def _flatten(stats: dict, prefix: str = ""):
    for k, v in stats.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, name + ".")
        else:
            yield name, v


async def _main(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    msg = await ipc.read_message(reader)
    if msg is None or msg[0] != "start":
        return 2
    _, spec, cfg = msg
    if cfg.nice:
        os.nice(cfg.nice)            # on a small box the scan, not SCADA, gets the CPU first
    app = GridServer(spec, cfg, writer)
    try:
        await app.start()
    except Exception as e:  # noqa: BLE001 - reported to the runtime as one line
        ipc.write_message(writer, ("error", f"OPC UA server on {cfg.host}:{cfg.port}: {_reason(e)}"))
        await writer.drain()
        return 1
    ipc.write_message(writer, ("ready", app.port))
    await writer.drain()
    try:
        await app.serve(reader)
    finally:
        await app.server.stop()
    return 0


def _reason(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return f"{type(e).__name__}: {e}"


def main(argv: list[str]) -> int:
    # asyncua logs every refused login and closed socket at WARNING/ERROR with a
    # traceback; the event log has them, once, as one record each
    # (GRIDPLC_OPCUA_DEBUG=1 shows them, for a developer)
    logging.basicConfig(level=logging.WARNING if os.environ.get("GRIDPLC_OPCUA_DEBUG") else logging.CRITICAL)
    _share_published_values()
    try:
        return asyncio.run(_main(int(argv[0])))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
