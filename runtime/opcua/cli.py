"""`gridplc opcua ...`: what a site's [opcua] section needs made by hand.

    gridplc opcua hash-password [--user NAME] [--role ROLE]   # prompts twice (or reads stdin)
    gridplc opcua gen-cert DIR [--uri URN] [--client NAME]    # an application certificate and key
"""
from __future__ import annotations

import getpass
import os
import sys

from .users import ROLES, hash_password


def register(sub) -> None:
    p = sub.add_parser("opcua", help="OPC UA server helpers: password hashes, certificates")
    s = p.add_subparsers(dest="opcua_cmd", metavar="COMMAND")
    s.required = True
    h = s.add_parser("hash-password", help="print the hash to put in [opcua.users.NAME] password = ...")
    h.add_argument("--user", help="print a whole [opcua.users.USER] table")
    h.add_argument("--role", choices=ROLES, default="viewer", help="role for the table (with --user)")
    h.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    h.set_defaults(fn=_hash_password)
    c = s.add_parser("gen-cert", help="make a self-signed OPC UA application certificate (DER) and key (PEM)")
    c.add_argument("dir", help="folder to write into")
    c.add_argument("--uri", default="urn:gridplc", help="application URI (must match application_uri)")
    c.add_argument("--client", metavar="NAME", help="a client certificate NAME_cert.der / NAME_key.pem "
                                                   "(put the .der into the server's trust_dir)")
    c.add_argument("--force", action="store_true", help="overwrite existing files")
    c.set_defaults(fn=_gen_cert)


def _hash_password(args) -> int:
    if args.stdin or not sys.stdin.isatty():
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            print("gridplc opcua: the passwords differ", file=sys.stderr)
            return 2
    if len(pw) < 8:
        print("gridplc opcua: a password needs at least 8 characters", file=sys.stderr)
        return 2
    h = hash_password(pw)
    if args.user:
        print(f"[opcua.users.{args.user}]\nrole = \"{args.role}\"\npassword = \"{h}\"")
    else:
        print(h)
    return 0


def _gen_cert(args) -> int:
    from .certs import make_certificate

    name = args.client or "server"
    cert = os.path.join(args.dir, f"{name}_cert.der")
    key = os.path.join(args.dir, f"{name}_key.pem")
    for p in (cert, key):
        if os.path.exists(p) and not args.force:
            print(f"gridplc opcua: {p} exists (use --force to replace it)", file=sys.stderr)
            return 2
    try:
        make_certificate(cert, key, application_uri=args.uri, common_name=f"gridplc {name}",
                         client=args.client is not None)
    except OSError as e:
        print(f"gridplc opcua: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"{cert}\n{key}")
    return 0
