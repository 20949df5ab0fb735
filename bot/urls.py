"""The one policy for links people give the bot: which URLs it fetches, and how.

Every link, from every source (a message, `/transcribe`, a Discord option, the terminal),
passes here before anything is fetched or handed to AssemblyAI:

- http or https only, with a host, and no credentials in it (`user:password@`);
- the host is resolved once and every address it resolves to must be public: not
  loopback, private, link-local, CGNAT (100.64/10), multicast, reserved or unspecified,
  nor one of those inside an IPv6 address (IPv4-mapped, NAT64, 6to4, Teredo);
- the connection is made to an address that was checked: the session's resolver
  (`PublicResolver`) filters every lookup, so a name that resolves to a public address
  for the check and a private one for the connection (DNS rebinding) never connects;
- redirects are followed by hand, at most `MAX_REDIRECTS`, each hop checked again.

`ALLOW_PRIVATE_URLS=true` lifts the address check for installs that want internal hosts
(the tests, which serve media on loopback, set it); the form checks always apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.config import redact_url
from bot.errors import SourceError

MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Lookup = Callable[[str, int], Awaitable[list[str]]]


class UrlRefused(SourceError):
    """The link is not one the bot will fetch; the message says why, for the person."""


class PrivateAddress(UrlRefused):
    """The link's host is not public (loopback, a private network...): ALLOW_PRIVATE_URLS
    would let it through."""


def check_form(url: str) -> str:
    """The URL if its form is acceptable; UrlRefused says what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("that is not a link I can read") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https links can be fetched, not {parts.scheme or '?'}:")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("a link with a user name or password in it is not fetched")
    if not parts.hostname:
        raise UrlRefused("that link has no host")
    if port == 0:
        raise UrlRefused("that link's port is not valid")
    return url


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (and not behind one that is)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    if address.is_multicast or address in _CGNAT:
        return False
    return address.is_global


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    allow_private: bool = False
    #: host, port -> the addresses it resolves to (injected in tests; DNS otherwise)
    lookup: Lookup = field(default=_getaddrinfo, repr=False)
    #: which addresses count as public (tests on loopback say which of theirs do)
    allowed: Callable[[IPAddress], bool] = field(default=is_public, repr=False)

    async def check(self, url: str) -> str:
        """The URL if the bot may fetch it (form, and every address of its host)."""
        check_form(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self.allow_private:
            return url
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = await self.lookup(host, parts.port or 443)
            except OSError:
                raise UrlRefused(f"{host} could not be found") from None
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
        if not addresses:
            raise UrlRefused(f"{host} could not be found")
        if not all(self.allowed(a) for a in addresses):
            raise PrivateAddress(f"{host} is not a public address, so I do not fetch it")
        return url

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """A session whose every connection goes to an address this policy allows."""
        connector = aiohttp.TCPConnector(resolver=PublicResolver(self))
        return aiohttp.ClientSession(connector=connector, **kwargs)

    @contextlib.asynccontextmanager
    async def request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """`session.request`, following redirects by hand (at most MAX_REDIRECTS), each
        hop checked. UrlRefused for a link (or a redirect) the policy refuses."""
        for _hop in range(MAX_REDIRECTS + 1):
            await self.check(url)
            response = await session.request(
                method, url, headers=headers, timeout=client_timeout, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                try:
                    yield response
                finally:
                    response.release()
                return
            response.release()
            url = urljoin(url, location)
            if response.status == 303:
                method = "GET"
        raise UrlRefused(f"that link redirects more than {MAX_REDIRECTS} times")


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows: the connection
    is made to an address that was checked, whatever DNS answers the next time."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = [
            ipaddress.ip_address(a.split("%")[0]) for a in await self._policy.lookup(host, port)
        ]
        kept = [a for a in found if self._policy.allow_private or self._policy.allowed(a)]
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in kept
            if family in (socket.AF_UNSPEC, socket.AF_INET6 if a.version == 6 else socket.AF_INET)
        ]

    async def close(self) -> None:
        pass


def shown(url: str) -> str:
    """A URL as it may be shown to people and logs: its password hidden."""
    return redact_url(url)
