"""The [opcua] section of a site file.

    [opcua]
    listen = "0.0.0.0:4840"              # host:port; port 0 picks a free one
    security = ["SignAndEncrypt", "Sign"]   # Basic256Sha256; add "None" only with allow_insecure
    allow_insecure = false               # needed for "None" or anonymous
    anonymous = false                    # or a role: anonymous = "viewer"
    certificate = "pki/server.der"       # both omitted: made on first start in <state_dir>/opcua/
    private_key = "pki/server_key.pem"
    trust_dir = "pki/trusted"            # client certificates accepted (DER or PEM files);
                                         # refused ones are copied to <state_dir>/opcua/rejected/
    application_uri = "urn:gridplc:site" # default urn:gridplc:<site name>
    default_access = "ro"                # "ro" or "none": variables no rule or pragma names
    sample_interval = "0ms"              # at most one publish per interval (0: after every scan)
    write_timeout = "2s"                 # a client write waits this long for the runtime
    nice = 10                            # the server process's niceness: the scan comes first

    [opcua.users.alice]
    role = "operator"                    # viewer | operator | engineer
    password = "scrypt$15$8$1$..."       # gridplc opcua hash-password

    [[opcua.expose]]                     # in order, the last matching rule wins
    pattern = "Main.dispatch.*"          # * any characters, ? one; case-insensitive
    access = "operator"                  # none | ro | operator | rw (rw: engineers)

Pragmas in the source set a variable's access before the rules apply:
{attribute 'opcua' := 'rw'} (also 'ro', 'operator', 'none'), with
{attribute 'unit' := 'kW'}, {attribute 'range' := '0..100'} and
{attribute 'description' := '...'}. Inputs bound to field I/O and
CONSTANTs are never writable, whatever the rules say.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from ..site import _Reporter, duration_ns
from .users import ROLES, PasswordHashError, UserEntry, parse_hash

ACCESS = ("none", "ro", "operator", "rw")
MODES = {"none": "None", "sign": "Sign", "signandencrypt": "SignAndEncrypt",
         "basic256sha256_sign": "Sign", "basic256sha256_signandencrypt": "SignAndEncrypt"}
_KNOWN = {"enabled", "listen", "security", "allow_insecure", "anonymous", "certificate", "private_key",
          "trust_dir", "application_uri", "default_access", "sample_interval", "write_timeout", "users",
          "expose", "nice"}


class OpcuaConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ExposeRule:
    pattern: str
    access: str
    line: int = 0

    def regex(self) -> re.Pattern:
        return compile_pattern(self.pattern)


@dataclass
class OpcuaConfig:
    host: str = "127.0.0.1"
    port: int = 4840
    security: tuple[str, ...] = ("SignAndEncrypt", "Sign")
    allow_insecure: bool = False
    anonymous_role: str | None = None
    certificate: str | None = None       # None: generated in pki_dir on first start
    private_key: str | None = None
    pki_dir: str = "opcua"               # generated certificate, rejected client certificates
    trust_dir: str = "opcua/trusted"
    application_uri: str = "urn:gridplc"
    default_access: str = "ro"
    sample_interval_ns: int = 0
    write_timeout_s: float = 2.0
    nice: int = 10                       # added to the server process's niceness (0..19)
    users: dict[str, UserEntry] = field(default_factory=dict)
    expose: list[ExposeRule] = field(default_factory=list)
    source: str = "(built-in)"          # the file it came from, for messages

    @classmethod
    def demo(cls, state_dir: str, port: int = 4840, site_name: str = "demo") -> "OpcuaConfig":
        """`gridplc sim`/demo: no configuration, loopback only, anonymous operator,
        None next to the secure endpoints. Never used for a site file."""
        pki = os.path.join(state_dir, "opcua")
        return cls(host="127.0.0.1", port=port, security=("None", "SignAndEncrypt", "Sign"), allow_insecure=True,
                   anonymous_role="operator", pki_dir=pki, trust_dir=os.path.join(pki, "trusted"),
                   application_uri=f"urn:gridplc:{site_name}")

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{self.port}/gridplc/"


def compile_pattern(pattern: str) -> re.Pattern:
    """Glob over tag paths: * any run of characters, ? one; brackets are literal."""
    out = []
    for ch in pattern.strip():
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


def load_opcua(path: str, *, state_dir: str, site_name: str, text: str | None = None) -> OpcuaConfig | None:
    """The [opcua] section of a site file; None when it has none (or enabled = false).
    Raises OpcuaConfigError listing every problem as file:line: key: what."""
    if text is None:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
        except OSError as e:
            raise OpcuaConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OpcuaConfigError([f"{path}: not valid TOML: {e}"]) from None
    sect = doc.get("opcua")
    if sect is None:
        return None
    rep = _Reporter(path, text)
    if not isinstance(sect, dict):
        raise OpcuaConfigError([f"{path}:{rep.line_of('opcua')}: opcua: must be a table [opcua]"])
    base = os.path.dirname(os.path.abspath(path))
    cfg = _parse(rep, sect, base, state_dir, site_name)
    if rep.problems:
        raise OpcuaConfigError(rep.problems)
    return cfg


def _parse(rep: _Reporter, sect: dict, base: str, state_dir: str, site_name: str) -> OpcuaConfig | None:
    T = "opcua"
    for k in sect:
        if k not in _KNOWN:
            rep.error(f"opcua.{k}", f"unknown key (known: {', '.join(sorted(_KNOWN))})", T)
    enabled = sect.get("enabled", True)
    if not isinstance(enabled, bool):
        rep.error("opcua.enabled", "true or false", T)
    elif not enabled:
        return None
    pki = os.path.join(state_dir, "opcua")
    cfg = OpcuaConfig(pki_dir=pki, trust_dir=os.path.join(pki, "trusted"), application_uri=f"urn:gridplc:{site_name}",
                      source=rep.path)

    listen = sect.get("listen", "127.0.0.1:4840")
    m = re.fullmatch(r"\[?([0-9A-Za-z.:\-]+?)\]?:(\d+)", listen) if isinstance(listen, str) else None
    if not m or int(m.group(2)) > 65535:
        rep.error("opcua.listen", f"{listen!r}: expected host:port, e.g. \"0.0.0.0:4840\"", T)
    else:
        cfg.host, cfg.port = m.group(1), int(m.group(2))

    sec = sect.get("security", list(cfg.security))
    if isinstance(sec, str):
        sec = [sec]
    modes = []
    if not isinstance(sec, list) or not sec:
        rep.error("opcua.security", "a list of modes: \"SignAndEncrypt\", \"Sign\", \"None\"", T)
    else:
        for s in sec:
            mode = MODES.get(str(s).replace(" ", "").replace(",", "_").lower())
            if mode is None:
                rep.error("opcua.security", f"{s!r}: not a security mode (SignAndEncrypt, Sign, None; "
                                            "the policy is Basic256Sha256)", T)
            elif mode not in modes:
                modes.append(mode)
        if modes:
            cfg.security = tuple(modes)

    allow = sect.get("allow_insecure", False)
    if not isinstance(allow, bool):
        rep.error("opcua.allow_insecure", "true or false", T)
        allow = False
    cfg.allow_insecure = allow
    anon = sect.get("anonymous", False)
    if anon is True:
        cfg.anonymous_role = "viewer"
    elif isinstance(anon, str) and anon in ROLES:
        cfg.anonymous_role = anon
    elif anon is not False:
        rep.error("opcua.anonymous", f"false, true (viewer) or a role ({', '.join(ROLES)})", T)
    if not allow:
        if "None" in cfg.security:
            rep.error("opcua.security", "\"None\" sends every value and write in clear text and unsigned; "
                                        "remove it or set allow_insecure = true", T)
        if cfg.anonymous_role is not None:
            rep.error("opcua.anonymous", "anonymous clients need no password; turn it off or set "
                                         "allow_insecure = true", T)

    for key in ("certificate", "private_key", "trust_dir", "application_uri"):
        v = sect.get(key)
        if v is not None and (not isinstance(v, str) or not v):
            rep.error(f"opcua.{key}", "must be a non-empty string", T)
            sect = {k: x for k, x in sect.items() if k != key}
    cert, key = sect.get("certificate"), sect.get("private_key")
    if (cert is None) != (key is None):
        rep.error("opcua.certificate" if cert is None else "opcua.private_key",
                  "give both certificate and private_key, or neither (one is made on first start)", T)
    elif cert is not None:
        cfg.certificate = os.path.normpath(os.path.join(base, cert))
        cfg.private_key = os.path.normpath(os.path.join(base, key))
        for k, p in (("certificate", cfg.certificate), ("private_key", cfg.private_key)):
            if not os.path.isfile(p):
                rep.error(f"opcua.{k}", f"no such file: {sect[k]}", T)
    if "trust_dir" in sect:
        cfg.trust_dir = os.path.normpath(os.path.join(base, sect["trust_dir"]))
    if "application_uri" in sect:
        cfg.application_uri = sect["application_uri"]

    da = sect.get("default_access", "ro")
    if da not in ("ro", "none"):
        rep.error("opcua.default_access", "\"ro\" (every variable readable) or \"none\" (only those named)", T)
    else:
        cfg.default_access = da
    if "sample_interval" in sect:
        ns = duration_ns(rep, "opcua.sample_interval", sect["sample_interval"], T)
        if ns is not None:
            cfg.sample_interval_ns = max(0, ns)
    if "write_timeout" in sect:
        ns = duration_ns(rep, "opcua.write_timeout", sect["write_timeout"], T)
        if ns is not None and ns > 0:
            cfg.write_timeout_s = ns / 1e9
        elif ns is not None:
            rep.error("opcua.write_timeout", "must be greater than zero", T)

    nice = sect.get("nice", cfg.nice)
    if not isinstance(nice, int) or isinstance(nice, bool) or not 0 <= nice <= 19:
        rep.error("opcua.nice", "a niceness 0..19 for the server process", T)
    else:
        cfg.nice = nice
    _users(rep, sect.get("users", {}), cfg)
    _rules(rep, sect.get("expose", []), cfg)
    if not cfg.users and cfg.anonymous_role is None:
        rep.error("opcua.users", "no users and anonymous = false: no client could log in; add "
                                 "[opcua.users.NAME] with role and password", T)
    return cfg


def _users(rep: _Reporter, users, cfg: OpcuaConfig) -> None:
    if not isinstance(users, dict):
        rep.error("opcua.users", "write each user as [opcua.users.NAME] with role and password", "opcua")
        return
    for name, u in users.items():
        tbl = f"opcua.users.{name}"
        if not isinstance(u, dict):
            rep.error(tbl, "must be a table with role and password", tbl)
            continue
        for k in u:
            if k not in ("role", "password"):
                rep.error(f"{tbl}.{k}", "unknown key (known: password, role)", tbl)
        role = u.get("role")
        if role not in ROLES:
            rep.error(f"{tbl}.role", f"{role!r}: one of {', '.join(ROLES)}", tbl)
            continue
        pw = u.get("password")
        try:
            parse_hash(pw)
        except PasswordHashError as e:
            rep.error(f"{tbl}.password", "missing" if pw is None else str(e), tbl)
            continue
        cfg.users[name] = UserEntry(name, role, pw, rep.line_of("role", tbl))


def _nth_line(rep: _Reporter, table: str, n: int, key: str) -> int:
    """Line of `key` in the n-th [[table]] (the reporter finds only the first)."""
    head = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]")
    pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    seen = -1
    for i, ln in enumerate(rep.lines):
        if head.match(ln):
            seen += 1
            if seen == n:
                for j in range(i, len(rep.lines)):
                    if pat.match(rep.lines[j]):
                        return j + 1
                return i + 1
    return rep.line_of(key, table)


def _rule_error(rep: _Reporter, i: int, key: str, message: str) -> None:
    rep.problems.append(f"{rep.path}:{_nth_line(rep, 'opcua.expose', i, key)}: opcua.expose[{i}].{key}: {message}")


def _rules(rep: _Reporter, rules, cfg: OpcuaConfig) -> None:
    if not isinstance(rules, list):
        rep.error("opcua.expose", "write each rule as [[opcua.expose]] with pattern and access", "opcua.expose")
        return
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or not isinstance(r.get("pattern"), str) or not r["pattern"].strip():
            _rule_error(rep, i, "pattern", "missing: a tag pattern such as \"Main.*\"")
            continue
        for k in r:
            if k not in ("pattern", "access"):
                _rule_error(rep, i, k, "unknown key (known: access, pattern)")
        acc = r.get("access")
        if acc not in ACCESS:
            _rule_error(rep, i, "access", f"{acc!r}: one of {', '.join(ACCESS)}")
            continue
        cfg.expose.append(ExposeRule(r["pattern"], acc, _nth_line(rep, "opcua.expose", i, "pattern")))
