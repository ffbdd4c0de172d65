#!/usr/bin/env python3
"""Accounts benchmark: Drocsid against Synapse on this machine, in one run.

Measures, for each server: time from process start to ``GET /_matrix/client/versions``
answering 200, idle RSS/PSS, and the latency of N sequential single-call registrations
and N sequential password logins. Both run with their own default password hashing
(Drocsid: Argon2id t=3, 64 MiB, p=2; Synapse: bcrypt), on SQLite, rate limits off.

Standard library only, so it runs with any Python 3.11. Synapse is installed into
bench/.venv-synapse on first use. Only 127.0.0.1 is ever contacted (besides PyPI for
that one install).

    python3 bench/accounts_bench.py [--n 100] [--skip-synapse] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    LOGIN_PATH, REGISTER_PATH, BenchError, Drocsid, JsonClient, Synapse, cpu_snapshot,
    dig as _get, free_port, install_sigterm_handler, keep_logs, machine_meta, memory_mib,
    noise_lines, other_cpu_cores, percentile, render_rows, stop, stop_all, timed_start,
)

PASSWORD = "bench-Passw0rd-accounts"  # long enough for Drocsid's 8-character minimum

STARTS = 3                 # timed starts per server (median reported)
SETTLE_SECONDS = 2.0       # idle time before reading memory
PHASE_BUDGET = 1800.0      # wall-clock cap on one registration or login phase
MAX_N = 100_000


def latency_summary(samples: list[float], errors: int, first_error: str | None) -> dict:
    out = {"count": len(samples), "errors": errors, "first_error": first_error}
    if samples:
        out.update(p50_ms=percentile(samples, 50) * 1000, p95_ms=percentile(samples, 95) * 1000,
                   mean_ms=statistics.fmean(samples) * 1000, max_ms=max(samples) * 1000,
                   # In order sent, for spotting drift (e.g. cost growing with the user count).
                   samples_ms=[round(s * 1000, 3) for s in samples])
    return out


def timed_requests(client: JsonClient, path: str, bodies: list[dict]) -> dict:
    """Sends the bodies one after another; latency is request sent to response read."""
    samples: list[float] = []
    errors, first_error = 0, None
    deadline = time.monotonic() + PHASE_BUDGET
    for body in bodies:
        if time.monotonic() > deadline:
            first_error = first_error or f"phase stopped after {PHASE_BUDGET:.0f} s"
            break
        started = time.perf_counter()
        try:
            status, raw = client.post(path, body)
        except (OSError, http.client.HTTPException) as error:
            status, raw = None, repr(error).encode()
        elapsed = time.perf_counter() - started
        if status == 200:
            samples.append(elapsed)
        else:
            errors += 1
            first_error = first_error or f"HTTP {status}: {raw[:200].decode(errors='replace')}"
    return latency_summary(samples, errors, first_error)


def register_body(username: str) -> dict:
    return {"username": username, "password": PASSWORD, "auth": {"type": "m.login.dummy"}}


def login_body(username: str) -> dict:
    return {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": username},
            "password": PASSWORD}


def run_workload(port: int, n: int) -> dict:
    users = [f"benchuser{i}" for i in range(n)]
    client = JsonClient(port)
    try:
        # One unmeasured registration and login first, so lazy imports and first-call
        # costs on either server do not land in the measured samples.
        warm = timed_requests(client, REGISTER_PATH, [register_body("benchwarmup")])
        warm_login = timed_requests(client, LOGIN_PATH, [login_body("benchwarmup")])
        if warm["errors"] or warm_login["errors"]:
            raise BenchError(f"warm-up failed: {warm['first_error'] or warm_login['first_error']}")
        return {
            "register": timed_requests(client, REGISTER_PATH, [register_body(u) for u in users]),
            "login": timed_requests(client, LOGIN_PATH, [login_body(u) for u in users]),
        }
    finally:
        client.close()


# --- one server, start to finish --------------------------------------------------------

def bench_server(server, n: int) -> dict:
    server.ensure_installed()
    result: dict = {"version": server.version()}
    work = Path(tempfile.mkdtemp(prefix=f"accounts-bench-{server.name}-"))
    try:
        port = free_port()
        argv = server.prepare(work, port)
        print(f"[{server.label}] first start (empty database) ...", flush=True)
        proc, result["first_start_s"] = timed_start(argv, work, port)
        stop(proc)

        # Restarts on the now-initialised database: the start an operator sees every day.
        times = []
        for attempt in range(STARTS):
            print(f"[{server.label}] timed start {attempt + 1}/{STARTS} ...", flush=True)
            proc, seconds = timed_start(argv, work, port)
            times.append(seconds)
            if attempt < STARTS - 1:
                stop(proc)
        result["start_s"] = times
        result["start_median_s"] = statistics.median(times)

        # The last start stays up for the memory readings and the workload.
        time.sleep(SETTLE_SECONDS)
        result["memory_idle"] = memory_mib(proc.pid)
        print(f"[{server.label}] {n} registrations, then {n} logins ...", flush=True)
        before = cpu_snapshot(proc.pid)
        result.update(run_workload(port, n))
        result["other_cpu_cores"] = other_cpu_cores(before, cpu_snapshot(proc.pid))
        time.sleep(SETTLE_SECONDS)
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode} during the workload")
        result["memory_after"] = memory_mib(proc.pid)
        stop(proc)
        if phase_errors(result):
            result["logs"] = keep_logs(server.name, work)
        return result
    except BaseException:
        print(f"[{server.label}] server logs kept in {keep_logs(server.name, work)}", file=sys.stderr)
        raise
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


def phase_errors(result: dict) -> int:
    return sum(_get(result, phase, "errors") or 0 for phase in ("register", "login"))


# --- report ---------------------------------------------------------------------------

# (row label, unit, path into one server's result)
ROWS = [
    (f"startup to /versions, median of {STARTS}", "s", ("start_median_s",)),
    ("first start, empty database", "s", ("first_start_s",)),
    ("RSS idle (+2 s)", "MiB", ("memory_idle", "rss_mib")),
    ("PSS idle (+2 s)", "MiB", ("memory_idle", "pss_mib")),
    ("RSS after workload (+2 s)", "MiB", ("memory_after", "rss_mib")),
    ("PSS after workload (+2 s)", "MiB", ("memory_after", "pss_mib")),
    ("peak RSS, start to end", "MiB", ("memory_after", "rss_peak_mib")),
    ("register p50", "ms", ("register", "p50_ms")),
    ("register p95", "ms", ("register", "p95_ms")),
    ("login p50", "ms", ("login", "p50_ms")),
    ("login p95", "ms", ("login", "p95_ms")),
]


def ratios(results: dict) -> dict:
    """Drocsid / Synapse per row; below 1 means Drocsid is faster or smaller."""
    out = {}
    for label, _, path in ROWS:
        ours, theirs = _get(results.get("drocsid"), *path), _get(results.get("synapse"), *path)
        out[label] = ours / theirs if ours is not None and theirs else None
    return out


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} {unit}" if unit == "s" else f"{value:.1f} {unit}"


def render_table(results: dict, meta: dict) -> str:
    names = [name for name in ("drocsid", "synapse") if name in results]
    headers = {"drocsid": f"Drocsid {_get(results, 'drocsid', 'version') or ''}".strip(),
               "synapse": f"Synapse {_get(results, 'synapse', 'version') or ''}".strip()}
    rat = ratios(results)
    rows = [["metric"] + [headers[n] for n in names] + (["Drocsid/Synapse"] if len(names) == 2 else [])]
    for label, unit, path in ROWS:
        row = [label] + [_fmt(_get(results, n, *path), unit) for n in names]
        if len(names) == 2:
            row.append("-" if rat[label] is None else f"{rat[label]:.2f}x")
        rows.append(row)
    lines = [f"accounts benchmark: N={meta['n']}, {meta['cpus']} CPUs, {meta['platform']}"]
    lines.extend(render_rows(rows))
    for n in names:
        if _get(results, n, "error"):
            lines.append(f"! {headers[n]} failed: {results[n]['error'].splitlines()[0]}")
        for phase in ("register", "login"):
            errors = _get(results, n, phase, "errors")
            if errors:
                lines.append(f"! {headers[n]} {phase}: {errors} failed; first: "
                             f"{_get(results, n, phase, 'first_error')}")
        if _get(results, n, "logs"):
            lines.append(f"! {headers[n]} server logs kept in {results[n]['logs']}")
    lines.extend(noise_lines({f"{headers[n]} run": _get(results, n, "other_cpu_cores") for n in names},
                             meta["cpus"], "the workload"))
    lines.append("lower is better everywhere; ratio < 1 means Drocsid is faster / smaller")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="registrations and logins per server (default 100)")
    parser.add_argument("--skip-synapse", action="store_true", help="benchmark Drocsid only")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        parser.error(f"--n must be between 1 and {MAX_N}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    meta = {"n": args.n, "starts": STARTS, **machine_meta()}
    servers = [Drocsid()] + ([] if args.skip_synapse else [Synapse()])
    results: dict = {}
    failed = False
    try:
        for server in servers:
            # A failure of one server is reported and the other is still measured.
            try:
                results[server.name] = bench_server(server, args.n)
            except (BenchError, subprocess.SubprocessError, OSError) as error:
                print(f"accounts_bench: {server.label}: {error}", file=sys.stderr)
                results[server.name] = {"error": str(error)}
            failed = failed or "error" in results[server.name] or phase_errors(results[server.name]) > 0
    finally:
        stop_all()

    print()
    print(render_table(results, meta))
    if args.json:
        report = {"meta": meta, "results": results, "ratios_drocsid_over_synapse": ratios(results)}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
