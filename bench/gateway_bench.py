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

Then, in the same run (unless ``--skip-synapse``; ``--compare-synapse`` asks for it
explicitly), Synapse on SQLite in its own temporary directory, which has no gateway: a
Matrix client receives a message through ``/sync`` long polls. Register N users
(``--synapse-users``, default ``--users``; ``m.login.dummy``, 32 at once), the first
creates a public room (version 11) and the others join it (32 at once); each client
does an initial ``/sync?timeout=0`` (with a filter: timeline limit 1, lazy-loaded
members, no presence, only to get ``next_batch`` cheaply), then long-polls
``/sync?since=...&timeout=30000`` (no filter) in a loop on its own kept-alive
connection. Once Synapse is idle and no poll has answered for 2 s, the owner sends the
same M messages one at a time through ``PUT /_matrix/client/v3/rooms/{room}/send/
m.room.message/{txn}``; each message's latency at each client is from the PUT going out
to that client's sync answer containing it being read (an answer without it, e.g.
presence, is followed by the next poll at once, and the latency includes that). Then
Synapse's send rate, sequential and 16 in flight, S sends each, with no client polling
and with the N clients polling; a Synapse send-rate phase stops starting sends after
90 s and its rate is over what was sent (the table says so). Synapse has
``bcrypt_rounds: 4`` in this bench only (as Drocsid's cheap Argon2id here) and its rate
limits off (common.py). One table compares both servers with a Drocsid / Synapse ratio
column (delivery p50/p99/max, slowest client per message, send answer time, send
rates), then a one-line summary; ``--json`` holds both sides and the ratios. Every
Synapse phase is bounded; a Synapse failure is printed with what was measured before
it (exit status 1), and Drocsid's numbers stand.

The registering, joining, sockets and long polls all run in this process (Twisted and
treq from Drocsid's .venv), so run it with ``.venv/bin/python``. Password hashing is set to
its cheapest so that registering 1,000 users does not dominate the run; the rate limits
are raised out of the way. The client shares the machine's cores with the server, so its
sockets are a minimal WebSocket client that recognises a MESSAGE_CREATE by its bytes;
reading N frames per message is still part of the measured latency. The /sync clients
likewise find the message and ``next_batch`` in each answer by their bytes.

    .venv/bin/python bench/gateway_bench.py [--users 1000] [--messages 20] [--sends 300]
                                            [--postgres] [--skip-synapse | --compare-synapse]
                                            [--synapse-users N] [--json out.json]
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
    HOST, REGISTER_PATH, SYNC_PATH, BenchError, Synapse, dig, create_database, drop_database, free_port, install_sigterm_handler, keep_logs,
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
    parser.add_argument("--compare-synapse", action="store_true",
                        help="also measure Synapse (the default unless --skip-synapse)")
    parser.add_argument("--skip-synapse", action="store_true", help="Drocsid alone")
    parser.add_argument("--synapse-users", type=int, default=None,
                        help="/sync clients on Synapse (default: --users)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if args.compare_synapse and args.skip_synapse:
        parser.error("--compare-synapse and --skip-synapse exclude each other")
    args.compare_synapse = not args.skip_synapse
    if args.synapse_users is None:
        args.synapse_users = args.users
    if args.users < 2 or args.synapse_users < 2:
        parser.error("--users and --synapse-users must be at least 2")
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
    code, results = await run_drocsid(reactor, args)
    if args.compare_synapse:
        synapse = await run_synapse(reactor, args)
        results["synapse"] = synapse
        results["ratios_drocsid_over_synapse"] = ratios(results, synapse)
        print()
        print("\n".join(comparison_lines(results, synapse, args)))
        if "error" in synapse:
            code = 1
    results["machine"] = machine_meta()
    results["engine"] = "postgres" if args.postgres else "sqlite"
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return code


async def run_drocsid(reactor, args) -> tuple[int, dict]:
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
        return 0, results
    except BenchError as error:
        print(f"gateway bench failed: {error}", file=sys.stderr)
        if proc is not None:
            print(f"server logs kept in {keep_logs('gateway-bench', work)}", file=sys.stderr)
        return 1, {"error": str(error)}
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
                "send_answer_ms": {"p50": percentile(send_ms, 50), "p99": percentile(send_ms, 99)},
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


# --- Synapse: the same message to the same number of clients, through /sync long polls ---

SYNAPSE_SETUP_LIMIT = 900.0     # registering, creating the room and joining, at most
SYNAPSE_POLLERS_LIMIT = 600.0   # initial syncs and the first long polls out
SYNAPSE_SETTLE_LIMIT = 300.0
SYNAPSE_SEND_PHASE_LIMIT = 90.0  # one send-rate phase; what was sent by then is reported
SYNAPSE_IN_FLIGHT = 32          # registrations, joins and initial syncs at once
LONG_POLL_MS = 30000
REQUEST_LIMIT = 120.0           # one request that is not a long poll
# The initial sync only fetches next_batch: a 1000-member room's full state and every
# member's presence, 1000 times over, would be a benchmark of initial sync instead.
INITIAL_FILTER = json.dumps({"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True}},
                             "presence": {"not_types": ["*"]}}, separators=(",", ":"))
_NEXT_BATCH = re.compile(rb'"next_batch":"([^"]+)"')


class CheapSynapse(Synapse):
    """common.Synapse with ``bcrypt_rounds: 4`` (this bench only), so that registering
    1,000 users does not dominate the run, as Drocsid's cheap Argon2id here."""

    def prepare(self, work: Path, port: int) -> list[str]:
        argv = super().prepare(work, port)
        config = work / "homeserver.yaml"
        settings = json.loads(config.read_text())
        settings["bcrypt_rounds"] = 4
        config.write_text(json.dumps(settings, indent=2))
        return argv


async def bounded(reactor, coroutine, seconds: float, what: str):
    """Awaits the coroutine, cancelling it after ``seconds``; BenchError then."""
    deferred = defer.ensureDeferred(coroutine)
    deferred.addTimeout(seconds, reactor)
    try:
        return await deferred
    except defer.TimeoutError:
        raise BenchError(f"{what} did not finish within {seconds:.0f} s") from None


async def run_synapse(reactor, args) -> dict:
    """Synapse's side; never raises: a failure is reported under "error" with whatever
    was measured before it."""
    server = CheapSynapse()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-synapse-"))
    proc = None
    bench = None
    result: dict = {"users": args.synapse_users}
    try:
        await threads.deferToThread(server.ensure_installed)
        result["version"] = await threads.deferToThread(server.version)
        port = free_port()
        argv = await threads.deferToThread(server.prepare, work, port)
        proc, started = await threads.deferToThread(timed_start, argv, work, port)
        print(f"\nsynapse {result['version']} started in {started:.1f} s on port {port} (SQLite,"
              f" bcrypt_rounds 4)", flush=True)
        bench = SynapseBench(reactor, port, args, proc.pid, result)
        await bench.run()
    except BaseException as error:  # report it, keep Drocsid's numbers
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        why = str(error) if isinstance(error, BenchError) else f"{type(error).__name__}: {error}"
        result["error"] = why
        print(f"synapse part failed: {why}", file=sys.stderr)
        if proc is not None:
            print(f"synapse logs kept in {keep_logs('gateway-bench-synapse', work)}", file=sys.stderr)
    finally:
        if bench is not None:
            await bench.close()
        if proc is not None:
            await threads.deferToThread(stop, proc)
        shutil.rmtree(work, ignore_errors=True)
    return result


class SynapseBench:
    def __init__(self, reactor, port: int, args, server_pid: int, result: dict):
        self.reactor = reactor
        self.port = port
        self.args = args
        self.server_pid = server_pid
        self.result = result
        self.base = f"http://{HOST}:{port}"
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = SYNAPSE_IN_FLIGHT + 4
        # The long polls: one connection each, kept open between polls.
        self.poll_pool = HTTPConnectionPool(reactor, persistent=True)
        self.poll_pool.maxPersistentPerHost = args.synapse_users + 8
        self.pollers: list[Poller] = []
        self.txn = 0

    async def call(self, method: str, path: str, body=None, token: str | None = None) -> dict:
        headers = {"Content-Type": ["application/json"]}
        if token:
            headers["Authorization"] = [f"Bearer {token}"]
        response = await treq.request(method, self.base + path, headers=headers, pool=self.pool,
                                      timeout=REQUEST_LIMIT,
                                      data=json.dumps(body).encode() if body is not None else None)
        raw = await response.content()
        if response.code != 200:
            raise BenchError(f"{method} {path.split('?')[0]} answered {response.code}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}

    async def register(self, name: str) -> str:
        body = await self.call("POST", REGISTER_PATH, {"username": name, "password": "gateway bench password",
                                                       "auth": {"type": "m.login.dummy"}})
        return body["access_token"]

    def send_path(self, room: str) -> str:
        self.txn += 1
        return f"/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message/gb{self.txn}"

    async def send(self, room: str, token: str, text: str) -> dict:
        return await self.call("PUT", self.send_path(room), {"msgtype": "m.text", "body": text}, token=token)

    async def run(self) -> None:
        args, result, n = self.args, self.result, self.args.synapse_users
        began = time.monotonic()

        async def setup():
            owner = await self.register("owner")
            room = (await self.call("POST", "/_matrix/client/v3/createRoom",
                                    {"preset": "public_chat", "room_version": "11"}, token=owner))["room_id"]
            tokens = await Bench.gather(self, (self.register(f"user{i:05d}") for i in range(n - 1)),
                                        SYNAPSE_IN_FLIGHT)
            print(f"{n} users registered on Synapse in {time.monotonic() - began:.1f} s", flush=True)
            joined = time.monotonic()
            await Bench.gather(self, (self.call("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}", {},
                                                token=token) for token in tokens), SYNAPSE_IN_FLIGHT)
            print(f"{n - 1} users joined the room in {time.monotonic() - joined:.1f} s", flush=True)
            return owner, room, tokens
        owner, room, tokens = await bounded(self.reactor, setup(), SYNAPSE_SETUP_LIMIT,
                                            "registering and joining on Synapse")
        result["setup_seconds"] = time.monotonic() - began

        # Idle first, so the send rate with no client connected is not measuring the joins' tail.
        await threads.deferToThread(wait_idle, [self.server_pid], 0.1, 1.0, SYNAPSE_SETTLE_LIMIT)
        result["send_rate_alone"] = await self.send_rates(room, owner, "no client polling")

        began = time.monotonic()
        self.pollers = [Poller(self, token) for token in [owner] + tokens]

        async def start_polling():
            await Bench.gather(self, (p.initial_sync() for p in self.pollers), SYNAPSE_IN_FLIGHT)
            for poller in self.pollers:
                poller.start()
        await bounded(self.reactor, start_polling(), SYNAPSE_POLLERS_LIMIT, "the initial syncs on Synapse")
        result["initial_sync_seconds"] = time.monotonic() - began
        print(f"{len(self.pollers)} clients synced and long-polling in {result['initial_sync_seconds']:.1f} s",
              flush=True)
        settled = await self.settle()
        result["settle_seconds"] = settled
        print(f"long polls quiet after {settled:.1f} s more (presence fan-out)", flush=True)

        samples, slowest, send_ms, errors = [], [], [], []
        result["delivery"] = {"samples": samples, "slowest": slowest, "send_ms": send_ms}
        nonce = os.urandom(4).hex()
        for index in range(args.messages):
            text = f"synapse bench {nonce} {index}"
            for poller in self.pollers:
                poller.expect(text)
            sent_at = time.monotonic()
            await self.send(room, owner, text)
            send_ms.append((time.monotonic() - sent_at) * 1000)
            arrivals = await self.all_arrived()
            latencies = [(at - sent_at) * 1000 for at in arrivals if at is not None]
            missing = len(arrivals) - len(latencies)
            if missing:
                errors.append(f"message {index} did not reach {missing} clients within {DELIVERY_LIMIT:.0f} s")
                print(errors[-1], file=sys.stderr, flush=True)
                if not latencies:
                    break
            samples += latencies
            slowest.append(max(latencies))
            print(f"  message {index + 1}/{args.messages}: every client had it after {slowest[-1]:.0f} ms",
                  flush=True)
        if errors:
            result["delivery_errors"] = errors
        if samples:
            result["delivery_ms"] = {"p50": percentile(samples, 50), "p99": percentile(samples, 99),
                                     "max": max(samples)}
            result["slowest_client_ms"] = {"p50": percentile(slowest, 50), "p99": percentile(slowest, 99)}
            result["send_answer_ms"] = {"p50": percentile(send_ms, 50), "p99": percentile(send_ms, 99)}
        result["send_rate_loaded"] = await self.send_rates(room, owner, f"{len(self.pollers)} clients polling")
        result["polls"] = sum(p.polls for p in self.pollers)
        poll_errors = [p.error for p in self.pollers if p.error]
        if poll_errors:
            result["poll_errors"] = {"clients": len(poll_errors), "first": poll_errors[0]}
        if errors:
            raise BenchError("; ".join(errors[:3]))

    async def send_rates(self, room: str, token: str, label: str) -> dict:
        """S sends one after another, then S with 16 in flight; each phase stops starting
        sends after SYNAPSE_SEND_PHASE_LIMIT and the rate is over what was sent."""
        n = self.args.sends
        out = {}
        began = time.monotonic()
        done = 0
        for i in range(n):
            if time.monotonic() - began > SYNAPSE_SEND_PHASE_LIMIT:
                break
            await self.send(room, token, f"rate {label} {i}")
            done += 1
        out["sequential"] = done / (time.monotonic() - began)
        out["sequential_sends"] = done
        began = time.monotonic()
        counter = iter(range(n))
        sent = [0]

        async def worker():
            for i in counter:
                if time.monotonic() - began > SYNAPSE_SEND_PHASE_LIMIT:
                    return
                await self.send(room, token, f"rate16 {label} {i}")
                sent[0] += 1
        await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(HTTP_IN_FLIGHT)],
                                  consumeErrors=True)
        out["concurrent"] = sent[0] / (time.monotonic() - began)
        out["concurrent_sends"] = sent[0]
        if done < n or sent[0] < n:
            print(f"Synapse send rate ({label}): stopped after {SYNAPSE_SEND_PHASE_LIMIT:.0f} s with"
                  f" {done} and {sent[0]} of {n} sent", flush=True)
        if self.pollers:
            await self.settle()
        return out

    async def settle(self) -> float:
        began = time.monotonic()
        await threads.deferToThread(wait_idle, [self.server_pid], 0.1, 1.0, SYNAPSE_SETTLE_LIMIT)
        while time.monotonic() - began < SYNAPSE_SETTLE_LIMIT:
            if time.monotonic() - max(p.last_answer_at for p in self.pollers) >= QUIET_SECONDS:
                return time.monotonic() - began
            await task.deferLater(self.reactor, 0.25, lambda: None)
        print(f"warning: Synapse's long polls still answering after {SYNAPSE_SETTLE_LIMIT:.0f} s", file=sys.stderr)
        return time.monotonic() - began

    async def all_arrived(self) -> list[float | None]:
        """Each client's arrival time; None where it did not arrive within DELIVERY_LIMIT."""
        waits = [p.arrival for p in self.pollers]
        timer = self.reactor.callLater(DELIVERY_LIMIT, lambda: [w.cancel() for w in waits if not w.called])
        try:
            outcomes = await defer.DeferredList(waits, consumeErrors=True)
        finally:
            if timer.active():
                timer.cancel()
        return [value if ok else None for ok, value in outcomes]

    async def close(self) -> None:
        for poller in self.pollers:
            poller.stop()
        await self.pool.closeCachedConnections()
        await self.poll_pool.closeCachedConnections()


class Poller:
    """One Matrix client receiving through ``/sync``: an initial sync for ``next_batch``,
    then long polls (``since``, ``timeout=30000``) one after another on a kept-alive
    connection; an answer is searched for the expected body by its bytes."""

    def __init__(self, bench: SynapseBench, token: str):
        self.bench = bench
        self.headers = {"Authorization": [f"Bearer {token}"]}
        self.since = ""
        self.arrival: defer.Deferred = defer.Deferred()
        self.expected: bytes | None = None
        self.last_answer_at = time.monotonic()
        self.polls = 0
        self.error: str | None = None
        self.pending: defer.Deferred | None = None
        self.stopped = False

    async def get(self, path: str, timeout: float) -> tuple[int, bytes]:
        self.pending = treq.get(self.bench.base + path, headers=self.headers, pool=self.bench.poll_pool,
                                timeout=timeout)
        response = await self.pending
        self.pending = response.content()
        raw = await self.pending
        self.pending = None
        return response.code, raw

    async def initial_sync(self) -> None:
        code, raw = await self.get(f"{SYNC_PATH}?timeout=0&filter={quote(INITIAL_FILTER, safe='')}",
                                   REQUEST_LIMIT)
        found = _NEXT_BATCH.search(raw)
        if code != 200 or found is None:
            raise BenchError(f"initial sync answered {code}: {raw[:300]!r}")
        self.since = found.group(1).decode()

    def start(self) -> None:
        defer.ensureDeferred(self.loop())

    async def loop(self) -> None:
        while not self.stopped:
            try:
                code, raw = await self.get(f"{SYNC_PATH}?timeout={LONG_POLL_MS}&since={quote(self.since, safe='')}",
                                           LONG_POLL_MS / 1000 + REQUEST_LIMIT)
            except Exception as error:
                if self.stopped:
                    return
                self.error = f"{type(error).__name__}: {error}"
                await task.deferLater(self.bench.reactor, 1.0, lambda: None)
                continue
            read_at = time.monotonic()
            self.last_answer_at = read_at
            self.polls += 1
            found = _NEXT_BATCH.search(raw) if code == 200 else None
            if found is None:
                self.error = f"sync answered {code}: {raw[:200]!r}"
                await task.deferLater(self.bench.reactor, 1.0, lambda: None)
                continue
            self.since = found.group(1).decode()
            if self.expected is not None and self.expected in raw:
                self.expected = None
                if not self.arrival.called:
                    self.arrival.callback(read_at)

    def expect(self, text: str) -> None:
        self.expected = json.dumps(text).encode()
        self.arrival = defer.Deferred()

    def stop(self) -> None:
        self.stopped = True
        if self.pending is not None and not self.pending.called:
            self.pending.cancel()


# --- the comparison -----------------------------------------------------------------------

COMPARED = [  # label, path in each side's results, unit
    ("delivery per client p50", ("delivery_ms", "p50"), "ms"),
    ("delivery per client p99", ("delivery_ms", "p99"), "ms"),
    ("delivery per client max", ("delivery_ms", "max"), "ms"),
    ("last client per message p50", ("slowest_socket_ms", "p50"), "ms"),
    ("last client per message p99", ("slowest_socket_ms", "p99"), "ms"),
    ("send answered p50 (clients connected)", ("send_answer_ms", "p50"), "ms"),
    ("sends/s sequential, clients connected", ("send_rate_loaded", "sequential"), "/s"),
    ("sends/s 16 in flight, clients connected", ("send_rate_loaded", "concurrent"), "/s"),
    ("sends/s sequential, no client", ("send_rate_alone", "sequential"), "/s"),
    ("sends/s 16 in flight, no client", ("send_rate_alone", "concurrent"), "/s"),
]


def synapse_path(path: tuple) -> tuple:
    return ("slowest_client_ms",) + path[1:] if path[0] == "slowest_socket_ms" else path


def ratios(drocsid: dict, synapse: dict) -> dict:
    out = {}
    for label, path, _ in COMPARED:
        a, b = dig(drocsid, *path), dig(synapse, *synapse_path(path))
        out[label] = a / b if a is not None and b else None
    return out


def ratio_text(value: float | None) -> str:
    """Three significant figures (whole numbers from 100 up): 0.00492x, 0.93x, 1410x."""
    if value is None:
        return "-"
    return f"{value:.0f}x" if value >= 100 else f"{value:.3g}x"


def comparison_lines(drocsid: dict, synapse: dict, args) -> list[str]:
    def cell(value, unit):
        if value is None:
            return "-"
        return f"{value:.2f}" if value < 1 else f"{value:.1f}" if unit == "ms" or value < 10 else f"{value:.0f}"
    rat = ratios(drocsid, synapse)
    rows = [["metric", f"Drocsid gateway ({drocsid.get('users', args.users)} sockets)",
             f"Synapse {synapse.get('version', '')} /sync ({synapse.get('users')} long polls)".replace("  ", " "),
             "Drocsid / Synapse"]]
    for label, path, unit in COMPARED:
        a, b = dig(drocsid, *path), dig(synapse, *synapse_path(path))
        rows.append([f"{label} ({unit})", cell(a, unit), cell(b, unit),
                     ratio_text(rat[label])])
    lines = render_rows(rows)
    lines.append("ratios are Drocsid / Synapse: for ms lower is better (< 1: Drocsid delivers sooner),"
                 " for sends/s higher is better (> 1: Drocsid sends more)")
    if synapse.get("users") != drocsid.get("users"):
        lines.append(f"! Synapse had {synapse.get('users')} clients, Drocsid {drocsid.get('users')}:"
                     " not the same load")
    for key in ("send_rate_alone", "send_rate_loaded"):
        rate = synapse.get(key) or {}
        if rate and (rate.get("sequential_sends", args.sends) < args.sends
                     or rate.get("concurrent_sends", args.sends) < args.sends):
            lines.append(f"! Synapse {key}: only {rate['sequential_sends']} / {rate['concurrent_sends']} of"
                         f" {args.sends} sends within {SYNAPSE_SEND_PHASE_LIMIT:.0f} s per phase")
    if synapse.get("poll_errors"):
        lines.append(f"! Synapse long polls: {synapse['poll_errors']['clients']} clients had errors, e.g."
                     f" {synapse['poll_errors']['first']}")
    if "error" in synapse:
        lines.append(f"! Synapse part failed: {synapse['error']}")
    if "error" in drocsid:
        lines.append(f"! Drocsid part failed: {drocsid['error']}")
    lines.append("")
    p50, p99 = rat["delivery per client p50"], rat["delivery per client p99"]
    seq, conc = (rat["sends/s sequential, clients connected"], rat["sends/s 16 in flight, clients connected"])
    x = ratio_text
    lines.append(f"gateway vs /sync: Drocsid / Synapse delivery p50 {x(p50)}, p99 {x(p99)};"
                 f" send rate with clients connected {x(seq)} sequential, {x(conc)} with 16 in flight"
                 f" ({drocsid.get('users')} sockets vs {synapse.get('users')} long polls,"
                 f" {args.messages} messages)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
