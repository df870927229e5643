"""`gridplc fuzz`: random trajectories within ranges and rates, invariants,
shrinking, counterexample files that reproduce, and seeded determinism."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.fuzz import fuzz, write_counterexample
from runtime.scenario import ScenarioError, load_scenario, run_scenario

HERE = Path(__file__).parent
ROOT = HERE.parent
SC = HERE / "scenarios"


def _copy(tmp_path, name: str, st: str, edit=None) -> Path:
    (tmp_path / st).write_text((SC / st).read_text())
    text = (SC / name).read_text()
    p = tmp_path / name
    p.write_text(edit(text) if edit else text)
    return p


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "runtime.cli", "fuzz", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_an_unsafe_branch_is_found_shrunk_and_the_file_reproduces_it(tmp_path):
    res = fuzz(str(SC / "boost_fuzz.toml"), runs=400, seed=0, jobs=1, duration_ns=8_000_000_000)
    assert res.batch is not None, "the boost window was not found"
    v = res.batch.violation
    assert v.key == "expect[1]" and v.what == "always: Main.pCmd <= Main.limit"
    # the narrow combination: boost on, a request held above 180 for the 2 s timer, 40 < tMax < 45
    assert v.inputs["Main.boost"] is True and 40.0 < v.inputs["Main.tMax"] < 45.0 and v.inputs["Main.request"] > 180
    assert v.values["Main.pCmd"] > 100.0
    # shrunk: each input a constant or a few points, cut at the failure, which comes once the timer is done
    assert all(len(pts) <= 2 for _, pts in res.tables), res.tables
    assert 2_000_000_000 <= v.t_ns <= 3_000_000_000
    out = tmp_path / "cx.toml"
    write_counterexample(res, str(out))
    r = run_scenario(load_scenario(str(out)))
    failed = [x for x in r.expects if not x.ok]
    assert [x.describe() for x in failed] == ["always: Main.pCmd <= Main.limit"]
    assert failed[0].fail_t_ns == v.t_ns and failed[0].fail_scan == v.scan
    assert failed[0].fail_values == v.values


def test_a_safe_program_breaks_nothing(tmp_path):
    res = fuzz(str(SC / "guard_fuzz.toml"), runs=100, seed=1, jobs=1)
    assert res.batch is None
    assert res.runs == 100 and res.scans == 100 * 101


def test_trajectories_keep_to_range_rate_and_hold():
    # probe.st measures what it is given; the invariants are the declared range, rate and hold
    res = fuzz(str(SC / "probe_fuzz.toml"), runs=150, seed=2, jobs=1)
    assert res.batch is None, res.batch and res.batch.violation


@pytest.mark.parametrize("tight,key", [
    ('always = "ABS(Main.dT) <= 0.19"', "expect[1]"),                  # ramps do reach the full rate
    ('always = "Main.level >= -4 AND Main.level <= 5"', "expect[2]"),   # and the ends of the range
])
def test_the_probe_sees_the_limits_it_checks(tmp_path, tight, key):
    def edit(text):
        old = {"expect[1]": 'always = "ABS(Main.dT) <= 0.2001"',
               "expect[2]": 'always = "Main.level >= -5 AND Main.level <= 5"'}[key]
        return text.replace(old, tight)
    p = _copy(tmp_path, "probe_fuzz.toml", "probe.st", edit)
    res = fuzz(str(p), runs=150, seed=2, jobs=1)
    assert res.batch is not None and res.batch.violation.key == key


def test_same_seed_same_report_and_file_whatever_the_jobs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    scen = str(SC / "boost_fuzz.toml")
    r1 = _cli(scen, "--seed", "3", "--runs", "300", "--duration", "6s", "--jobs", "1", "--out", "cx.toml", cwd=a)
    r2 = _cli(scen, "--seed", "3", "--runs", "300", "--duration", "6s", "--jobs", "2", "--out", "cx.toml", cwd=b)
    assert r1.returncode == 1, r1.stdout + r1.stderr
    assert r2.returncode == 1, r2.stdout + r2.stderr
    assert r1.stdout == r2.stdout
    assert (a / "cx.toml").read_bytes() == (b / "cx.toml").read_bytes()
    assert "FAIL always: Main.pCmd <= Main.limit" in r1.stdout and "seed: 3" in r1.stdout
    assert "written: cx.toml" in r1.stdout and "WARNING" not in r1.stdout
    assert sorted(p.name for p in a.iterdir()) == ["cx.toml"]      # nothing else left behind (.hypothesis)
    sim = subprocess.run([sys.executable, "-m", "runtime.cli", "sim", "--scenario", "cx.toml"], cwd=a,
                         capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert sim.returncode == 1 and "FAIL always: Main.pCmd <= Main.limit" in sim.stdout


def test_a_runtime_fault_is_a_violation_too(tmp_path):
    (tmp_path / "div.st").write_text("PROGRAM Main\nVAR\n  x : INT;\n  y : INT;\nEND_VAR\n"
                                     "y := 1000 / (x - 73);\nEND_PROGRAM\n")
    p = tmp_path / "div.toml"
    p.write_text('[scenario]\nsources = ["div.st"]\ninterval = "100ms"\nduration = "5s"\n'
                 '[[expect]]\nalways = "Main.y > -2000"\n'
                 '[fuzz]\nhold = "200ms"\n[[fuzz.input]]\ntag = "Main.x"\nmin = 0\nmax = 100\n')
    res = fuzz(str(p), runs=300, seed=0, jobs=1)
    assert res.batch is not None
    v = res.batch.violation
    assert v.key == "fault" and "division by zero" in v.what and v.inputs == {"Main.x": 73}
    out = tmp_path / "cx.toml"
    write_counterexample(res, str(out))
    r = run_scenario(load_scenario(str(out)))
    assert r.fault is not None and "division by zero" in r.fault.what and r.fault.time_ns == v.t_ns


def test_fuzz_section_errors_are_reported_with_lines_and_exit_2(tmp_path):
    def edit(text):
        return text.replace('probability = 0.5', 'min = 0.0\nwobble = 3') \
                   .replace('rate = 2.0', 'rate = -1.0')
    p = _copy(tmp_path, "boost_fuzz.toml", "boost.st", edit)
    r = _cli(str(p), "--runs", "10", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = (p.read_text()).splitlines()
    err = r.stderr
    n_rate = next(i for i, ln in enumerate(lines, 1) if ln.startswith("rate = -1.0"))
    n_wobble = next(i for i, ln in enumerate(lines, 1) if ln.startswith("wobble"))
    assert f"{p}:{n_rate}: fuzz.input[0].rate: must be greater than zero" in err, err
    assert f"{p}:{n_wobble}: fuzz.input[2].wobble: unknown key" in err, err
    assert "Traceback" not in err


def test_a_scenario_without_fuzz_section_or_invariants_is_refused(tmp_path):
    with pytest.raises(ScenarioError) as e:
        fuzz(str(SC / "overtemp.toml"), runs=10, jobs=1)
    assert "[fuzz] section" in str(e.value)
    (tmp_path / "boost.st").write_text((SC / "boost.st").read_text())
    p = tmp_path / "s.toml"
    p.write_text('[scenario]\nsources = ["boost.st"]\ninterval = "100ms"\nduration = "5s"\n'
                 '[[expect]]\nat = "1s"\nexpect = "Main.pCmd = 0.0"\n'
                 '[fuzz]\n[[fuzz.input]]\ntag = "Main.boost"\n')
    with pytest.raises(ScenarioError) as e:
        fuzz(str(p), runs=10, jobs=1)
    assert "always" in str(e.value) and "none" in str(e.value)


def test_the_counterexample_keeps_the_rest_of_the_scenario(tmp_path):
    # initial values, a csv input, a noise input, a fault and an action come along, paths rewritten
    (tmp_path / "guard.st").write_text((SC / "guard.st").read_text())
    (tmp_path / "limit.csv").write_text("t,value\n0,100\n30,80\n")
    p = tmp_path / "s.toml"
    p.write_text('[scenario]\nname = "kept"\nsources = ["guard.st"]\ninterval = "100ms"\nduration = "30s"\nseed = 4\n'
                 '[initial]\n"Main.tMax" = 30.0\n'
                 '[[input]]\ntag = "Main.limit"\nkind = "csv"\nfile = "limit.csv"\n'
                 '[[input]]\ntag = "Main.request"\nkind = "noise"\nmean = 90.0\nsigma = 5.0\n'
                 '[[input]]\ntag = "Main.tMax"\nvalue = 25.0\n'
                 '[[fault]]\ntag = "Main.request"\nkind = "offset"\nvalue = 10.0\nfrom = "1s"\nto = "9s"\n'
                 '[[action]]\nat = "2s"\nwrite = "Main.resetCmd"\nvalue = "TRUE"\n'
                 '[[expect]]\nalways = "Main.pCmd < 0.99 * Main.limit OR Main.derate < 0.9"\n'
                 '[fuzz]\n[[fuzz.input]]\ntag = "Main.tMax"\nmin = 20.0\nmax = 60.0\nrate = 5.0\n')
    res = fuzz(str(p), runs=200, seed=0, jobs=1)
    assert res.batch is not None
    out = tmp_path / "sub" / "cx.toml"
    out.parent.mkdir()
    text = write_counterexample(res, str(out))
    assert 'sources = ["../guard.st"]' in text and 'file = "../limit.csv"' in text
    assert '"Main.tMax" = 30.0' in text and 'write = "Main.resetCmd"' in text and "seed = 4" in text
    assert text.count("[[input]]") == 3                  # csv, noise, and the fuzzed tMax in place of the constant
    r = run_scenario(load_scenario(str(out)))
    x = r.expects[0]
    v = res.batch.violation
    assert not x.ok and x.fail_t_ns == v.t_ns and x.fail_values == v.values
