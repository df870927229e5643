"""`gridplc can-hub`: the loopback socketcand hub (runtime/io/socketcand_hub.py).

Exit codes follow runtime/cli.py: 0 stopped by Ctrl-C, 2 cannot listen.
"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("can-hub", help="share one CAN bus between processes on this machine (socketcand on 127.0.0.1)",
                       description="A socketcand server on 127.0.0.1: python-can clients with interface = "
                                   "\"socketcand\", host = \"127.0.0.1\" and the same channel name share a bus.")
    p.add_argument("--port", type=int, default=29536, help="TCP port (0: any free one; default 29536)")
    p.set_defaults(fn=_can_hub)


def _can_hub(args) -> int:
    from .socketcand_hub import run
    return run(args.port)
