"""A loopback CAN bus for several processes: a small socketcand server.

python-can's `virtual` bus only joins buses of one process. This hub lets a
BMS simulator, the runtime and a candump-like tool in separate processes
share a bus, each as an ordinary python-can client:

    can.Bus(interface="socketcand", host="127.0.0.1", port=N, channel="can0", tcp_tune=True)

(`tcp_tune` sets TCP_NODELAY on the client; without it small frames wait up
to 40 ms for Nagle's algorithm. The hub's own sockets have it, as asyncio's do.)

It speaks the part of the socketcand protocol that client uses (raw mode):

    hub -> client   < hi >                          on connect
    client -> hub   < open can0 >                   -> < ok >   (any bus name: one bus per name)
    client -> hub   < rawmode >                     -> < ok >
    client -> hub   < send 356 6 5a 14 85 ff ff 0 > id hex (3 digits: 11-bit, 8: 29-bit), length, bytes hex
    hub -> others   < frame 356 1436509052.249713 5A1485FFFF00 >

A frame goes to every other raw-mode client on the same bus name, not back
to its sender (a CAN controller does not receive its own frames). Before
raw mode the hub answers unknown commands with `< error ... >`; in raw mode
it ignores them, because python-can would read an `< error >` as an error
frame. python-can reads each reply with a single recv and compares it whole,
so frames for a client that just entered raw mode are held for
`join_delay_s` after its `< ok >` (sent then, not lost) rather than risk
arriving glued to that `< ok >`. A client whose unread output passes 1 MiB
is dropped: a stuck reader must not grow the hub. The hub listens on
127.0.0.1 only.

    python -m runtime.io.socketcand_hub --port N      (or: gridplc can-hub --port N)

prints `socketcand hub on 127.0.0.1:PORT` once listening (useful with port 0).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
MAX_UNREAD = 1 << 20
MAX_COMMAND = 256          # longest well-formed command is < 60 characters


@dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    peer: str
    bus: str | None = None
    raw: bool = False                  # receives frames
    held: list[str] | None = None      # frames waiting out the join delay
    task: asyncio.Task | None = None
    rx: int = 0
    tx: int = 0


@dataclass
class HubStats:
    clients: int = 0
    connections: int = 0
    frames: int = 0
    bad_commands: int = 0
    dropped_clients: int = 0
    buses: dict[str, int] = field(default_factory=dict)   # bus name -> frames carried


class SocketcandHub:
    def __init__(self, port: int = 0, join_delay_s: float = 0.05):
        self.requested_port = port
        self.join_delay_s = join_delay_s
        self.port: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[_Client] = set()
        self.stats = HubStats()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, HOST, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [c.task for c in self._clients if c.task is not None]
        for c in list(self._clients):
            c.writer.close()        # each client's read then ends and its task returns
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=1.0)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def client_stats(self) -> list[dict]:
        """Per connected client: its address, bus, raw mode, frames it sent (rx) and was given (tx)."""
        return [{"peer": c.peer, "bus": c.bus, "raw": c.raw, "rx": c.rx, "tx": c.tx} for c in list(self._clients)]

    # ------------------------------------------------------------ one client
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        c = _Client(writer, f"{peer[0]}:{peer[1]}" if peer else "?", task=asyncio.current_task())
        self._clients.add(c)
        self.stats.connections += 1
        self.stats.clients = len(self._clients)
        try:
            writer.write(b"< hi >")
            buf = ""
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buf += chunk.decode("ascii", errors="replace")
                while True:
                    start = buf.find("<")
                    if start < 0:
                        buf = ""
                        break
                    end = buf.find(">", start)
                    if end < 0:
                        buf = buf[start:]
                        if len(buf) > MAX_COMMAND:      # no closing '>' in sight: garbage
                            self.stats.bad_commands += 1
                            buf = ""
                        break
                    self._command(c, buf[start + 1:end].split())
                    buf = buf[end + 1:]
        except (ConnectionError, OSError):
            return
        except asyncio.CancelledError:
            # only close() cancels; ending normally spares Python 3.11's stream callback, which
            # calls exception() on a cancelled client task and logs a traceback
            return
        finally:
            self._clients.discard(c)
            self.stats.clients = len(self._clients)
            writer.close()

    def _command(self, c: _Client, words: list[str]) -> None:
        cmd = words[0] if words else ""
        if cmd == "open" and len(words) == 2 and c.bus is None:
            c.bus = words[1]
            self.stats.buses.setdefault(c.bus, 0)
            self._reply(c, "< ok >")
        elif cmd == "rawmode" and c.bus is not None and not c.raw:
            self._reply(c, "< ok >")
            c.raw, c.held = True, []
            asyncio.get_running_loop().call_later(self.join_delay_s, self._release, c)
        elif cmd == "send" and c.bus is not None:
            frame = _frame_text(words[1:])
            if frame is None:
                self._bad(c, "malformed send")
            else:
                c.rx += 1
                self._broadcast(c, frame)
        elif cmd == "echo" and not c.raw:
            self._reply(c, "< echo >")
        else:
            self._bad(c, "open a bus first" if c.bus is None and cmd != "open" else f"cannot do '{' '.join(words)}' now")

    def _bad(self, c: _Client, why: str) -> None:
        self.stats.bad_commands += 1
        if not c.raw:
            self._reply(c, f"< error {why} >")

    def _reply(self, c: _Client, text: str) -> None:
        c.writer.write(text.encode("ascii"))

    def _release(self, c: _Client) -> None:
        held, c.held = c.held or [], None
        if held and c in self._clients:
            self._write(c, "".join(held))

    def _broadcast(self, sender: _Client, frame: tuple[str, str]) -> None:
        ident, data = frame
        t = time.time()
        text = f"< frame {ident} {int(t)}.{int(t * 1e6) % 1000000:06d} {data} >"
        self.stats.frames += 1
        self.stats.buses[sender.bus] = self.stats.buses.get(sender.bus, 0) + 1
        for c in list(self._clients):
            if c is sender or not c.raw or c.bus != sender.bus:
                continue
            if c.held is not None:
                c.held.append(text)
            else:
                self._write(c, text)

    def _write(self, c: _Client, text: str) -> None:
        if c.writer.transport.get_write_buffer_size() > MAX_UNREAD:
            self.stats.dropped_clients += 1
            self._clients.discard(c)
            c.writer.close()
            return
        c.tx += 1
        c.writer.write(text.encode("ascii"))


def _frame_text(args: list[str]) -> tuple[str, str] | None:
    """('356', '5A1485FFFF00') from ['356', '6', '5a', ...], None when malformed."""
    if len(args) < 2:
        return None
    try:
        fid, n = int(args[0], 16), int(args[1], 16)
        data = bytes(int(b, 16) for b in args[2:])
    except ValueError:
        return None
    ext = len(args[0]) > 3
    if n != len(data) or n > 8 or fid > (0x1FFFFFFF if ext else 0x7FF):
        return None
    return (f"{fid:08X}" if ext else f"{fid:03X}"), data.hex().upper()


class HubThread:
    """The hub on a thread of its own, for tests and the demo: `HubThread().start().port`."""

    def __init__(self, port: int = 0, join_delay_s: float = 0.05):
        self.hub = SocketcandHub(port, join_delay_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def port(self) -> int | None:
        return self.hub.port

    def start(self) -> "HubThread":
        self._thread = threading.Thread(target=self._run, name="socketcand-hub", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.hub.start())
        except BaseException as e:  # noqa: BLE001 - handed to start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self.hub.close())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)


async def serve(port: int, out=sys.stdout) -> None:
    hub = SocketcandHub(port)
    actual = await hub.start()
    print(f"socketcand hub on {HOST}:{actual}", file=out, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await hub.close()


def run(port: int) -> int:
    try:
        asyncio.run(serve(port))
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print(f"can-hub: cannot listen on {HOST}:{port}: {e.strerror}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.io.socketcand_hub",
                                 description="a loopback socketcand server: one CAN bus per name, shared by processes")
    ap.add_argument("--port", type=int, default=29536, help="TCP port on 127.0.0.1 (0: any free one; default 29536)")
    return run(ap.parse_args(argv).port)


if __name__ == "__main__":
    sys.exit(main())
