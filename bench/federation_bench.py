#!/usr/bin/env python3
"""Federation benchmark: joining a big room on another server, and cross-server delivery,
Drocsid <-> Drocsid against Synapse <-> Synapse, in the same run on this machine.

For each pair (two Drocsid processes, then two Synapse processes; each server named
``127.0.0.1:<federation port>`` with a self-signed certificate, federating over loopback):

  populate      on the host, a user creates a public room (version 11) and M-1 more
                local users register and join it, so it has M members (default 1000).
                Four client threads; progress is printed. Reported: the wall time, and
                the p50/p95 of the local joins (the room grows as they go).
  remote join   K times (default 3), a fresh joiner server is started (new name, new
                database, nothing cached), one user registers on it and the time of
                ``POST /_matrix/client/v3/join/{roomId}?via=<host>`` is taken, from the
                request to the 200. Then the joiner's ``GET .../joined_members`` is polled
                until it lists all M+1 members: "full member list". Synapse joins a
                Synapse-hosted room with partial state (MSC3706 "faster joins",
                ``omit_members``), so its 200 comes before it has the member list, which it
                then fetches in the background; Drocsid always does a full join. Both rows
                matter. Before the next sample the joiner's user leaves (so the host
                stops sending to it); the joiner keeps running until the pair is done,
                since later joiners fetch its signing key to check its leave event.
                Medians over K are reported.
  delivery      on the last joiner (still in the room), a user on each side: the sender
                sends N messages (default 200, after 10 warm-ups) one after another; for
                each, the receiver has a long-poll ``/sync`` open first, and the latency
                runs from the start of the send request to the receiver reading the sync
                answer holding that message. Both directions: host -> joiner and
                joiner -> host. Nearest-rank p50/p95 and mean.

Standard library only (any Python 3.11). Drocsid comes from .venv (``make install``),
Synapse from the repository's .venv-synapse (``make synapse``) or else bench/.venv-synapse
(installed on first use). Drocsid uses cheap password hashing (as the tests do) and
Synapse ``bcrypt_rounds: 4``, so populating is not a hashing benchmark; rate limits are
out of reach on both. SQLite by default; ``--postgres`` puts both Drocsid servers on
PostgreSQL at 127.0.0.1:5432 (scratch databases, dropped at the end); Synapse stays on
SQLite. Only 127.0.0.1 is ever contacted.

    python3 bench/federation_bench.py [--members 1000] [--joins 3] [--n 200]
                                      [--postgres] [--skip-synapse] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import (  # noqa: E402
    SYNC_PATH, LongPoller,
    DROCSID_PYTHON, HOST, PG_HOST, PG_PORT, PG_USER, REGISTER_PATH, REPO_DIR,
    BenchError, Drocsid, JsonClient, Synapse, cpu_snapshot, create_database, descendants, dig,
    drop_database, expect_json, install_sigterm_handler, keep_logs, machine_meta, memory_mib,
    noise_lines, other_cpu_cores, percentile, pg_backend_pids, render_rows, stop, stop_all, timed_start,
    wait_idle, write_drocsid_config,
)

CREATE_ROOM_PATH = "/_matrix/client/v3/createRoom"
PASSWORD = "bench-Passw0rd-federation"
ROOM_VERSION = "11"           # both servers; Synapse's default is 10, Drocsid's 11
WARMUP_DELIVERIES = 10
LONG_POLL_MS = 30000
POLL_SETTLE = 0.02            # after the receiver's sync request is written, before the send
MAX_POLLS = 20                # sync answers per sample before giving up on it
SAMPLE_TIMEOUT = 60.0         # one delivery, at most
JOIN_TIMEOUT = 900.0          # one remote join request, at most
FULL_STATE_TIMEOUT = 300.0    # joiner listing every member, at most
LEAVE_TIMEOUT = 60.0          # host seeing the joiner's leave, at most
MEMBER_POLL = 0.05            # joined_members polling interval on the joiner
PHASE_BUDGET = 1800.0         # wall-clock cap on populating and on each delivery phase
REPO_SYNAPSE_PYTHON = REPO_DIR / ".venv-synapse" / "bin" / "python"

# Synapse's DEFAULT_IP_RANGE_BLOCKLIST without loopback (as tests/support/synapse.py):
# ip_range_whitelist alone does not open loopback for a destination given as an IP literal.
SYNAPSE_IP_RANGE_BLACKLIST = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4",
    "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
]
_UNLIMITED = {"per_second": 100000, "burst_count": 100000}
SYNAPSE_RATE_LIMITS = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_room_creation": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_key_requests": _UNLIMITED,
    "rc_federation": {"window_size": 1000, "sleep_limit": 100000, "sleep_delay": 0,
                      "reject_limit": 100000, "concurrent": 1000},
    "federation_rr_transactions_per_room_per_second": 100000,
}


# --- servers ------------------------------------------------------------------------------

def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that were free a moment ago (held together, then closed)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class FederatingDrocsid:
    """Drocsid with a TLS federation listener, named 127.0.0.1:<federation port>, as in
    tests/support/federation.py: peers' self-signed certificates accepted, loopback allowed."""

    name = "drocsid"
    label = "Drocsid"

    def __init__(self, postgres: bool = False):
        self.postgres = postgres
        self.databases: list[str] = []

    def ensure_installed(self) -> None:
        Drocsid().ensure_installed()

    def version(self) -> str:
        return Drocsid().version()

    def engine(self) -> str:
        return "PostgreSQL" if self.postgres else "SQLite"

    def database_name(self, role: str) -> str | None:
        return f"drocsid_fed_{os.getpid()}_{role}" if self.postgres else None

    def prepare(self, work: Path, client_port: int, federation_port: int, role: str) -> list[str]:
        url = ""
        if self.postgres:
            name = self.database_name(role)
            create_database(name)
            self.databases.append(name)
            url = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        federation = "\n".join([
            "enabled = true", f'host = "{HOST}"', f"port = {federation_port}", 'insecure_destinations = ["*"]',
            'ip_range_allowlist = ["127.0.0.1/32"]', "retry_min_secs = 0.2", "retry_max_secs = 2.0"])
        return write_drocsid_config(work, client_port, database_url=url, domain=f"{HOST}:{federation_port}",
                                    federation=federation, cheap_hashing=True)

    def cleanup(self) -> None:
        for name in self.databases:
            drop_database(name)
        self.databases.clear()


class FederatingSynapse:
    """Synapse with a client listener and a TLS federation listener (self-signed), named
    127.0.0.1:<federation port>, configured as tests/support/synapse.py does but logging
    only warnings."""

    name = "synapse"
    label = "Synapse"

    def __init__(self):
        self.python = REPO_SYNAPSE_PYTHON

    def ensure_installed(self) -> None:
        check = [str(REPO_SYNAPSE_PYTHON), "-c", "import synapse.app.homeserver"]
        if REPO_SYNAPSE_PYTHON.exists() and subprocess.run(check, capture_output=True,
                                                           timeout=120).returncode == 0:
            self.python = REPO_SYNAPSE_PYTHON
            return
        Synapse().ensure_installed()  # bench/.venv-synapse, installed on first use
        self.python = common.SYNAPSE_PYTHON

    def version(self) -> str:
        code = "import synapse; print(synapse.__version__)"
        out = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, timeout=120)
        return out.stdout.strip().split()[0] if out.stdout.strip() else "unknown"

    def engine(self) -> str:
        return "SQLite"

    def database_name(self, role: str) -> str | None:
        return None

    def prepare(self, work: Path, client_port: int, federation_port: int, role: str) -> list[str]:
        cert, key = work / "tls.crt", work / "tls.key"
        made = subprocess.run(
            [str(DROCSID_PYTHON), "-c",
             "import sys; from pathlib import Path; from federation.tls import make_self_signed;"
             " make_self_signed(Path(sys.argv[1]), Path(sys.argv[2]), '127.0.0.1')", str(cert), str(key)],
            cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            raise BenchError(f"making a certificate failed: {made.stderr.strip()[-500:]}")
        log_config = work / "log_config.yaml"
        log_config.write_text(json.dumps({
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain",
                                  "filename": str(work / "synapse.log")}},
            "root": {"level": "WARNING", "handlers": ["file"]},
        }, indent=2))
        config = work / "homeserver.yaml"
        config.write_text(json.dumps({
            "server_name": f"{HOST}:{federation_port}",
            "public_baseurl": f"http://{HOST}:{client_port}/",
            "listeners": [
                {"port": client_port, "bind_addresses": [HOST], "type": "http", "tls": False,
                 "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]},
                {"port": federation_port, "bind_addresses": [HOST], "type": "http", "tls": True,
                 "resources": [{"names": ["federation"], "compress": False}]},
            ],
            "database": {"name": "sqlite3", "args": {"database": str(work / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(work / "media_store"),
            "signing_key_path": str(work / "signing.key"),  # made on first start
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "federation_verify_certificates": False,
            "ip_range_blacklist": SYNAPSE_IP_RANGE_BLACKLIST,
            "ip_range_whitelist": ["127.0.0.1/32"],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "bcrypt_rounds": 4,
            "default_room_version": ROOM_VERSION,
            "url_preview_enabled": False,
            "macaroon_secret_key": secrets.token_hex(32),
            "registration_shared_secret": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
            "federation": {"destination_min_retry_interval": "1s",
                           "destination_max_retry_interval": "5s",
                           "max_short_retry_delay": "1s", "max_long_retry_delay": "5s"},
            **SYNAPSE_RATE_LIMITS,
        }, indent=2))
        return [str(self.python), "-m", "synapse.app.homeserver", "-c", str(config)]

    def cleanup(self) -> None:
        pass


class Node:
    """One running server of a pair: its process, ports, name and scratch directory."""

    def __init__(self, kind, role: str, root: Path):
        self.kind, self.role = kind, role
        self.label = f"{kind.label} {role}"
        self.work = Path(tempfile.mkdtemp(prefix=f"{role}-", dir=root))
        self.client_port, self.federation_port = free_ports(2)
        self.server_name = f"{HOST}:{self.federation_port}"
        self.proc = None
        self.start_s: float | None = None

    def start(self) -> None:
        argv = self.kind.prepare(self.work, self.client_port, self.federation_port, self.role)
        self.proc, self.start_s = timed_start(argv, self.work, self.client_port)

    def pids(self) -> list[int]:
        """The server's processes, and its PostgreSQL backends if it has any."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        database = self.kind.database_name(self.role)
        return [self.proc.pid, *descendants(self.proc.pid), *(pg_backend_pids(database) if database else [])]

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"{self.label} exited with status {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


# --- client requests ------------------------------------------------------------------------

def room_path(room_id: str, tail: str) -> str:
    return f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/{tail}"


def register(port: int, username: str) -> JsonClient:
    client = JsonClient(port)
    body = {"username": username, "password": PASSWORD, "auth": {"type": "m.login.dummy"}}
    status, raw = client.post(REGISTER_PATH, body)
    if status == 401:  # a server that wants the user-interactive session first
        session = json.loads(raw).get("session")
        if session:
            body["auth"]["session"] = session
            status, raw = client.post(REGISTER_PATH, body)
    client.token = expect_json(status, raw, f"register {username}", "access_token")["access_token"]
    return client


def create_public_room(client: JsonClient, name: str) -> str:
    status, raw = client.post(CREATE_ROOM_PATH, {"preset": "public_chat", "name": name,
                                                 "room_version": ROOM_VERSION})
    return expect_json(status, raw, "createRoom", "room_id")["room_id"]


def join_path(room_id: str, via: str | None = None) -> str:
    path = f"/_matrix/client/v3/join/{quote(room_id, safe='')}"
    return path + (f"?via={quote(via, safe='')}" if via else "")


def send_text(client: JsonClient, room_id: str, text: str) -> str:
    status, raw = client.put(room_path(room_id, f"send/m.room.message/{secrets.token_hex(8)}"),
                             {"msgtype": "m.text", "body": text})
    return expect_json(status, raw, "send", "event_id")["event_id"]


def joined_member_count(client: JsonClient, room_id: str) -> int:
    status, raw = client.request("GET", room_path(room_id, "joined_members"))
    return len(expect_json(status, raw, "joined_members", "joined")["joined"])


def membership(client: JsonClient, room_id: str, user_id: str) -> str | None:
    status, raw = client.request("GET", room_path(room_id, f"state/m.room.member/{quote(user_id, safe='')}"))
    if status != 200:
        return None
    return json.loads(raw).get("membership")


def whoami(client: JsonClient) -> str:
    status, raw = client.request("GET", "/_matrix/client/v3/account/whoami")
    return expect_json(status, raw, "whoami", "user_id")["user_id"]


# --- populate: M members on the host --------------------------------------------------------

def deciles(samples: list[float]) -> list[list[float]]:
    """The samples in ten consecutive slices (none if there are fewer than ten)."""
    if len(samples) < 10:
        return []
    return [samples[i * len(samples) // 10:(i + 1) * len(samples) // 10] for i in range(10)]


def populate(host: Node, room_id: str, members: int, threads: int) -> dict:
    """Registers members-1 users on the host and joins each to the room, ``threads`` at a
    time; prints progress. Returns wall time and per-request latencies."""
    total = members - 1
    todo = list(range(1, total + 1))
    lock = threading.Lock()
    register_s: list[float] = []
    join_s: list[float] = []
    errors: list[str] = []
    done = [0]
    started = time.monotonic()
    step = max(1, total // 10)
    deadline = started + PHASE_BUDGET

    def worker() -> None:
        while True:
            with lock:
                if not todo or errors or time.monotonic() > deadline:
                    return
                index = todo.pop(0)
            try:
                t0 = time.perf_counter()
                client = register(host.client_port, f"member{index}")
                t1 = time.perf_counter()
                status, raw = client.post(join_path(room_id), {})
                t2 = time.perf_counter()
                expect_json(status, raw, f"join member{index}", "room_id")
                client.close()
            except (BenchError, OSError, http.client.HTTPException, ValueError) as error:
                with lock:
                    errors.append(f"member{index}: {error}")
                return
            with lock:
                register_s.append(t1 - t0)
                join_s.append(t2 - t1)
                done[0] += 1
                if done[0] % step == 0 or done[0] == total:
                    elapsed = time.monotonic() - started
                    eta = elapsed / done[0] * (total - done[0])
                    print(f"[{host.label}] populating: {done[0] + 1}/{members} members"
                          f" ({elapsed:.1f} s, ~{eta:.0f} s to go)", flush=True)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.monotonic() - started
    if errors:
        raise BenchError(f"populating failed: {errors[0]}")
    if done[0] != total:
        raise BenchError(f"populating stopped after {PHASE_BUDGET:.0f} s at {done[0] + 1} members")
    return {"members": members, "threads": threads, "wall_s": wall,
            "register_p50_ms": percentile(register_s, 50) * 1000,
            "join_p50_ms": percentile(join_s, 50) * 1000,
            "join_p95_ms": percentile(join_s, 95) * 1000,
            "join_mean_ms": statistics.fmean(join_s) * 1000,
            # In order: the local join latency as the room grew.
            "join_ms_by_decile": [statistics.fmean(decile) * 1000 for decile in deciles(join_s)]}


# --- remote join ----------------------------------------------------------------------------

def remote_join(kind, root: Path, host: Node, host_client: JsonClient, room_id: str, members: int,
                index: int, keep: bool) -> tuple[dict, Node | None, JsonClient | None]:
    """Starts a fresh joiner server, times one user's join of the host's room and the wait
    until the joiner lists every member. Returns the sample, the joiner and, with ``keep``,
    its user's client; without, the user has left the room (the joiner keeps running)."""
    joiner = Node(kind, f"joiner{index}", root)
    client = None
    try:
        joiner.start()
        client = register(joiner.client_port, f"joiner{index}")
        user_id = whoami(client)
        # A connection that waits as long as the join may take.
        client.conn = http.client.HTTPConnection(HOST, joiner.client_port, timeout=JOIN_TIMEOUT)
        client.conn.connect()
        before = cpu_snapshot(host.proc.pid, lambda: host.pids() + joiner.pids())
        started = time.perf_counter()
        status, raw = client.post(join_path(room_id, host.server_name), {})
        join_s = time.perf_counter() - started
        expect_json(status, raw, f"remote join of {user_id}", "room_id")
        client.close()  # the next requests reconnect with the ordinary timeout
        # The joiner's own view: every member listed (Synapse answers this only once its
        # partial-state room has its full state; it may block meanwhile).
        count, polls, deadline = 0, 0, started + FULL_STATE_TIMEOUT
        while True:
            try:
                count = joined_member_count(client, room_id)
            except (OSError, http.client.HTTPException):
                count = -1  # a timed-out blocking request: ask again
            polls += 1
            if count >= members + 1:
                break
            if time.perf_counter() > deadline:
                raise BenchError(f"{joiner.label} listed {count} members, not {members + 1},"
                                 f" {FULL_STATE_TIMEOUT:.0f} s after the join")
            time.sleep(MEMBER_POLL)
        full_s = time.perf_counter() - started
        other = other_cpu_cores(before, cpu_snapshot(host.proc.pid, lambda: host.pids() + joiner.pids()))
        sample = {"join_s": join_s, "full_member_list_s": full_s, "member_polls": polls,
                  "joiner_start_s": joiner.start_s, "other_cpu_cores": other,
                  "joiner_memory": memory_mib(joiner.proc.pid)}
        print(f"[{kind.label}] remote join {index + 1}: {join_s:.3f} s to 200,"
              f" {full_s:.3f} s to the full member list", flush=True)
        if keep:
            return sample, joiner, client
        # Leave, so that the host stops sending this joiner the room's events.
        status, raw = client.post(room_path(room_id, "leave"), {})
        if status != 200:
            print(f"warning: {user_id} could not leave: HTTP {status}", file=sys.stderr)
        else:
            deadline = time.monotonic() + LEAVE_TIMEOUT
            while membership(host_client, room_id, user_id) != "leave":
                if time.monotonic() > deadline:
                    print(f"warning: the host did not see {user_id} leave within {LEAVE_TIMEOUT:.0f} s",
                          file=sys.stderr)
                    break
                time.sleep(0.05)
        client.close()
        # Left, but kept running until the end of the pair: later joiners check the
        # signature of its leave event and fetch its signing key from it.
        return sample, joiner, None
    except BaseException:
        if client is not None:
            client.close()
        print(f"[{joiner.label}] logs kept in {keep_logs(f'{kind.name}-{joiner.role}', joiner.work)}",
              file=sys.stderr)
        joiner.stop()
        raise


# --- delivery: send on one server, long-poll /sync on the other ------------------------------

def initial_since(client: JsonClient) -> str:
    # A filter keeps this first sync small: only the sync token is wanted.
    flt = quote(json.dumps({"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True}}}))
    status, raw = client.request("GET", f"{SYNC_PATH}?timeout=0&filter={flt}")
    return expect_json(status, raw, "initial sync", "next_batch")["next_batch"]


def run_delivery(sender: JsonClient, receiver: JsonClient, room_id: str, since: str, n: int,
                 prefix: str) -> tuple[dict, str]:
    samples, sends, polls, errors, first_error = [], [], [], 0, None
    deadline = time.monotonic() + PHASE_BUDGET
    for index in range(n):
        if time.monotonic() > deadline:
            errors += n - index
            first_error = first_error or f"phase stopped after {PHASE_BUDGET:.0f} s"
            break
        marker = f"federation-bench {prefix} {index} {secrets.token_hex(6)}"
        poller = LongPoller(receiver.port, receiver.token, since, marker, timeout=SAMPLE_TIMEOUT,
                            long_poll_ms=LONG_POLL_MS, max_polls=MAX_POLLS)
        thread = threading.Thread(target=poller.run, daemon=True, name=f"sync-{index}")
        thread.start()
        poller.written.wait(SAMPLE_TIMEOUT)
        time.sleep(POLL_SETTLE)
        started = time.perf_counter()
        try:
            send_text(sender, room_id, marker)
            send_s = time.perf_counter() - started
        except (BenchError, OSError, http.client.HTTPException) as error:
            poller.error = poller.error or f"send: {error}"
        thread.join(SAMPLE_TIMEOUT + 5)
        if thread.is_alive():
            raise BenchError(f"{prefix} sample {index}: no sync answer within {SAMPLE_TIMEOUT:.0f} s")
        since = poller.since
        if poller.found_at is None or poller.error:
            errors += 1
            first_error = first_error or f"sample {index}: {poller.error}"
            continue
        samples.append(poller.found_at - started)
        sends.append(send_s)
        polls.append(poller.polls)
    out = {"requested": n, "ok": len(samples), "errors": errors, "first_error": first_error}
    if samples:
        out.update(p50_ms=percentile(samples, 50) * 1000, p95_ms=percentile(samples, 95) * 1000,
                   mean_ms=statistics.fmean(samples) * 1000, max_ms=max(samples) * 1000,
                   # The sender's own request, start to 200, included in the latency.
                   send_p50_ms=percentile(sends, 50) * 1000,
                   mean_polls=statistics.fmean(polls), samples_ms=[s * 1000 for s in samples])
    return out, since


# --- one pair, start to finish ----------------------------------------------------------------

def bench_pair(kind, args: argparse.Namespace) -> dict:
    kind.ensure_installed()
    result: dict = {"version": kind.version(), "engine": kind.engine()}
    root = Path(tempfile.mkdtemp(prefix=f"federation-bench-{kind.name}-"))
    host = Node(kind, "host", root)
    clients: list[JsonClient] = []
    joiner: Node | None = None
    former: list[Node] = []  # joiners whose user left; stopped at the end
    try:
        print(f"[{kind.label}] starting the host ...", flush=True)
        host.start()
        result["host_start_s"] = host.start_s
        wait_idle(host.pids)
        owner = register(host.client_port, "owner")
        clients.append(owner)
        owner_id = whoami(owner)
        room_id = create_public_room(owner, "federation bench")
        print(f"[{kind.label}] populating {room_id} with {args.members} members"
              f" ({args.threads} client threads) ...", flush=True)
        before = cpu_snapshot(host.proc.pid, host.pids)
        result["populate"] = populate(host, room_id, args.members, args.threads)
        after = cpu_snapshot(host.proc.pid, host.pids)
        result["populate"]["other_cpu_cores"] = other_cpu_cores(before, after)
        host.check_alive()
        count = joined_member_count(owner, room_id)
        if count != args.members:
            raise BenchError(f"the host lists {count} members, not {args.members}")
        wait_idle(host.pids)
        result["host_memory_populated"] = memory_mib(host.proc.pid)
        print(f"[{kind.label}] populated in {result['populate']['wall_s']:.1f} s;"
              f" {args.joins} remote joins, each from a fresh server ...", flush=True)

        samples = []
        for index in range(args.joins):
            last = index == args.joins - 1
            sample, kept, joiner_client = remote_join(kind, root, host, owner, room_id, args.members,
                                                      index, keep=last)
            samples.append(sample)
            if last:
                joiner = kept
                clients.append(joiner_client)
            else:
                former.append(kept)
            host.check_alive()
            wait_idle(lambda: host.pids() + (joiner.pids() if joiner else []))
        joins = [s["join_s"] for s in samples]
        fulls = [s["full_member_list_s"] for s in samples]
        result["remote_join"] = {"samples": samples, "join_median_s": statistics.median(joins),
                                 "join_min_s": min(joins), "join_max_s": max(joins),
                                 "full_member_list_median_s": statistics.median(fulls)}

        # Delivery, both ways, between the owner on the host and the last joiner's user.
        remote_user = joiner_client
        pids = lambda: host.pids() + joiner.pids()  # noqa: E731
        for direction, sender, receiver in (("host_to_joiner", owner, remote_user),
                                            ("joiner_to_host", remote_user, owner)):
            since = initial_since(receiver)
            print(f"[{kind.label}] delivery {direction.replace('_', ' ')}:"
                  f" {WARMUP_DELIVERIES} warm-ups, then {args.n} ...", flush=True)
            warm, since = run_delivery(sender, receiver, room_id, since, WARMUP_DELIVERIES,
                                       f"{direction}-warmup")
            if warm["errors"]:
                raise BenchError(f"{direction} warm-up failed: {warm['first_error']}")
            wait_idle(pids)
            before = cpu_snapshot(host.proc.pid, pids)
            result[direction], _ = run_delivery(sender, receiver, room_id, since, args.n, direction)
            result[direction]["other_cpu_cores"] = other_cpu_cores(before, cpu_snapshot(host.proc.pid, pids))
            if result[direction]["ok"]:
                print(f"[{kind.label}] delivery {direction.replace('_', ' ')}:"
                      f" p50 {result[direction]['p50_ms']:.1f} ms, p95 {result[direction]['p95_ms']:.1f} ms",
                      flush=True)
        host.check_alive()
        joiner.check_alive()
        result["host_memory_end"] = memory_mib(host.proc.pid)
        result["joiner_memory_end"] = memory_mib(joiner.proc.pid)
        result["owner"] = owner_id
        if pair_failures(result):
            result["logs"] = keep_logs(f"{kind.name}-host", host.work)
        return result
    except BaseException:
        kept = keep_logs(f"{kind.name}-host", host.work)
        print(f"[{kind.label}] host logs kept in {kept}", file=sys.stderr)
        if joiner is not None:
            keep_logs(f"{kind.name}-{joiner.role}", joiner.work)
        raise
    finally:
        for client in clients:
            client.close()
        for node in [joiner, *former]:
            if node is not None:
                node.stop()
        host.stop()
        stop_all()
        kind.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def pair_failures(result: dict) -> int:
    return (sum(dig(result, phase, "errors") or 0 for phase in ("host_to_joiner", "joiner_to_host"))
            + (1 if "error" in result else 0))


# --- report -----------------------------------------------------------------------------------

def metrics(args) -> list[tuple[str, tuple[str, ...], str]]:
    m, k = args.members, args.joins
    return [
        (f"remote join of a {m}-member room, median of {k}", ("remote_join", "join_median_s"), "s"),
        ("  same, until the joiner lists every member", ("remote_join", "full_member_list_median_s"), "s"),
        (f"delivery host -> joiner p50 (N={args.n})", ("host_to_joiner", "p50_ms"), "ms"),
        ("delivery host -> joiner p95", ("host_to_joiner", "p95_ms"), "ms"),
        ("delivery host -> joiner mean", ("host_to_joiner", "mean_ms"), "ms"),
        ("  of which the host's send request p50", ("host_to_joiner", "send_p50_ms"), "ms"),
        (f"delivery joiner -> host p50 (N={args.n})", ("joiner_to_host", "p50_ms"), "ms"),
        ("delivery joiner -> host p95", ("joiner_to_host", "p95_ms"), "ms"),
        ("delivery joiner -> host mean", ("joiner_to_host", "mean_ms"), "ms"),
        ("  of which the joiner's send request p50", ("joiner_to_host", "send_p50_ms"), "ms"),
        (f"populate host to {m} members (wall)", ("populate", "wall_s"), "s"),
        ("  local join p50 while populating", ("populate", "join_p50_ms"), "ms"),
        ("  local join p95 while populating", ("populate", "join_p95_ms"), "ms"),
        ("host RSS after populating", ("host_memory_populated", "rss_mib"), "MiB"),
        ("joiner RSS at the end", ("joiner_memory_end", "rss_mib"), "MiB"),
    ]


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value}"


def ratios(results: dict, args) -> dict:
    out = {}
    if "drocsid" in results and "synapse" in results:
        for label, path, _ in metrics(args):
            a, b = dig(results["drocsid"], *path), dig(results["synapse"], *path)
            out[label.strip()] = a / b if a is not None and b else None
    return out


def render_table(results: dict, labels: dict[str, str], args, meta: dict) -> str:
    keys = list(results)
    headers = {k: f"{labels[k]} {dig(results, k, 'version') or ''} {dig(results, k, 'engine') or ''}".strip()
               for k in keys}
    rat = ratios(results, args)
    rows = [["metric"] + [headers[k] for k in keys] + (["Drocsid / Synapse"] if rat else [])]
    for label, path, unit in metrics(args):
        row = [label] + [_fmt(dig(results, k, *path), unit) for k in keys]
        if rat:
            value = rat[label.strip()]
            row.append("-" if value is None else f"{value:.2f}x")
        rows.append(row)
    lines = [f"federation benchmark: two servers of each kind on 127.0.0.1 (TLS), room version"
             f" {ROOM_VERSION}, {args.members} members, {args.joins} remote joins, N={args.n};"
             f" {meta['cpus']} CPUs, {meta['platform']}; load average {meta['loadavg_1m']:.2f} at start"]
    lines.extend(render_rows(rows))
    for key in keys:
        result = results[key]
        if result.get("error"):
            lines.append(f"! {headers[key]} failed: {result['error'].splitlines()[0]}")
        for phase in ("host_to_joiner", "joiner_to_host"):
            if dig(result, phase, "errors"):
                lines.append(f"! {headers[key]} {phase}: {result[phase]['errors']} failed; first: "
                             f"{result[phase]['first_error']}")
        joins = dig(result, "remote_join", "samples")
        if joins:
            lines.append(f"{headers[key]} remote joins: "
                         + ", ".join(f"{s['join_s']:.3f} s ({s['full_member_list_s']:.3f} s to every member)"
                                     for s in joins))
        if result.get("logs"):
            lines.append(f"! {headers[key]} server logs kept in {result['logs']}")
    for phase, what in (("host_to_joiner", "host -> joiner deliveries"),
                        ("joiner_to_host", "joiner -> host deliveries"),
                        ("populate", "populating")):
        lines.extend(noise_lines({labels[k]: dig(results, k, phase, "other_cpu_cores") for k in keys},
                                 meta["cpus"], what))
    if rat:
        lines.append("ratios are Drocsid / Synapse: lower is better for every row (< 1: Drocsid is faster"
                     " or smaller)")
    if "synapse" in results:
        lines.append("Synapse joins with partial state (faster joins): its 200 comes before it has the"
                     " member list; Drocsid's join returns with the full state")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000,
                        help="members of the host's room, its creator included (default 1000)")
    parser.add_argument("--joins", type=int, default=3,
                        help="remote joins timed, each from a fresh joiner server (default 3)")
    parser.add_argument("--n", type=int, default=200, help="measured deliveries each way (default 200)")
    parser.add_argument("--threads", type=int, default=4,
                        help="client threads populating the room (default 4)")
    parser.add_argument("--postgres", action="store_true",
                        help="Drocsid host and joiners on PostgreSQL at 127.0.0.1:5432"
                             " (Synapse stays on SQLite)")
    parser.add_argument("--skip-synapse", action="store_true", help="the Drocsid pair only")
    parser.add_argument("--skip-drocsid", action="store_true", help="the Synapse pair only")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not 2 <= args.members <= 100_000:
        parser.error("--members must be between 2 and 100000")
    if not 1 <= args.joins <= 50:
        parser.error("--joins must be between 1 and 50")
    if not 1 <= args.n <= 100_000:
        parser.error("--n must be between 1 and 100000")
    if not 1 <= args.threads <= 64:
        parser.error("--threads must be between 1 and 64")
    if args.skip_synapse and args.skip_drocsid:
        parser.error("nothing to run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    # Synapse runs with its data directory as cwd; a PYTHONPATH pointing at this repository
    # would let its packages (federation, storage, ...) shadow imports.
    for variable in ("PYTHONPATH", "PYTHONHOME"):
        os.environ.pop(variable, None)
    meta = {"members": args.members, "joins": args.joins, "n": args.n, "threads": args.threads,
            "warmup_deliveries": WARMUP_DELIVERIES, "room_version": ROOM_VERSION,
            "long_poll_ms": LONG_POLL_MS, "drocsid_postgres": args.postgres,
            "loadavg_1m": os.getloadavg()[0], **machine_meta()}
    kinds = (([] if args.skip_drocsid else [FederatingDrocsid(args.postgres)])
             + ([] if args.skip_synapse else [FederatingSynapse()]))
    results: dict = {}
    failed = False
    started = time.monotonic()
    try:
        for kind in kinds:
            try:
                results[kind.name] = bench_pair(kind, args)
            except (BenchError, subprocess.SubprocessError, OSError, http.client.HTTPException) as error:
                print(f"federation_bench: {kind.label}: {error}", file=sys.stderr)
                results[kind.name] = {"error": str(error)}
            failed = failed or pair_failures(results[kind.name]) > 0
    finally:
        stop_all()
        for kind in kinds:
            kind.cleanup()
    meta["wall_s"] = time.monotonic() - started

    labels = {kind.name: kind.label for kind in kinds}
    print()
    print(render_table(results, labels, args, meta))
    print(f"whole run: {meta['wall_s']:.0f} s")
    if args.json:
        report = {"meta": meta, "results": results, "ratios_drocsid_over_synapse": ratios(results, args)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
