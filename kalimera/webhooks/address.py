"""Where a webhook may go: in production ``https`` to a host whose every address is public (no
loopback, private, link-local, shared, multicast or reserved range, IPv4 or IPv6); in development
``http`` and local addresses too, so a receiver on the same machine works.

Checked at create and at every attempt, and the attempt connects to an address that was checked
(``Target.address``), so a name that resolves elsewhere between the check and the connection
(DNS rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from kalimera.errors import invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


RESOLVE_SECONDS = 5.0  # a name that takes longer to resolve is refused (an attempt retries it)


class Refused(Exception):
    """The URL, or an address its host resolves to, is not one a webhook may go to."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for there."""

    scheme: str
    host: str  # as the URL writes it: the Host header and the TLS server name
    port: int
    path: str  # with its query
    address: IPAddress

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host."""
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{ip}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is on the public internet (an IPv4-mapped IPv6 address by its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def parse(url: str, *, development: bool) -> tuple[str, str, int, str]:
    """Scheme, host, port and path of ``url``; ``Refused`` when it is not one a webhook takes."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        msg = "not a valid URL"
        raise Refused(msg) from None
    allowed = ("https", "http") if development else ("https",)
    if parts.scheme not in allowed:
        raise Refused("must be https" if not development else "must be http or https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        msg = "must name a host, without credentials"
        raise Refused(msg)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (itself when it is one)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except (OSError, TimeoutError):
        msg = f"{host} does not resolve"
        raise Refused(msg) from None
    found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not found:
        msg = f"{host} does not resolve"
        raise Refused(msg)
    return found


async def check(url: str, *, development: bool) -> Target:
    """The target to connect to; ``Refused`` unless every address of the host is allowed."""
    scheme, host, port, path = parse(url, development=development)
    addresses = await resolve(host, port)
    if not development:
        private = [str(a) for a in addresses if not is_public(a)]
        if private:
            msg = f"{host} resolves to an address that is not public ({', '.join(private)})"
            raise Refused(msg)
    return Target(scheme, host, port, path, addresses[0])


async def check_for_api(url: str, *, development: bool) -> None:
    """``check`` for a URL a client sent: 422 naming the field when it is refused."""
    try:
        await check(url, development=development)
    except Refused as exc:
        raise invalid(["body", "url"], str(exc)) from None
