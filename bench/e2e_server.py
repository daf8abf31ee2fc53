"""The TLS WebSocket server of `bench_e2e.py`, run as its own process (pinned to another CPU than the client).

    python bench/e2e_server.py --scratch .bench --messages N [--seed S]     # prints "READY <port>"

One thread per connection; TLS through `ssl.MemoryBIO`, so the server decides where TLS records end; the HTTP
upgrade and the client's frames through wsproto (SERVER). It speaks just enough Bybit V5 for a real client:

* `{"op":"subscribe",...}` -> Bybit's linear success ack (one per request), sent at once;
* `{"op":"ping",...}` -> Bybit's linear pong; WebSocket pings -> pongs; a close -> the close reply;
* a subscribe that names `END_TOPIC` (e2e_stream.py) starts the push, right after its ack: `n` messages of the
  stream, then the end marker (one trade on `END_TOPIC`).

The request path says what to push: `/{mode}/{n}/{rate}/{run id}/v5/public/linear` (what
`Endpoints.custom(base)` appends is ignored). Modes:

* `permsg`: one TLS record per message (what a live venue mostly sends), written in 1 MiB `sendall`s;
* `blast`: the whole push encrypted at once -> full 16 KiB TLS records;
* `paced`: one record per message; the stream's snapshots (the first `SNAPSHOTS` messages) at once, then
  0.3 s of pause, then update i at t0 + i/rate; the send times (`perf_counter_ns`, system-wide monotonic)
  are written to `{scratch}/sends/{run id}.bin` for the latency figures.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import socket
import ssl
import sys
import threading
import time

from e2e_stream import END_TOPIC, SNAPSHOTS, end_marker, frame, make_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from bybit_hybrid_core.testing import dumps, pong_reply, subscribe_reply

HOST = "127.0.0.1"
CHUNK = 1 << 20
SETTLE_NS = 300_000_000  # paced: the pause after the snapshots


class _Tls:
    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def flush(self) -> None:
        if self.outgoing.pending:
            self.sock.sendall(self.outgoing.read())

    def _more(self) -> None:
        self.flush()
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("peer closed")
        self.incoming.write(data)

    def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._more()
        self.flush()

    def read(self) -> bytes:
        while True:
            try:
                data = self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._more()
                continue
            if not data:
                raise ConnectionError("peer closed")
            return data

    def send_cipher(self) -> None:
        cipher = memoryview(self.outgoing.read())
        for i in range(0, len(cipher), CHUNK):
            self.sock.sendall(cipher[i : i + CHUNK])


class _Connection:
    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, frames: list[bytes], scratch: str) -> None:
        self.tls = _Tls(sock, ctx)
        self.ws = WSConnection(ConnectionType.SERVER)
        self.frames, self.scratch = frames, scratch
        self.mode, self.n, self.rate, self.run_id = "permsg", 0, 0.0, ""
        self.parts: list[str] = []

    def serve(self) -> None:
        tls, ws = self.tls, self.ws
        tls.handshake()
        while True:
            ws.receive_data(tls.read())
            replies: list[bytes] = []
            go: bytes | None = None
            for event in ws.events():
                if isinstance(event, Request):
                    parts = event.target.strip("/").split("/")
                    self.mode, self.run_id = parts[0], parts[3]
                    self.n, self.rate = int(parts[1]), float(parts[2])
                    replies.append(ws.send(AcceptConnection()))
                elif isinstance(event, TextMessage):
                    self.parts.append(event.data)
                    if not event.message_finished:
                        continue
                    text, self.parts = "".join(self.parts), []
                    reply, starts = self._answer(text)
                    if starts:
                        go = reply
                    elif reply:
                        replies.append(reply)
                elif isinstance(event, Ping):
                    replies.append(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    tls.obj.write(ws.send(event.response()))
                    tls.flush()
                    return
            for data in replies:
                tls.obj.write(data)
            tls.flush()
            if go is not None:
                self._push(go)

    def _answer(self, text: str) -> tuple[bytes, bool]:
        """(the reply frame, whether the push starts after it)."""
        try:
            msg = json.loads(text)
        except ValueError:
            return b"", False
        op, req_id = msg.get("op"), msg.get("req_id")
        if op == "subscribe":
            args = msg.get("args", [])
            ack = subscribe_reply("linear", "subscribe", req_id, "bench-conn", ok_topics=args)
            return frame(dumps(ack).encode()), END_TOPIC in args
        if op == "ping":
            pong = pong_reply("linear", req_id, "bench-conn", int(time.time() * 1000))
            return frame(dumps(pong).encode()), False
        return b"", False

    def _push(self, ack: bytes) -> None:
        tls, frames, n = self.tls, self.frames, self.n
        write = tls.obj.write
        end = frame(end_marker())
        write(ack)
        if self.mode == "blast":
            write(b"".join(frames[:n]) + end)
            tls.send_cipher()
        elif self.mode == "permsg":
            for f in frames[:n]:
                write(f)
            write(end)
            tls.send_cipher()
        else:
            self._paced(ack=tls.outgoing.read(), end=end)

    def _paced(self, ack: bytes, end: bytes) -> None:
        tls, n = self.tls, self.n
        records = []
        for f in self.frames[:n]:
            tls.obj.write(f)
            records.append(tls.outgoing.read())
        tls.obj.write(end)
        tail = tls.outgoing.read()
        sends = array.array("q", bytes(8 * n))
        clock, sendall, sleep = time.perf_counter_ns, tls.sock.sendall, time.sleep
        interval = 1e9 / self.rate
        sendall(ack)
        first = SNAPSHOTS if n > SNAPSHOTS else 0
        for i in range(first):  # the snapshots at once, then a pause: the paced updates meet no backlog
            sends[i] = clock()
            sendall(records[i])
        t0 = clock() + (SETTLE_NS if first else 2_000_000)
        for i in range(first, n):
            due = t0 + int((i - first) * interval)
            ahead = due - clock()
            if ahead > 400_000:
                sleep((ahead - 300_000) / 1e9)  # sleep most of the way, spin the rest
            while clock() < due:
                pass
            sends[i] = clock()
            sendall(records[i])
        sendall(tail)
        folder = os.path.join(self.scratch, "sends")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, self.run_id)
        with open(path + ".tmp", "wb") as f:
            sends.tofile(f)
        os.replace(path + ".tmp", path + ".bin")


def _serve(sock: socket.socket, ctx: ssl.SSLContext, frames: list[bytes], scratch: str) -> None:
    try:
        _Connection(sock, ctx, frames, scratch).serve()
    except (ConnectionError, OSError, ssl.SSLError, RemoteProtocolError):
        pass  # RemoteProtocolError: a plain HTTP request (a REST clock sample): this server is WS only
    finally:
        sock.close()


def _exit_with_parent() -> None:
    """The bench holds our stdin open: when it ends, however it ends, so does the server."""
    sys.stdin.read()
    os._exit(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = ap.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    frames = [frame(m) for m in make_stream(args.messages, args.seed).messages]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.scratch, "server.pem"), os.path.join(args.scratch, "server.key"))
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    listener = socket.create_server((HOST, 0), backlog=16)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve, args=(sock, ctx, frames, args.scratch), daemon=True).start()


if __name__ == "__main__":
    main()
