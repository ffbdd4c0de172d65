"""Drocsid statuses on Matrix presence, both ways (homeserver.drocsid.presence)."""

from __future__ import annotations

from twisted.trial import unittest

from homeserver.drocsid.presence import STATUSES, from_matrix_presence, to_matrix_presence


class PresenceMappingTest(unittest.TestCase):
    def test_round_trips(self):
        for status in ("online", "idle", "dnd"):
            for custom in (None, "at lunch", "dnd", "dnd:later", "\\slash", "\\dnd"):
                self.assertEqual(from_matrix_presence(*to_matrix_presence(status, custom)), (status, custom))

    def test_matrix_sees_plain_presence(self):
        self.assertEqual(to_matrix_presence("idle", None), ("unavailable", None))
        self.assertEqual(to_matrix_presence("dnd", "focus"), ("unavailable", "dnd:focus"))
        # Invisible is offline to everyone, custom status included.
        self.assertEqual(to_matrix_presence("invisible", "secret"), ("offline", None))
        self.assertEqual(from_matrix_presence("offline", "anything"), ("offline", None))

    def test_statuses(self):
        self.assertEqual(STATUSES, ("online", "idle", "dnd", "invisible"))
