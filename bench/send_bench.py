#!/usr/bin/env python3
"""Send benchmark: messages into one room, Drocsid (SQLite, PostgreSQL) against Synapse.

For each server and database engine: start it on a fresh database, register one user,
create one room, send 50 unmeasured warm-up messages, then measure
``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`` twice:

  sequential  N sends one after another on one keep-alive connection;
  concurrent  a total of M sends from 16 threads, each with its own keep-alive
              connection and one request in flight, so 16 are in flight at once.

Requests are written by a minimal raw-socket HTTP/1.1 client (common.LeanClient), which
costs the client about a third of the CPU of http.client: on a machine with few cores
the load generator competes with the server under test. Before the measured phases
the script waits (up to 30 s) until the server is idle.

Each phase gives sends/s (successful sends over the phase's wall time) and nearest-rank
p50/p99 latency (request sent to response read). Every measured send must answer 200
with an ``event_id``, and the event IDs must all differ; otherwise the run still prints
its table and then exits with status 1.

Standard library only, so it runs with any Python 3.11. Synapse is installed into
bench/.venv-synapse on first use (plus psycopg2-binary for --synapse-postgres). The
PostgreSQL databases (drocsid_bench_<pid>, synapse_bench_<pid>) are created on
127.0.0.1:5432 as user postgres through Drocsid's .venv (psycopg2) and dropped at the
end, also on failure, Ctrl-C or SIGTERM. Only 127.0.0.1 is ever contacted.

With ``--api-v1`` a third Drocsid target sends the same messages through
``POST /api/v1/channels/{id}/messages`` into #general of a Drocsid server (Markdown
rendered, Drocsid permissions checked), compared with Synapse's Matrix send. The
benchmark servers' rate limits are raised out of the way: it measures the pipeline.

    python3 bench/send_bench.py [--n 1000] [--concurrent-n 2000] [--skip-synapse]
                                [--synapse-postgres] [--api-v1] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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
    PG_HOST, PG_OPTIONS_SYNAPSE, PG_PORT, PG_USER, REGISTER_PATH, BenchError, Drocsid, JsonClient,
    LeanClient, Synapse, cpu_snapshot, create_database, descendants, dig, drop_database,
    expect_json, free_port, install_sigterm_handler, keep_logs, machine_meta, memory_mib,
    noise_lines, other_cpu_cores, percentile, pg_backend_pids, proc_ticks, render_rows, stop,
    stop_all, timed_start, wait_idle,
)

CREATE_ROOM_PATH = "/_matrix/client/v3/createRoom"
PASSWORD = "bench-Passw0rd-send"
ROOM_VERSION = "11"        # the same for both servers (Drocsid's default; Synapse's is 10)
WARMUP_SENDS = 50
IN_FLIGHT = 16             # concurrent phase: threads, each with one request in flight
PHASE_BUDGET = 600.0       # wall-clock cap on one measured phase (and on the warm-up)
JOIN_GRACE = 120.0         # beyond the budget, for the last requests to come back
MAX_N = 1_000_000
MAX_IN_FLIGHT = 256
PHASES = ("sequential", "concurrent")


# --- one send ---------------------------------------------------------------------------

class PhaseLog:
    """What one phase (or one thread of it) saw: latencies and event IDs of good sends,
    and the failures."""

    def __init__(self):
        self.samples: list[float] = []
        self.event_ids: list[str] = []
        self.errors = 0
        self.first_error: str | None = None

    def fail(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message

    def merge(self, other: PhaseLog) -> None:
        self.samples.extend(other.samples)
        self.event_ids.extend(other.event_ids)
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


class Route:
    """Where a send goes: the Matrix send endpoint of a room, or (``api_v1``) the
    /api/v1 messages endpoint of a Drocsid channel (Markdown rendering and Drocsid
    permission checks included)."""

    def __init__(self, room_id: str, api_v1: bool = False):
        self.room_id, self.api_v1 = room_id, api_v1

    def request(self, client: LeanClient, txn_id: str) -> tuple[int, bytes]:
        text = f"send bench message {txn_id}"
        room = quote(self.room_id, safe="")
        if self.api_v1:
            return client.request("POST", f"/api/v1/channels/{room}/messages",
                                  json.dumps({"content": text, "nonce": txn_id}).encode())
        path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{quote(txn_id, safe='')}"
        return client.put(path, {"msgtype": "m.text", "body": text})

    def event_id(self, answer) -> str | None:
        value = answer.get("id" if self.api_v1 else "event_id") if isinstance(answer, dict) else None
        return value if isinstance(value, str) else None


def timed_send(client: LeanClient, route: Route, txn_id: str, log: PhaseLog) -> None:
    started = time.perf_counter()
    try:
        status, raw = route.request(client, txn_id)
    except (OSError, http.client.HTTPException) as error:
        log.fail(f"{txn_id}: {error!r}")
        return
    elapsed = time.perf_counter() - started
    try:
        answer = json.loads(raw) if status == 200 else None
    except ValueError:
        answer = None
    event_id = route.event_id(answer)
    if event_id is not None and event_id.startswith("$"):
        log.samples.append(elapsed)
        log.event_ids.append(event_id)
    else:
        log.fail(f"{txn_id}: HTTP {status}: {raw[:200].decode(errors='replace')}")


# --- phases -----------------------------------------------------------------------------

def run_sequential(port: int, token: str, route: Route, n: int, prefix: str) -> tuple[PhaseLog, float]:
    log = PhaseLog()
    client = LeanClient(port, token)
    try:
        client.connect()
        started = time.perf_counter()
        deadline = time.monotonic() + PHASE_BUDGET
        for index in range(n):
            if time.monotonic() > deadline:
                log.fail(f"phase stopped after {PHASE_BUDGET:.0f} s with {n - index} sends left")
                break
            timed_send(client, route, f"{prefix}.{index}", log)
        return log, time.perf_counter() - started
    finally:
        client.close()


def run_concurrent(port: int, token: str, route: Route, total: int, in_flight: int,
                   prefix: str) -> tuple[PhaseLog, float]:
    """``in_flight`` threads take the next send number from a shared counter until
    ``total`` have been taken, so the load stays at ``in_flight`` until the very end."""
    workers = min(in_flight, total)
    lock = threading.Lock()
    taken = [0]
    logs = [PhaseLog() for _ in range(workers)]
    # Everyone connects first, then all start together.
    start_line = threading.Barrier(workers + 1, timeout=60)
    deadline = [0.0]

    def next_index() -> int | None:
        with lock:
            if taken[0] >= total:
                return None
            taken[0] += 1
            return taken[0] - 1

    def worker(log: PhaseLog) -> None:
        client = LeanClient(port, token)
        try:
            try:
                client.connect()
            except OSError as error:
                log.fail(f"connect: {error!r}")
            start_line.wait()
            for _ in range(total):  # bounded: each pass takes a number or stops
                index = next_index()
                if index is None:
                    break
                if time.monotonic() > deadline[0]:
                    log.fail(f"phase stopped after {PHASE_BUDGET:.0f} s")
                    break
                timed_send(client, route, f"{prefix}.{index}", log)
        except threading.BrokenBarrierError:
            log.fail("threads did not all get started within 60 s")
        except Exception as error:  # a thread's crash must show up as a failure, not vanish
            log.fail(f"worker crashed: {error!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(log,), daemon=True, name=f"send-{i}")
               for i, log in enumerate(logs)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + PHASE_BUDGET
    try:
        start_line.wait()
    except threading.BrokenBarrierError:
        raise BenchError("the sending threads did not all connect within 60 s") from None
    started = time.perf_counter()
    for thread in threads:
        thread.join(max(0.0, deadline[0] + JOIN_GRACE - time.monotonic()))
    wall = time.perf_counter() - started
    merged = PhaseLog()
    for log in logs:
        merged.merge(log)
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        merged.fail(f"{hung} threads still waiting for an answer after the time budget")
    return merged, wall


def summarise(log: PhaseLog, wall: float, requested: int, ordered: bool) -> dict:
    out = {"requested": requested, "ok": len(log.samples), "errors": log.errors,
           "first_error": log.first_error, "wall_s": wall,
           "sends_per_s": len(log.samples) / wall if wall > 0 and log.samples else None}
    if len(log.samples) + log.errors < requested:
        out["errors"] += requested - len(log.samples) - log.errors  # sends never made
        out["first_error"] = out["first_error"] or "not every send was made"
    if log.samples:
        out.update(p50_ms=percentile(log.samples, 50) * 1000, p99_ms=percentile(log.samples, 99) * 1000,
                   mean_ms=statistics.fmean(log.samples) * 1000, max_ms=max(log.samples) * 1000)
        if ordered:
            # In order sent, for spotting drift (cost growing with the room's length).
            out["samples_ms"] = [round(sample * 1000, 3) for sample in log.samples]
    return out


# --- one server, start to finish ----------------------------------------------------------

class Target:
    """One server on one database engine."""

    def __init__(self, key: str, label: str, server, database: str | None = None,
                 database_options: str = "", api_v1: bool = False):
        self.key, self.label, self.server = key, label, server
        self.database, self.database_options = database, database_options
        self.api_v1 = api_v1


def make_targets(args: argparse.Namespace) -> list[Target]:
    pid = os.getpid()
    drocsid_db, synapse_db = f"drocsid_bench_{pid}", f"synapse_bench_{pid}"
    drocsid_url = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{drocsid_db}"
    targets = [Target("drocsid-sqlite", "Drocsid SQLite", Drocsid()),
               Target("drocsid-postgres", "Drocsid PostgreSQL", Drocsid(drocsid_url), drocsid_db)]
    if args.api_v1:
        targets.append(Target("drocsid-api-sqlite", "Drocsid /api/v1-SQLite", Drocsid(), api_v1=True))
    if not args.skip_synapse:
        targets.append(Target("synapse-sqlite", "Synapse SQLite", Synapse()))
        if args.synapse_postgres:
            targets.append(Target("synapse-postgres", "Synapse PostgreSQL", Synapse(synapse_db),
                                  synapse_db, PG_OPTIONS_SYNAPSE))
    return targets


def register_and_create_room(port: int, api_v1: bool = False) -> tuple[str, Route]:
    """A user and where they send: a new room, or #general of a new Drocsid server."""
    client = JsonClient(port)
    try:
        status, raw = client.post(REGISTER_PATH, {"username": "sender", "password": PASSWORD,
                                                  "auth": {"type": "m.login.dummy"}})
        client.token = expect_json(status, raw, "register", "access_token")["access_token"]
        if api_v1:
            status, raw = client.post("/api/v1/servers", {"name": "send bench"})
            server = expect_json(status, raw, "POST /api/v1/servers", "channels")
            return client.token, Route(server["channels"][0]["id"], api_v1=True)
        status, raw = client.post(CREATE_ROOM_PATH, {"preset": "private_chat", "name": "send bench",
                                                     "room_version": ROOM_VERSION})
        return client.token, Route(expect_json(status, raw, "createRoom", "room_id")["room_id"])
    finally:
        client.close()


def server_ticks(pid: int, extra_pids) -> int:
    extra = list(extra_pids() if callable(extra_pids) else extra_pids)
    return sum(proc_ticks(p) for p in {pid, *descendants(pid), *extra})


def bench_target(target: Target, args: argparse.Namespace) -> dict:
    server = target.server
    server.ensure_installed()
    result: dict = {"version": server.version(), "engine": "postgres" if target.database else "sqlite"}
    work = Path(tempfile.mkdtemp(prefix=f"send-bench-{target.key}-"))
    created = False
    try:
        if target.database:
            print(f"[{target.label}] creating database {target.database} ...", flush=True)
            create_database(target.database, target.database_options)
            created = True
            # The PostgreSQL backends working for the server count as the server's CPU.
            extra_pids = lambda: pg_backend_pids(target.database)  # noqa: E731
        else:
            extra_pids = ()
        port = free_port()
        argv = server.prepare(work, port)
        print(f"[{target.label}] starting ...", flush=True)
        proc, result["start_s"] = timed_start(argv, work, port)
        token, route = register_and_create_room(port, target.api_v1)

        print(f"[{target.label}] {WARMUP_SENDS} warm-up sends ...", flush=True)
        warm, _ = run_sequential(port, token, route, WARMUP_SENDS, "warmup")
        if warm.errors:
            raise BenchError(f"warm-up failed: {warm.first_error}")
        # Let start-up and warm-up background work (schema updates, caches, notifying)
        # finish: wait until the server is idle, for up to 30 s.
        result["settle_s"] = wait_idle(lambda: [proc.pid, *descendants(proc.pid),
                                                *(extra_pids() if callable(extra_pids) else ())])

        event_ids: list[str] = []
        clk = os.sysconf("SC_CLK_TCK")
        first_snapshot = None
        for phase in PHASES:
            if phase == "sequential":
                print(f"[{target.label}] {args.n} sequential sends ...", flush=True)
            else:
                print(f"[{target.label}] {args.concurrent_n} sends, {args.in_flight} in flight ...",
                      flush=True)
            before = cpu_snapshot(proc.pid, extra_pids)
            first_snapshot = first_snapshot or before
            ticks_before, client_before = server_ticks(proc.pid, extra_pids), os.times()
            if phase == "sequential":
                log, wall = run_sequential(port, token, route, args.n, phase)
                requested = args.n
            else:
                log, wall = run_concurrent(port, token, route, args.concurrent_n, args.in_flight, phase)
                requested = args.concurrent_n
            after = cpu_snapshot(proc.pid, extra_pids)
            client_after = os.times()
            summary = summarise(log, wall, requested, ordered=phase == "sequential")
            summary["other_cpu_cores"] = other_cpu_cores(before, after)
            summary["server_cpu_ms_per_send"] = ((server_ticks(proc.pid, extra_pids) - ticks_before)
                                                 / clk * 1000 / len(log.samples) if log.samples else None)
            client_cpu = ((client_after.user - client_before.user)
                          + (client_after.system - client_before.system))
            summary["client_cpu_cores"] = client_cpu / wall if wall > 0 else None
            result[phase] = summary
            event_ids.extend(log.event_ids)
            if proc.poll() is not None:
                raise BenchError(f"server exited with status {proc.returncode} during the {phase} phase")
        result["other_cpu_cores"] = other_cpu_cores(first_snapshot, cpu_snapshot(proc.pid, extra_pids))
        result["duplicate_event_ids"] = len(event_ids) - len(set(event_ids))
        result["memory_after"] = memory_mib(proc.pid)
        stop(proc)
        if target_failures(result):
            result["logs"] = keep_logs(target.key, work)
        return result
    except BaseException:
        print(f"[{target.label}] server logs kept in {keep_logs(target.key, work)}", file=sys.stderr)
        raise
    finally:
        stop_all()
        if created:
            drop_database(target.database)
        shutil.rmtree(work, ignore_errors=True)


def target_failures(result: dict) -> int:
    """Failed measured sends, plus duplicate event IDs, plus one if the target failed."""
    return (sum(dig(result, phase, "errors") or 0 for phase in PHASES)
            + (result.get("duplicate_event_ids") or 0) + (1 if "error" in result else 0))


# --- report -----------------------------------------------------------------------------

# (row label, key in a phase's summary, unit, higher is better)
METRICS = [("sends/s", "sends_per_s", "/s", True), ("p50", "p50_ms", "ms", False),
           ("p99", "p99_ms", "ms", False)]


def ratio_pairs(results: dict) -> list[tuple[str, str]]:
    """(Drocsid target, Synapse target) pairs: same engine where Synapse ran on it, else
    Synapse on SQLite."""
    pairs = []
    for ours, same in (("drocsid-sqlite", "synapse-sqlite"), ("drocsid-postgres", "synapse-postgres"),
                       ("drocsid-api-sqlite", "synapse-sqlite")):
        theirs = same if same in results else "synapse-sqlite"
        if ours in results and theirs in results:
            pairs.append((ours, theirs))
    return pairs


def ratios(results: dict) -> dict:
    out = {}
    for ours, theirs in ratio_pairs(results):
        cells = {}
        for phase in PHASES:
            for label, key, _, _ in METRICS:
                a, b = dig(results, ours, phase, key), dig(results, theirs, phase, key)
                cells[f"{phase} {label}"] = a / b if a is not None and b else None
        out[f"{ours} / {theirs}"] = cells
    return out


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} /s" if unit == "/s" else f"{value:.2f} ms"


def render_table(results: dict, labels: dict[str, str], meta: dict) -> str:
    keys = list(results)
    headers = {}
    for key in keys:
        version = dig(results, key, "version") or ""
        name, engine = labels[key].split(" ", 1)
        headers[key] = f"{name} {version} {engine}".replace("  ", " ")
    pairs = ratio_pairs(results)
    short = {key: labels[key].replace("PostgreSQL", "PG") for key in keys}
    rows = [["phase / metric"] + [headers[k] for k in keys]
            + [f"{short[a]} / {short[b]}" for a, b in pairs]]
    rat = ratios(results)
    phase_titles = {"sequential": f"sequential (N={meta['n']})",
                    "concurrent": f"concurrent ({meta['in_flight']} in flight, N={meta['concurrent_n']})"}
    for phase in PHASES:
        for label, key, unit, higher_better in METRICS:
            row = [f"{phase_titles[phase]} {label}"]
            row += [_fmt(dig(results, k, phase, key), unit) for k in keys]
            for a, b in pairs:
                value = rat[f"{a} / {b}"][f"{phase} {label}"]
                row.append("-" if value is None else f"{value:.2f}x")
            rows.append(row)
    lines = [f"send benchmark: one room, room version {ROOM_VERSION}, {WARMUP_SENDS} warm-up sends;"
             f" {meta['cpus']} CPUs, {meta['platform']}; load average {meta['loadavg_1m']:.2f} at start"]
    lines.extend(render_rows(rows))
    for key in keys:
        result = results[key]
        if result.get("error"):
            lines.append(f"! {headers[key]} failed: {result['error'].splitlines()[0]}")
        for phase in PHASES:
            if dig(result, phase, "errors"):
                lines.append(f"! {headers[key]} {phase}: {result[phase]['errors']} sends failed; first: "
                             f"{result[phase]['first_error']}")
        if result.get("duplicate_event_ids"):
            lines.append(f"! {headers[key]}: {result['duplicate_event_ids']} event IDs answered twice")
        if result.get("logs"):
            lines.append(f"! {headers[key]} server logs kept in {result['logs']}")
    lines.extend(noise_lines({labels[k]: dig(results, k, "other_cpu_cores") for k in keys},
                             meta["cpus"], "the measured sends"))
    client = [f"{labels[k]} {dig(results, k, 'concurrent', 'client_cpu_cores'):.2f}" for k in keys
              if dig(results, k, "concurrent", "client_cpu_cores") is not None]
    if client:
        lines.append("CPU cores used by this client during the concurrent phase: " + ", ".join(client))
    if pairs:
        lines.append("ratios are Drocsid / Synapse: for sends/s higher is better (> 1: Drocsid sends more);"
                     " for p50/p99 lower is better (< 1: Drocsid answers sooner)")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="sequential sends per server (default 1000)")
    parser.add_argument("--concurrent-n", type=int, default=2000,
                        help="sends in the concurrent phase, in total (default 2000)")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help=f"concurrent phase: requests in flight (default {IN_FLIGHT})")
    parser.add_argument("--skip-synapse", action="store_true", help="benchmark Drocsid only")
    parser.add_argument("--synapse-postgres", action="store_true",
                        help="also benchmark Synapse on PostgreSQL")
    parser.add_argument("--api-v1", action="store_true",
                        help="also send through POST /api/v1/channels/{id}/messages (Drocsid on SQLite)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    for name in ("n", "concurrent_n"):
        if not 1 <= getattr(args, name) <= MAX_N:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and {MAX_N}")
    if not 1 <= args.in_flight <= MAX_IN_FLIGHT:
        parser.error(f"--in-flight must be between 1 and {MAX_IN_FLIGHT}")
    if args.skip_synapse and args.synapse_postgres:
        parser.error("--synapse-postgres and --skip-synapse contradict each other")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    meta = {"n": args.n, "concurrent_n": args.concurrent_n, "in_flight": args.in_flight,
            "warmup_sends": WARMUP_SENDS, "room_version": ROOM_VERSION,
            "loadavg_1m": os.getloadavg()[0], **machine_meta()}
    targets = make_targets(args)
    results: dict = {}
    failed = False
    try:
        for target in targets:
            # A failure of one target is reported and the others are still measured.
            try:
                results[target.key] = bench_target(target, args)
            except (BenchError, subprocess.SubprocessError, OSError) as error:
                print(f"send_bench: {target.label}: {error}", file=sys.stderr)
                results[target.key] = {"error": str(error)}
            failed = failed or target_failures(results[target.key]) > 0
    finally:
        stop_all()

    labels = {target.key: target.label for target in targets}
    print()
    print(render_table(results, labels, meta))
    if args.json:
        report = {"meta": meta, "results": results, "ratios_drocsid_over_synapse": ratios(results)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
