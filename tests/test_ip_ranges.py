"""The outbound IP filter: deny ranges, allow exceptions, IPv4-mapped IPv6."""

from __future__ import annotations

from twisted.trial import unittest

from federation.ip_ranges import IpRangeFilter
from homeserver.config import SCHEMA

DEFAULT_DENY = SCHEMA["federation"]["ip_range_denylist"].default


class IpRangeFilterTests(unittest.TestCase):
    def test_default_deny_list_refuses_private_and_allows_public(self):
        ranges = IpRangeFilter(DEFAULT_DENY, [])
        for private in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "224.0.0.1", "::1", "fe80::1", "fd00::1",
                        "ff02::1"):
            self.assertFalse(ranges.allows(private), private)
        for public in ("8.8.8.8", "1.1.1.1", "172.32.0.1", "2001:4860:4860::8888"):
            self.assertTrue(ranges.allows(public), public)

    def test_allow_list_makes_exceptions(self):
        ranges = IpRangeFilter(["127.0.0.0/8", "10.0.0.0/8"], ["127.0.0.1/32"])
        self.assertTrue(ranges.allows("127.0.0.1"))
        self.assertFalse(ranges.allows("127.0.0.2"))
        self.assertFalse(ranges.allows("10.0.0.1"))

    def test_unspecified_addresses_are_always_refused(self):
        ranges = IpRangeFilter([], ["0.0.0.0/0", "::/0"])
        for unspecified in ("0.0.0.0", "::", "::ffff:0.0.0.0"):
            self.assertFalse(ranges.allows(unspecified), unspecified)

    def test_ipv4_mapped_ipv6_is_checked_as_ipv4(self):
        ranges = IpRangeFilter(["127.0.0.0/8"], [])
        self.assertFalse(ranges.allows("::ffff:127.0.0.1"))
        self.assertTrue(ranges.allows("::ffff:8.8.8.8"))
        allowed = IpRangeFilter(["127.0.0.0/8"], ["127.0.0.1/32"])
        self.assertTrue(allowed.allows("::ffff:127.0.0.1"))

    def test_ipv6_deny_ranges_do_not_touch_ipv4(self):
        ranges = IpRangeFilter(["::/0"], [])
        self.assertTrue(ranges.allows("8.8.8.8"))
        self.assertFalse(ranges.allows("2001:db8::1"))

    def test_scoped_and_invalid_addresses(self):
        ranges = IpRangeFilter(["fe80::/10"], [])
        self.assertFalse(ranges.allows("fe80::1%eth0"))
        for junk in ("", "example.org", "999.1.1.1", "1.2.3"):
            self.assertFalse(ranges.allows(junk), junk)

    def test_host_bits_in_a_cidr_are_tolerated(self):
        self.assertFalse(IpRangeFilter(["10.1.2.3/8"], []).allows("10.200.0.1"))
