"""Configuration: defaults, TOML, environment overrides, and refusals that name the key."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial import unittest

from homeserver.config import ConfigError, load_config, render_markdown, render_toml

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


class ConfigTests(unittest.TestCase):
    def write(self, text: str) -> str:
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "drocsid.toml")
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_defaults_of_the_design_contract(self):
        config = load_config(None, environ={})
        self.assertEqual(config.instance.domain, "localhost:8008")
        self.assertEqual(config.instance.name, "Drocsid")
        self.assertEqual((config.server.host, config.server.port), ("127.0.0.1", 8008))
        self.assertEqual(config.server.public_baseurl, "http://localhost:8008")
        self.assertEqual((config.federation.enabled, config.federation.host, config.federation.port),
                         (True, "0.0.0.0", 8448))
        self.assertTrue(config.federation.verify_certificates)
        self.assertEqual(config.federation.ip_range_allowlist, [])
        self.assertEqual(config.database.max_connections, 20)
        self.assertEqual(config.redis.url, "")
        self.assertEqual(config.media.max_upload_bytes, 50 * 1024 * 1024)
        self.assertEqual(config.appservice.config_files, [])
        self.assertEqual(config.data_dir, (Path.cwd() / "data").resolve())
        self.assertEqual(config.database_url, f"sqlite:///{config.data_dir / 'drocsid.db'}")
        self.assertEqual(config.media_path, config.data_dir / "media")

    def test_file_and_environment(self):
        path = self.write('data_dir = "state"\n[instance]\ndomain = "example.org"\n[server]\nport = 9000\n'
                          '[database]\nurl = "sqlite:///db/x.db"\n')
        config = load_config(path, environ={"DROCSID__SERVER__PORT": "8010",
                                            "DROCSID__FEDERATION__IP_RANGE_ALLOWLIST": "127.0.0.0/8, ::1/128",
                                            "DROCSID__FEDERATION__VERIFY_CERTIFICATES": "false",
                                            "DROCSID__SERVER__SHUTDOWN_GRACE_SECS": "2.5",
                                            "OTHER": "ignored"})
        base = Path(path).resolve().parent
        self.assertEqual(config.server_name, "example.org")
        self.assertEqual(config.server.port, 8010)
        self.assertEqual(config.federation.ip_range_allowlist, ["127.0.0.0/8", "::1/128"])
        self.assertFalse(config.federation.verify_certificates)
        self.assertEqual(config.server.shutdown_grace_secs, 2.5)
        self.assertEqual(config.data_dir, base / "state")
        self.assertEqual(config.database_url, f"sqlite:///{base / 'db/x.db'}")

    def test_json_list_in_environment(self):
        config = load_config(None, environ={"DROCSID__APPSERVICE__CONFIG_FILES": '["a.yaml", "b.yaml"]',
                                            "DROCSID__DATA_DIR": "/srv/drocsid"})
        self.assertEqual(config.appservice.config_files, ["a.yaml", "b.yaml"])
        self.assertEqual(config.data_dir, Path("/srv/drocsid"))

    def assertRefused(self, fragment: str, text: str | None = None, environ: dict | None = None):
        path = self.write(text) if text is not None else None
        with self.assertRaises(ConfigError) as caught:
            load_config(path, environ=environ or {})
        self.assertIn(fragment, str(caught.exception))

    def test_unknown_keys_are_named(self):
        self.assertRefused("server.prot", "[server]\nprot = 1\n")
        self.assertRefused("unknown configuration key nonsense", "[nonsense]\nx = 1\n")
        self.assertRefused("server.colour", environ={"DROCSID__SERVER__COLOUR": "red"})
        self.assertRefused("frobnicate", environ={"DROCSID__FROBNICATE": "1"})

    def test_ill_typed_values_are_named(self):
        self.assertRefused("server.port must be an integer", '[server]\nport = "8008"\n')
        self.assertRefused("federation.enabled must be true or false", "[federation]\nenabled = 1\n")
        self.assertRefused("federation.ip_range_allowlist must be a list", '[federation]\nip_range_allowlist = "x"\n')
        self.assertRefused("server.port", environ={"DROCSID__SERVER__PORT": "eighty"})
        self.assertRefused("federation.enabled", environ={"DROCSID__FEDERATION__ENABLED": "maybe"})
        self.assertRefused("logging.level", '[logging]\nlevel = "loud"\n')
        self.assertRefused("server.port", "[server]\nport = 70000\n")
        self.assertRefused("server must be a table", "server = 5\n")
        self.assertRefused("not valid TOML", "[server\n")

    def test_missing_file_is_reported(self):
        with self.assertRaises(ConfigError) as caught:
            load_config("/nonexistent/drocsid.toml", environ={})
        self.assertIn("/nonexistent/drocsid.toml does not exist", str(caught.exception))

    def test_generated_file_loads_back_with_the_same_values(self):
        path = self.write(render_toml("chat.example.org", "./data"))
        config = load_config(path, environ={})
        defaults = load_config(None, environ={})
        self.assertEqual(config.server_name, "chat.example.org")
        for section in ("server", "federation", "database", "auth", "limits", "media", "livekit"):
            self.assertEqual(vars(getattr(config, section)), vars(getattr(defaults, section)), section)

    def test_documentation_lists_every_key(self):
        text = DOCS.read_text()
        begin, end = "<!-- BEGIN GENERATED -->\n", "<!-- END GENERATED -->"
        generated = text[text.index(begin) + len(begin):text.index(end)]
        self.assertEqual(generated.strip(), render_markdown().strip(),
                         "docs/configuration.md is stale: regenerate it from homeserver.config.render_markdown()")
