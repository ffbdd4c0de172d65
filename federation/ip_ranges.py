"""Which IP addresses outbound federation may connect to: a deny list of CIDRs with an
allow list of exceptions. Pure: the caller resolves names and asks about each address."""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _networks(cidrs: Iterable[str]) -> list[Network]:
    # strict=False: "10.1.2.3/8" names the network it lies in rather than being an error.
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs]


def _forms(address: Address) -> list[Address]:
    """The address and, for an IPv4-mapped IPv6 one (::ffff:a.b.c.d), the IPv4 address
    it reaches: a deny list of IPv4 ranges must not be bypassed by writing it in IPv6."""
    forms: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        forms.append(address.ipv4_mapped)
    return forms


class IpRangeFilter:
    def __init__(self, deny: Iterable[str], allow: Iterable[str]):
        self._deny = _networks(deny)
        self._allow = _networks(allow)

    def allows(self, ip: str) -> bool:
        """Whether connecting to ``ip`` is permitted. Unparseable addresses are refused."""
        try:
            # A scope (fe80::1%eth0) does not change which range the address is in.
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        forms = _forms(address)
        # Connecting to the unspecified address reaches this host; never allowed.
        if any(form.is_unspecified for form in forms):
            return False
        if any(form in network for form in forms for network in self._allow):
            return True
        return not any(form in network for form in forms for network in self._deny)
