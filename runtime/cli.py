"""`gridplc`: check, compile, sim, explain.

Exit codes (a contract; scripts and CI rely on them):
  0  success
  1  the program has errors (`check`, `compile`, `sim`)
  2  bad command line or an option that contradicts the program
  3  `sim`: a runtime fault (prints `path:line:col: fault: what (scan N)`)
No input, however malformed, produces a Python traceback; an internal error
(a gridplc bug) does, and exits 70.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_FAULT, EXIT_INTERNAL = 0, 1, 2, 3, 70


class UsageError(Exception):
    pass


def _parse_duration_ns(text: str, what: str) -> int:
    from plc_lang.literals import LiteralError, parse_duration_ns
    s = text.strip()
    if "#" in s:
        s = s.split("#", 1)[1]
    try:
        ns = parse_duration_ns(s)
    except LiteralError as e:
        raise UsageError(f"{what}: {e}") from None
    if ns <= 0:
        raise UsageError(f"{what} must be greater than zero")
    return ns


def _load(files: list[str], fmt: str, quiet_warnings: bool = False):
    from plc_lang.diagnostics import render
    from plc_lang.driver import compile_project, read_sources
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise UsageError(f"no such file: {missing[0]}")
    result = compile_project(read_sources(files))
    diags = [d for d in result.diagnostics if d.is_error or not quiet_warnings]
    if diags:
        print(render(diags, result.sources, fmt), file=sys.stderr if fmt != "json" else sys.stdout)
        sys.stderr.flush()
    return result


def cmd_check(a) -> int:
    from plc_lang.diagnostics import render
    from plc_lang.driver import check_project, compile_project, read_sources
    from runtime.io.check import check_maps, split_args
    missing = [f for f in a.files if not os.path.isfile(f)]
    if missing:
        raise UsageError(f"no such file: {missing[0]}")
    st_files, maps, map_problems = split_args(a.files)
    if not st_files:
        raise UsageError("no ST files to check (give .st files, or a site file that names its sources)")
    result = check_project(read_sources(st_files))
    errors = sum(d.is_error for d in result.diagnostics)
    bound_decls: set = set()
    if maps:
        built = compile_project(read_sources(st_files)) if not errors else None
        found, bound_decls = check_maps(maps, built, a.program)
        map_problems += found
    # a variable the field reads or writes is used, whatever the program does with it
    diags = [d for d in result.diagnostics if (d.is_error or not a.no_warnings) and not (
        d.code == "W0101" and (d.span.file, d.span.line, d.span.col) in bound_decls)]
    if a.format == "json":
        out = json.loads(render(diags, result.sources, "json"))
        out += [_map_problem_json(p) for p in map_problems]
        print(json.dumps(out, indent=2))
    else:
        if diags:
            print(render(diags, result.sources, a.format))
        for p in map_problems:
            print(p)
    errors += len(map_problems)
    warnings = sum(not d.is_error for d in diags)
    sys.stdout.flush()
    if a.format != "json":
        if errors:
            print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
        elif not a.quiet:
            extra = f" and {len(maps)} I/O map(s)" if maps else ""
            print(f"ok: {len(st_files)} file(s){extra}, {warnings} warning(s)", file=sys.stderr)
    return EXIT_ERRORS if errors else EXIT_OK


def _map_problem_json(p: str) -> dict:
    """`file:line: key: message` as a diagnostic-shaped object."""
    import re
    m = re.match(r"^(.*?):(\d+): (.*)$", p)
    file, line, msg = (m.group(1), int(m.group(2)), m.group(3)) if m else (p.split(":", 1)[0], 1, p)
    return {"code": "IOMAP", "severity": "error", "message": msg, "file": file, "line": line, "column": 1,
            "end_line": line, "end_column": 1, "notes": []}


def cmd_compile(a) -> int:
    result = _load(a.files, a.format, quiet_warnings=True)
    if not result.ok:
        return EXIT_ERRORS
    if a.emit_python:
        sys.stdout.write(result.program.source)
    if a.emit_c:
        from plc_lang.native.cgen import NativeUnsupported, generate_c
        try:
            sys.stdout.write(generate_c(result.project).source)
        except NativeUnsupported as e:
            print(f"error: the native backend does not compile {e}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK


def _run_one(path: str, trace_tags: list[str], coverage: bool = False, backend: str | None = None):
    """(result, problems, coverage data): what crosses back from a worker process."""
    from runtime.scenario import ScenarioError, load_scenario, run_scenario
    programs = [] if coverage else None
    try:
        r = run_scenario(load_scenario(path), trace_tags=trace_tags, coverage=programs, backend=backend)
    except ScenarioError as e:
        return None, e.problems, None
    for x in r.expects:            # compiled closures stay here: the result crosses processes
        x.expr = x.cond = None
    if coverage:
        from runtime.coverage import from_programs
        return r, None, from_programs(programs)
    return r, None, None


def cmd_scenarios(a) -> int:
    from runtime.trace import write_csv, write_vcd
    # --trace "a,b;c" : tags, with ';' separating the plot's panels
    groups = [[t.strip() for t in g.split(",") if t.strip()] for g in (a.trace or "").split(";")]
    groups = [g for g in groups if g]
    trace_tags = [t for g in groups for t in g]
    if a.plot and not trace_tags:
        raise UsageError("--plot needs --trace TAGS to know what to draw")
    results = []
    problems = []
    jobs = max(1, min(a.jobs or os.cpu_count() or 1, len(a.files)))
    if jobs > 1:
        # scenarios are independent: run them in processes, report in file order
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(_run_one, f, trace_tags, a.coverage, a.backend) for f in a.files]
            outcomes = []
            for i, fu in enumerate(futures):
                outcomes.append(fu.result())
                if sys.stderr.isatty():
                    print(f"\r[{'#' * (i + 1)}{'.' * (len(futures) - i - 1)}] {i + 1}/{len(futures)}",
                          end="", file=sys.stderr, flush=True)
            if sys.stderr.isatty():
                print(file=sys.stderr)
    else:
        outcomes = [_run_one(f, trace_tags, a.coverage, a.backend) for f in a.files]
    hits = None
    if a.coverage:
        from runtime.coverage import empty, merge
        hits = empty()
        for _r, _errs, h in outcomes:       # in file order: the data file does not depend on --jobs
            if h is not None:
                merge(hits, h)
    for path, (r, errs, _h) in zip(a.files, outcomes):
        if errs:
            problems.extend(errs)
            continue
        results.append(r)
        _print_result(r)
        if a.plot:
            from runtime.plot import plot_result
            target = a.plot if len(a.files) == 1 else \
                f"{os.path.splitext(a.plot)[0]}-{os.path.splitext(os.path.basename(path))[0]}.png"
            plot_result(r, target, groups)
            print(f"  plot: {target}")
        if trace_tags and r.trace is not None:
            base = os.path.join(a.trace_dir or os.path.dirname(os.path.abspath(path)),
                                os.path.splitext(os.path.basename(path))[0])
            os.makedirs(os.path.dirname(base), exist_ok=True)
            eng_types = r.trace_types
            write_csv(base + ".csv", r.trace_tags, r.trace)
            write_vcd(base + ".vcd", r.trace_tags, eng_types, r.trace)
            print(f"  trace: {base}.csv, {base}.vcd")
    for p in problems:
        print(p, file=sys.stderr)
    if a.junit:
        _write_junit(a.junit, results, problems)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed + len(problems)} failed")
    if hits is not None:
        from runtime.coverage import DEFAULT_FILE
        from runtime.sttest_cli import record_coverage
        record_coverage(hits, a.coverage_file or DEFAULT_FILE)
    if problems:
        return EXIT_USAGE if not results else EXIT_ERRORS
    return EXIT_ERRORS if failed else EXIT_OK


def _print_result(r) -> None:
    sc = r.scenario
    print(f"{'PASS' if r.passed else 'FAIL'} {sc.name} ({os.path.basename(sc.path)}, {r.scans} scans, "
          f"{sc.duration_ns / 1e9:g} s simulated)")
    for x in r.expects:
        if x.ok:
            print(f"  ok   {x.describe()}")
        else:
            where = f"first failed at scan {x.fail_scan} (t={x.fail_t_ns / 1e9:.3f} s)" if x.fail_scan else \
                (f"t={x.fail_t_ns / 1e9:.3f} s" if x.fail_t_ns is not None else "")
            vals = ", ".join(f"{k} = {json.dumps(v)}" for k, v in x.fail_values.items())
            print(f"  FAIL {x.describe()}: {where}{': ' + vals if vals else ''}")
    if r.fault is not None:
        print(f"  FAIL the program faulted: {r.fault}")


def _write_junit(path: str, results, problems) -> None:
    from xml.sax.saxutils import quoteattr
    cases = []
    for r in results:
        for x in r.expects:
            name = quoteattr(x.describe())
            if x.ok:
                cases.append(f'  <testcase classname={quoteattr(r.scenario.name)} name={name}/>')
            else:
                msg = quoteattr(f"failed at t={(x.fail_t_ns or 0) / 1e9:.3f}s: {json.dumps(x.fail_values)}")
                cases.append(f'  <testcase classname={quoteattr(r.scenario.name)} name={name}>'
                             f'<failure message={msg}/></testcase>')
        if r.fault is not None:
            cases.append(f'  <testcase classname={quoteattr(r.scenario.name)} name="no runtime fault">'
                         f'<failure message={quoteattr(str(r.fault))}/></testcase>')
    for p in problems:
        cases.append(f'  <testcase classname="scenario files" name={quoteattr(p.split(":")[0])}>'
                     f'<error message={quoteattr(p)}/></testcase>')
    fails = sum("<failure" in c or "<error" in c for c in cases)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="gridplc scenarios" tests="{len(cases)}" '
                f'failures="{fails}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def cmd_sim(a) -> int:
    if a.scenario:
        return cmd_scenarios(a)
    if a.coverage:
        raise UsageError("--coverage needs --scenario (or use `gridplc test --coverage`)")
    from runtime.engine import Engine, EngineError
    from runtime.tags import TagError
    interval = _parse_duration_ns(a.interval, "--interval") if a.interval else None
    watchdog_s = _parse_duration_ns(a.watchdog, "--watchdog") / 1e9
    if a.cycles < 0:
        raise UsageError("--cycles must be 0 or more")
    result = _load(a.files, "rich", quiet_warnings=True)
    if not result.ok:
        return EXIT_ERRORS
    from runtime.backend import BackendError, select
    try:
        program = select(result.program, a.backend)
    except BackendError as e:
        raise UsageError(str(e)) from None
    try:
        engine = Engine(program, program_name=a.program, interval_ns=interval, watchdog_s=watchdog_s)
    except EngineError as e:
        raise UsageError(f"[{e.code}] {e}" if e.code else str(e)) from None
    try:
        for item in a.set or ():
            if "=" not in item:
                raise UsageError(f"--set takes PATH=VALUE, not '{item}'")
            path, value = item.split("=", 1)
            try:
                engine.set_text(path.strip(), value)
            except TagError as e:
                raise UsageError(f"--set {item}: {e}") from None
        fault = engine.run(a.cycles)
        if a.json:
            print(json.dumps(engine.snapshot(), indent=None if a.compact else 2))
        elif fault is None:
            snap = engine.snapshot()
            for k, v in snap.items():
                print(f"{k} = {json.dumps(v)}")
        if fault is not None:
            print(str(fault), file=sys.stderr)
            return EXIT_FAULT
        return EXIT_OK
    finally:
        engine.close()


def cmd_run(a) -> int:
    import signal
    import threading
    import time as _time
    from runtime.live import LiveRuntime, StartError
    from runtime.site import SiteError, load_site
    duration = _parse_duration_ns(a.duration, "--duration") / 1e9 if a.duration else None
    try:
        site = load_site(a.site)
    except SiteError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EXIT_USAGE
    try:
        rt = LiveRuntime(site, cold=a.cold, record_dir=a.record)
    except StartError as e:
        print(f"gridplc run: cannot start:\n{e}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    reason = ["stopped after --duration"]

    def on_signal(signum, frame):
        reason[0] = f"signal {signal.Signals(signum).name}"
        stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    rt.start()
    print(f"gridplc run: {site.name} up; control on {rt.control.host}:{rt.control.port}; "
          f"event log {site.event_log_path}", file=sys.stderr)
    t_end = None if duration is None else _time.monotonic() + duration
    tty = sys.stdout.isatty()
    try:
        while not stop.is_set():
            wait = site.status_period_s if t_end is None else min(site.status_period_s, max(0.0, t_end - _time.monotonic()))
            stop.wait(wait)
            if rt.control.stop_requested.is_set():
                reason[0] = "stop requested over the control socket"
                break
            if rt.scheduler.error is not None:
                reason[0] = f"scan thread died: {rt.scheduler.error!r}"
                break
            if not a.quiet:
                line = rt.status_line()
                print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n", flush=True)
            if t_end is not None and _time.monotonic() >= t_end:
                break
    finally:
        rt.stop(reason[0])
    if tty and not a.quiet:
        print()
    print(f"gridplc run: stopped ({reason[0]}): {rt.status_line()}", file=sys.stderr)
    return EXIT_OK


def cmd_ctl(a) -> int:
    from runtime.control import ControlError, request
    from runtime.site import SiteError, load_site
    try:
        site = load_site(a.site)
    except SiteError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EXIT_USAGE
    req: dict = {"op": a.op, "who": a.user}
    args = list(a.args)
    need = {"read": ["path"], "write": ["path", "value"], "force": ["path", "value"], "release": ["path"],
            "reset": ["task"], "status": [], "stop": []}[a.op]
    if len(args) != len(need):
        raise UsageError(f"ctl {a.op} takes {' '.join(n.upper() for n in need) or 'no arguments'}")
    req.update(zip(need, args))
    if a.op == "reset":
        req["mode"] = "cold" if a.cold else "warm"
    try:
        reply = request(site.control_file, req)
    except ControlError as e:
        print(f"gridplc ctl: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not reply.get("ok"):
        print(f"gridplc ctl {a.op}: refused: {reply.get('error')}", file=sys.stderr)
        return EXIT_ERRORS
    print(json.dumps(reply["result"], indent=2))
    return EXIT_OK


def cmd_replay(a) -> int:
    from runtime.journal import JournalError, replay
    try:
        r = replay(a.dir)
    except JournalError as e:
        print(f"gridplc replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    if r.ok:
        print(f"replay: {r.scans} scans, outputs bit-identical to the recording")
        return EXIT_OK
    print(f"replay: outputs diverge at {r.divergence}")
    return EXIT_ERRORS


def cmd_log(a) -> int:
    from runtime.log_cli import cmd_log_show, cmd_log_verify
    if a.action == "verify":
        return cmd_log_verify(a.file)
    return cmd_log_show(a.file, kinds=a.kind, since=a.since, until=a.until, as_json=a.json)


def cmd_explain(a) -> int:
    from plc_lang.codes import CODES
    code = a.code.upper()
    if code not in CODES:
        raise UsageError(f"unknown diagnostic code '{a.code}' (known: {', '.join(CODES)})")
    c = CODES[code]
    print(f"{code}: {c.title}\n\n{c.page}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gridplc", description="A soft PLC for battery energy storage sites.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("check", help="check ST files (and I/O maps or site files given as .toml) and print diagnostics")
    p.add_argument("files", nargs="+")
    p.add_argument("--program", help="with I/O maps: the PROGRAM to bind when there is no CONFIGURATION")
    p.add_argument("--format", choices=("rich", "short", "json"), default="rich")
    p.add_argument("--no-warnings", action="store_true", help="print errors only")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("compile", help="compile ST files; --emit-python / --emit-c print the generated code")
    p.add_argument("files", nargs="+")
    p.add_argument("--emit-python", action="store_true")
    p.add_argument("--emit-c", action="store_true", help="the native backend's C (plc_lang/native/)")
    p.add_argument("--format", choices=("rich", "short", "json"), default="rich")
    p.set_defaults(fn=cmd_compile)

    p = sub.add_parser("sim", help="run programs offline on a virtual clock")
    p.add_argument("files", nargs="+")
    p.add_argument("--program", help="the PROGRAM to run when there is no CONFIGURATION")
    p.add_argument("--cycles", type=int, default=1, help="scans (base ticks) to run")
    p.add_argument("--interval", help="scan period, e.g. 100ms (taken from the CONFIGURATION if omitted)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="set a variable before the first scan")
    p.add_argument("--json", action="store_true", help="print every instance variable as one JSON object")
    p.add_argument("--compact", action="store_true", help="with --json: one line")
    p.add_argument("--watchdog", default="1s", help="wall time one scan may take (default 1s)")
    p.add_argument("--scenario", action="store_true",
                   help="the files are scenario files (TOML): run each and check its expectations")
    p.add_argument("--junit", metavar="FILE", help="with --scenario: a JUnit XML report for CI")
    p.add_argument("--trace", metavar="TAGS", help="with --scenario: comma-separated tags to trace every scan")
    p.add_argument("--trace-dir", metavar="DIR", help="where traces go (default: beside the scenario)")
    p.add_argument("--plot", metavar="FILE.png", help="with --scenario and --trace: a trend chart (';' in --trace "
                   "separates panels; BOOL tags are shaded spans)")
    p.add_argument("--jobs", type=int, help="with --scenario: scenario files run in this many processes "
                   "(default: one per core)")
    p.add_argument("--coverage", action="store_true", help="with --scenario: count the ST statements and "
                   "branches run and add them to the coverage data file (see `gridplc coverage`)")
    p.add_argument("--coverage-file", metavar="FILE", help="with --coverage: the data file "
                   "(default .gridplc-coverage.json)")
    p.add_argument("--backend", choices=("auto", "native", "python"), default=None,
                   help="what runs the scans: native C (auto: when the program compiles natively; the same "
                        "values bit for bit) or Python (default: $GRIDPLC_BACKEND, else auto)")
    p.set_defaults(fn=cmd_sim)

    p = sub.add_parser("run", help="run a site live (see runtime/site.py for the file format)")
    p.add_argument("site", help="the site file, e.g. site.toml")
    p.add_argument("--cold", action="store_true", help="cold start: ignore RETAIN values (PERSISTENT ones stay)")
    p.add_argument("--record", metavar="DIR", help="journal every scan's inputs, writes and outputs for replay")
    p.add_argument("--duration", help="stop after this long, e.g. 30s")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("ctl", help="talk to a running instance: status, read, write, force, release, reset, stop")
    p.add_argument("site")
    p.add_argument("op", choices=("status", "read", "write", "force", "release", "reset", "stop"))
    p.add_argument("args", nargs="*")
    p.add_argument("--cold", action="store_true", help="with reset: cold restart of the task")
    p.add_argument("--user", default=os.environ.get("USER", "ctl"), help="who, for the event log")
    p.set_defaults(fn=cmd_ctl)

    p = sub.add_parser("replay", help="re-run a recording offline and compare every output")
    p.add_argument("dir")
    p.set_defaults(fn=cmd_replay)

    p = sub.add_parser("log", help="the event log: verify its hash chain, or show records")
    p.add_argument("action", choices=("verify", "show"))
    p.add_argument("file")
    p.add_argument("--kind", action="append", help="only these kinds (repeatable, or comma-separated)")
    p.add_argument("--since", help="ISO wall time or latched time like 10s")
    p.add_argument("--until", help="ISO wall time or latched time like 10s")
    p.add_argument("--json", action="store_true", help="raw JSON lines")
    p.set_defaults(fn=cmd_log)

    p = sub.add_parser("explain", help="explain a diagnostic code, e.g. E0021")
    p.add_argument("code")
    p.set_defaults(fn=cmd_explain)

    for mod in _COMMAND_MODULES:
        # each adds its own sub-command(s): register(sub) sets fn=... like the ones above
        if _module_exists(mod):
            importlib.import_module(mod).register(sub)
    return ap


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:     # its package is not there either
        return False


# Sub-commands that live beside the feature they drive.
_COMMAND_MODULES = ("runtime.sttest_cli", "runtime.fuzz_cli", "runtime.io.can_cli", "runtime.opcua.cli",
                    "runtime.sim_devices.cli", "runtime.demo_cli")


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return a.fn(a)
    except UsageError as e:
        print(f"gridplc {a.cmd}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except OSError as e:
        # the environment, not the program: a port in use, a read-only state dir
        print(f"gridplc {a.cmd}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # noqa: BLE001 - a gridplc bug: say so, with the traceback
        import traceback
        traceback.print_exc()
        print(f"gridplc {a.cmd}: internal error (a bug in gridplc; the traceback above helps fix it)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
