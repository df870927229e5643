"""The local control socket: JSON lines over TCP on loopback.

Request  {"op": "read", "path": "Main.x"}            one object per line
Reply    {"ok": true, "result": {...}}  or  {"ok": false, "error": "..."}

ops: status, read(path), write(path, value, who), force(path, value, who),
release(path, who), reset(task, mode, who), stop. Every op maps to one
LiveRuntime method; the OPC UA server will call the same methods.
The server writes its port to <state_dir>/control.json so the CLI finds it.
"""
from __future__ import annotations

import json
import os
import socket
import socketserver
import threading

from .tags import TagError

REQUEST_BYTES_MAX = 65536


class ControlError(Exception):
    pass


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        rt = self.server.runtime
        for raw in self.rfile:
            if len(raw) > REQUEST_BYTES_MAX:
                self._reply({"ok": False, "error": "request too long"})
                return
            try:
                req = json.loads(raw)
                if not isinstance(req, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as e:
                self._reply({"ok": False, "error": f"bad request: {e}"})
                continue
            op = req.get("op")
            who = str(req.get("who") or "ctl")
            try:
                if op == "status":
                    res = rt.status()
                elif op == "read":
                    res = rt.read(_need(req, "path"))
                elif op == "write":
                    res = rt.write(_need(req, "path"), str(_need(req, "value")), who)
                elif op == "force":
                    res = rt.force(_need(req, "path"), str(_need(req, "value")), who)
                elif op == "release":
                    res = rt.release(_need(req, "path"), who)
                elif op == "reset":
                    res = rt.reset(_need(req, "task"), str(req.get("mode", "warm")), who)
                elif op == "stop":
                    self.server.stop_requested.set()
                    res = {"stopping": True}
                else:
                    raise ControlError(f"unknown op '{op}' (status, read, write, force, release, reset, stop)")
                self._reply({"ok": True, "result": res})
            except (TagError, ControlError) as e:
                self._reply({"ok": False, "error": str(e)})

    def _reply(self, obj) -> None:
        self.wfile.write((json.dumps(obj) + "\n").encode())
        self.wfile.flush()


def _need(req: dict, key: str):
    if key not in req:
        raise ControlError(f"'{req.get('op')}' needs '{key}'")
    v = req[key]
    if not isinstance(v, (str, int, float, bool)):
        raise ControlError(f"'{key}' must be a string or a number")
    return str(v) if key in ("path", "task") else v


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    def __init__(self, runtime, host: str, port: int):
        self.runtime = runtime
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _Server.address_family = family
        self.server = _Server((host, port), _Handler)
        self.server.runtime = runtime
        self.server.stop_requested = threading.Event()
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gridplc-control", daemon=True)

    @property
    def stop_requested(self) -> threading.Event:
        return self.server.stop_requested

    def start(self) -> None:
        self._thread.start()
        path = self.runtime.site.control_file
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"host": self.host, "port": self.port, "pid": os.getpid()}, f)
        os.replace(tmp, path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.runtime.site.control_file)
        except OSError:
            pass


def request(control_file: str, req: dict, timeout_s: float = 5.0) -> dict:
    """One request to a running instance (what `gridplc ctl` does)."""
    try:
        with open(control_file) as f:
            where = json.load(f)
    except (OSError, ValueError):
        raise ControlError(f"no running instance: {control_file} not found (is `gridplc run` up?)") from None
    try:
        with socket.create_connection((where["host"], where["port"]), timeout=timeout_s) as s:
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        raise ControlError(f"cannot reach the instance at {where['host']}:{where['port']}: {e}") from None
    try:
        return json.loads(buf)
    except ValueError:
        raise ControlError("the instance sent no reply") from None
