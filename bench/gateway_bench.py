#!/usr/bin/env python3
"""Gateway benchmark: message delivery latency to many WebSocket sessions, and the
/api/v1 message send rate.

One Drocsid (SQLite by default, ``--postgres`` for PostgreSQL) in its own temporary
directory: register N users (default 1,000), put them all in one server, connect N
gateway sockets and IDENTIFY each as one of the users; once the sockets are quiet
(READY and the presence fan-out of N users coming online are delivered), the owner sends
M messages (default 20) through ``POST /api/v1/channels/{id}/messages``, one at a time;
each message's latency at each socket is the time from the POST going out to its
MESSAGE_CREATE frame arriving there. Reported: p50/p99/max over all N x M deliveries,
and p50/p99 of the slowest socket per message (when the last one had it).

Then the send rate: S sends one after another, and S sends with 16 in flight, with the
N sockets still connected (every send is also dispatched to all of them) and again with
none connected.

The registering, joining and sockets all run in this process (Twisted and treq
from Drocsid's .venv), so run it with ``.venv/bin/python``. Password hashing is set to
its cheapest so that registering 1,000 users does not dominate the run; the rate limits
are raised out of the way. The client shares the machine's cores with the server, so its
sockets are a minimal WebSocket client that recognises a MESSAGE_CREATE by its bytes;
reading N frames per message is still part of the measured latency.

    .venv/bin/python bench/gateway_bench.py [--users 1000] [--messages 20] [--sends 300]
                                            [--postgres] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import treq
from twisted.internet import defer, reactor, task, threads
from twisted.internet.protocol import ClientCreator, Protocol
from twisted.python import failure
from twisted.web.client import HTTPConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    HOST, BenchError, create_database, drop_database, free_port, install_sigterm_handler, keep_logs,
    machine_meta, percentile, render_rows, stop, stop_all, timed_start, wait_idle, write_drocsid_config,
)

API = "/api/v1"
CONNECT_IN_FLIGHT = 50   # sockets opening / identifying at once
HTTP_IN_FLIGHT = 16
QUIET_SECONDS = 2.0      # no frame for this long: the sockets have settled
SETTLE_LIMIT = 600.0
DELIVERY_LIMIT = 60.0


def write_config(work: Path, port: int, database_url: str) -> list[str]:
    return write_drocsid_config(work, port, database_url=database_url, cheap_hashing=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--sends", type=int, default=300, help="sends per send-rate phase")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    install_sigterm_handler()

    outcome: dict = {}

    def finished(result):
        if isinstance(result, failure.Failure):
            result.printTraceback()
            result = 1
        outcome["code"] = result
        reactor.stop()
    defer.ensureDeferred(run(reactor, args)).addBoth(finished)
    try:
        reactor.run()
    finally:
        stop_all()
    return outcome.get("code", 1)


async def run(reactor, args) -> int:
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    database = f"drocsid_gateway_bench_{os.getpid()}" if args.postgres else ""
    proc = None
    try:
        if database:
            create_database(database)
        port = free_port()
        argv = write_config(work, port, f"postgresql://postgres@127.0.0.1:5432/{database}" if database else "")
        proc, started = timed_start(argv, work, port)
        print(f"drocsid started in {started:.1f} s on port {port} ({'PostgreSQL' if database else 'SQLite'})",
              flush=True)
        results = await Bench(reactor, port, args, proc.pid).run()
        results["machine"] = machine_meta()
        results["engine"] = "postgres" if database else "sqlite"
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0
    except BenchError as error:
        print(f"gateway bench failed: {error}", file=sys.stderr)
        if proc is not None:
            print(f"server logs kept in {keep_logs('gateway-bench', work)}", file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop(proc)
        if database:
            drop_database(database)
        shutil.rmtree(work, ignore_errors=True)


class Bench:
    def __init__(self, reactor, port: int, args, server_pid: int):
        self.reactor = reactor
        self.server_pid = server_pid
        self.port = port
        self.args = args
        self.base = f"http://{HOST}:{port}"
        self.treq = treq
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = HTTP_IN_FLIGHT + 4
        self.sockets: list[Socket] = []

    async def call(self, method: str, path: str, body=None, token: str | None = None) -> dict:
        headers = {"Content-Type": ["application/json"]}
        if token:
            headers["Authorization"] = [f"Bearer {token}"]
        response = await self.treq.request(method, self.base + path, headers=headers, pool=self.pool,
                                           data=json.dumps(body).encode() if body is not None else None)
        raw = await response.content()
        if response.code != 200:
            raise BenchError(f"{method} {path} answered {response.code}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}

    async def gather(self, coroutines, in_flight: int) -> list:
        """Runs the coroutines with at most ``in_flight`` at once, results in order."""
        coroutines = list(coroutines)
        results: list = [None] * len(coroutines)
        position = iter(range(len(coroutines)))

        async def worker():
            for index in position:
                results[index] = await coroutines[index]
        await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(in_flight)], consumeErrors=True)
        return results

    async def register(self, name: str) -> tuple[str, str]:
        body = await self.call("POST", "/_matrix/client/v3/register",
                               {"username": name, "password": "gateway bench password",
                                "auth": {"type": "m.login.dummy"}})
        return body["user_id"], body["access_token"]

    async def run(self) -> dict:
        args = self.args
        began = time.monotonic()
        owner_id, owner = await self.register("owner")
        server = await self.call("POST", f"{API}/servers", {"name": "gateway bench"}, token=owner)
        space, channel = server["id"], server["channels"][0]["id"]
        users = await self.gather((self.register(f"user{i:05d}") for i in range(args.users - 1)), HTTP_IN_FLIGHT)
        invite = await self.call("POST", f"{API}/servers/{quote(space, safe='')}/invites", {}, token=owner)
        code = invite["code"]
        await self.gather((self.call("POST", f"{API}/invites/{code}", {}, token=token) for _, token in users),
                          HTTP_IN_FLIGHT)
        print(f"{args.users} users registered and in the server in {time.monotonic() - began:.1f} s", flush=True)

        rate_alone = await self.send_rates(channel, owner, "no socket connected")

        began = time.monotonic()
        tokens = [owner] + [token for _, token in users]
        self.sockets = await self.gather((self.connect(token) for token in tokens), CONNECT_IN_FLIGHT)
        connected = time.monotonic() - began
        print(f"{len(self.sockets)} sockets identified (READY) in {connected:.1f} s", flush=True)
        settled = await self.settle()
        print(f"sockets quiet after {settled:.1f} s more (presence fan-out)", flush=True)

        samples, slowest, send_ms = [], [], []
        for index in range(args.messages):
            for socket in self.sockets:
                socket.expect(f"bench {index}")
            sent_at = time.monotonic()
            await self.call("POST", f"{API}/channels/{quote(channel, safe='')}/messages",
                            {"content": f"bench {index}"}, token=owner)
            send_ms.append((time.monotonic() - sent_at) * 1000)
            arrivals = await self.all_arrived()
            latencies = [(at - sent_at) * 1000 for at in arrivals]
            samples += latencies
            slowest.append(max(latencies))
        rate_loaded = await self.send_rates(channel, owner, f"{len(self.sockets)} sockets connected")
        for socket in self.sockets:
            socket.close()

        rows = [["delivery to every socket", "samples", "p50 ms", "p99 ms", "max ms"],
                ["MESSAGE_CREATE per socket", str(len(samples)), f"{percentile(samples, 50):.1f}",
                 f"{percentile(samples, 99):.1f}", f"{max(samples):.1f}"],
                ["last socket per message", str(len(slowest)), f"{percentile(slowest, 50):.1f}",
                 f"{percentile(slowest, 99):.1f}", f"{max(slowest):.1f}"],
                ["POST /messages answered", str(len(send_ms)), f"{percentile(send_ms, 50):.1f}",
                 f"{percentile(send_ms, 99):.1f}", f"{max(send_ms):.1f}"]]
        print()
        print("\n".join(render_rows(rows)))
        print()
        rate_rows = [["/api/v1 send rate", "sends", "sequential /s", "16 in flight /s"]]
        for label, rate in (("no socket connected", rate_alone), (f"{len(self.sockets)} sockets", rate_loaded)):
            rate_rows.append([label, str(self.args.sends), f"{rate['sequential']:.0f}", f"{rate['concurrent']:.0f}"])
        print("\n".join(render_rows(rate_rows)))
        print()
        p99 = percentile(samples, 99)
        verdict = "under" if p99 < 100 else "OVER"
        print(f"gateway: {len(self.sockets)} sockets, {args.messages} messages: delivery p50"
              f" {percentile(samples, 50):.1f} ms, p99 {p99:.1f} ms ({verdict} the 100 ms goal);"
              f" /api/v1 sends {rate_loaded['sequential']:.0f}/s sequential,"
              f" {rate_loaded['concurrent']:.0f}/s with 16 in flight (sockets connected)")
        await self.pool.closeCachedConnections()
        return {"users": len(self.sockets), "messages": args.messages,
                "delivery_ms": {"p50": percentile(samples, 50), "p99": p99, "max": max(samples)},
                "slowest_socket_ms": {"p50": percentile(slowest, 50), "p99": percentile(slowest, 99)},
                "identify_seconds": connected, "send_rate_alone": rate_alone, "send_rate_loaded": rate_loaded}

    async def send_rates(self, channel: str, token: str, label: str) -> dict:
        path = f"{API}/channels/{quote(channel, safe='')}/messages"
        n = self.args.sends
        began = time.monotonic()
        for i in range(n):
            await self.call("POST", path, {"content": f"rate {label} {i}"}, token=token)
        sequential = n / (time.monotonic() - began)
        began = time.monotonic()
        await self.gather((self.call("POST", path, {"content": f"rate16 {label} {i}"}, token=token)
                           for i in range(n)), HTTP_IN_FLIGHT)
        concurrent = n / (time.monotonic() - began)
        if self.sockets:
            await self.settle()
        return {"sequential": sequential, "concurrent": concurrent}

    async def connect(self, token: str) -> "Socket":
        socket = Socket(self.reactor, self.port, token)
        await ClientCreator(self.reactor, lambda: socket).connectTCP(HOST, self.port)
        await socket.ready
        return socket

    async def settle(self) -> float:
        """Waits until the server is idle and no socket got a frame for QUIET_SECONDS;
        the seconds that took."""
        began = time.monotonic()
        await threads.deferToThread(wait_idle, [self.server_pid], 0.1, 1.0, SETTLE_LIMIT)
        while time.monotonic() - began < SETTLE_LIMIT:
            last = max(s.last_frame_at for s in self.sockets)
            if time.monotonic() - last >= QUIET_SECONDS:
                return time.monotonic() - began
            await task.deferLater(self.reactor, 0.25, lambda: None)
        raise BenchError("the sockets never went quiet")

    async def all_arrived(self) -> list[float]:
        waits = [s.arrival for s in self.sockets]
        timer = self.reactor.callLater(DELIVERY_LIMIT, lambda: [w.cancel() for w in waits if not w.called])
        try:
            return await defer.gatherResults(waits, consumeErrors=True)
        except defer.FirstError as error:
            missing = [s for s in self.sockets if not s.arrival.called or s.close_code is not None]
            codes = sorted({str(s.close_code) for s in missing})
            raise BenchError(f"a MESSAGE_CREATE did not reach {len(missing)} sockets within {DELIVERY_LIMIT:.0f} s"
                             f" (close codes: {', '.join(codes)}; last frames: {missing[0].recent[-3:]})") \
                from error
        finally:
            if timer.active():
                timer.cancel()


class Socket(Protocol):
    """One gateway client on a minimal WebSocket implementation (RFC 6455, client side):
    the load generator shares the cores with the server, so it parses only what it needs
    (a MESSAGE_CREATE is recognised by its bytes, not decoded)."""

    def __init__(self, reactor, port: int, token: str):
        self.reactor = reactor
        self.port = port
        self.token = token
        self.buffer = b""
        self.upgraded = False
        self.ready: defer.Deferred = defer.Deferred()
        self.arrival: defer.Deferred = defer.Deferred()
        self.expected: bytes | None = None
        self.last_frame_at = time.monotonic()
        self.seq = None
        self.close_code = None
        self.recent: list[str] = []
        self._heartbeat = None

    def connectionMade(self):
        key = base64.b64encode(os.urandom(16))
        self.transport.setTcpNoDelay(True)
        self.transport.write(b"GET /gateway HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                             % (HOST.encode(), self.port, key))

    def dataReceived(self, data: bytes):
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.fail(f"upgrade refused: {self.buffer[:80]!r}")
                return
            self.upgraded, self.buffer = True, self.buffer[end + 4:]
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            if len(self.buffer) < offset + length:
                return
            payload, self.buffer = self.buffer[offset:offset + length], self.buffer[offset + length:]
            opcode = first & 0x0F
            if opcode == 1:
                self.on_frame(payload)
            elif opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.transport.loseConnection()

    def on_frame(self, raw: bytes) -> None:
        now = time.monotonic()
        self.last_frame_at = now
        if raw.startswith(b'{"op":0'):
            name_end = raw.find(b'"', 13)
            name = raw[13:name_end]
            self.recent = self.recent[-4:] + [name.decode()]
            found = _SEQ.search(raw, name_end, name_end + 40)
            if found is not None:
                self.seq = int(found.group(1))
            if name == b"MESSAGE_CREATE" and self.expected is not None and self.expected in raw:
                self.expected = None
                self.arrival.callback(now)
            elif name == b"READY" and not self.ready.called:
                self.ready.callback(None)
            return
        frame = json.loads(raw)
        self.recent = self.recent[-4:] + [f"op {frame.get('op')}"]
        if frame.get("op") == 10:
            interval = frame["d"]["heartbeat_interval"] / 1000
            self._heartbeat = self.reactor.callLater(interval, self._beat, interval)
            self.send(2, {"token": self.token})
        elif frame.get("op") == 9:
            self.fail("IDENTIFY refused")

    def fail(self, why: str) -> None:
        if not self.ready.called:
            self.ready.errback(BenchError(why))
        self.transport.loseConnection()

    def _beat(self, interval: float) -> None:
        self.send(1, self.seq)
        self._heartbeat = self.reactor.callLater(interval, self._beat, interval)

    def expect(self, content: str) -> None:
        self.expected = b'"content":' + json.dumps(content).encode()
        self.arrival = defer.Deferred()

    def send(self, op: int, d) -> None:
        payload = json.dumps({"op": op, "d": d}).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        length = len(payload)
        header = struct.pack("!BB", 0x81, 0x80 | length) if length < 126 else \
            struct.pack("!BBH", 0x81, 0x80 | 126, length)
        self.transport.write(header + mask + masked)

    def connectionLost(self, reason):
        if self.close_code is None:
            self.close_code = 1006
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        if not self.ready.called:
            self.ready.errback(BenchError(f"socket closed before READY ({self.close_code})"))

    def close(self) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self.transport.loseConnection()


_SEQ = re.compile(rb'"s":(\d+)')


if __name__ == "__main__":
    sys.exit(main())
