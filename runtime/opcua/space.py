"""The address space as plain data, built from the program in the runtime process.

The layout follows the PLCopen OPC UA information model for IEC 61131-3
(configuration, resource, task, program):

    Objects
      <Configuration>                    cfg:<name>
        Resources/<Resource>             res:<name>
          Tasks/<Task>                   task:<name>   Interval, Priority, diagnostics, Reset()
          Programs/<Instance>            Main          the program instance
            <variable>                   Main.sp       NodeId = canonical tag path
            <FB instance> (object)       Main.guard    its inputs and outputs below
            <struct> (object)            Main.stats    its fields below
            <array of scalars>           Main.cellV    one array-valued variable
            <array of FBs/structs>       Main.s[1]     one object per element
        Diagnostics                      diag          version, program hash, Devices/<dev>
        Alarms                           alarms        one condition object per alarm

Every tag node's NodeId is `ns=<urn:gridplc>;s=<tag path>`, so SCADA tags can
be set up without browsing. Other nodes use ids with a colon, which a tag
path never has.

Which variables appear: program variables (VAR, VAR_INPUT, VAR_OUTPUT), the
inputs and outputs of FB instances, and FB-internal variables that carry an
opcua pragma. Their access starts at the site's default_access, then the
variable's own pragma ({attribute 'opcua' := 'ro'|'operator'|'rw'|'none'},
inherited by everything inside a struct or FB instance), then the site's
expose rules in order. An object whose access is "none" hides what is in
it. Never writable: CONSTANTs, inputs bound to field I/O, and array-valued
variables (their elements have no nodes of their own).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from plc_lang.types import ArrayType, FBType, StructType, strip_subrange

from ..pragmas import attributes
from .config import OpcuaConfig
from .typemap import UaType, ua_type


@dataclass
class ObjectNode:
    nid: str
    parent: str                 # "" = the standard Objects folder
    name: str
    kind: str                   # folder | configuration | resource | task | program | fb | struct | array | device
    type_name: str | None = None
    description: str | None = None


@dataclass
class VariableNode:
    nid: str
    parent: str
    name: str
    st_type: str
    ut: UaType
    dims: tuple[int, ...] | None      # array-valued: element counts per dimension
    access: str                       # ro | operator | rw
    index: int                        # position in the bridge's snapshot tuple
    initial: object
    unit: str | None = None
    range: tuple[float, float] | None = None
    description: str | None = None
    field_input: bool = False         # bound to field I/O: quality follows the input's


@dataclass
class TaskNode:
    name: str
    nid: str
    interval_ns: int
    priority: int
    programs: list[str]


@dataclass
class AlarmNode:
    name: str                         # the condition's tag path
    nid: str
    severity: int
    message: str
    latch: bool
    source: str                       # NodeId string of the condition variable ("" if not exposed)


@dataclass
class Spec:
    namespace_uri: str
    site: str
    config_name: str
    version: str
    program_hash: str
    objects: list[ObjectNode] = field(default_factory=list)
    variables: list[VariableNode] = field(default_factory=list)
    tasks: list[TaskNode] = field(default_factory=list)
    alarms: list[AlarmNode] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)


@dataclass
class Leaf:
    """How the bridge reads one exposed value: instance key, then steps."""
    instance: str                     # UPPER key of engine.instances
    steps: tuple                      # ("a", pyname) attribute | ("i", flat index) list item
    array: bool                       # copy the list into a tuple
    path: str


NAMESPACE_URI = "urn:gridplc"
_SKIP_SECTIONS = ("VAR_TEMP", "VAR_EXTERNAL", "VAR_IN_OUT", "RESULT")


class _Builder:
    def __init__(self, engine, cfg: OpcuaConfig, iomaps):
        self.engine = engine
        self.cfg = cfg
        self.rules = [(r.regex(), r.access) for r in cfg.expose]
        self.points = {p.var: p for m in iomaps for p in m.points}
        self.objects: list[ObjectNode] = []
        self.variables: list[VariableNode] = []
        self.leaves: list[Leaf] = []

    def access(self, path: str, base: str, pragma: str | None) -> tuple[str, bool]:
        """(access, whether a pragma or rule said so rather than the default)."""
        explicit = pragma in ("none", "hidden", "ro", "operator", "rw")
        acc = ("none" if pragma == "hidden" else pragma) if explicit else base
        for rx, a in self.rules:
            if rx.match(path):
                acc, explicit = a, True
        return acc, explicit

    def instance(self, key: str, inst, parent: str) -> None:
        path = inst.name
        self.objects.append(ObjectNode(path, parent, inst.name, "program", inst.pou.name))
        for v in inst.pou.vars.values():
            if v.section in _SKIP_SECTIONS:
                continue
            self.member(key, (), path, f"{path}.{v.name}", v.name, v.type, v, self.cfg.default_access, False)

    def member(self, key, steps, parent, path, name, t, var, base, hidden_default) -> None:
        attr = attributes(var.pragmas) if var is not None else {}
        pragma = attr.get("opcua")
        if hidden_default and pragma in (None, "none", "hidden"):
            return
        acc, explicit = self.access(path, base, pragma)
        if var is not None and var.constant and acc != "none":
            acc = "ro"
        pyname = var.pyname if var is not None else name
        self.node(key, steps + (("a", pyname),), parent, path, name, t, acc, explicit, attr)

    def node(self, key, steps, parent, path, name, t, acc, explicit, attr) -> None:
        """A container named "none" explicitly hides what is in it; one that is
        "none" by default still shows what rules or pragmas inside expose."""
        ts = strip_subrange(t)
        if acc == "none" and (explicit or ua_type(ts.elem if isinstance(ts, ArrayType) else ts) is not None):
            return
        if isinstance(ts, FBType):
            self.objects.append(ObjectNode(path, parent, name, "fb", ts.name, attr.get("description")))
            for v in ts.pou.vars.values():
                if v.section in _SKIP_SECTIONS:
                    continue
                internal = v.section not in ("VAR_INPUT", "VAR_OUTPUT")
                if ts.pou.std and internal:
                    continue
                self.member(key, steps, path, f"{path}.{v.name}", v.name, v.type, v, acc, internal)
            return
        if isinstance(ts, StructType):
            self.objects.append(ObjectNode(path, parent, name, "struct", ts.name, attr.get("description")))
            for f in ts.fields.values():
                facc, fexp = self.access(f"{path}.{f.name}", acc, None)
                self.node(key, steps + (("a", f.name),), path, f"{path}.{f.name}", f.name, f.type, facc, fexp, {})
            return
        if isinstance(ts, ArrayType) and ua_type(ts.elem) is None:
            self.objects.append(ObjectNode(path, parent, name, "array", ts.name, attr.get("description")))
            for flat, idx in enumerate(_indexes(ts.dims)):
                sub = f"{path}[{', '.join(map(str, idx))}]"
                eacc, eexp = self.access(sub, acc, None)
                self.node(key, steps + (("i", flat),), path, sub, f"{name}[{', '.join(map(str, idx))}]",
                          ts.elem, eacc, eexp, {})
            return
        is_array = isinstance(ts, ArrayType)
        ut = ua_type(ts.elem if is_array else t)
        if ut is None:
            return
        field_input = path in self.engine.inputs
        if field_input or is_array:
            acc = "ro"
        pt = self.points.get(path)
        unit = (pt.unit if pt is not None and pt.unit else None) or attr.get("unit")
        rng = (pt.range if pt is not None and pt.range else None) or _range(attr.get("range"))
        if rng is None and ut.lo is not None and ut.codec == "plain" and ut.datatype != "UInt32":
            rng = (ut.lo, ut.hi)
        holder = self.engine.tag(path)
        value = holder.get()
        self.variables.append(VariableNode(
            path, parent, name, str(t), ut, tuple(hi - lo + 1 for lo, hi in ts.dims) if is_array else None,
            acc, len(self.leaves), tuple(value) if is_array else value, unit, rng, attr.get("description"),
            field_input))
        self.leaves.append(Leaf(key, steps, is_array, path))


def _indexes(dims):
    if not dims:
        yield ()
        return
    lo, hi = dims[0]
    for i in range(lo, hi + 1):
        for rest in _indexes(dims[1:]):
            yield (i, *rest)


def _range(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    for sep in ("..", ","):
        if sep in text:
            a, b = text.split(sep, 1)
            try:
                return float(a), float(b)
            except ValueError:
                return None
    return None


def _resources(engine) -> list[tuple[str, list[str], list[str]]]:
    """(resource name, task names, instance names) from the CONFIGURATION."""
    cfg = engine.project.config
    out = []
    if cfg is not None:
        for unit in engine.project.units:
            for c in unit.configurations:
                if c.name.upper() != cfg.name.upper():
                    continue
                for r in c.resources:
                    out.append((r.name, [t.name for t in r.tasks], [p.name for p in r.programs]))
    return out


def build(engine, cfg: OpcuaConfig, *, site: str = "gridplc", version: str = "", iomaps=(),
          alarms=None) -> tuple[Spec, list[Leaf]]:
    b = _Builder(engine, cfg, iomaps)
    pcfg = engine.project.config
    cname = pcfg.name if pcfg is not None else site
    spec = Spec(NAMESPACE_URI, site, cname, version, engine.project.source_hash)
    cnid = f"cfg:{cname}"
    b.objects.append(ObjectNode(cnid, "", cname, "configuration", None,
                                "CtrlConfiguration (PLCopen OPC UA information model for IEC 61131-3)"))
    b.objects.append(ObjectNode(f"{cnid}/Resources", cnid, "Resources", "folder"))
    resources = _resources(engine) or [(site, [t.name for t in engine.tasks], [i.name for i in engine.instances.values()])]
    task_by_name = {t.name.upper(): t for t in engine.tasks}
    placed_tasks, placed_insts = set(), set()
    for rname, tnames, inames in resources:
        rnid = f"res:{rname}"
        b.objects.append(ObjectNode(rnid, f"{cnid}/Resources", rname, "resource", None, "CtrlResource"))
        b.objects.append(ObjectNode(f"{rnid}/Tasks", rnid, "Tasks", "folder"))
        b.objects.append(ObjectNode(f"{rnid}/Programs", rnid, "Programs", "folder"))
        for tn in tnames + ([t.name for t in engine.tasks if t.name.upper() not in placed_tasks]
                            if rname == resources[-1][0] else []):
            t = task_by_name.get(tn.upper())
            if t is None or t.name.upper() in placed_tasks:
                continue
            placed_tasks.add(t.name.upper())
            tnid = f"task:{t.name}"
            b.objects.append(ObjectNode(tnid, f"{rnid}/Tasks", t.name, "task", None, "CtrlTask"))
            spec.tasks.append(TaskNode(t.name, tnid, t.interval_ns, t.priority, [n for n, _ in t.instances]))
        keys = [k for k in engine.instances if k in {n.upper() for n in inames}]
        if rname == resources[-1][0]:
            keys += [k for k in engine.instances if k not in placed_insts and k not in keys]
        for key in keys:
            if key in placed_insts:
                continue
            placed_insts.add(key)
            b.instance(key, engine.instances[key], f"{rnid}/Programs")
    b.objects.append(ObjectNode("diag", cnid, "Diagnostics", "folder"))
    b.objects.append(ObjectNode("diag:devices", "diag", "Devices", "folder"))
    for m in iomaps:
        for dname in m.devices:
            spec.devices.append(dname)
            b.objects.append(ObjectNode(f"dev:{dname}", "diag:devices", dname, "device"))
    b.objects.append(ObjectNode("alarms", cnid, "Alarms", "folder"))
    exposed = {v.nid for v in b.variables}
    if alarms is not None:
        for name, d in alarms.defs.items():
            spec.alarms.append(AlarmNode(name, f"alarm:{name}", d.severity, d.message, d.latch,
                                         name if name in exposed else ""))
    spec.objects, spec.variables = _pruned(b.objects, b.variables), b.variables
    return spec, b.leaves


def _pruned(objects: list[ObjectNode], variables: list[VariableNode]) -> list[ObjectNode]:
    """Drop FB, struct and array objects left with nothing visible inside."""
    used = {v.parent for v in variables}
    keep = []
    for o in reversed(objects):                 # children come after their parents
        if o.kind in ("fb", "struct", "array") and o.nid not in used:
            continue
        keep.append(o)
        used.add(o.parent)
    keep.reverse()
    return keep
