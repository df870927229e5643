"""Messages between the runtime and the server process: a local socket pair,
each message a 4-byte big-endian length and a pickle (both ends are this
package, started together, so pickle carries dataclasses as they are).

runtime -> server                          server -> runtime
  ("start", Spec, OpcuaConfig)               ("ready", port)  ("error", text)
  ("values", scan, wall_ns, changes)         ("write", id, user, path, text)
      changes = [(index, value, quality)]    ("call", id, user, what, args)
  ("diag", dict)                             ("event", kind, data)
  ("alarms", [AlarmState])
  ("reply", id, status, text)
  ("stop",)
"""
from __future__ import annotations

import asyncio
import pickle
import socket
import struct
import threading

_LEN = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024


class Channel:
    """The runtime's end: blocking, one sender at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, msg) -> None:
        body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self.sock.sendall(_LEN.pack(len(body)) + body)

    def recv(self):
        """The next message; None when the other end has closed."""
        head = self._exact(_LEN.size)
        if head is None:
            return None
        (n,) = _LEN.unpack(head)
        body = self._exact(n)
        return None if body is None else pickle.loads(body)

    def _exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


async def read_message(reader: asyncio.StreamReader):
    try:
        head = await reader.readexactly(_LEN.size)
        (n,) = _LEN.unpack(head)
        if n > MAX_MESSAGE:
            return None
        return pickle.loads(await reader.readexactly(n))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def write_message(writer: asyncio.StreamWriter, msg) -> None:
    body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LEN.pack(len(body)) + body)
