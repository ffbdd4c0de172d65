"""A real Synapse homeserver on loopback, as a federation peer for interoperability tests.

Synapse (pip ``matrix-synapse``) lives in its own virtualenv, ``.venv-synapse`` at the repo
root, built by ``make test`` (target ``synapse``), so its pinned dependencies stay out of
``.venv``. Each :class:`SynapseProcess` has fresh data in its own directory (a test's
``self.mktemp()``) and two free ports on 127.0.0.1:

* a plain-HTTP client listener (client API and ``/_synapse/admin``): :attr:`client_url`;
* a TLS federation listener (federation API and ``/_matrix/key/v2``) with a self-signed
  certificate for IP 127.0.0.1: :attr:`federation_url`.

Its server name is ``127.0.0.1:<federation port>``: an IP literal with a port, so peers
connect straight to it (no ``.well-known`` or SRV lookup). It is configured to federate on
loopback: certificates are not verified, loopback is not in ``ip_range_blacklist``, keys are
fetched from the peer itself, rate limits are out of the way and a failed destination is
retried after a second instead of ten minutes (see
``/work/shared/reference/synapse-on-loopback.md``).

Typical use::

    reason = synapse_available()
    if reason:
        raise unittest.SkipTest(reason)
    synapse = SynapseProcess(os.path.abspath(self.mktemp()))
    self.addCleanup(synapse.cleanup)
    await synapse.start()
    user_id, token = await synapse.register("alice")
    status, body = await synapse.request("POST", "/_matrix/client/v3/createRoom", {}, token=token)
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import treq
from twisted.internet import defer, reactor, ssl
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from federation.tls import make_self_signed
from tests.support.process import ROOT, sleep
from tests.support.server import HttpClient

SYNAPSE_VENV = os.path.join(ROOT, ".venv-synapse")
SYNAPSE_PYTHON = os.path.join(SYNAPSE_VENV, "bin", "python")
DEFAULT_PASSWORD = "correct horse battery staple"

# Synapse's DEFAULT_IP_RANGE_BLOCKLIST (synapse/config/server.py, 1.163) without
# 127.0.0.0/8 and ::1/128: ip_range_whitelist alone does not open loopback for a
# destination given as an IP literal.
LOOPBACK_IP_RANGE_BLACKLIST = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4",
    "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
]

_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_admin_redaction": _UNLIMITED,
    "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "sleep_delay": 0,
                      "reject_limit": 100000, "concurrent": 1000},
    "federation_rr_transactions_per_room_per_second": 10000,
}

_ADDRESS_IN_USE = ("Address already in use", "Errno 98", "CannotListenError")


def synapse_available() -> str | None:
    """None when Synapse can be run; otherwise why not (a reason for ``SkipTest``)."""
    if not os.access(SYNAPSE_PYTHON, os.X_OK):
        return f"{SYNAPSE_PYTHON} is missing: run `make synapse` (make test builds it)"
    return None


def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that were free a moment ago (held together, then closed)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the test process dies, so a crashed or
    killed trial worker leaves no Synapse behind (Linux only; best effort)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@implementer(IPolicyForHTTPS)
class TrustAnything:
    """Synapse's federation listener has a self-signed certificate."""

    def creatorForNetloc(self, hostname, port):
        return ssl.CertificateOptions(verify=False)


class SynapseProcess:
    def __init__(self, directory: str, config_overrides: dict | None = None):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.config_overrides = dict(config_overrides or {})
        self.config_path = os.path.join(self.directory, "homeserver.yaml")
        self.log_path = os.path.join(self.directory, "homeserver.log")
        self.stderr_path = os.path.join(self.directory, "stderr.txt")
        self.database_path = os.path.join(self.directory, "homeserver.db")
        self.media_path = os.path.join(self.directory, "media_store")
        self.cert_path = os.path.join(self.directory, "tls.crt")
        self.key_path = os.path.join(self.directory, "tls.key")
        self.signing_key_path = os.path.join(self.directory, "signing.key")
        self.registration_shared_secret = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.client_port: int | None = None
        self._federation_port: int | None = None
        self._client: HttpClient | None = None
        self.start_seconds: float | None = None
        self._log_offset = self._stderr_offset = 0
        make_self_signed(Path(self.cert_path), Path(self.key_path), "127.0.0.1")

    # -- addresses -------------------------------------------------------------------------

    @property
    def federation_port(self) -> int:
        if self._federation_port is None:
            raise RuntimeError("Synapse has no ports before start()")
        return self._federation_port

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.federation_port}"

    @property
    def client_url(self) -> str:
        if self.client_port is None:
            raise RuntimeError("Synapse has no ports before start()")
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.federation_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def client(self) -> HttpClient:
        """JSON client for :attr:`client_url` (persistent pool, closed by stop()/cleanup())."""
        if self._client is None:
            self._client = HttpClient(self.client_url)
        return self._client

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    # -- configuration ---------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """homeserver.yaml's settings (written as JSON, which is YAML)."""
        settings: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.client_url + "/",
            "listeners": [
                {"port": self.client_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": False, "resources": [{"names": ["client"], "compress": False}]},
                {"port": self.federation_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": True, "resources": [{"names": ["federation"], "compress": False}]},
            ],
            "database": {"name": "sqlite3", "args": {"database": self.database_path}},
            "media_store_path": self.media_path,
            "log_config": os.path.join(self.directory, "log.yaml"),
            "signing_key_path": self.signing_key_path,  # made by Synapse on first start
            "tls_certificate_path": self.cert_path,
            "tls_private_key_path": self.key_path,
            "federation_verify_certificates": False,
            "ip_range_blacklist": LOOPBACK_IP_RANGE_BLACKLIST,
            "ip_range_whitelist": ["127.0.0.1/32"],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "registration_shared_secret": self.registration_shared_secret,
            "bcrypt_rounds": 4,  # the minimum: registration and login stay fast
            "default_room_version": "11",  # room IDs carry the server name (12 drops it)
            "allow_public_rooms_over_federation": True,
            "allow_public_rooms_without_auth": True,
            "room_list_publication_rules": [{"action": "allow"}],
            "presence": {"enabled": True},
            "url_preview_enabled": False,
            "federation": {
                "destination_min_retry_interval": "1s",  # default 10m after one failure
                "destination_max_retry_interval": "5s",
                "max_short_retry_delay": "1s",
                "max_long_retry_delay": "5s",
            },
            **RATE_LIMITS,
        }
        for key, value in self.config_overrides.items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
        return settings

    def _write_config(self) -> None:
        log_config = {
            "version": 1,
            "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - "
                                                 "%(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                                  "filename": self.log_path, "encoding": "utf8"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        with open(os.path.join(self.directory, "log.yaml"), "w") as handle:
            json.dump(log_config, handle, indent=1)
        with open(self.config_path, "w") as handle:
            json.dump(self.config(), handle, indent=1)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, timeout: float = 90.0, attempts: int = 3) -> float:
        """Start Synapse and wait until its client API answers; returns the seconds that took.

        The first start picks free ports and makes fresh data; when a port was taken
        meanwhile (address in use) it tries again with new ports, ``attempts`` times in
        all. A later start (after stop() or kill()) is a restart: same ports, server name
        and data."""
        reason = synapse_available()
        if reason:
            raise RuntimeError(reason)
        if self.running():
            raise RuntimeError("Synapse is already running")
        started = time.monotonic()
        if self.start_seconds is not None:
            self._log_offset, self._stderr_offset = _size(self.log_path), _size(self.stderr_path)
            try:
                await self._run_until_ready(started + timeout)
            except _AddressInUse:
                raise RuntimeError(f"Synapse could not listen again on its ports:\n"
                                   f"{self.log_tail()}")
            return time.monotonic() - started
        for attempt in range(attempts):
            self._fresh_data()
            self.client_port, self._federation_port = free_ports(2)
            self._write_config()
            try:
                await self._run_until_ready(started + timeout)
            except _AddressInUse:
                if attempt + 1 == attempts:
                    raise RuntimeError(f"Synapse could not listen ({attempts} tries):\n"
                                       f"{self.log_tail()}")
                continue
            self.start_seconds = time.monotonic() - started
            return self.start_seconds
        raise AssertionError("unreachable")

    def _fresh_data(self) -> None:
        """A new run: the database and media of a failed attempt (another server name) go."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(self.database_path + suffix):
                os.remove(self.database_path + suffix)
        if os.path.isdir(self.media_path):
            shutil.rmtree(self.media_path)
        self._log_offset = _size(self.log_path)
        self._stderr_offset = _size(self.stderr_path)

    async def _run_until_ready(self, deadline: float) -> None:
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        with open(self.stderr_path, "ab") as stderr:
            # cwd is the data directory: `-m` puts cwd first on sys.path, and the repo root
            # holds packages (federation, storage, ...) that must not shadow Synapse's imports.
            self.process = subprocess.Popen(
                [SYNAPSE_PYTHON, "-m", "synapse.app.homeserver", "-c", self.config_path],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env, cwd=self.directory,
                preexec_fn=_die_with_parent)
        pool = HTTPConnectionPool(reactor, persistent=False)
        try:
            while True:
                if self.process.poll() is not None:
                    text = self._run_output()
                    if any(marker in text for marker in _ADDRESS_IN_USE):
                        raise _AddressInUse()
                    raise RuntimeError(f"Synapse exited with {self.process.returncode} while "
                                       f"starting:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"Synapse did not answer in time:\n{self.log_tail()}")
                if await self._answers(pool):
                    return
                await sleep(0.1)
        finally:
            await pool.closeCachedConnections()

    async def _answers(self, pool: HTTPConnectionPool) -> bool:
        try:
            response = await treq.get(self.client_url + "/_matrix/client/versions", pool=pool,
                                      timeout=5)
            await response.content()
            return response.code == 200
        except Exception:
            return False

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit status."""
        await self._close_client()
        if self.process is None:
            raise RuntimeError("Synapse was not started")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                await sleep(0.05)
            if self.process.poll() is None:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cleanup(self) -> defer.Deferred:
        """For ``addCleanup``: kills Synapse if it still runs and closes the HTTP client.
        The directory is left to trial (``_trial_temp``)."""
        self.kill()
        return defer.ensureDeferred(self._close_client())

    async def _close_client(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- logs and resources ----------------------------------------------------------------

    def log_text(self) -> str:
        """Synapse's log (every run in this directory)."""
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf8", errors="replace") as handle:
            return handle.read()

    def stderr_text(self) -> str:
        if not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, encoding="utf8", errors="replace") as handle:
            return handle.read()

    def _run_output(self) -> str:
        """The log and stderr of the current run only."""
        parts = []
        runs = ((self.log_path, self._log_offset), (self.stderr_path, self._stderr_offset))
        for path, offset in runs:
            if os.path.exists(path):
                with open(path, encoding="utf8", errors="replace") as handle:
                    handle.seek(offset)
                    parts.append(handle.read())
        return "\n".join(parts)

    def log_tail(self, lines: int = 40) -> str:
        log = self.log_text().splitlines()[-lines:]
        stderr = self.stderr_text().splitlines()[-lines:]
        return ("--- homeserver.log (tail) ---\n" + "\n".join(log) +
                "\n--- stderr (tail) ---\n" + "\n".join(stderr))

    def cpu_seconds(self) -> float:
        """User + system CPU time of the running process so far."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- client API helpers ----------------------------------------------------------------

    async def request(self, method: str, path: str, body: Any = None, **kwargs):
        """(status, parsed body) from the client listener; see ``HttpClient.request``."""
        return await self.client.request(method, path, body, **kwargs)

    async def register(self, localpart: str, password: str = DEFAULT_PASSWORD, *,
                       admin: bool = False) -> tuple[str, str]:
        """A new account; returns (user_id, access_token). ``admin=True`` registers a server
        admin through ``/_synapse/admin/v1/register`` with the shared secret."""
        if admin:
            return await self._register_admin(localpart, password)
        body = {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"},
                "inhibit_login": False}
        status, result = await self.request("POST", "/_matrix/client/v3/register", body)
        if status == 401 and isinstance(result, dict) and "session" in result:
            body["auth"]["session"] = result["session"]
            status, result = await self.request("POST", "/_matrix/client/v3/register", body)
        if status != 200:
            raise RuntimeError(f"Synapse register {localpart}: {status} {result}")
        return result["user_id"], result["access_token"]

    async def _register_admin(self, localpart: str, password: str) -> tuple[str, str]:
        status, result = await self.request("GET", "/_synapse/admin/v1/register")
        if status != 200:
            raise RuntimeError(f"Synapse admin register nonce: {status} {result}")
        nonce = result["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin"]))
        status, result = await self.request("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce, "username": localpart, "password": password, "admin": True,
            "mac": mac.hexdigest()})
        if status != 200:
            raise RuntimeError(f"Synapse admin register {localpart}: {status} {result}")
        return result["user_id"], result["access_token"]

    async def federation_get(self, path: str) -> tuple[int, Any]:
        """GET on the TLS federation listener without verifying its certificate (unsigned,
        so only for unauthenticated endpoints such as ``/_matrix/key/v2/server`` and
        ``/_matrix/federation/v1/version``)."""
        pool = HTTPConnectionPool(reactor, persistent=False)
        try:
            agent = Agent(reactor, contextFactory=TrustAnything(), pool=pool)
            response = await treq.get(self.federation_url + path, agent=agent, timeout=30)
            content = await response.content()
        finally:
            await pool.closeCachedConnections()
        try:
            return response.code, json.loads(content)
        except ValueError:
            return response.code, content

    async def server_keys(self) -> dict:
        status, body = await self.federation_get("/_matrix/key/v2/server")
        if status != 200:
            raise RuntimeError(f"Synapse /_matrix/key/v2/server: {status} {body}")
        return body


class _AddressInUse(Exception):
    pass


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0
