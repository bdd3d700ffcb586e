"""The address rules, by themselves: every resolved address checked, IPv4 and IPv6, and the
attempt's target is the address that was checked (Host and TLS name kept)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from standardwebhooks.webhooks import Webhook

from kalimera.webhooks import address
from kalimera.webhooks.signing import new_secret, signature_header


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("192.0.32.10", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.1.1", False),
        ("224.0.0.251", False),
        ("255.255.255.255", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not a bind
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fe80::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 of a loopback: not global
    ],
)
def test_public_addresses_are_told_from_the_rest(ip: str, public: bool) -> None:
    assert address.is_public(ipaddress.ip_address(ip)) is public


def test_a_name_is_checked_by_every_address_it_resolves_to_and_connected_by_the_checked_one() -> (
    None
):
    with pytest.raises(address.Refused, match="not public"):
        asyncio.run(address.check("https://localhost:8443/x?y=1", development=False))
    target = asyncio.run(address.check("http://localhost:8080/x?y=1", development=True))
    assert target.address.is_loopback
    assert target.connect_url in {
        "http://127.0.0.1:8080/x?y=1",
        "http://[::1]:8080/x?y=1",
    }
    assert target.host_header == "localhost:8080"
    v6 = asyncio.run(address.check("https://[2606:4700:4700::1111]/h", development=False))
    assert v6.connect_url == "https://[2606:4700:4700::1111]:443/h"
    assert v6.host_header == "[2606:4700:4700::1111]"


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(address.Refused, match="does not resolve"):
        asyncio.run(address.check("https://no-such-host.invalid/", development=False))


def test_signatures_verify_with_the_reference_library() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"webhook.test","timestamp":"2026-12-01T00:00:00Z","data":{}}'
    import time

    stamp = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature_header([new, old], "msg_1", stamp, body),
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)
