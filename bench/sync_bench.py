#!/usr/bin/env python3
"""Sync benchmark: message delivery through /sync and initial sync, Drocsid against Synapse.

For each server (both on SQLite): start it on a fresh database, wait until it is idle and
read its memory, then measure

  delivery      user B keeps ``GET /_matrix/client/v3/sync?since=...&timeout=30000``
                open in a thread; user A sends a message into a room they share. The
                latency is from the start of A's send request to the moment B's sync
                answer containing that message has been read (if a sync answer comes
                back without it, e.g. with presence, B polls again at once and the
                latency includes that). N samples one after another, after 10 warm-ups;
                nearest-rank p50/p95.
  initial sync  user D is in 50 rooms, each created by C (public, so D joins without an
                invite) and holding 20 messages, sent alternately by C and D. Each of 5
                measurements logs D in on a new device (not timed), then times
                ``GET /sync`` without ``since``; the median is reported, plus the size of
                the answer's body. A new device each time matters: Synapse caches sync
                answers per device for a while, so a repeated identical request would
                measure that cache.
  memory        RSS/PSS when idle after start, and again after both workloads.

Every delivery must arrive and every initial sync must answer 200 with the 50 rooms;
otherwise the run still prints its table and then exits with status 1.

Standard library only, so it runs with any Python 3.11. Synapse is installed into
bench/.venv-synapse on first use. Rate limits are off on both servers (common.py's
configurations). Only 127.0.0.1 is ever contacted.

    python3 bench/sync_bench.py [--n 200] [--skip-synapse] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    SYNC_PATH, LongPoller, sync_path,
    LOGIN_PATH, REGISTER_PATH, REQUEST_TIMEOUT, BenchError, Drocsid, JsonClient, Synapse,
    cpu_snapshot, descendants, dig, expect_json, free_port, install_sigterm_handler, keep_logs,
    machine_meta, memory_mib, noise_lines, other_cpu_cores, percentile, render_rows, stop,
    stop_all, timed_start, wait_idle,
)

CREATE_ROOM_PATH = "/_matrix/client/v3/createRoom"
PASSWORD = "bench-Passw0rd-sync"
ROOM_VERSION = "11"        # the same for both servers (Drocsid's default; Synapse's is 10)
LONG_POLL_MS = 30000       # the sync timeout B's long poll asks for
WARMUP_DELIVERIES = 10
POLL_SETTLE = 0.02         # after B's sync request is written, before A sends: let it park
MAX_POLLS = 20             # sync answers B may read per sample before giving up on it
SAMPLE_TIMEOUT = 60.0      # one delivery, at most
INITIAL_ROOMS = 50
MESSAGES_PER_ROOM = 20
INITIAL_RUNS = 5
PHASE_BUDGET = 600.0       # wall-clock cap on the delivery phase and on the room setup
MAX_N = 100_000


# --- requests ---------------------------------------------------------------------------

def room_path(room_id: str, tail: str) -> str:
    return f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/{tail}"


def register(port: int, username: str) -> JsonClient:
    client = JsonClient(port)
    status, raw = client.post(REGISTER_PATH, {"username": username, "password": PASSWORD,
                                              "auth": {"type": "m.login.dummy"}})
    client.token = expect_json(status, raw, f"register {username}", "access_token")["access_token"]
    return client


def login(port: int, username: str) -> JsonClient:
    """A client for a new device of the user."""
    client = JsonClient(port)
    status, raw = client.post(LOGIN_PATH, {"type": "m.login.password", "password": PASSWORD,
                                           "identifier": {"type": "m.id.user", "user": username}})
    client.token = expect_json(status, raw, f"login {username}", "access_token")["access_token"]
    return client


def create_public_room(client: JsonClient, name: str) -> str:
    status, raw = client.post(CREATE_ROOM_PATH, {"preset": "public_chat", "name": name,
                                                 "room_version": ROOM_VERSION})
    return expect_json(status, raw, "createRoom", "room_id")["room_id"]


def join(client: JsonClient, room_id: str) -> None:
    status, raw = client.post(room_path(room_id, "join"), {})
    expect_json(status, raw, "join", "room_id")


def send_text(client: JsonClient, room_id: str, text: str) -> str:
    status, raw = client.put(room_path(room_id, f"send/m.room.message/{secrets.token_hex(8)}"),
                             {"msgtype": "m.text", "body": text})
    return expect_json(status, raw, "send", "event_id")["event_id"]


def sync_once(client: JsonClient, since: str | None, timeout_ms: int) -> tuple[bytes, dict]:
    status, raw = client.request("GET", sync_path(since, timeout_ms))
    return raw, expect_json(status, raw, "sync", "next_batch")


# --- delivery: send to sync ---------------------------------------------------------------

def run_delivery(port: int, sender: JsonClient, receiver_token: str, room_id: str, since: str,
                 n: int, prefix: str) -> tuple[dict, str]:
    """``n`` sequential samples; returns their summary and B's latest sync token."""
    samples, polls, errors, first_error = [], [], 0, None
    deadline = time.monotonic() + PHASE_BUDGET
    for index in range(n):
        if time.monotonic() > deadline:
            errors += n - index
            first_error = first_error or f"phase stopped after {PHASE_BUDGET:.0f} s"
            break
        marker = f"sync-bench {prefix} {index} {secrets.token_hex(6)}"
        poller = LongPoller(port, receiver_token, since, marker, timeout=REQUEST_TIMEOUT,
                            long_poll_ms=LONG_POLL_MS, max_polls=MAX_POLLS)
        thread = threading.Thread(target=poller.run, daemon=True, name=f"sync-{index}")
        thread.start()
        poller.written.wait(SAMPLE_TIMEOUT)
        time.sleep(POLL_SETTLE)  # the request is written; give the server a moment to park it
        started = time.perf_counter()
        try:
            send_text(sender, room_id, marker)
        except (BenchError, OSError, http.client.HTTPException) as error:
            poller.error = poller.error or f"send: {error}"
        thread.join(SAMPLE_TIMEOUT)
        if thread.is_alive():
            # The poller would still use B's token; nothing sensible can follow on.
            raise BenchError(f"sample {index}: no sync answer within {SAMPLE_TIMEOUT:.0f} s")
        since = poller.since
        if poller.found_at is None or poller.error:
            errors += 1
            first_error = first_error or f"sample {index}: {poller.error}"
            continue
        samples.append(poller.found_at - started)
        polls.append(poller.polls)
    out = {"requested": n, "ok": len(samples), "errors": errors, "first_error": first_error}
    if samples:
        out.update(p50_ms=percentile(samples, 50) * 1000, p95_ms=percentile(samples, 95) * 1000,
                   mean_ms=statistics.fmean(samples) * 1000, max_ms=max(samples) * 1000,
                   # More than 1: sync answers that came back before the message did.
                   mean_polls=statistics.fmean(polls))
    return out, since


# --- initial sync -------------------------------------------------------------------------

def build_rooms(creator: JsonClient, member: JsonClient) -> None:
    """INITIAL_ROOMS public rooms with both users and MESSAGES_PER_ROOM messages each."""
    deadline = time.monotonic() + PHASE_BUDGET
    for number in range(INITIAL_ROOMS):
        if time.monotonic() > deadline:
            raise BenchError(f"building the rooms took over {PHASE_BUDGET:.0f} s")
        room_id = create_public_room(creator, f"initial sync room {number}")
        join(member, room_id)
        for message in range(MESSAGES_PER_ROOM):
            send_text(creator if message % 2 == 0 else member, room_id,
                      f"room {number} message {message}: some ordinary chat text")


def run_initial_syncs(port: int, username: str) -> dict:
    times, sizes, rooms, events, errors, first_error = [], [], [], [], 0, None
    for run in range(INITIAL_RUNS):
        client = login(port, username)  # a new device: not served from a cache of an earlier run
        try:
            client.connect()
            started = time.perf_counter()
            status, raw = client.request("GET", SYNC_PATH)
            elapsed = time.perf_counter() - started
            body = expect_json(status, raw, "initial sync", "next_batch")
        except (BenchError, OSError, http.client.HTTPException) as error:
            errors += 1
            first_error = first_error or f"run {run}: {error}"
            continue
        finally:
            client.close()
        joined = dig(body, "rooms", "join") or {}
        if len(joined) != INITIAL_ROOMS:
            errors += 1
            first_error = first_error or f"run {run}: {len(joined)} joined rooms, not {INITIAL_ROOMS}"
        times.append(elapsed)
        sizes.append(len(raw))
        rooms.append(len(joined))
        events.append(sum(len(dig(room, "timeline", "events") or []) for room in joined.values()))
    out = {"runs": INITIAL_RUNS, "errors": errors, "first_error": first_error,
           "times_ms": [t * 1000 for t in times]}
    if times:
        out.update(median_ms=statistics.median(times) * 1000, bytes=statistics.median(sizes),
                   joined_rooms=rooms[-1], timeline_events=events[-1])
    return out


# --- one server, start to finish ----------------------------------------------------------

def settle(proc) -> float:
    """Waits (up to 30 s) until the server's background work is done."""
    return wait_idle(lambda: [proc.pid, *descendants(proc.pid)])


def bench_server(server, args: argparse.Namespace) -> dict:
    server.ensure_installed()
    result: dict = {"version": server.version()}
    work = Path(tempfile.mkdtemp(prefix=f"sync-bench-{server.name}-"))
    clients: list[JsonClient] = []
    try:
        port = free_port()
        argv = server.prepare(work, port)
        print(f"[{server.label}] starting ...", flush=True)
        proc, result["start_s"] = timed_start(argv, work, port)
        settle(proc)
        result["memory_idle"] = memory_mib(proc.pid)

        # Delivery: A sends into a room B has joined; B long-polls.
        alice, bob = register(port, "alice"), register(port, "bob")
        clients += [alice, bob]
        room_id = create_public_room(alice, "sync bench")
        join(bob, room_id)
        _, first = sync_once(bob, None, 0)  # B's initial sync gives the first token
        print(f"[{server.label}] {WARMUP_DELIVERIES} warm-up deliveries ...", flush=True)
        warm, since = run_delivery(port, alice, bob.token, room_id, first["next_batch"],
                                   WARMUP_DELIVERIES, "warmup")
        if warm["errors"]:
            raise BenchError(f"warm-up failed: {warm['first_error']}")
        settle(proc)
        print(f"[{server.label}] {args.n} deliveries ...", flush=True)
        before = cpu_snapshot(proc.pid)
        result["delivery"], _ = run_delivery(port, alice, bob.token, room_id, since, args.n, "measured")
        result["delivery"]["other_cpu_cores"] = other_cpu_cores(before, cpu_snapshot(proc.pid))

        # Initial sync: D in 50 rooms of 20 messages each.
        print(f"[{server.label}] building {INITIAL_ROOMS} rooms x {MESSAGES_PER_ROOM} messages ...",
              flush=True)
        carol, dave = register(port, "carol"), register(port, "dave")
        clients += [carol, dave]
        build_rooms(carol, dave)
        settle(proc)
        print(f"[{server.label}] {INITIAL_RUNS} initial syncs ...", flush=True)
        before = cpu_snapshot(proc.pid)
        result["initial_sync"] = run_initial_syncs(port, "dave")
        result["initial_sync"]["other_cpu_cores"] = other_cpu_cores(before, cpu_snapshot(proc.pid))

        settle(proc)
        result["memory_loaded"] = memory_mib(proc.pid)
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode}")
        stop(proc)
        if server_failures(result):
            result["logs"] = keep_logs(server.name, work)
        return result
    except BaseException:
        print(f"[{server.label}] server logs kept in {keep_logs(server.name, work)}", file=sys.stderr)
        raise
    finally:
        for client in clients:
            client.close()
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


def server_failures(result: dict) -> int:
    return (sum(dig(result, phase, "errors") or 0 for phase in ("delivery", "initial_sync"))
            + (1 if "error" in result else 0))


# --- report -------------------------------------------------------------------------------

# (row label, path into a server's result, format)
def metrics(n: int) -> list[tuple[str, tuple[str, ...], str]]:
    return [
        (f"send-to-sync delivery p50 (N={n})", ("delivery", "p50_ms"), "ms"),
        (f"send-to-sync delivery p95 (N={n})", ("delivery", "p95_ms"), "ms"),
        (f"initial sync, {INITIAL_ROOMS} rooms (median of {INITIAL_RUNS})",
         ("initial_sync", "median_ms"), "ms"),
        ("initial sync response size", ("initial_sync", "bytes"), "KiB"),
        ("initial sync timeline events", ("initial_sync", "timeline_events"), "count"),
        ("idle RSS", ("memory_idle", "rss_mib"), "MiB"),
        ("idle PSS", ("memory_idle", "pss_mib"), "MiB"),
        ("loaded RSS", ("memory_loaded", "rss_mib"), "MiB"),
        ("loaded PSS", ("memory_loaded", "pss_mib"), "MiB"),
    ]


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "KiB":
        return f"{value / 1024:.1f} KiB"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.0f}"


def ratios(results: dict, n: int) -> dict:
    out = {}
    if "drocsid" in results and "synapse" in results:
        for label, path, _ in metrics(n):
            a, b = dig(results["drocsid"], *path), dig(results["synapse"], *path)
            out[label] = a / b if a is not None and b else None
    return out


def render_table(results: dict, labels: dict[str, str], meta: dict) -> str:
    keys = list(results)
    headers = {k: f"{labels[k]} {dig(results, k, 'version') or ''} SQLite" for k in keys}
    rat = ratios(results, meta["n"])
    rows = [["metric"] + [headers[k] for k in keys] + (["Drocsid / Synapse"] if rat else [])]
    for label, path, unit in metrics(meta["n"]):
        row = [label] + [_fmt(dig(results, k, *path), unit) for k in keys]
        if rat:
            row.append("-" if rat[label] is None else f"{rat[label]:.2f}x")
        rows.append(row)
    lines = [f"sync benchmark: room version {ROOM_VERSION}, {WARMUP_DELIVERIES} warm-up deliveries,"
             f" long-poll timeout {LONG_POLL_MS} ms; {meta['cpus']} CPUs, {meta['platform']};"
             f" load average {meta['loadavg_1m']:.2f} at start"]
    lines.extend(render_rows(rows))
    for key in keys:
        result = results[key]
        if result.get("error"):
            lines.append(f"! {headers[key]} failed: {result['error'].splitlines()[0]}")
        for phase in ("delivery", "initial_sync"):
            if dig(result, phase, "errors"):
                lines.append(f"! {headers[key]} {phase}: {result[phase]['errors']} failed; first: "
                             f"{result[phase]['first_error']}")
        polls = dig(result, "delivery", "mean_polls")
        if polls is not None and polls > 1.01:
            lines.append(f"note: {headers[key]}: {polls:.2f} sync answers per delivery on average"
                         " (answers without the message came first)")
        if result.get("logs"):
            lines.append(f"! {headers[key]} server logs kept in {result['logs']}")
    for phase, what in (("delivery", "the deliveries"), ("initial_sync", "the initial syncs")):
        lines.extend(noise_lines({labels[k]: dig(results, k, phase, "other_cpu_cores") for k in keys},
                                 meta["cpus"], what))
    lines.append("response sizes and event counts follow each server's default timeline limit"
                 " for initial sync")
    if rat:
        lines.append("ratios are Drocsid / Synapse: lower is better for every row"
                     " (< 1: Drocsid is faster, smaller or uses less memory)")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="measured deliveries per server (default 200)")
    parser.add_argument("--skip-synapse", action="store_true", help="benchmark Drocsid only")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        parser.error(f"--n must be between 1 and {MAX_N}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    meta = {"n": args.n, "warmup_deliveries": WARMUP_DELIVERIES, "room_version": ROOM_VERSION,
            "long_poll_ms": LONG_POLL_MS, "initial_rooms": INITIAL_ROOMS,
            "messages_per_room": MESSAGES_PER_ROOM, "initial_runs": INITIAL_RUNS,
            "loadavg_1m": os.getloadavg()[0], **machine_meta()}
    servers = [Drocsid()] + ([] if args.skip_synapse else [Synapse()])
    results: dict = {}
    failed = False
    try:
        for server in servers:
            # A failure of one server is reported and the other is still measured.
            try:
                results[server.name] = bench_server(server, args)
            except (BenchError, subprocess.SubprocessError, OSError, http.client.HTTPException) as error:
                print(f"sync_bench: {server.label}: {error}", file=sys.stderr)
                results[server.name] = {"error": str(error)}
            failed = failed or server_failures(results[server.name]) > 0
    finally:
        stop_all()

    labels = {server.name: server.label for server in servers}
    print()
    print(render_table(results, labels, meta))
    if args.json:
        report = {"meta": meta, "results": results, "ratios_drocsid_over_synapse": ratios(results, args.n)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
