"""`gridplc log verify` and `gridplc log show`: the event log for a reviewer.

Exit codes follow runtime/cli.py: 0 ok, 1 the log is tampered or has
unreadable lines, 2 bad command line (missing file, bad filter text).
Results go to `out`; complaints about the command line go to `err`
(default: sys.stderr at call time).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys

from .eventlog import _decode_hook, _matches, _read_lines, parse_wall, verify_log

EXIT_OK, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2

_BARE = re.compile(r"[\w.\[\]/:@#+-]+")     # shown unquoted unless it reads as a number
_LOOKS_LIKE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _FilterError(ValueError):
    pass


def cmd_log_verify(path: str, out=None, *, err=None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not os.path.isfile(path):
        print(f"gridplc log verify: no such file: {path}", file=err)
        return EXIT_USAGE
    try:
        res = verify_log(path)
    except OSError as e:
        print(f"gridplc log verify: cannot read {path}: {e.strerror or e}", file=err)
        return EXIT_USAGE
    if res.ok:
        print(f"ok: {res.records} records, chain intact", file=out)
        return EXIT_OK
    print(f"{path}:{res.first_bad}: tampered: {res.reason}", file=out)
    return EXIT_TAMPERED


def cmd_log_show(path: str, *, kinds: list[str] | None = None, since: str | None = None,
                 until: str | None = None, as_json: bool = False, out=None, err=None) -> int:
    """since/until: an ISO 8601 wall time ("2026-12-01T20:31:05Z"; no offset
    means UTC) compared with `wall`, or a duration ("10s", "1500ms", "T#2m")
    compared with the latched time t_ns. Both bounds are inclusive. kinds:
    names, each of which may be a comma-separated list."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        since_ns, since_wall = _parse_bound(since, "--since")
        until_ns, until_wall = _parse_bound(until, "--until")
    except _FilterError as e:
        print(f"gridplc log show: {e}", file=err)
        return EXIT_USAGE
    kind_set = None
    if kinds:
        kind_set = {k.strip() for item in kinds for k in item.split(",") if k.strip()} or None
    if not os.path.isfile(path):
        print(f"gridplc log show: no such file: {path}", file=err)
        return EXIT_USAGE
    try:
        lines, torn = _read_lines(path)
    except OSError as e:
        print(f"gridplc log show: cannot read {path}: {e.strerror or e}", file=err)
        return EXIT_USAGE
    unreadable = 0
    for lineno, raw in lines:
        try:
            rec = json.loads(raw.decode("utf-8"), object_hook=_decode_hook)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            unreadable += 1
            print(f"{path}:{lineno}: skipped, not a record: {e}", file=err)
            continue
        if not _matches(rec, kind_set, since_ns, until_ns, since_wall, until_wall):
            continue
        if as_json:
            print(raw.decode("utf-8"), file=out)
        else:
            print(format_record(rec), file=out)
    if torn is not None:
        print(f"{path}:{len(lines) + 1}: torn last line ({len(torn)} bytes, an interrupted "
              f"write) not shown", file=err)
    return EXIT_TAMPERED if unreadable else EXIT_OK


def _parse_bound(text: str | None, what: str):
    """-> (ns or None, aware datetime or None)."""
    if text is None:
        return None, None
    s = text.strip()
    if _LOOKS_LIKE_DATE.match(s):
        w = parse_wall(s)
        if w is None:
            raise _FilterError(f"{what}: '{text}' is not an ISO 8601 time "
                               f"such as 2026-12-01T20:31:05Z")
        return None, w
    from plc_lang.literals import LiteralError, parse_duration_ns
    body = (s.split("#", 1)[1] if "#" in s else s).strip()
    ns = None
    if body.strip("+-_"):               # parse_duration_ns("") raises IndexError
        try:
            ns = parse_duration_ns(body)
        except LiteralError:
            pass
    if ns is None or ns < 0:
        raise _FilterError(f"{what}: '{text}' is neither a wall time (2026-12-01T20:31:05Z) "
                           f"nor a latched-time duration (10s, 1500ms, T#2m)")
    return ns, None


# ------------------------------------------------------------------ display
def format_record(rec: dict) -> str:
    """One human line: `<wall> scan=<n> t=<s.mmm> <kind> key=value ...`; a
    record with path/old/new shows `path: old -> new (by who)` first."""
    t = rec.get("t_ns")
    head = (f"{rec.get('wall', '?')} scan={rec.get('scan', '?')} "
            f"t={_seconds(t) if type(t) is int else '?'} {rec.get('kind', '?')}")
    data = rec.get("data")
    if not isinstance(data, dict):
        return f"{head} data={_value(data)}"
    parts = [head]
    rest = dict(data)
    if "path" in rest and "old" in rest and "new" in rest:
        s = f"{_text(rest.pop('path'))}: {_value(rest.pop('old'))} -> {_value(rest.pop('new'))}"
        if "who" in rest:
            s += f" (by {_text(rest.pop('who'))})"
        parts.append(s)
    parts.extend(f"{k}={_value(v)}" for k, v in rest.items())
    return " ".join(parts)


def _seconds(t_ns: int) -> str:
    sign = "-" if t_ns < 0 else ""
    ms = abs(t_ns) // 1_000_000
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def _text(v) -> str:
    return v if isinstance(v, str) and v and not any(c.isspace() for c in v) else _value(v)


def _value(v) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, float):
        return ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) \
            if not math.isfinite(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if _BARE.fullmatch(v) and not _reads_as_number(v) and v not in ("true", "false", "null"):
            return v
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)


def _reads_as_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
