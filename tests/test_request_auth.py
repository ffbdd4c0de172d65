"""X-Matrix request signing and header parsing (pure)."""

from __future__ import annotations

from signedjson.key import generate_signing_key, get_verify_key
from twisted.trial import unittest

from federation.request_auth import (RequestAuthError, authorization_header, parse_authorization,
                                     verify_request)


class RequestAuthTests(unittest.TestCase):
    def setUp(self):
        self.key = generate_signing_key("k1")
        self.verify_key = get_verify_key(self.key)

    def test_round_trip_with_and_without_content(self):
        for content in (None, {"pdus": [], "edus": [{"edu_type": "m.typing"}]}):
            header = authorization_header("PUT", "/_matrix/federation/v1/send/1?x=y", "a.example", "b.example",
                                          self.key, content)
            self.assertTrue(header.startswith('X-Matrix origin="a.example",destination="b.example",key="ed25519:k1"'))
            parsed = parse_authorization(header)
            self.assertEqual((parsed.origin, parsed.destination, parsed.key), ("a.example", "b.example", "ed25519:k1"))
            verify_request(parsed, "PUT", "/_matrix/federation/v1/send/1?x=y", "b.example", self.verify_key, content)

    def test_tampering_is_refused(self):
        header = parse_authorization(authorization_header("GET", "/_matrix/federation/v1/version", "a.example",
                                                          "b.example", self.key))
        for method, uri, content in (("POST", "/_matrix/federation/v1/version", None),
                                     ("GET", "/_matrix/federation/v1/other", None),
                                     ("GET", "/_matrix/federation/v1/version", {"x": 1})):
            with self.assertRaises(RequestAuthError):
                verify_request(header, method, uri, "b.example", self.verify_key, content)
        with self.assertRaises(RequestAuthError):
            verify_request(header, "GET", "/_matrix/federation/v1/version", "c.example", self.verify_key)
        other = get_verify_key(generate_signing_key("k1"))
        with self.assertRaises(RequestAuthError):
            verify_request(header, "GET", "/_matrix/federation/v1/version", "b.example", other)

    def test_lenient_parsing_as_the_spec_allows(self):
        parsed = parse_authorization('X-Matrix  Origin=a.example:8448 , key="ed25519:k1",\tsig="c2ln",'
                                     'destination="b.ex\\"ample"')
        self.assertEqual((parsed.origin, parsed.key, parsed.sig, parsed.destination),
                         ("a.example:8448", "ed25519:k1", "c2ln", 'b.ex"ample'))
        # Older servers send no destination; it is then taken to be us.
        legacy = parse_authorization('X-Matrix origin="a.example",key="ed25519:k1",sig="x"')
        self.assertIsNone(legacy.destination)

    def test_malformed_headers(self):
        for bad in ("Bearer abc", "X-Matrix", 'X-Matrix origin="a",key="k"', 'X-Matrix origin="a,key="k",sig="s"',
                    "X-Matrix origin", 'X-Matrix key="k",sig="s"'):
            with self.assertRaises(RequestAuthError, msg=bad):
                parse_authorization(bad)
