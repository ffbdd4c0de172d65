"""Application-service registration files: parsing, validation messages, uniqueness, and
loading the files a configuration names (pure: no server)."""

from __future__ import annotations

import os

from twisted.trial import unittest

from appservice.loading import exclusive_owner, load_registrations, registration_for_token
from appservice.registration import RegistrationError, check_unique, parse_registration_text
from homeserver.config import load_config

SERVER = "test.local"

GOOD = """
id: bridge
url: http://127.0.0.1:29300
as_token: as-secret
hs_token: hs-secret
sender_localpart: bridgebot
rate_limited: false
namespaces:
  users:
    - regex: '@_bridge_.*:test\\.local'
      exclusive: true
    - regex: '@shared_.*:test\\.local'
      exclusive: false
  aliases:
    - regex: '#_bridge_.*:test\\.local'
      exclusive: true
  rooms: []
"""


def registration_text(**changes) -> str:
    """GOOD with top-level keys replaced (None removes the key)."""
    lines = GOOD.strip().splitlines()
    out = []
    skipping = False
    for line in lines:
        key = line.split(":", 1)[0]
        if not line.startswith(" ") and key in changes:
            skipping = key == "namespaces"
            value = changes[key]
            if value is not None:
                out.append(f"{key}: {value}")
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


class ParseTests(unittest.TestCase):
    def test_a_good_registration(self):
        reg = parse_registration_text(GOOD, SERVER, "bridge.yaml")
        self.assertEqual((reg.id, reg.url, reg.as_token, reg.hs_token), ("bridge", "http://127.0.0.1:29300",
                                                                          "as-secret", "hs-secret"))
        self.assertEqual(reg.sender, "@bridgebot:test.local")
        self.assertFalse(reg.rate_limited)
        self.assertTrue(reg.is_user_in_namespace("@_bridge_alice:test.local"))
        self.assertTrue(reg.is_user_in_namespace("@bridgebot:test.local"))
        self.assertFalse(reg.is_user_in_namespace("@alice:test.local"))
        # Regexes match the whole ID.
        self.assertFalse(reg.is_user_in_namespace("@_bridge_alice:test.local.evil"))
        self.assertTrue(reg.claims_user("@_bridge_x:test.local"))
        self.assertFalse(reg.claims_user("@shared_x:test.local"))
        self.assertTrue(reg.is_user_in_namespace("@shared_x:test.local"))
        self.assertTrue(reg.claims_alias("#_bridge_room:test.local"))

    def test_rate_limited_defaults_to_true_and_url_may_be_null(self):
        reg = parse_registration_text(registration_text(rate_limited=None, url="null"), SERVER, "r.yaml")
        self.assertTrue(reg.rate_limited)
        self.assertIsNone(reg.url)

    def test_receive_to_device_from_either_key(self):
        self.assertFalse(parse_registration_text(GOOD, SERVER, "r.yaml").receive_to_device)
        for key in ("receive_to_device", "org.matrix.msc2409.push_to_device"):
            reg = parse_registration_text(GOOD + f"{key}: true\n", SERVER, "r.yaml")
            self.assertTrue(reg.receive_to_device, key)
            reg = parse_registration_text(GOOD + f"{key}: false\n", SERVER, "r.yaml")
            self.assertFalse(reg.receive_to_device, key)
        # The stable key wins when both are given.
        both = GOOD + "receive_to_device: false\norg.matrix.msc2409.push_to_device: true\n"
        self.assertFalse(parse_registration_text(both, SERVER, "r.yaml").receive_to_device)

    def test_receive_to_device_must_be_a_boolean(self):
        for key in ("receive_to_device", "org.matrix.msc2409.push_to_device"):
            self.assertRefused(GOOD + f"{key}: 'yes'\n", key)
            self.assertRefused(GOOD + f"{key}: 1\n", key)

    def assertRefused(self, text: str, *fragments: str):
        with self.assertRaises(RegistrationError) as caught:
            parse_registration_text(text, SERVER, "/etc/drocsid/bridge.yaml")
        message = str(caught.exception)
        self.assertIn("/etc/drocsid/bridge.yaml", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_missing_or_bad_fields_are_named(self):
        for key in ("id", "as_token", "hs_token", "sender_localpart"):
            self.assertRefused(registration_text(**{key: None}), key)
            self.assertRefused(registration_text(**{key: "''"}), key)
        self.assertRefused(registration_text(url=None), "url")
        self.assertRefused(registration_text(url="ftp://x"), "url")
        self.assertRefused(registration_text(sender_localpart="'Bad Bot'"), "sender_localpart")
        self.assertRefused(registration_text(rate_limited="'no'"), "rate_limited")
        self.assertRefused("id: [unclosed\n", "YAML")
        self.assertRefused("- a list\n", "mapping")

    def test_bad_namespaces_are_named(self):
        self.assertRefused(registration_text(namespaces="{users: [{regex: '@a(', exclusive: true}]}"),
                           "namespaces.users[0]", "regex")
        self.assertRefused(registration_text(namespaces="{users: [{exclusive: true}]}"), "namespaces.users[0]")
        self.assertRefused(registration_text(namespaces="{users: [{regex: '@a.*', exclusive: 'yes'}]}"),
                           "exclusive")
        self.assertRefused(registration_text(namespaces="{users: 'x'}"), "namespaces.users")
        self.assertRefused(registration_text(namespaces="{people: []}"), "people")

    def test_ids_and_tokens_must_be_unique(self):
        first = parse_registration_text(GOOD, SERVER, "one.yaml")
        for key, value in (("id", "bridge"), ("as_token", "as-secret"), ("hs_token", "hs-secret"),
                           ("sender_localpart", "bridgebot")):
            fields = {"id": "other", "as_token": "as-2", "hs_token": "hs-2", "sender_localpart": "otherbot"}
            fields[key] = value
            second = parse_registration_text(registration_text(**fields), SERVER, "two.yaml")
            with self.assertRaises(RegistrationError) as caught:
                check_unique([first, second])
            self.assertIn("two.yaml", str(caught.exception))
            self.assertIn("one.yaml", str(caught.exception))
        distinct = parse_registration_text(registration_text(id="other", as_token="as-2", hs_token="hs-2",
                                                             sender_localpart="otherbot"), SERVER, "two.yaml")
        check_unique([first, distinct])
        self.assertIs(registration_for_token([first, distinct], "as-2"), distinct)
        self.assertIsNone(registration_for_token([first, distinct], "as-3"))
        self.assertIs(exclusive_owner([first, distinct], "@_bridge_x:test.local"), first)
        self.assertIsNone(exclusive_owner([first, distinct], "@shared_x:test.local"))


class LoadTests(unittest.TestCase):
    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.directory, "appservices"))

    def config(self, files: list[str]):
        path = os.path.join(self.directory, "drocsid.toml")
        with open(path, "w") as handle:
            handle.write('[instance]\ndomain = "test.local"\n[appservice]\nconfig_files = '
                         + "[" + ", ".join(f'"{f}"' for f in files) + "]\n")
        return load_config(path, environ={})

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_relative_paths_are_read_from_the_config_folder(self):
        self.write("appservices/bridge.yaml", GOOD)
        absolute = self.write("other.yaml", registration_text(id="other", as_token="a2", hs_token="h2",
                                                             sender_localpart="otherbot"))
        registrations = load_registrations(self.config(["appservices/bridge.yaml", absolute]))
        self.assertEqual([r.id for r in registrations], ["bridge", "other"])
        self.assertEqual(registrations[0].source, os.path.join(self.directory, "appservices/bridge.yaml"))
        self.assertEqual(load_registrations(self.config([])), [])

    def test_a_missing_file_is_named(self):
        with self.assertRaises(RegistrationError) as caught:
            load_registrations(self.config(["appservices/missing.yaml"]))
        self.assertIn(os.path.join(self.directory, "appservices/missing.yaml"), str(caught.exception))
        self.assertIn("does not exist", str(caught.exception))

    def test_an_invalid_file_is_named_with_its_field(self):
        self.write("appservices/bad.yaml", registration_text(hs_token=None))
        with self.assertRaises(RegistrationError) as caught:
            load_registrations(self.config(["appservices/bad.yaml"]))
        message = str(caught.exception)
        self.assertIn("invalid application service registration", message)
        self.assertIn(os.path.join(self.directory, "appservices/bad.yaml"), message)
        self.assertIn("hs_token", message)

    def test_duplicates_across_files_are_refused(self):
        self.write("a.yaml", GOOD)
        self.write("b.yaml", registration_text(hs_token="h2", sender_localpart="otherbot", id="b"))
        with self.assertRaises(RegistrationError) as caught:
            load_registrations(self.config(["a.yaml", "b.yaml"]))
        self.assertIn("as_token", str(caught.exception))
        self.assertIn("b.yaml", str(caught.exception))
