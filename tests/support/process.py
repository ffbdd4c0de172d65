"""A homeserver in its own process (``python -m homeserver run``), for tests that restart,
kill or signal it. It listens on a free port, which it reports in its JSON log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from twisted.internet import reactor
from twisted.internet.task import deferLater

from tests.support.server import write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


def run_cli(*args: str, stdin: str | None = None, env: dict | None = None, cwd: str = ROOT,
            timeout: float = 60):
    """Run the ``drocsid`` command line; returns (exit status, stdout, stderr)."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "homeserver", *args], input=stdin, capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


class HomeserverProcess:
    def __init__(self, directory: str, database_url: str, overrides: dict | None = None):
        self.directory = directory
        self.log_path = os.path.join(directory, "homeserver.log")
        settings = {"logging": {"level": "info", "file": self.log_path}}
        for section, values in (overrides or {}).items():
            settings.setdefault(section, {}).update(values)
        self.config_path = write_config(directory, database_url, settings)
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._log_offset = 0
        self.stderr_path = os.path.join(directory, "stderr.txt")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> float:
        """Start and wait until it listens; returns the seconds that took."""
        started = time.monotonic()
        if os.path.exists(self.log_path):
            self._log_offset = os.path.getsize(self.log_path)
        env = {**os.environ, "PYTHONPATH": ROOT}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeserver", "run", "--config", self.config_path],
            stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "a"), env=env, cwd=self.directory)
        while time.monotonic() - started < timeout:
            for record in self.log_records():
                if record.get("event") == "listening":
                    self.port = record["port"]
                    return time.monotonic() - started
            if self.process.poll() is not None:
                raise RuntimeError(f"homeserver exited with {self.process.returncode}: {self.stderr()}")
            await sleep(0.02)
        raise RuntimeError(f"homeserver did not start in {timeout}s: {self.stderr()}")

    def log_records(self) -> list[dict]:
        """Log lines of the current run, parsed."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as handle:
            handle.seek(self._log_offset)
            lines = handle.read().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def log_text(self) -> str:
        with open(self.log_path) as handle:
            return handle.read()

    def stderr(self) -> str:
        with open(self.stderr_path) as handle:
            return handle.read()

    async def wait_exit(self, timeout: float = 30.0) -> int:
        started = time.monotonic()
        while self.process.poll() is None:
            if time.monotonic() - started > timeout:
                self.process.kill()
                raise RuntimeError("homeserver did not exit in time")
            await sleep(0.02)
        return self.process.returncode

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0
