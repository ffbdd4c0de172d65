"""What the benchmarks share: starting and stopping Drocsid and Synapse, a JSON client,
PostgreSQL scratch databases, memory and CPU readings, percentiles and tables.

Standard library only, so every benchmark that imports it runs with any Python 3.11.
PostgreSQL is administered through Drocsid's own virtualenv (``.venv/bin/python``, which
has psycopg2). Only 127.0.0.1 is ever contacted (besides PyPI for installing Synapse).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DROCSID_BIN = REPO_DIR / ".venv" / "bin" / "drocsid"
DROCSID_PYTHON = REPO_DIR / ".venv" / "bin" / "python"
SYNAPSE_VENV = BENCH_DIR / ".venv-synapse"
SYNAPSE_PYTHON = SYNAPSE_VENV / "bin" / "python"
LOGS_DIR = BENCH_DIR / "logs"  # server logs of a run that went wrong (git-ignored)

HOST = "127.0.0.1"
SERVER_NAME = "bench.local"
VERSIONS_PATH = "/_matrix/client/versions"
REGISTER_PATH = "/_matrix/client/v3/register"
LOGIN_PATH = "/_matrix/client/v3/login"

# PostgreSQL for the scratch databases: local, trust authentication.
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"

STARTUP_TIMEOUT = 180.0    # seconds until a start counts as failed
READY_POLL_INTERVAL = 0.01
REQUEST_TIMEOUT = 60.0     # one HTTP request
STOP_TIMEOUT = 20.0        # SIGTERM grace before SIGKILL
INSTALL_TIMEOUT = 1800.0   # pip install of Synapse
PG_ADMIN_TIMEOUT = 120.0   # one CREATE or DROP DATABASE
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


def _on_sigterm(signum, frame):
    # Turn SIGTERM into an exception so the finally blocks stop the servers and clean up.
    raise SystemExit(128 + signum)


def install_sigterm_handler() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def keep_logs(name: str, work: Path) -> str:
    """Copies the server's log files out of the temporary directory before it goes."""
    target = LOGS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for log in list(work.glob("*.out")) + list(work.glob("*.log")):
        shutil.copy2(log, target / log.name)
    return str(target)


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


def timed_start(argv: list[str], work: Path, port: int) -> tuple[subprocess.Popen, float]:
    """Spawns the server and waits for /versions; returns it and the seconds that took."""
    log_path = work / "server.out"
    started = time.monotonic()
    proc = spawn(argv, work, log_path)
    try:
        wait_ready(proc, port, log_path)
    except BaseException:
        stop(proc)
        raise
    return proc, time.monotonic() - started


class JsonClient:
    """One keep-alive connection, as a real client would hold; reopened after an error."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token
        self.conn: http.client.HTTPConnection | None = None

    def connect(self) -> None:
        """Opens the connection now, so the first timed request does not pay for it."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
            self.conn.connect()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                              headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        return self.request("POST", path, body)

    def put(self, path: str, body: dict) -> tuple[int, bytes]:
        return self.request("PUT", path, body)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client on a raw socket, for load generation.

    http.client parses every response's headers with the email package; with 16 threads
    on a machine of a few cores that client CPU competes with the server under test.
    This one writes each request with one ``sendall`` and reads only the status line,
    ``Content-Length`` / ``Transfer-Encoding`` and ``Connection`` of the answer.
    Raises OSError (including timeouts) or http.client.HTTPException on anything odd,
    after which it reconnects on the next request.
    """

    MAX_HEAD = 64 * 1024
    MAX_BODY = 16 * 1024 * 1024

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.fixed_headers = (f"Host: {HOST}:{port}\r\nContent-Type: application/json\r\n"
                              + (f"Authorization: Bearer {token}\r\n" if token else "")).encode()

    def connect(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=REQUEST_TIMEOUT)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.connect()
        try:
            self.sock.sendall(b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
                method.encode(), path.encode(), self.fixed_headers, len(body), body))
            status, answer, keep_alive = self._read_response()
        except ValueError as error:  # a malformed length or chunk size
            self.close()
            raise http.client.HTTPException(f"malformed response: {error}") from None
        except BaseException:
            self.close()
            raise
        if not keep_alive:
            self.close()
        return status, answer

    def put(self, path: str, body: dict) -> tuple[int, bytes]:
        return self.request("PUT", path, json.dumps(body).encode())

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise http.client.RemoteDisconnected("server closed the connection")
        self.buffer += chunk

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > self.MAX_HEAD:
                raise http.client.LineTooLong("response line")
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read_response(self) -> tuple[int, bytes, bool]:
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > self.MAX_HEAD:
                raise http.client.LineTooLong("response head")
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise http.client.BadStatusLine(lines[0][:100].decode(errors="replace"))
        status = int(parts[1])
        length, chunked, keep_alive = None, False, parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection" and value in (b"close", b"keep-alive"):
                keep_alive = value == b"keep-alive"
        if chunked:
            pieces, total = [], 0
            for _ in range(100_000):
                size = int(self._line().split(b";", 1)[0], 16)
                if size == 0:
                    while self._line():  # trailers, up to the empty line
                        pass
                    return status, b"".join(pieces), keep_alive
                total += size
                if total > self.MAX_BODY:
                    raise http.client.HTTPException("response body too large")
                pieces.append(self._take(size))
                self._take(2)  # CRLF after each chunk
            raise http.client.HTTPException("too many chunks")
        if length is not None:
            if length > self.MAX_BODY:
                raise http.client.HTTPException("response body too large")
            return status, self._take(length), keep_alive
        if status in (204, 304) or 100 <= status < 200:
            return status, b"", keep_alive
        raise http.client.HTTPException("response without Content-Length or chunked encoding")


def expect_json(status: int, raw: bytes, what: str, key: str) -> dict:
    """The decoded body of a 200 that holds ``key``, or BenchError saying what came back."""
    try:
        body = json.loads(raw) if status == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or key not in body:
        raise BenchError(f"{what}: HTTP {status}: {raw[:300].decode(errors='replace')}")
    return body


# --- measurements ---------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
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
    pids = [pid] + descendants(pid)
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


def wait_idle(pids, max_cores: float = 0.05, window: float = 1.0, limit: float = 30.0) -> float:
    """Waits until the processes (a list, or a callable returning one) use under
    ``max_cores`` over ``window`` seconds, e.g. for a server's start-up background work to
    finish; gives up after ``limit`` seconds. Returns the seconds waited."""
    started = time.monotonic()
    clk = os.sysconf("SC_CLK_TCK")
    for _ in range(int(limit / window) + 1):
        current = list(pids() if callable(pids) else pids)
        before = sum(proc_ticks(p) for p in current)
        time.sleep(window)
        if (sum(proc_ticks(p) for p in current) - before) / clk / window < max_cores:
            break
        if time.monotonic() - started > limit:
            break
    return time.monotonic() - started


def proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_snapshot(server_pid: int, extra_pids=()) -> tuple[float, int, int]:
    """(wall time, busy ticks of the whole machine, ticks of the server and this script).

    ``extra_pids`` (a list, or a callable returning one) are counted as ours too, e.g. the
    PostgreSQL backends serving the server's database.
    """
    with open("/proc/stat") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    extra = list(extra_pids() if callable(extra_pids) else extra_pids)
    pids = {server_pid, os.getpid(), *descendants(server_pid), *extra}
    return time.monotonic(), busy, sum(proc_ticks(p) for p in pids)


def other_cpu_cores(before: tuple, after: tuple) -> float | None:
    """Average cores used by everything but the server and the client in between.

    The machine may be shared with other work; this says how much it interfered. A
    process that ends in between (a PostgreSQL backend) takes its ticks with it, so
    they count as other work: this errs towards flagging noise, not hiding it.
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


def machine_meta() -> dict:
    return {"cpus": os.cpu_count(),
            "platform": f"Linux {platform.release()}, Python {platform.python_version()}",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# --- PostgreSQL scratch databases -----------------------------------------------------

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Run by Drocsid's virtualenv Python, which has psycopg2; argv: action, name, options, host, port, user.
_PG_ADMIN_SCRIPT = """
import sys, psycopg2
from psycopg2 import sql
action, name, options, host, port, user = sys.argv[1:7]
conn = psycopg2.connect(host=host, port=int(port), user=user, dbname="postgres", connect_timeout=10)
conn.autocommit = True
with conn.cursor() as cur:
    if action == "create":
        cur.execute(sql.SQL("CREATE DATABASE {} " + options).format(sql.Identifier(name)))
    elif action == "drop":
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
conn.close()
"""

# Only these fixed option strings are ever spliced into CREATE DATABASE.
PG_OPTIONS_DEFAULT = ""
PG_OPTIONS_SYNAPSE = "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"


def _pg_admin(action: str, name: str, options: str = "") -> str:
    if not _DB_NAME.match(name):
        raise BenchError(f"refusing database name {name!r}")
    if options not in (PG_OPTIONS_DEFAULT, PG_OPTIONS_SYNAPSE):
        raise BenchError(f"refusing CREATE DATABASE options {options!r}")
    if not DROCSID_PYTHON.exists():
        raise BenchError(f"{DROCSID_PYTHON} missing (it provides psycopg2); run `make install`")
    done = subprocess.run([str(DROCSID_PYTHON), "-c", _PG_ADMIN_SCRIPT, action, name, options,
                           PG_HOST, str(PG_PORT), PG_USER],
                          capture_output=True, text=True, timeout=PG_ADMIN_TIMEOUT, env=server_env())
    if done.returncode != 0:
        raise BenchError(f"PostgreSQL {action} {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def create_database(name: str, options: str = PG_OPTIONS_DEFAULT) -> None:
    _pg_admin("create", name, options)


def drop_database(name: str) -> None:
    """Drops the database, forcibly disconnecting anything still attached; never raises."""
    try:
        _pg_admin("drop", name)
    except (BenchError, subprocess.SubprocessError, OSError) as error:
        print(f"warning: could not drop database {name}: {error}", file=sys.stderr)


def pg_backend_pids(name: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to this database, from their process title
    (``postgres: ... USER DATABASE HOST(PORT) STATE``); cheap enough to read per snapshot."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {name} " in title:
            found.append(int(entry))
    return found


# --- servers --------------------------------------------------------------------------

def toml_string(value: str) -> str:
    # A JSON string of printable text is a valid TOML basic string.
    return json.dumps(value)


def write_drocsid_config(work: Path, port: int, *, database_url: str = "", domain: str = SERVER_NAME,
                         federation: str | None = None, cheap_hashing: bool = False) -> list[str]:
    """Write a benchmark Drocsid's configuration into ``work``; the command that runs it.

    Rate limits are raised out of the way (the benches measure the pipeline, not the
    limiter). ``federation`` is the body of a ``[federation]`` section (off without it);
    ``cheap_hashing`` makes registering many users cheap where that is not what is measured.
    """
    database = f"[database]\nurl = {toml_string(database_url)}\n" if database_url else ""
    auth = ("[auth]\npassword_hash_time_cost = 1\npassword_hash_memory_kib = 1024\n"
            "password_hash_parallelism = 1\n") if cheap_hashing else ""
    config = work / "drocsid.toml"
    config.write_text(f"""\
data_dir = {toml_string(str(work / 'data'))}
[instance]
domain = "{domain}"
[server]
host = "{HOST}"
port = {port}
public_baseurl = "http://{HOST}:{port}"
{database}[federation]
{federation if federation is not None else "enabled = false"}
{auth}[limits]
login_per_second = 100000.0
login_burst = 100000
login_failures_per_second = 100000.0
login_failures_burst = 100000
register_per_second = 100000.0
register_burst = 100000
message_send_per_second = 100000.0
message_send_burst = 100000
[logging]
level = "warn"
""")
    return [str(DROCSID_BIN), "run", "--config", str(config)]


class Drocsid:
    """Drocsid from the repository's .venv, on SQLite in its data directory by default."""

    name = "drocsid"
    label = "Drocsid"

    def __init__(self, database_url: str = ""):
        self.database_url = database_url

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
        return write_drocsid_config(work, port, database_url=self.database_url)


class Synapse:
    """Synapse from bench/.venv-synapse (installed on first use), on SQLite by default or
    on an existing PostgreSQL database."""

    name = "synapse"
    label = "Synapse"

    def __init__(self, postgres_database: str | None = None):
        self.postgres_database = postgres_database

    def ensure_installed(self) -> None:
        check = [str(SYNAPSE_PYTHON), "-c", "import synapse.app.homeserver"]
        if not (SYNAPSE_PYTHON.exists()
                and subprocess.run(check, capture_output=True, timeout=120).returncode == 0):
            print(f"installing matrix-synapse into {SYNAPSE_VENV} (first run only) ...", flush=True)
            if not SYNAPSE_PYTHON.exists():
                subprocess.run([sys.executable, "-m", "venv", str(SYNAPSE_VENV)], check=True, timeout=300)
            self._pip("--upgrade", "pip")
            self._pip("matrix-synapse")
            subprocess.run(check, check=True, timeout=120)
            print("matrix-synapse installed", flush=True)
        if self.postgres_database:
            check_pg = [str(SYNAPSE_PYTHON), "-c", "import psycopg2"]
            if subprocess.run(check_pg, capture_output=True, timeout=120).returncode != 0:
                # The prebuilt wheel: no compiler or libpq headers needed.
                print(f"installing psycopg2-binary into {SYNAPSE_VENV} ...", flush=True)
                self._pip("psycopg2-binary")
                subprocess.run(check_pg, check=True, timeout=120)

    @staticmethod
    def _pip(*args: str) -> None:
        subprocess.run([str(SYNAPSE_PYTHON), "-m", "pip", "install", "--quiet", *args],
                       check=True, timeout=INSTALL_TIMEOUT)

    def version(self) -> str:
        code = "import synapse; print(synapse.__version__)"
        out = subprocess.run([str(SYNAPSE_PYTHON), "-c", code], capture_output=True, text=True, timeout=120)
        return out.stdout.strip().split()[0] if out.stdout.strip() else "unknown"

    def database_config(self, work: Path) -> dict:
        if self.postgres_database:
            return {"name": "psycopg2", "args": {"user": PG_USER, "host": PG_HOST, "port": PG_PORT,
                                                 "database": self.postgres_database}}
        return {"name": "sqlite3", "args": {"database": str(work / "homeserver.db")}}

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
            "database": self.database_config(work),
            "log_config": str(log_config),
            "media_store_path": str(work / "media_store"),
            "signing_key_path": str(work / "signing.key"),
            "report_stats": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "rc_login": {"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
            "rc_registration": unlimited,
            "rc_message": unlimited,
            "rc_room_creation": unlimited,
            "rc_joins": {"local": unlimited, "remote": unlimited},
            "rc_joins_per_room": unlimited,
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


# --- reports --------------------------------------------------------------------------

def dig(result, *keys):
    """result[k1][k2]...; None where any level is missing or not a dict."""
    for key in keys:
        if not isinstance(result, dict):
            return None
        result = result.get(key)
    return result


def render_rows(rows: list[list[str]]) -> list[str]:
    """Aligned text lines: the first row is the header, underlined; the first column is
    left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def noise_lines(cores_by_label: dict[str, float | None], cpus: int | None, what: str) -> list[str]:
    """The CPU-noise report: other processes' CPU use during each server's measurement."""
    known = {label: cores for label, cores in cores_by_label.items() if cores is not None}
    lines = []
    if known:
        lines.append(f"CPU cores busy with other processes during {what}: "
                     + ", ".join(f"{label} {cores:.2f}" for label, cores in known.items())
                     + f" (of {cpus})")
    if any(cores > BUSY_CORES for cores in known.values()):
        lines.append(f"! other work used over {BUSY_CORES} cores meanwhile: latencies are inflated;"
                     " rerun on a quiet machine to compare them")
    return lines


# --- delivery: long-polling /sync until a message shows up -------------------------------

SYNC_PATH = "/_matrix/client/v3/sync"


def sync_path(since: str | None, timeout_ms: int) -> str:
    query = f"timeout={timeout_ms}" + (f"&since={quote(since, safe='')}" if since else "")
    return f"{SYNC_PATH}?{query}"


class LongPoller:
    """The receiver's side of one delivery sample, in a thread: long-polls /sync from
    ``since`` until an answer holds ``marker`` (a unique string in the message body), and
    notes when that answer was read. ``written`` is set once the first request is out."""

    def __init__(self, port: int, token: str, since: str, marker: str, *, timeout: float = 60.0,
                 long_poll_ms: int = 30000, max_polls: int = 20):
        self.port, self.token, self.since, self.marker = port, token, since, marker.encode()
        self.timeout, self.long_poll_ms, self.max_polls = timeout, long_poll_ms, max_polls
        self.written = threading.Event()
        self.found_at: float | None = None
        self.polls = 0
        self.error: str | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            for _ in range(self.max_polls):
                conn.request("GET", sync_path(self.since, self.long_poll_ms), headers=headers)
                self.written.set()
                response = conn.getresponse()
                raw = response.read()
                read_at = time.perf_counter()
                self.polls += 1
                body = expect_json(response.status, raw, "long-poll sync", "next_batch")
                self.since = body["next_batch"]
                if self.marker in raw:
                    self.found_at = read_at
                    return
            self.error = f"message not delivered within {self.max_polls} sync answers"
        except Exception as error:  # a thread's failure must show up in the results
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.written.set()
            conn.close()
