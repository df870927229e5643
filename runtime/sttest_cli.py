"""`gridplc test` (ST unit tests, runtime/sttest.py) and `gridplc coverage`
(reports of the coverage data file, runtime/coverage.py)."""
from __future__ import annotations

import sys
import time

from . import coverage as cov

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(sub) -> None:
    p = sub.add_parser("test", help="run ST unit tests: PROGRAMs and FUNCTION_BLOCKs named TEST_... "
                       "(or marked {attribute 'test'}) in the given files and directories")
    p.add_argument("paths", nargs="*", metavar="PATH", help=".st files or directories (default: .)")
    p.add_argument("-k", dest="keyword", metavar="TEXT", help="only tests whose file::name contains TEXT")
    p.add_argument("-q", "--quiet", action="store_true", help="no line for tests that passed")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--timeout", default="10s", help="wall time one test may take (default 10s)")
    add_coverage_args(p)
    p.set_defaults(fn=cmd_test)

    p = sub.add_parser("coverage", help="report the coverage data of `test --coverage` and `sim --scenario --coverage`")
    p.add_argument("--coverage-file", default=cov.DEFAULT_FILE, metavar="FILE",
                   help=f"the data file (default {cov.DEFAULT_FILE})")
    p.add_argument("--show-missing", action="store_true",
                   help="list the source around statements never run and branches never taken")
    p.add_argument("--html", metavar="DIR", help="write an annotated page per source file and an index")
    p.add_argument("--erase", action="store_true", help="delete the data file")
    p.set_defaults(fn=cmd_coverage)


def add_coverage_args(p) -> None:
    p.add_argument("--coverage", action="store_true",
                   help="count statements and branches run; add them to the coverage data file")
    p.add_argument("--coverage-file", default=cov.DEFAULT_FILE, metavar="FILE",
                   help=f"with --coverage: the data file (default {cov.DEFAULT_FILE})")


def record_coverage(data: dict, path: str) -> None:
    """Add a run's hits to the data file and print the totals it now holds."""
    notes: list[str] = []
    try:
        total = cov.accumulate(path, data, notes)
    except cov.CoverageError as e:
        print(f"coverage: {e}", file=sys.stderr)
        return
    for n in notes:
        print(n, file=sys.stderr)
    print()
    print(cov.summary(total, f"coverage, all runs in {path}:"))


def cmd_test(a) -> int:
    from plc_lang.diagnostics import render
    from plc_lang.driver import compile_project, read_sources
    from plc_lang.literals import LiteralError, parse_duration_ns

    from . import sttest
    try:
        timeout_s = parse_duration_ns(a.timeout.split("#")[-1]) / 1e9
        if timeout_s <= 0:
            raise LiteralError("it must be greater than zero")
    except LiteralError as e:
        print(f"gridplc test: error: --timeout: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        files = sttest.find_files(a.paths)
    except sttest.NothingToTest as e:
        print(f"gridplc test: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    result = compile_project(read_sources(files), coverage=a.coverage)
    if not result.ok:
        errors = [d for d in result.diagnostics if d.is_error]
        print(render(errors, result.sources, "rich"), file=sys.stderr)
        print(f"{len(errors)} error(s): no tests run", file=sys.stderr)
        return EXIT_USAGE
    cases = sttest.select(sttest.collect(result.program, files), a.keyword)
    if not cases:
        what = f" matching -k {a.keyword!r}" if a.keyword else ""
        print(f"gridplc test: error: no tests{what} in {len(files)} file(s) (a test is a PROGRAM or "
              "FUNCTION_BLOCK named TEST_... or marked {attribute 'test'})", file=sys.stderr)
        return EXIT_USAGE
    runner = sttest.Runner(result.program, timeout_s)
    t0 = time.perf_counter()
    try:
        outcomes = [runner.run(c) for c in cases]
    finally:
        runner.close()
    seconds = time.perf_counter() - t0
    sttest.print_report(outcomes, seconds, a.quiet)
    if a.junit:
        sttest.write_junit(a.junit, outcomes, seconds)
    if a.coverage:
        record_coverage(cov.from_programs([result.program]), a.coverage_file)
    return EXIT_OK if all(o.status == "passed" for o in outcomes) else EXIT_FAILED


def cmd_coverage(a) -> int:
    path = a.coverage_file
    if a.erase:
        print(f"coverage: {'erased' if cov.erase(path) else 'no data file'} {path}")
        return EXIT_OK
    try:
        data = cov.load(path)
    except cov.CoverageError as e:
        print(f"gridplc coverage: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if not data["files"]:
        print(f"gridplc coverage: error: no coverage data in {path} (run `gridplc test --coverage` or "
              "`gridplc sim --scenario --coverage` first)", file=sys.stderr)
        return EXIT_USAGE
    print(cov.summary(data))
    if a.show_missing:
        text = cov.missing(data)
        print()
        print(text.rstrip("\n") if text else "everything ran: no statement or branch was missed")
    if a.html:
        written = cov.write_html(data, a.html)
        print(f"\nhtml: {written[-1]} ({len(written) - 1} source page(s))")
    return EXIT_OK
