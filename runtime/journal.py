"""Record and replay: how a field incident becomes a regression test.

`gridplc run --record DIR` writes DIR/meta.json (the ST sources themselves,
the deployment's inputs, outputs and safe values, the retained values it
started from) and DIR/scans.jsonl, one line per scan:

    {"k": scan, "t": latched ns, "due": [tasks], "in": {changed inputs},
     "w": [[path, value, who], ...], "f": {changed forces, null = released},
     "out": {changed outputs}, "faults": [[task, what, where], ...]}

`gridplc replay DIR` rebuilds the program from the recorded sources, feeds the
same inputs, writes and forces at the same scans and latched times, and
compares every output of every scan; the first divergence is reported.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from . import tags

FORMAT = "gridplc-journal"
VERSION = 1


class JournalError(Exception):
    pass


def _jv(engine, path: str, value):
    return tags.to_json_value(value, engine.tag(path).type)


class JournalWriter:
    def __init__(self, directory: str, engine, sources: list, *, program: str | None, interval_ns: int | None,
                 restored: dict, safe: dict):
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.engine = engine
        meta = {
            "format": FORMAT, "version": VERSION,
            "sources": [{"path": s.path, "sha256": hashlib.sha256(s.text.encode()).hexdigest(), "text": s.text}
                        for s in sources],
            "program": program, "interval_ns": interval_ns,
            "inputs": list(engine.inputs), "outputs": list(engine.outputs),
            "input_points": {p: {"timeout_ns": pt.timeout_ns,
                                 "substitute": None if pt.substitute is None else _jv(engine, p, pt.substitute)}
                             for p, pt in engine.input_points.items()},
            "safe": safe, "watchdogs": {t.name: t.watchdog_s for t in engine.tasks},
            "restored": {p: [sig, v] for p, (sig, v) in restored.items()},
            "initial_outputs": {p: _jv(engine, p, v) for p, v in engine.output_image.items()},
        }
        with open(os.path.join(directory, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        self._f = open(os.path.join(directory, "scans.jsonl"), "w", encoding="utf-8", buffering=1 << 16)
        self._inputs: dict = {}
        self._quality: dict = {}
        self._outputs: dict = dict(engine.output_image)
        self._forced: dict = {}
        self._faults = len(engine.faults)
        self.scans = 0
        self._types: dict = {}

    def _jv(self, path: str, value):
        t = self._types.get(path)
        if t is None:                 # resolved once per path: this runs on the scan thread
            t = self._types[path] = self.engine.tag(path).type
        return tags.to_json_value(value, t)

    def record(self, due) -> None:
        e = self.engine
        _jv = self._jv
        rec: dict = {"k": e.scan_count, "t": e.ctx.now_ns, "due": [t.name for t in due]}
        if e.resets:
            rec["reset"] = [list(r) for r in e.resets]
            e.resets.clear()
        changed = {p: v for p, v in e.input_image.items() if p in e.inputs and self._inputs.get(p, _NONE) != v}
        if changed:
            self._inputs.update(changed)
            rec["in"] = {p: _jv(p, v) for p, v in changed.items()}
        # quality as latched (after timeouts): replaying it gives the program what it saw
        q = {p: qt for p, qt in e.latched_quality.items() if self._quality.get(p) != qt}
        if q:
            self._quality.update(q)
            rec["q"] = {p: list(qt) for p, qt in q.items()}
        if e.last_applied:
            rec["w"] = [[p, _jv(p, v), who] for p, v, who in e.last_applied]
        if e.forced != self._forced:
            f = {p: _jv(p, v) for p, v in e.forced.items() if self._forced.get(p, _NONE) != v}
            f.update({p: None for p in self._forced if p not in e.forced})
            rec["f"] = f
            self._forced = dict(e.forced)
        out = {p: v for p, v in e.output_image.items() if self._outputs.get(p, _NONE) != v}
        if out:
            self._outputs.update(out)
            rec["out"] = {p: _jv(p, v) for p, v in out.items()}
        if len(e.faults) != self._faults:
            rec["faults"] = [[f.task, f.what, f.where] for f in e.faults[self._faults:]]
            self._faults = len(e.faults)
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.scans += 1

    def close(self) -> None:
        self._f.close()


_NONE = object()


@dataclass
class ReplayResult:
    ok: bool
    scans: int
    divergence: str | None = None


def replay(directory: str, *, watchdog_s: float = 10.0) -> ReplayResult:
    """Raises JournalError for anything wrong with the journal itself."""
    from .engine import EngineError
    try:
        return _replay(directory, watchdog_s)
    except (EngineError, tags.TagError, KeyError, TypeError, ValueError) as e:
        raise JournalError(f"{directory}: the journal does not match its program: {e!r}") from None


def _replay(directory: str, watchdog_s: float) -> ReplayResult:
    from plc_lang.driver import compile_project
    from plc_lang.source import SourceFile
    from .engine import Engine
    try:
        with open(os.path.join(directory, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise JournalError(f"{directory}: no readable meta.json ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise JournalError(f"{directory}/meta.json: not a gridplc journal of version {VERSION}")
    sources = [SourceFile(s["path"], s["text"]) for s in meta["sources"]]
    result = compile_project(sources)
    if not result.ok:
        raise JournalError("the recorded sources no longer compile: " +
                           "; ".join(f"{d.span}: {d.message}" for d in result.diagnostics if d.is_error))
    eng = Engine(result.program, program_name=meta["program"], interval_ns=meta["interval_ns"], watchdog_s=watchdog_s)
    try:
        for t in eng.tasks:
            t.watchdog_s = max(watchdog_s, meta["watchdogs"].get(t.name, watchdog_s))
        eng.restore({p: (sig, v) for p, (sig, v) in meta["restored"].items()})
        points = meta.get("input_points", {})
        for p in meta["inputs"]:
            pt = points.get(p, {})
            eng.declare_input(p, pt.get("timeout_ns"))
            if pt.get("substitute") is not None:
                eng.input_points[p].substitute = tags.from_json_value(pt["substitute"], eng.tag(p).type)
        safe = meta["safe"]
        for p in meta["outputs"]:
            eng.declare_output(p, None)
            if p in safe:
                eng.outputs[p].safe = tags.from_json_value(safe[p], eng.tag(p).type)
        tasks = {t.name: t for t in eng.tasks}
        expected_out = {p: v for p, v in meta["initial_outputs"].items()}
        got_out = {p: _jv(eng, p, v) for p, v in eng.output_image.items()}
        if got_out != expected_out:
            return ReplayResult(False, 0, f"before the first scan: outputs {got_out} != recorded {expected_out}")
        n = 0
        with open(os.path.join(directory, "scans.jsonl"), encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    raise JournalError(f"{directory}/scans.jsonl:{line_no}: not JSON (a torn last line?)") from None
                for p, v in rec.get("in", {}).items():
                    eng.input_image[p] = tags.from_json_value(v, eng.tag(p).type)
                for p, (q, ts) in rec.get("q", {}).items():
                    eng.input_quality[p] = (q, ts)
                for task_name, mode in rec.get("reset", ()):
                    eng.reset_task(task_name, mode, "replay")
                for p, v, who in rec.get("w", ()):
                    t = eng.tag(p)
                    eng._writes.append((t, tags.from_json_value(v, t.type), who))
                for p, v in rec.get("f", {}).items():
                    if v is None:
                        eng.forced.pop(p, None)
                        eng._forced_tags.pop(p, None)
                    else:
                        eng.forced[p] = tags.from_json_value(v, eng.tag(p).type)
                        eng._forced_tags[p] = eng.tag(p)
                before = len(eng.faults)
                eng.scan_count = rec["k"] - 1
                eng.scan(rec["t"], [tasks[name] for name in rec["due"]])
                n += 1
                for p, v in rec.get("out", {}).items():
                    expected_out[p] = v
                now_out = {p: _jv(eng, p, v) for p, v in eng.output_image.items()}
                if now_out != expected_out:
                    diffs = [f"{p} recorded {expected_out[p]!r}, replayed {now_out[p]!r}"
                             for p in expected_out if now_out.get(p) != expected_out[p]]
                    return ReplayResult(False, n, f"scan {rec['k']} (t={rec['t'] / 1e9:.3f} s): " + "; ".join(diffs))
                got_faults = [[x.task, x.what, x.where] for x in eng.faults[before:]]
                if got_faults != rec.get("faults", []):
                    return ReplayResult(False, n, f"scan {rec['k']}: faults recorded {rec.get('faults', [])}, "
                                                  f"replayed {got_faults}")
        return ReplayResult(True, n)
    finally:
        eng.close()
