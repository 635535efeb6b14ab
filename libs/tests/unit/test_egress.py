"""The egress guard: which addresses are refused, the exact allow-list, and the check made on the
addresses a connection really uses (a resolver that changes its answer stands for DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
import pytest

from slipway_libs.egress import (
    EgressPolicy,
    GuardedBackend,
    IPAddress,
    TargetNotAllowed,
    TargetUnresolved,
    address_class,
    checked_addresses,
    guarded_client,
    guarded_transport,
    tls_verify,
)
from slipway_libs.testing.certificates import self_signed

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "cloud metadata",
    "169.254.169.254": "cloud metadata",
    "fd00:ec2::254": "cloud metadata",
    "100.100.100.200": "cloud metadata",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "100.64.0.1": "shared (CGNAT)",
    "100.127.255.254": "shared (CGNAT)",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "private",
    "255.255.255.255": "private",
    "192.0.2.1": "private",
    "2001:db8::1": "private",
    "198.18.0.1": "private",
    "fec0::1": "site-local",
    "2002:7f00:1::1": "loopback",  # 6to4 of 127.0.0.1
    "64:ff9b::7f00:1": "loopback",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
    "::7f00:1": "reserved",  # IPv4-compatible (deprecated)
    "100::1": "private",  # discard-only
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "expected"), REFUSED.items())
def test_non_public_addresses_are_refused_with_their_class(address: str, expected: str) -> None:
    assert address_class(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_class(ipaddress.ip_address(address)) is None


def stub(*answers: list[str]) -> Any:
    """A resolver answering each call with the next list of addresses (the last one repeats)."""
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        calls.append((host, port))
        answer = answers[min(len(calls), len(answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


NOTHING_ALLOWED = EgressPolicy()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "localhost", "::1"]
)
async def test_every_spelling_of_loopback_is_refused_once_resolved(host: str) -> None:
    with pytest.raises(TargetNotAllowed) as refused:
        await checked_addresses(host, 6443, policy=NOTHING_ALLOWED)
    assert refused.value.reason == "TARGET_NOT_ALLOWED"
    assert refused.value.address_class == "loopback"
    assert "127.0.0.1" not in refused.value.message or host == "127.0.0.1"


async def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    resolver = stub(["8.8.8.8", "10.1.2.3"])
    with pytest.raises(TargetNotAllowed) as refused:
        await checked_addresses("mixed.example", 443, policy=NOTHING_ALLOWED, resolver=resolver)
    assert refused.value.address_class == "private"
    assert "10.1.2.3" not in refused.value.message


async def test_an_unresolvable_name_is_its_own_reason() -> None:
    async def fails(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    for resolver in (fails, stub([])):
        with pytest.raises(TargetUnresolved) as caught:
            await checked_addresses(
                "nowhere.invalid", 443, policy=NOTHING_ALLOWED, resolver=resolver
            )
        assert caught.value.reason == "UNRESOLVABLE"


def test_the_allow_list_is_parsed_exactly() -> None:
    policy = EgressPolicy.from_setting(" 127.0.0.1:6443, [::1]:9418 Git.Internal.:443,,")
    assert policy.allowed == {("127.0.0.1", 6443), ("::1", 9418), ("git.internal", 443)}
    assert EgressPolicy.from_setting("").allowed == frozenset()
    assert EgressPolicy.from_setting("[::ffff:127.0.0.1]:1").allowed == {("127.0.0.1", 1)}


@pytest.mark.parametrize(
    "entry", ["127.0.0.1", "10.0.0.0/8", "10.0.0.0/8:80", "u@h:1", ":80", "h:99999", "h:port"]
)
def test_a_malformed_allow_list_entry_fails_loudly(entry: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        EgressPolicy.from_setting(entry)


async def test_an_allow_listed_host_port_passes_and_another_port_does_not() -> None:
    policy = EgressPolicy.from_setting("127.0.0.1:6443,kube.internal:443")
    assert await checked_addresses("127.0.0.1", 6443, policy=policy)
    # any name of the allow-listed address, at that port
    assert await checked_addresses("localhost", 6443, policy=policy)
    assert await checked_addresses("::ffff:127.0.0.1", 6443, policy=policy)
    for port in (6444, 443, 5432):
        with pytest.raises(TargetNotAllowed):
            await checked_addresses("127.0.0.1", port, policy=policy)
    # a name allow-listed as such, whatever it resolves to, at that port only
    internal = stub(["10.0.0.5"])
    assert await checked_addresses("kube.internal", 443, policy=policy, resolver=internal)
    with pytest.raises(TargetNotAllowed):
        await checked_addresses("kube.internal", 6443, policy=policy, resolver=internal)


# --- at connection time -----------------------------------------------------------------------


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where connections go; connects nowhere."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        raise httpcore.ConnectError("recorded")


async def test_a_name_rebound_to_loopback_after_the_creation_check_is_refused_at_connect() -> None:
    resolver = stub(["93.184.215.14"], ["127.0.0.1"])
    # the early check (creation time) sees a public address ...
    await checked_addresses("rebind.example", 6443, policy=NOTHING_ALLOWED, resolver=resolver)
    inner = RecordingBackend()
    backend = GuardedBackend(NOTHING_ALLOWED, resolver=resolver, inner=inner)
    # ... the connection resolves again, and is refused before any connect
    with pytest.raises(TargetNotAllowed) as refused:
        await backend.connect_tcp("rebind.example", 6443)
    assert refused.value.address_class == "loopback"
    assert inner.connected == []


async def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    resolver = stub(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"], ["127.0.0.1"])
    inner = RecordingBackend()
    backend = GuardedBackend(NOTHING_ALLOWED, resolver=resolver, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("example.test", 443)
    # every checked address tried in order, by address: the name is never resolved again
    assert inner.connected == [
        ("93.184.215.14", 443),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443),
    ]
    assert len(resolver.calls) == 1


async def test_unix_sockets_are_refused() -> None:
    backend = GuardedBackend(NOTHING_ALLOWED, inner=RecordingBackend())
    with pytest.raises(TargetNotAllowed):
        await backend.connect_unix_socket("/run/docker.sock")


class Listener:
    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """A plain HTTP server on 127.0.0.1 that counts the connections it accepted."""
    seen = Listener()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.accepted += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


async def test_an_httpx_client_on_the_guarded_transport_connects_only_where_allowed(
    listener: Listener,
) -> None:
    url = f"http://127.0.0.1:{listener.port}/version"
    async with httpx.AsyncClient(transport=guarded_transport(NOTHING_ALLOWED)) as client:
        with pytest.raises(TargetNotAllowed):
            await client.get(url)
        with pytest.raises(TargetNotAllowed):
            await client.get(f"http://localhost:{listener.port}/")
    assert listener.accepted == 0

    allowed = EgressPolicy.from_setting(f"127.0.0.1:{listener.port}")
    async with httpx.AsyncClient(transport=guarded_transport(allowed)) as client:
        assert (await client.get(url)).text == "ok"
    assert listener.accepted == 1


async def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(
    tmp_path: Any,
) -> None:
    import ssl

    certificate = self_signed("kube.test")  # for the name alone: not for 127.0.0.1
    pem = certificate.pem
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate.write(tmp_path, "kube"))
    names: list[str | None] = []  # the names clients asked for (SNI)
    server_context.sni_callback = lambda _socket, name, _context: names.append(name)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context()
    client_context.load_verify_locations(cadata=pem)
    policy = EgressPolicy.from_setting(f"127.0.0.1:{port}")
    # the system knows no kube.test: the connection goes to the address the stub resolved
    transport = guarded_transport(policy, verify=client_context, resolver=stub(["127.0.0.1"]))
    async with server, httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(f"https://kube.test:{port}/version")).text == "ok"
        # the certificate names kube.test, not the address: asking by address fails TLS
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{port}/version")
    assert names == ["kube.test", None]  # no SNI for an address


async def test_a_guarded_client_sends_the_token_and_verifies_as_the_cluster_says(
    tmp_path: Any,
) -> None:
    """A registered cluster's CA is the only one trusted; with none given the system's are (and
    do not know this certificate); `insecure` verifies nothing. The token goes on every request."""
    import ssl

    certificate = self_signed("kube.test")  # for the name alone: not for 127.0.0.1
    pem = certificate.pem
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*certificate.write(tmp_path, "kube"))
    authorizations: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        authorizations.extend(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"authorization:")
        )
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    policy = EgressPolicy.from_setting(f"127.0.0.1:{port}")
    url = f"https://kube.test:{port}"

    def client(token: str | None, **verify: Any) -> Any:
        return guarded_client(
            policy,
            url,
            token=token,
            verify=tls_verify(**verify),
            timeout_s=30,
            resolver=stub(["127.0.0.1"]),
        )

    async with server:
        async with client("t0k", insecure=False, ca_pem=pem) as c:
            assert (await c.get("/version")).text == "ok"
        async with client(None, insecure=True, ca_pem=None) as c:
            assert (await c.get("/version")).text == "ok"
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED"):
            async with client("t0k", insecure=False, ca_pem=None) as c:
                await c.get("/version")
    assert authorizations == [b"Bearer t0k"]  # none without a token; none sent unverified
