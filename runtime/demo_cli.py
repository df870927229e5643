"""`gridplc demo`: the BESS reference application on a simulated site.

Starts the simulated devices (runtime/sim_devices/demo_site.py, a process of
their own, speaking CAN over a socketcand hub and Modbus TCP on 127.0.0.1),
then the live runtime with io_maps/demo_deploy.toml, prints where to
connect, and a status line every second until --duration or Ctrl-C.

--scenario FILE plays a scenario file's input trajectories live: each input
it drives is forced to the trajectory's value as time passes (visible as
forced in status and over OPC UA), and released at its end, so an event
(over-temperature, BMS loss) can be watched in a SCADA.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(REPO, "io_maps", "demo_deploy.toml")


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the BESS demo: simulated devices and the runtime on 127.0.0.1")
    p.add_argument("--duration", help="stop after this long, e.g. 60s (default: until Ctrl-C)")
    p.add_argument("--scenario", metavar="FILE", help="play this scenario's input trajectories live (forced)")
    p.add_argument("--state-dir", help="retain file and event log (default .gridplc-demo in the repository)")
    p.add_argument("--cold", action="store_true", help="start cold: forget retained trips and settings")
    p.add_argument("--opcua-port", type=int, default=4840, help="OPC UA server port (0: any free one; default 4840)")
    p.add_argument("--modbus-port", type=int, default=15502, help="Modbus SCADA view port (0: any free one)")
    p.add_argument("-q", "--quiet", action="store_true", help="no status lines")
    p.set_defaults(fn=cmd_demo)


class _Devices:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime.sim_devices.demo_site"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)   # Ctrl-C is ours to handle, then we stop it
        line = self.proc.stdout.readline()
        try:
            self.info = json.loads(line)
        except ValueError:
            self.info = {"ready": False, "error": line.strip() or "the device simulator exited"}

    def send(self, event: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(event) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self) -> None:
        try:
            self.proc.stdin.close()       # its loop ends at EOF
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()


def cmd_demo(a) -> int:
    from .cli import EXIT_OK, EXIT_USAGE, _parse_duration_ns
    from .live import LiveRuntime, StartError
    from .site import SiteError, load_site
    duration_s = _parse_duration_ns(a.duration, "--duration") / 1e9 if a.duration else None
    live_scn = _LiveScenario(a.scenario) if a.scenario else None
    try:
        site = load_site(DEPLOY)
    except SiteError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EXIT_USAGE
    if a.state_dir:
        site.state_dir = os.path.abspath(a.state_dir)
        site.retain_path = os.path.join(site.state_dir, "retain.json")
        site.event_log_path = os.path.join(site.state_dir, "events.jsonl")
    dev = _Devices()
    if not dev.info.get("ready"):
        print(f"gridplc demo: the simulated devices did not start: {dev.info.get('error')}", file=sys.stderr)
        dev.stop()
        return EXIT_USAGE
    overrides = {"bms": {"can_options": {"port": dev.info["can_port"]}},
                 "battery": {"port": dev.info["pcs_port"]}, "meter": {"port": dev.info["meter_port"]},
                 "modbus_server": {"port": _free_or_any(a.modbus_port)}}
    from .opcua.config import OpcuaConfigError, load_opcua
    try:
        ua = load_opcua(site.path, state_dir=site.state_dir, site_name=site.name)
    except OpcuaConfigError as e:
        dev.stop()
        print("\n".join(e.problems), file=sys.stderr)
        return EXIT_USAGE
    if ua is not None:
        ua.port = _free_or_any(a.opcua_port)
    try:
        rt = LiveRuntime(site, cold=a.cold, device_overrides=overrides, user="demo", opcua_config=ua)
    except StartError as e:
        dev.stop()
        print(f"gridplc demo: {e}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    rt.start(control=True)
    _banner(rt, dev, site)
    t0 = time.monotonic()
    try:
        # operator intent for the demo: run, peak shaving
        for path, value in (("Coord.runCmd", "TRUE"), ("Dispatch.modeSel", "MODE_PEAK_SHAVE")):
            try:
                rt.write(path, value, "demo")
            except Exception as e:  # noqa: BLE001 - a renamed tag must not stop the demo
                print(f"gridplc demo: cannot set {path}: {e}", file=sys.stderr)
        while not stop.is_set():
            elapsed = time.monotonic() - t0
            if duration_s is not None and elapsed >= duration_s:
                break
            if live_scn is not None:
                live_scn.apply(rt, elapsed)
            if not a.quiet:
                print(status_line(rt, elapsed), flush=True)
            stop.wait(1.0)
    finally:
        if live_scn is not None:
            live_scn.release(rt)
        rt.stop("demo ended")
        dev.stop()
    st = rt.status()
    for name, t in st["tasks"].items():
        print(f"{name}: {t['scans']} scans, exec mean {t['exec_mean_ms']:.2f} ms max {t['exec_max_ms']:.2f} ms, "
              f"jitter p99 {t['jitter_p99_ms']:.2f} ms, {t['overruns']} overruns"
              + (f", FAULT {t['fault']}" if t["fault"] else ""))
    print(f"event log: {site.event_log_path}")
    return EXIT_OK


def _free_or_any(port: int) -> int:
    """The port asked for if nothing listens there, else 0 (any free one)."""
    import socket
    if port == 0:
        return 0
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _banner(rt, dev, site) -> None:
    srv = next((m.modbus_server for m in rt.io_maps if m.modbus_server), None)
    print(f"gridplc demo: site '{site.name}' running ({', '.join(t.name for t in rt.engine.tasks)})")
    print(f"  devices   CAN (socketcand) 127.0.0.1:{dev.info['can_port']}, PCS/battery SunSpec "
          f"127.0.0.1:{dev.info['pcs_port']}, meter 127.0.0.1:{dev.info['meter_port']}")
    if srv is not None:
        print(f"  SCADA     Modbus TCP 127.0.0.1:{srv.port} (unit {srv.unit}; holding 0 = mode, 1-2 = VPP setpoint W)")
    ua = getattr(rt, "opcua", None)
    if ua is not None:
        print(f"  OPC UA    {ua.endpoint}  (Basic256Sha256 Sign/SignAndEncrypt, or None; anonymous = viewer)")
        print("            users viewer / viewer-demo, operator / operator-demo, engineer / engineer-demo; "
              "tags as ns=urn:gridplc;s=Protect.bmsSoc")
    ctl = f"gridplc ctl {DEPLOY} status"
    print(f"  control   {ctl}   (read/write/force/reset as in the README)")
    print("  Ctrl-C stops it cleanly.")


def _num(rt, path: str, default=0.0):
    try:
        return rt.engine.tag(path).get()
    except Exception:  # noqa: BLE001 - status must never fail on a renamed tag
        return default


def status_line(rt, elapsed: float) -> str:
    with rt.lock:
        soc = _num(rt, "Protect.bmsSoc")
        p = _num(rt, "Coord.pcsSetpointW")
        cha, dis = _num(rt, "Coord.pcsChaMaxW"), _num(rt, "Coord.pcsDisMaxW")
        grid = _num(rt, "Dispatch.gridImportW")
        active = _active_alarms(rt)
    st = rt.status()
    fast = next(iter(st["tasks"].values()))
    flt = " FAULT" if any(t["fault"] for t in st["tasks"].values()) else ""
    alarms = ", ".join(active[:3]) + (f" (+{len(active) - 3})" if len(active) > 3 else "") if active else "none"
    return (f"[{elapsed:6.1f}s] SOC {soc:5.1f} %  P {p:8.0f} W  limits -{cha:.0f}/+{dis:.0f} W  grid {grid:7.0f} W  "
            f"alarms: {alarms}  | scans {fast['scans']}, exec {fast['exec_last_ms']:.2f} ms, "
            f"jitter p99 {fast['jitter_p99_ms']:.2f} ms{flt}")


def _active_alarms(rt) -> list[str]:
    from .pragmas import attributes, settings
    out = []
    for inst in rt.engine.instances.values():
        for v in inst.pou.vars.values():
            a = attributes(v.pragmas)
            if "alarm" in a:
                try:
                    if rt.engine.tag(f"{inst.name}.{v.name}").get() is True:
                        out.append(settings(a["alarm"]).get("message", f"{inst.name}.{v.name}"))
                except Exception:  # noqa: BLE001
                    continue
    return out


class _LiveScenario:
    """A scenario's input trajectories, forced live as wall time passes."""

    def __init__(self, path: str):
        from .scenario import ScenarioError, _trajectory, load_scenario
        try:
            self.sc = load_scenario(path)
        except ScenarioError as e:
            raise SystemExit("\n".join(e.problems)) from None
        self.trajs = [(it["tag"], _trajectory(it, self.sc.seed)) for it in self.sc.inputs if "tag" in it]
        self.duration_s = self.sc.duration_ns / 1e9
        self.done = False

    def apply(self, rt, elapsed: float) -> None:
        if self.done:
            return
        if elapsed > self.duration_s:
            self.release(rt)
            return
        t_ns = int(elapsed * 1e9)
        for tag, f in self.trajs:
            v = f(t_ns)
            text = ("TRUE" if v else "FALSE") if str(rt.engine.tag(tag).type) == "BOOL" else repr(float(v))
            try:
                rt.force(tag, text, "demo-scenario")
            except Exception:  # noqa: BLE001 - an integer tag takes the integer text
                rt.force(tag, str(int(v)), "demo-scenario")

    def release(self, rt) -> None:
        if self.done:
            return
        self.done = True
        for tag, _ in self.trajs:
            try:
                rt.release(tag, "demo-scenario")
            except Exception:  # noqa: BLE001 - already released
                pass
