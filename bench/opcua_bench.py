"""OPC UA server benchmark (not a test): prints figures, asserts nothing.

    python bench/opcua_bench.py [--seconds 20] [--clients 5] [--publish-ms 50] [--subscribe all|changing]
                                [--sample-phase 0.5|none] [--rt PRIO]

The workload: ../shared/bench/site_protect.st as the 10 ms protection task
(priority 1) and a 100 ms task whose program holds 10,000 exposed REALs
(5,000 cells x v, t), 1,000 of which change every scan. The real scheduler
runs both, with the runtime lock and the bridge called as `gridplc run`
would (runtime/live.py); 5 clients in another process (niced: they stand
in for SCADA machines elsewhere) subscribe (queue size 1) to all 10,000
tags, or to the 1,000 that change. The server process runs at nice 10.

Printed:
  1. protection-task start jitter p50/p99/max and overruns, without the
     server, then with the server and its clients;
  2. publish cost: after_scan on the scan thread; the bridge's snapshot
     (time holding the runtime lock) and its whole cycle (snapshot, diff,
     pickle, send) per sample; the server process's apply time per batch;
  3. end-to-end latency from the scan that changed a value (its source
     timestamp) to the client's notification: p50/p99/max.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plc_lang.driver import compile_project  # noqa: E402
from plc_lang.source import SourceFile  # noqa: E402
from runtime.engine import Engine  # noqa: E402
from runtime.opcua.bridge import OpcuaBridge  # noqa: E402
from runtime.opcua.config import ExposeRule, OpcuaConfig  # noqa: E402
from runtime.scheduler import Scheduler  # noqa: E402

SITE_PROTECT = os.path.join(os.path.dirname(ROOT), "shared", "bench", "site_protect.st")
N_CELLS = 5000
N_CHANGING = 1000
TAGS = f"""
TYPE BenchCell : STRUCT v : REAL; t : REAL; END_STRUCT; END_TYPE
PROGRAM Tags
VAR cells : ARRAY[1..{N_CELLS}] OF BenchCell; k : INT; END_VAR
FOR k := 1 TO {N_CHANGING} DO
  cells[k].v := cells[k].v + 1.0;
END_FOR;
END_PROGRAM
CONFIGURATION Site
  RESOURCE Cpu ON PLC
    TASK Protect(INTERVAL := T#10ms, PRIORITY := 1);
    TASK Scada(INTERVAL := T#100ms, PRIORITY := 2);
    PROGRAM Main WITH Protect : SiteMain;
    PROGRAM Tags WITH Scada : Tags;
  END_RESOURCE
END_CONFIGURATION
"""


def _engine() -> Engine:
    text = open(SITE_PROTECT).read()
    text = text[:text.index("CONFIGURATION")]
    r = compile_project([SourceFile("site_protect.st", text), SourceFile("tags.st", TAGS)])
    assert r.ok, [d.message for d in r.diagnostics if d.is_error]
    return Engine(r.program, watchdog_s=5.0)


def _pct(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0


def run(seconds: float, bridge_on: bool, clients: int, publish_ms: float, subscribe: str,
        phase: float | None = 0.5, rt: int | None = None) -> dict:
    eng = _engine()
    lock = threading.RLock()
    after_ns: list[int] = []
    box: dict = {}
    sched = None

    def tick(now, due):
        with lock:
            eng.scan(now, due)
            b = box.get("bridge")
            if b is not None:
                t0 = time.perf_counter_ns()
                b.after_scan(eng.scan_count, now)
                after_ns.append(time.perf_counter_ns() - t0)

    sched = Scheduler(eng.tasks, tick, realtime_priority=rt)
    proc = None
    parent = None
    if bridge_on:
        state = tempfile.mkdtemp(prefix="opcua-bench-")
        cfg = OpcuaConfig.demo(state, port=0)
        cfg.default_access = "none"
        cfg.expose = [ExposeRule("Tags.cells*", "ro")]
        t0 = time.perf_counter()
        b = OpcuaBridge(eng, cfg, lock=lock, clock_ns=lambda: sched.clock.now_ns() - sched.start_ns,
                        scheduler_stats=sched.stats, site="bench", version="bench", sample_phase=phase)
        print(f"  address space: {len(b.spec.variables)} variables, built in the runtime in "
              f"{time.perf_counter() - t0:.2f} s", flush=True)
        t0 = time.perf_counter()
        b.start()
        print(f"  server process up in {time.perf_counter() - t0:.2f} s", flush=True)
        parent, child = multiprocessing.Pipe()
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_clients, args=(child, b.endpoint, clients, publish_ms, subscribe), daemon=True)
        proc.start()
        box["pending"] = b
    import gc
    gc.collect()
    gc.freeze()
    sched.start()
    if bridge_on:
        box["bridge"] = box.pop("pending")
        msg = parent.recv()                   # the clients have subscribed
        print(f"  {clients} clients subscribed to {msg[1]} tags each in {msg[2]:.1f} s", flush=True)
        for st in sched.stats.values():       # measure from here on
            st.jitter_ns.clear()
            st.jitter_max_ns = 0
            st.overruns = 0
        box["bridge"].stats.cycle_ns.clear()
        after_ns.clear()
        parent.send("go")
    time.sleep(seconds)
    out = {}
    if bridge_on:
        parent.send("stop")
        out["latency"] = parent.recv()
        out["apply"] = parent.recv()
        proc.join(30)
    sched.stop()
    st = sched.stats["Protect"]
    out["jitter"] = (_pct(st.jitter_ns, 0.5), _pct(st.jitter_ns, 0.99), st.jitter_max_ns, st.overruns, st.scans)
    scada = sched.stats["Scada"]
    out["scada_jitter"] = (_pct(scada.jitter_ns, 0.99), scada.overruns)
    if bridge_on:
        b = box["bridge"]
        out["after"] = (_pct(after_ns, 0.5), _pct(after_ns, 0.99), max(after_ns) if after_ns else 0)
        out["cycle"] = (_pct(b.stats.cycle_ns, 0.5), _pct(b.stats.cycle_ns, 0.99), max(b.stats.cycle_ns or [0]))
        out["lock_max"] = b.stats.lock_ns_max
        out["samples"], out["changes"] = b.stats.samples, b.stats.changes
        b.stop()
        shutil.rmtree(state, ignore_errors=True)
    eng.close()
    return out


def _clients(conn, url: str, n: int, publish_ms: float, subscribe: str) -> None:
    # the clients stand in for SCADA machines elsewhere: on this box they must
    # not take the CPU from the runtime they are measuring
    os.nice(15)
    asyncio.run(_clients_main(conn, url, n, publish_ms, subscribe))


async def _clients_main(conn, url, n, publish_ms, subscribe):
    from asyncua import Client, ua

    lat: list[float] = []
    measuring = [False]

    class Handler:
        def datachange_notification(self, node, val, data):
            if measuring[0]:
                ts = data.monitored_item.Value.SourceTimestamp
                if ts is not None:
                    lat.append(time.time() - ts.timestamp())

    t0 = time.perf_counter()
    cs = []
    count = N_CELLS * 2 if subscribe == "all" else N_CHANGING
    for _ in range(n):
        c = Client(url, timeout=30, watchdog_intervall=30.0)
        await c.connect()
        idx = await c.get_namespace_index("urn:gridplc")
        paths = ([f"Tags.cells[{i}].{f}" for i in range(1, N_CELLS + 1) for f in ("v", "t")] if subscribe == "all"
                 else [f"Tags.cells[{i}].v" for i in range(1, N_CHANGING + 1)])
        sub = await c.create_subscription(publish_ms, Handler())
        for i in range(0, len(paths), 2000):
            await sub.subscribe_data_change([c.get_node(ua.NodeId(p, idx)) for p in paths[i:i + 2000]], queuesize=1)
        cs.append(c)
    conn.send(("ready", count, time.perf_counter() - t0))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, conn.recv) == "go"
    await asyncio.sleep(1.0)                   # the initial values are not latency
    measuring[0] = True
    await loop.run_in_executor(None, conn.recv)
    measuring[0] = False
    ms = sorted(x * 1e3 for x in lat)
    conn.send((len(ms), _pct(ms, 0.5), _pct(ms, 0.99), ms[-1] if ms else 0))
    c = cs[0]
    idx = await c.get_namespace_index("urn:gridplc")
    last = await c.get_node(ua.NodeId("diag:PublishApplyLastMs", idx)).read_value()
    mx = await c.get_node(ua.NodeId("diag:PublishApplyMaxMs", idx)).read_value()
    conn.send((last, mx))
    for c in cs:
        await c.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--publish-ms", type=float, default=50.0)
    ap.add_argument("--subscribe", choices=("all", "changing"), default="all")
    ap.add_argument("--sample-phase", default="0.5",
                    help="when the bridge samples, as a fraction of the base period after each deadline; "
                         "'none': when after_scan wakes it")
    ap.add_argument("--rt", type=int, default=None, metavar="PRIO",
                    help="run the scan thread SCHED_FIFO at this priority (site.realtime_priority)")
    a = ap.parse_args()
    phase = None if a.sample_phase == "none" else float(a.sample_phase)
    rt = a.rt
    sys.setswitchinterval(0.0005)            # as LiveRuntime.start does
    print(f"OPC UA bench: 10 ms protection task (site_protect.st) + 100 ms task with {N_CELLS * 2} tags, "
          f"{N_CHANGING} changing per scan; {a.seconds:g} s per run", flush=True)
    print("run 1: no OPC UA server", flush=True)
    base = run(a.seconds, False, 0, a.publish_ms, a.subscribe, rt=rt)
    print(f"run 2: server + {a.clients} clients (publishing interval {a.publish_ms:g} ms, "
          f"subscribed to {a.subscribe}, sampling {'after each scan' if phase is None else f'at {phase:g} of the base period'})",
          flush=True)
    srv = run(a.seconds, True, a.clients, a.publish_ms, a.subscribe, phase, rt)
    us = lambda ns: f"{ns / 1e3:.0f} us"          # noqa: E731
    for name, r in (("without server", base), ("with server   ", srv)):
        p50, p99, mx, ovr, scans = r["jitter"]
        print(f"protection task {name}: start jitter p50 {us(p50)}, p99 {us(p99)}, max {us(mx)}, "
              f"overruns {ovr} in {scans} scans; 100 ms task jitter p99 {us(r['scada_jitter'][0])}")
    print(f"p99 jitter added by the server: {(srv['jitter'][1] - base['jitter'][1]) / 1e3:+.0f} us")
    a50, a99, amax = srv["after"]
    print(f"after_scan on the scan thread: p50 {a50 / 1e3:.1f} us, p99 {a99 / 1e3:.1f} us, max {amax / 1e3:.1f} us")
    c50, c99, cmax = srv["cycle"]
    print(f"bridge cycle per sample (snapshot of {N_CELLS * 2} values + diff + send): p50 {us(c50)}, p99 {us(c99)}, "
          f"max {us(cmax)}; longest hold of the runtime lock {us(srv['lock_max'])}; "
          f"{srv['samples']} samples, {srv['changes']} changes sent")
    print(f"server process, applying one batch of changes to the nodes: last {srv['apply'][0]:.1f} ms, "
          f"max {srv['apply'][1]:.1f} ms")
    n, l50, l99, lmax = srv["latency"]
    print(f"end-to-end latency scan -> client notification ({n} notifications): p50 {l50:.1f} ms, "
          f"p99 {l99:.1f} ms, max {lmax:.1f} ms")


if __name__ == "__main__":
    main()
