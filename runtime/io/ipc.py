"""Framing between the runtime and its I/O process (manager.py, child.py).

One stream socket (a socketpair) carries length-prefixed messages both
ways. A frame is a 5-byte header, the payload length (little-endian
uint32) and a codec byte, then the payload: marshal for everything the
two sides exchange while running (tuples and lists of numbers, strings,
dicts, no class lookups: a batch of 100 input updates is 3 KB and takes
~20 us to send, ~20 us to receive and decode, bench/modbus_bench.py), pickle
for the configuration (dataclasses) and for the rare message marshal refuses.

Messages are tuples whose first item says what they are:

    runtime -> I/O process
      ChildConfig                     (first, pickled)
      ("o", committed_ns, {path: value})   outputs that changed, and the last scan's time
      ("v", [values_by_var, ...])     what each Modbus server serves, per server
      ("a", id, error | None)         answer to a write ("w"); error = refusal text
      ("c", offset_ns)                the engine clock moved against CLOCK_MONOTONIC
      ("x",)                          stop
    I/O process -> runtime
      ("ready", pid)                  drivers built and running
      ("fatal", message)              drivers could not be built; the process exits
      ("i", [index, value, quality, ts_ns, ...])   input updates (see ChildConfig.inputs)
      ("e", kind, data)               an event for the runtime's log
      ("s", {name: stats})            driver stats, every STATS_PERIOD_S (also the heartbeat)
      ("w", id, var, value_text, who) a SCADA write for queue_write; answered by "a"
"""
from __future__ import annotations

import marshal
import pickle
import socket
import struct
import threading
from dataclasses import dataclass, field

from .config import IoMap

HEADER = struct.Struct("<IB")
MARSHAL, PICKLE = 0, 1
MAX_FRAME = 64 << 20          # far above any real message: a longer length means a broken stream
RECV_SIZE = 1 << 18


class ProtocolError(Exception):
    """The stream does not hold frames any more."""


@dataclass
class ChildConfig:
    maps: list[IoMap]
    inputs: list[str]                 # input paths; "i" messages name them by index
    offset_ns: int                    # engine clock = time.monotonic_ns() - offset_ns
    server_types: list[dict] = field(default_factory=list)   # per Modbus server: var -> type, for its checks


def encode(obj, codec: int = MARSHAL) -> bytes:
    payload = None
    if codec == MARSHAL:
        try:
            payload = marshal.dumps(obj)
        except ValueError:          # a value marshal does not know (a driver's own type)
            codec = PICKLE
    if payload is None:
        payload = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload), codec) + payload


class Link:
    """One end of the socket: send from any thread, receive from one."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._buf = bytearray()

    def send(self, *objs, codec: int = MARSHAL) -> None:
        """Send the messages in one write (one system call for several)."""
        data = b"".join(encode(o, codec) for o in objs)
        with self._send_lock:
            self.sock.sendall(data)

    def recv(self) -> list | None:
        """Every message that has arrived, at least one; None when the other
        end closed. Raises TimeoutError when the socket has a timeout and
        nothing came (a frame begun stays buffered)."""
        while True:
            msgs = self._frames()
            if msgs:
                return msgs
            chunk = self.sock.recv(RECV_SIZE)
            if not chunk:
                return None
            self._buf += chunk

    def _frames(self) -> list:
        buf = self._buf
        out = []
        pos = 0
        view = memoryview(buf)
        try:
            while len(buf) - pos >= HEADER.size:
                n, codec = HEADER.unpack_from(buf, pos)
                if n > MAX_FRAME or codec not in (MARSHAL, PICKLE):
                    raise ProtocolError(f"bad frame header (length {n}, codec {codec})")
                end = pos + HEADER.size + n
                if end > len(buf):
                    break
                with view[pos + HEADER.size:end] as payload:
                    out.append(marshal.loads(payload) if codec == MARSHAL else pickle.loads(payload))
                pos = end
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return out

    def shutdown(self) -> None:
        """End the stream both ways: a recv in another thread returns at once."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
