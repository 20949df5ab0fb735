"""The URL policy (bot/urls.py): which links the bot fetches, checked after DNS and after
every redirect, with the connection made to the address that was checked.

Everything runs on loopback. The redirect tests give the policy a rule saying which
loopback addresses count as public (127.0.0.1) and which do not (127.0.0.2 and the rest),
so that the redirect logic is exercised over real sockets."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.urls import MAX_REDIRECTS, IPAddress, UrlPolicy, UrlRefused, check_form, is_public
from tests.helpers.emulator_server import local_server


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "192.0.2.7",  # documentation
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.5",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "ff02::1",
    ],
)
def test_addresses_that_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://a.example/x.mp3", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https://user:pa55@a.example/x.mp3", "user name or password"),
        ("https://user@a.example/x.mp3", "user name or password"),
        ("https:///x.mp3", "no host"),
        ("http://a.example:99999/x.mp3", "not a link I can read"),
    ],
)
def test_the_form_of_a_link(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason) as refused:
        check_form(url)
    assert "pa55" not in str(refused.value)


def dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def lookup(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return lookup


async def test_every_address_of_a_name_is_checked_after_dns() -> None:
    policy = UrlPolicy(
        lookup=dns(
            {
                "media.example": ["93.184.216.34"],
                "sneaky.example": ["93.184.216.34", "10.0.0.5"],  # one private is enough
                "metadata.example": ["169.254.169.254"],
            }
        )
    )
    assert await policy.check("https://media.example/a.mp3") == "https://media.example/a.mp3"
    for host in ("sneaky.example", "metadata.example", "127.0.0.2", "[::1]"):
        with pytest.raises(UrlRefused, match="not a public address"):
            await policy.check(f"http://{host}/a.mp3")
    with pytest.raises(UrlRefused, match="could not be found"):
        await policy.check("https://nowhere.example/a.mp3")
    # ALLOW_PRIVATE_URLS: addresses are not checked, the form still is.
    relaxed = UrlPolicy(allow_private=True, lookup=dns({}))
    assert await relaxed.check("http://10.0.0.5/a.mp3")
    with pytest.raises(UrlRefused):
        await relaxed.check("http://u:p@10.0.0.5/a.mp3")


def only_127_0_0_1(address: IPAddress) -> bool:
    return str(address) == "127.0.0.1"


@pytest.fixture
async def redirector() -> AsyncIterator[tuple[str, list[str]]]:
    """127.0.0.1: /audio serves audio; /to-private redirects to 127.0.0.2; /hop/N
    redirects N more times; /to-ftp redirects to ftp://. Records every request."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.host}{request.path_qs}")
        base = f"http://127.0.0.1:{request.url.port}"
        path = request.path
        if path == "/audio":
            return web.Response(body=b"ID3", content_type="audio/mpeg")
        if path == "/to-private":
            raise web.HTTPFound(f"http://127.0.0.2:{request.url.port}/audio")
        if path == "/to-ftp":
            raise web.HTTPFound("ftp://127.0.0.1/audio")
        if path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            raise web.HTTPFound(f"{base}/hop/{left - 1}" if left else f"{base}/audio")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with local_server(app) as base:
        yield base, seen


async def test_redirects_are_checked_hop_by_hop(redirector: tuple[str, list[str]]) -> None:
    base, seen = redirector
    policy = UrlPolicy(allowed=only_127_0_0_1)
    async with policy.session() as session:
        async with policy.request(session, "HEAD", f"{base}/hop/{MAX_REDIRECTS - 1}") as ok:
            assert ok.status == 200 and ok.content_type == "audio/mpeg"
        with pytest.raises(UrlRefused, match="redirects more than 3 times"):
            async with policy.request(session, "HEAD", f"{base}/hop/{MAX_REDIRECTS}"):
                pass
        seen.clear()
        with pytest.raises(UrlRefused, match=r"127\.0\.0\.2 is not a public address"):
            async with policy.request(session, "GET", f"{base}/to-private"):
                pass
        assert seen == ["127.0.0.1:" + base.rsplit(":", 1)[1] + "/to-private"]  # 127.0.0.2: never
        with pytest.raises(UrlRefused, match="only http and https"):
            async with policy.request(session, "GET", f"{base}/to-ftp"):
                pass


async def test_the_connection_goes_to_the_checked_address_only(
    redirector: tuple[str, list[str]],
) -> None:
    """A name that passes the check but resolves to the bot's own network at connect time
    (DNS rebinding) never connects: the session's resolver filters every lookup."""
    base, seen = redirector
    port = int(base.rsplit(":", 1)[1])
    answers = [["93.184.216.34"], ["127.0.0.1"]]  # the check's answer, then the connect's

    async def rebinding(host: str, port: int) -> list[str]:
        return answers.pop(0)

    policy = UrlPolicy(lookup=rebinding)
    async with policy.session() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            async with policy.request(session, "GET", f"http://rebind.example:{port}/audio"):
                pass
    assert answers == []  # both lookups were made
    assert seen == []  # and nothing reached the server on 127.0.0.1
