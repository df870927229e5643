"""The bridge's snapshot: one generated function returning every exposed value.

    def snap__(I):
        r0 = I[0].obj              # program instances are re-read: a reset replaces them
        n1 = r0.s
        n2 = n1[0]
        return (r0.sp, tuple(r0.cellV), n2.vMax, ...)

Each struct, FB instance or array element on the way is fetched once into a
local, so a value costs one attribute or item load. Tuples compare in C;
`changed` finds the positions that differ with map/compress, also in C.
"""
from __future__ import annotations

from itertools import compress
from operator import is_not

from .space import Leaf


def compile_snapshot(leaves: list[Leaf], instance_keys: list[str]):
    """fn(instances tuple in instance_keys order) -> tuple of values."""
    root = {k: f"r{i}" for i, k in enumerate(instance_keys)}
    lines = ["def snap__(I):"]
    for i, k in enumerate(instance_keys):
        lines.append(f"    r{i} = I[{i}].obj")
    locals_: dict[tuple, str] = {}

    def access(base: str, step) -> str:
        kind, x = step
        return f"{base}.{x}" if kind == "a" else f"{base}[{x}]"

    def local_for(key: str, steps: tuple) -> str:
        if not steps:
            return root[key]
        name = locals_.get((key, steps))
        if name is None:
            parent = local_for(key, steps[:-1])
            name = f"n{len(locals_)}"
            locals_[(key, steps)] = name
            lines.append(f"    {name} = {access(parent, steps[-1])}")
        return name

    exprs = []
    for leaf in leaves:
        base = local_for(leaf.instance, leaf.steps[:-1])
        e = access(base, leaf.steps[-1])
        exprs.append(f"tuple({e})" if leaf.array else e)
    lines.append("    return (" + "".join(e + ", " for e in exprs) + ")")
    ns: dict = {}
    exec(compile("\n".join(lines), "<gridplc opcua snapshot>", "exec"), ns)
    return ns["snap__"]


def changed(new: tuple, old: tuple) -> list[int]:
    """Positions whose value differs. A variable the scan did not assign holds
    the very same object, so identity (in C) finds the candidates and only
    those are compared by value. An unchanged NaN is the same object and does
    not count; a NaN recomputed every scan does."""
    idx = compress(range(len(new)), map(is_not, new, old))
    return [i for i in idx if new[i] != old[i] or new[i] != new[i]]


class Group:
    """The exposed values one task can change, snapshotted only after that task ran.

    Field inputs form a group of their own (task None): they are latched at
    every scan, whichever task runs."""

    def __init__(self, task, positions: list[int], leaves: list[Leaf], instance_keys: list[str]):
        self.task = task
        self.positions = positions
        self.snap = compile_snapshot([leaves[i] for i in positions], instance_keys)
        self.last: tuple | None = None
        self.scans = -1
        self.fresh: tuple | None = None

    def due(self, full: bool) -> bool:
        return full or self.last is None or self.task is None or self.task.scans != self.scans


def groups(engine, leaves: list[Leaf], instance_keys: list[str]) -> list[Group]:
    task_of = {name.upper(): t for t in engine.tasks for name, _obj in t.instances}
    by_task: dict[str, list[int]] = {}
    inputs = []
    for i, leaf in enumerate(leaves):
        if leaf.path in engine.inputs:
            inputs.append(i)
        else:
            by_task.setdefault(task_of[leaf.instance].name, []).append(i)
    out = [Group(None, inputs, leaves, instance_keys)] if inputs else []
    for t in engine.tasks:
        if t.name in by_task:
            out.append(Group(t, by_task[t.name], leaves, instance_keys))
    return out
