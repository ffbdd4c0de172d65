"""The ``drocsid`` command line, run as a user would run it."""

from __future__ import annotations

import os
import socket

from twisted.trial import unittest

from homeserver import __version__
from tests.support.databases import TestDatabase
from tests.support.process import HomeserverProcess, run_cli
from tests.support.server import HttpClient, inline, write_config


class CliTests:
    engine = "sqlite"

    def setUp(self):
        self.tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(self.tmpdir)
        self.database = TestDatabase(self.engine, self.tmpdir)
        self.addCleanup(self.database.drop)
        self.config_path = write_config(self.tmpdir, self.database.url)

    def test_migrate_applies_then_reports_up_to_date(self):
        status, out, err = run_cli("migrate", "--config", self.config_path)
        self.assertEqual(status, 0, err)
        self.assertIn("applied 0001_accounts", out)
        self.assertIn("is now at schema version", out)
        status, out, err = run_cli("migrate", "--config", self.config_path)
        self.assertEqual(status, 0, err)
        self.assertIn("is up to date", out)
        self.assertNotIn("applied", out)

    @inline
    async def test_register_user_then_log_in_over_http(self):
        status, out, err = run_cli("register-user", "admin", "--admin", "--password", "a long password",
                                   "--config", self.config_path)
        self.assertEqual(status, 0, err)
        self.assertEqual(out.strip(), "registered @admin:test.local (admin)")
        status, out, err = run_cli("register-user", "@piped:test.local", "--config", self.config_path,
                                   stdin="piped password\n")
        self.assertEqual((status, out.strip()), (0, "registered @piped:test.local"), err)

        status, out, err = run_cli("register-user", "admin", "--password", "a long password",
                                   "--config", self.config_path)
        self.assertEqual(status, 1)
        self.assertEqual(err.strip(), "drocsid: @admin:test.local already exists")
        status, out, err = run_cli("register-user", "Bad Name", "--password", "a long password",
                                   "--config", self.config_path)
        self.assertEqual(status, 1)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertIn("User name may only contain", err)
        status, out, err = run_cli("register-user", "someone", "--password", "short", "--config", self.config_path)
        self.assertEqual((status, err.strip()), (1, "drocsid: password must be at least 8 characters"))

        server = HomeserverProcess(self.tmpdir, self.database.url)
        self.addCleanup(server.cleanup)
        await server.start()
        client = HttpClient(server.base_url)
        self.addCleanup(client.close)
        status, body = await client.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "user": "admin", "password": "a long password"})
        self.assertEqual((status, body.get("user_id")), (200, "@admin:test.local"), body)
        self.assertTrue((await self._is_admin("@admin:test.local")))
        self.assertEqual(await server.terminate(), 0)

    async def _is_admin(self, user_id):
        from twisted.internet import reactor

        from storage.database import DatabasePool
        from storage.stores.users import UserStore
        db = DatabasePool.from_url(reactor, self.database.url, 1)
        db.start()
        try:
            return (await UserStore(db).get_user(user_id)).admin
        finally:
            await db.close()


class CliSqliteTests(CliTests, unittest.TestCase):
    engine = "sqlite"


class CliPostgresTests(CliTests, unittest.TestCase):
    engine = "postgres"


class CliBasicsTests(unittest.TestCase):
    def test_version(self):
        status, out, err = run_cli("--version")
        self.assertEqual((status, out.strip()), (0, f"drocsid {__version__}"))

    def test_generate_config_writes_file_and_key_once(self):
        directory = os.path.abspath(self.mktemp())
        path = os.path.join(directory, "conf", "drocsid.toml")
        status, out, err = run_cli("generate-config", "--server-name", "chat.example.org", "--config", path,
                                   "--data-dir", "state")
        self.assertEqual(status, 0, err)
        self.assertIn(f"wrote configuration {path}", out)
        key_path = os.path.join(directory, "conf", "state", "signing.key")
        self.assertIn(f"generated signing key {key_path}", out)
        with open(key_path) as handle:
            algorithm, version, seed = handle.read().split()
        self.assertEqual(algorithm, "ed25519")
        self.assertTrue(version.startswith("a_"))
        self.assertEqual(os.stat(key_path).st_mode & 0o777, 0o600)
        with open(path) as handle:
            self.assertIn('domain = "chat.example.org"', handle.read())
        # And a self-signed pair for the federation listener, for the server's name.
        cert_path = os.path.join(directory, "conf", "state", "tls.crt")
        self.assertIn(f"generated self-signed federation certificate {cert_path}", out)
        from cryptography import x509
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("chat.example.org", names.get_values_for_type(x509.DNSName))
        self.assertTrue(os.path.exists(os.path.join(directory, "conf", "state", "tls.key")))
        status, out, err = run_cli("generate-config", "--server-name", "other", "--config", path)
        self.assertEqual(status, 1)
        self.assertEqual(err.strip(), f"drocsid: {path} already exists; not overwriting it")

    def test_run_refuses_a_bad_key_in_one_line(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "drocsid.toml")
        with open(path, "w") as handle:
            handle.write("[server]\nprot = 8008\n")
        status, out, err = run_cli("run", "--config", path)
        self.assertEqual((status, err.strip()), (1, "drocsid: unknown configuration key server.prot"))
        status, out, err = run_cli("run", "--config", path, env={"DROCSID__SERVER__PORT": "x"})
        self.assertEqual(status, 1)
        status, out, err = run_cli("run", "--config", os.path.join(directory, "missing.toml"))
        self.assertEqual(status, 1)
        self.assertIn("does not exist", err)

    def test_run_reports_a_busy_port_in_one_line(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        path = write_config(directory, f"sqlite:///{directory}/d.db", {"server": {"port": port}})
        status, out, err = run_cli("run", "--config", path)
        self.assertEqual(status, 1)
        self.assertEqual(err.strip().splitlines()[-1], err.strip())
        self.assertIn(f"cannot listen on 127.0.0.1:{port}", err)

    def test_run_reports_an_unreachable_database_in_one_line(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = write_config(directory, "postgres://postgres@127.0.0.1:1/nothing")
        status, out, err = run_cli("run", "--config", path)
        self.assertEqual(status, 1)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("cannot open the database at postgres://127.0.0.1:1/nothing", err)
        status, out, err = run_cli("run", "--config", path, env={"DROCSID__DATABASE__URL": "mysql://x/y"})
        self.assertEqual((status, err.strip()), (1, "drocsid: database.url must start with sqlite:/// or postgres://"))

    def test_first_run_without_configuration_makes_one(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        # A busy port makes the first run stop right after writing its files.
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        status, out, err = run_cli("run", cwd=directory,
                                   env={"DROCSID__SERVER__PORT": str(busy.getsockname()[1])})
        self.assertIn("wrote configuration drocsid.toml", out)
        self.assertTrue(os.path.exists(os.path.join(directory, "drocsid.toml")))
        self.assertTrue(os.path.exists(os.path.join(directory, "data", "signing.key")))
        self.assertTrue(os.path.exists(os.path.join(directory, "data", "drocsid.db")))
        self.assertEqual(status, 1)
