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
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DROCSID_BIN = REPO_DIR / ".venv" / "bin" / "drocsid"
SYNAPSE_VENV = BENCH_DIR / ".venv-synapse"
SYNAPSE_PYTHON = SYNAPSE_VENV / "bin" / "python"
LOGS_DIR = BENCH_DIR / "logs"  # server logs of a run that went wrong (git-ignored)

HOST = "127.0.0.1"
SERVER_NAME = "bench.local"
PASSWORD = "bench-Passw0rd-accounts"  # long enough for Drocsid's 8-character minimum
VERSIONS_PATH = "/_matrix/client/versions"
REGISTER_PATH = "/_matrix/client/v3/register"
LOGIN_PATH = "/_matrix/client/v3/login"

STARTS = 3                 # timed starts per server (median reported)
STARTUP_TIMEOUT = 180.0    # seconds until a start counts as failed
READY_POLL_INTERVAL = 0.01
REQUEST_TIMEOUT = 60.0     # one HTTP request
STOP_TIMEOUT = 20.0        # SIGTERM grace before SIGKILL
SETTLE_SECONDS = 2.0       # idle time before reading memory
PHASE_BUDGET = 1800.0      # wall-clock cap on one registration or login phase
INSTALL_TIMEOUT = 1800.0   # pip install of Synapse
MAX_N = 100_000
BUSY_CORES = 0.25          # other processes' CPU use above which latencies are flagged


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# --- processes ----------------------------------------------------------------------

# Every server process we started and have not yet reaped; the finally blocks and the
# SIGTERM handler stop whatever is left here, so nothing outlives the benchmark.
_RUNNING: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    # DROCSID__* variables would silently override the generated configuration.
    return {k: v for k, v in os.environ.items() if not k.startswith("DROCSID__")}


def spawn(argv: list[str], cwd: Path, log_path: Path) -> subprocess.Popen:
    # Output goes to a file, never a pipe: an unread pipe would block a chatty server.
    # A new session keeps a terminal Ctrl-C away from the server so we stop it ourselves.
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=server_env(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _RUNNING.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; only ever this one PID."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    if proc in _RUNNING:
        _RUNNING.remove(proc)


def stop_all() -> None:
    for proc in list(_RUNNING):
        try:
            stop(proc)
        except Exception as error:  # keep going: the others still need stopping
            print(f"warning: could not stop pid {proc.pid}: {error}", file=sys.stderr)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- HTTP -----------------------------------------------------------------------------

def versions_ok(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", VERSIONS_PATH)
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode} before answering;"
                             f" log tail:\n{log_tail(log_path)}")
        if versions_ok(port):
            return
        time.sleep(READY_POLL_INTERVAL)
    raise BenchError(f"server did not answer {VERSIONS_PATH} within {STARTUP_TIMEOUT:.0f} s;"
                     f" log tail:\n{log_tail(log_path)}")


class JsonClient:
    """One keep-alive connection, as a real client would hold; reopened after an error."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            self.conn.request("POST", path, body=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- measurements ---------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo and len(found) < 10_000:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kib_field(path: str, name: str) -> int | None:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _sum_mib(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / 1024 if known else None


def memory_mib(pid: int) -> dict[str, float | None]:
    """RSS, peak RSS and PSS of the server and any children it spawned, in MiB."""
    pids = [pid] + _descendants(pid)
    rss = [_kib_field(f"/proc/{p}/status", "VmRSS") for p in pids]
    # VmHWM catches what RSS after the fact misses: Argon2id's 64 MiB per hash is freed at once.
    peak = [_kib_field(f"/proc/{p}/status", "VmHWM") for p in pids]
    pss = [_kib_field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids]
    return {
        "rss_mib": _sum_mib(rss),
        "rss_peak_mib": _sum_mib(peak),
        # PSS needs smaps_rollup (Linux 4.14+); without it for every process, report none.
        "pss_mib": sum(pss) / 1024 if all(v is not None for v in pss) else None,
        "processes": len(pids),
    }


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_snapshot(server_pid: int) -> tuple[float, int, int]:
    """(wall time, busy ticks of the whole machine, ticks of the server and this script)."""
    with open("/proc/stat") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    ours = sum(_proc_ticks(p) for p in [server_pid, os.getpid()] + _descendants(server_pid))
    return time.monotonic(), busy, ours


def other_cpu_cores(before: tuple, after: tuple) -> float | None:
    """Average cores used by everything but the server and the client in between.

    The machine may be shared with other work; this says how much it interfered.
    """
    seconds = after[0] - before[0]
    if seconds <= 0:
        return None
    other_ticks = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, other_ticks / os.sysconf("SC_CLK_TCK") / seconds)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


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


# --- servers --------------------------------------------------------------------------

class Drocsid:
    name = "drocsid"
    label = "Drocsid"

    def ensure_installed(self) -> None:
        if DROCSID_BIN.exists():
            return
        print(f"{DROCSID_BIN} missing; running `make install` in {REPO_DIR} ...", flush=True)
        subprocess.run(["make", "install"], cwd=REPO_DIR, check=True, timeout=INSTALL_TIMEOUT)

    def version(self) -> str:
        out = subprocess.run([str(DROCSID_BIN), "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.strip().removeprefix("drocsid ") or "unknown"

    def prepare(self, work: Path, port: int) -> list[str]:
        # Default [auth] password hashing on purpose: production cost, not a cheap test setting.
        config = work / "drocsid.toml"
        config.write_text(f"""\
data_dir = "{work / 'data'}"
[instance]
domain = "{SERVER_NAME}"
[server]
host = "{HOST}"
port = {port}
[federation]
enabled = false
[limits]
login_per_second = 100000.0
login_burst = 100000
login_failures_per_second = 100000.0
login_failures_burst = 100000
register_per_second = 100000.0
register_burst = 100000
[logging]
level = "warn"
""")
        return [str(DROCSID_BIN), "run", "--config", str(config)]


class Synapse:
    name = "synapse"
    label = "Synapse"

    def ensure_installed(self) -> None:
        check = [str(SYNAPSE_PYTHON), "-c", "import synapse.app.homeserver"]
        if SYNAPSE_PYTHON.exists() and subprocess.run(check, capture_output=True, timeout=120).returncode == 0:
            return
        print(f"installing matrix-synapse into {SYNAPSE_VENV} (first run only) ...", flush=True)
        if not SYNAPSE_PYTHON.exists():
            subprocess.run([sys.executable, "-m", "venv", str(SYNAPSE_VENV)], check=True, timeout=300)
        pip = [str(SYNAPSE_PYTHON), "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["--upgrade", "pip"], check=True, timeout=INSTALL_TIMEOUT)
        subprocess.run(pip + ["matrix-synapse"], check=True, timeout=INSTALL_TIMEOUT)
        subprocess.run(check, check=True, timeout=120)
        print("matrix-synapse installed", flush=True)

    def version(self) -> str:
        code = "import synapse; print(synapse.__version__)"
        out = subprocess.run([str(SYNAPSE_PYTHON), "-c", code], capture_output=True, text=True, timeout=120)
        return out.stdout.strip().split()[0] if out.stdout.strip() else "unknown"

    def prepare(self, work: Path, port: int) -> list[str]:
        # JSON is valid YAML, so the configuration needs no YAML library here.
        log_config = work / "log_config.yaml"
        log_config.write_text(json.dumps({
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain",
                                  "filename": str(work / "synapse.log")}},
            "root": {"level": "WARNING", "handlers": ["file"]},
        }, indent=2))
        unlimited = {"per_second": 100000, "burst_count": 100000}
        config = work / "homeserver.yaml"
        config.write_text(json.dumps({
            "server_name": SERVER_NAME,
            "public_baseurl": f"http://{HOST}:{port}/",
            "listeners": [{"port": port, "bind_addresses": [HOST], "type": "http", "tls": False,
                           "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
            "database": {"name": "sqlite3", "args": {"database": str(work / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(work / "media_store"),
            "signing_key_path": str(work / "signing.key"),
            "report_stats": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "rc_login": {"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
            "rc_registration": unlimited,
            "rc_message": unlimited,
            "suppress_key_server_warning": True,
            "trusted_key_servers": [],
            "macaroon_secret_key": secrets.token_hex(32),
            "registration_shared_secret": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
        }, indent=2))
        base = [str(SYNAPSE_PYTHON), "-m", "synapse.app.homeserver"]
        generated = subprocess.run(base + ["--config-path", str(config), "--generate-keys"], cwd=work,
                                   env=server_env(), capture_output=True, text=True, timeout=300)
        if generated.returncode != 0:
            raise BenchError(f"synapse --generate-keys failed:\n{generated.stdout}{generated.stderr}")
        return base + ["-c", str(config)]


# --- one server, start to finish --------------------------------------------------------

def timed_start(argv: list[str], work: Path, port: int) -> tuple[subprocess.Popen, float]:
    log_path = work / "server.out"
    started = time.monotonic()
    proc = spawn(argv, work, log_path)
    try:
        wait_ready(proc, port, log_path)
    except BaseException:
        stop(proc)
        raise
    return proc, time.monotonic() - started


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


def keep_logs(name: str, work: Path) -> str:
    """Copies the server's log files out of the temporary directory before it goes."""
    target = LOGS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for log in list(work.glob("*.out")) + list(work.glob("*.log")):
        shutil.copy2(log, target / log.name)
    return str(target)


# --- report ---------------------------------------------------------------------------

def _get(result: dict | None, *keys):
    for key in keys:
        if not isinstance(result, dict):
            return None
        result = result.get(key)
    return result


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
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"accounts benchmark: N={meta['n']}, {meta['cpus']} CPUs, {meta['platform']}"]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
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
    noise = [f"{headers[n]} run {_get(results, n, 'other_cpu_cores'):.2f}" for n in names
             if _get(results, n, "other_cpu_cores") is not None]
    if noise:
        lines.append(f"CPU cores busy with other processes during the workload: {', '.join(noise)}"
                     f" (of {meta['cpus']})")
    if any((_get(results, n, "other_cpu_cores") or 0) > BUSY_CORES for n in names):
        lines.append(f"! other work used over {BUSY_CORES} cores meanwhile: latencies are inflated;"
                     " rerun on a quiet machine to compare them")
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


def _on_sigterm(signum, frame):
    # Turn SIGTERM into an exception so the finally blocks stop the servers.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    meta = {"n": args.n, "starts": STARTS, "cpus": os.cpu_count(),
            "platform": f"Linux {platform.release()}, Python {platform.python_version()}",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
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
