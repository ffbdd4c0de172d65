"""An in-process homeserver on a real TCP listener (port 0) and an HTTP client for it."""

from __future__ import annotations

import functools
import json
import os
from typing import Any
from urllib.parse import quote, urlencode

import treq
from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.databases import TestDatabase

# Cheap password hashing and generous limits: tests register many users quickly.
# Tests of the limits themselves set their own.
TEST_SETTINGS: dict[str, dict[str, Any]] = {
    "instance": {"domain": "test.local"},
    "server": {"host": "127.0.0.1", "port": 0, "public_baseurl": "http://127.0.0.1"},
    "federation": {"enabled": False},
    "auth": {"password_hash_time_cost": 1, "password_hash_memory_kib": 1024,
             "password_hash_parallelism": 1},
    "limits": {"login_per_second": 1000.0, "login_burst": 1000, "login_failures_per_second": 1000.0,
               "login_failures_burst": 1000, "register_per_second": 1000.0, "register_burst": 1000,
               "message_send_per_second": 1000.0, "message_send_burst": 1000},
    "logging": {"level": "warn"},
}


def inline(func):
    """Let trial run an ``async def`` test (or setUp) by returning a Deferred."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return defer.ensureDeferred(func(*args, **kwargs))
    return wrapper


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def write_config(directory: str, database_url: str, overrides: dict | None = None) -> str:
    settings = {section: dict(values) for section, values in TEST_SETTINGS.items()}
    settings.setdefault("database", {})["url"] = database_url
    for section, values in (overrides or {}).items():
        settings.setdefault(section, {}).update(values)
    lines = [f"data_dir = {_toml(os.path.join(directory, 'data'))}"]
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    path = os.path.join(directory, "drocsid.toml")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


class HttpClient:
    """JSON over real HTTP, returning (status, body) with the body parsed when it is JSON."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.last_headers = None

    async def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                      raw: bytes | None = None, query: dict | None = None, headers: dict | None = None):
        url = self.base_url + path
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        all_headers = {"Content-Type": ["application/json"]}
        if token is not None:
            all_headers["Authorization"] = [f"Bearer {token}"]
        for name, value in (headers or {}).items():
            all_headers[name] = [value]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        response = await treq.request(method, url, data=data, headers=all_headers, pool=self.pool)
        content = await response.content()
        self.last_headers = response.headers
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = content
        return response.code, parsed

    async def close(self) -> None:
        await self.pool.closeCachedConnections()


def user_path(user_id: str) -> str:
    return quote(user_id, safe="")


class HomeserverTestCase(unittest.TestCase):
    """Starts a homeserver for each test on ``engine`` (sqlite or postgres)."""

    engine = "sqlite"
    config_overrides: dict = {}

    @inline
    async def setUp(self):
        self.tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(self.tmpdir)
        self.database = TestDatabase(self.engine, self.tmpdir)
        self.addCleanup(self.database.drop)
        self.config_path = write_config(self.tmpdir, self.database.url, self.config_overrides)
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))

    async def request(self, method: str, path: str, body: Any = None, **kwargs):
        return await self.client.request(method, path, body, **kwargs)

    async def register(self, username: str, password: str = "correct horse battery", **extra) -> dict:
        status, body = await self.request("POST", "/_matrix/client/v3/register",
                                          {"username": username, "password": password,
                                           "auth": {"type": "m.login.dummy"}, **extra})
        self.assertEqual(status, 200, body)
        return body

    async def login(self, username: str, password: str = "correct horse battery", **extra):
        return await self.request("POST", "/_matrix/client/v3/login",
                                  {"type": "m.login.password",
                                   "identifier": {"type": "m.id.user", "user": username},
                                   "password": password, **extra})

    def assertMatrixError(self, result, status: int, errcode: str):
        got_status, body = result
        self.assertEqual(got_status, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("errcode"), errcode, body)
        self.assertIsInstance(body.get("error"), str, body)
