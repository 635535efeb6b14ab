"""Outgoing connections to targets a user chose: a cluster's API server, a git remote.

Invariants:
- A target is refused unless every address its name resolves to is globally routable: loopback,
  private (RFC 1918, ULA fc00::/7), shared (CGNAT 100.64/10), link-local (169.254/16 with the
  cloud metadata services, fe80::/10), unspecified, multicast, reserved and documentation
  addresses are all refused. An IPv6 address that embeds an IPv4 one (IPv4-mapped, 6to4, NAT64)
  is judged by the IPv4 address it reaches.
- The platform's allow-list is the one way around it, and it is exact: ``host:port`` entries,
  never a range. An entry matches the name the user gave or one address it resolved to, at that
  port only; the same host on another port stays refused.
- The check is made on the addresses the connection then uses (DNS rebinding): ``checked_addresses``
  resolves once, and callers connect to one of the addresses it returned — ``GuardedBackend`` does
  it for httpx, the builder pins git's curl to them. A check at creation time only gives an early,
  clear answer; the one at connection time is the one that protects.
- What a refusal says is our own classification ("loopback", "private", ...), never the address a
  name resolved to nor a low-level error.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"
UNRESOLVABLE = "UNRESOLVABLE"


class EgressError(Exception):
    """A target that may not or cannot be connected to; ``reason`` is a stable code."""

    reason = TARGET_NOT_ALLOWED

    def __init__(self, host: str, port: int, message: str) -> None:
        super().__init__(message)
        self.host, self.port, self.message = host, port, message


class TargetNotAllowed(EgressError):
    """The target is (or resolves to) an address the platform does not connect to."""

    def __init__(self, host: str, port: int, address_class: str) -> None:
        super().__init__(
            host,
            port,
            f"{_display(host)}:{port} is a {address_class} address, which the platform does not "
            "connect to unless its operator allow-lists that exact host:port",
        )
        self.address_class = address_class


class TargetUnresolved(EgressError):
    reason = UNRESOLVABLE

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, f"{_display(host)} does not resolve to any address")


# --- classifying addresses --------------------------------------------------------------------

_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CLASSES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("cloud metadata", lambda a: a in _METADATA),
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("shared (CGNAT)", lambda a: a.version == 4 and a in _CGNAT),
    ("multicast", lambda a: a.is_multicast),
    ("private", lambda a: a.is_private),
    ("site-local", lambda a: a.version == 6 and a.is_site_local),
    ("reserved", lambda a: a.is_reserved),
    ("non-global", lambda a: not a.is_global),
)


def unwrapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_class(address: IPAddress) -> str | None:
    """Why the platform refuses to connect to ``address`` ("loopback", ...), or None."""
    plain = unwrapped(address)
    return next((label for label, test in _CLASSES if test(plain)), None)


# --- the platform's allow-list ----------------------------------------------------------------


def _host_key(host: str) -> str:
    """A host as the allow-list compares it: lower case, no brackets or final dot, an address in
    its canonical form (an IPv4-mapped address as its IPv4 address)."""
    bare = host.strip().strip("[]").lower().rstrip(".")
    try:
        return str(unwrapped(ipaddress.ip_address(bare)))
    except ValueError:
        return bare


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class EgressPolicy:
    """``SLIPWAY_EGRESS_ALLOW``: the exact ``host:port`` targets that may be non-public."""

    allowed: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_setting(cls, value: str) -> EgressPolicy:
        """Comma- or space-separated ``host:port`` (``[v6]:port``); a malformed entry raises
        ValueError, so that a typo fails the process at start-up instead of refusing silently."""
        entries = value.replace(",", " ").split()
        return cls(frozenset(_allow_entry(entry) for entry in entries))

    def names(self, host: str, port: int) -> bool:
        return (_host_key(host), port) in self.allowed


def _allow_entry(entry: str) -> tuple[str, int]:
    parts = urlsplit(f"//{entry}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.username or parts.path or parts.query:
        raise ValueError(f"egress allow-list entry {entry!r}: expected host:port")
    return _host_key(parts.hostname), port


# --- resolving and checking -------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, as the system's resolver gives them (it also reads
    the short and numeric IPv4 forms a URL parser leaves as names: ``127.1``, ``0x7f.1``)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        found.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    return list(found)


async def checked_addresses(
    host: str, port: int, *, policy: EgressPolicy, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Resolve ``host`` once and check every address; the addresses a connection may use."""
    bare = host.strip("[]")
    try:
        addresses = await resolver(bare, port)
    except (OSError, UnicodeError):
        raise TargetUnresolved(bare, port) from None
    if not addresses:
        raise TargetUnresolved(bare, port)
    if policy.names(bare, port):
        return addresses
    for address in addresses:
        refused = address_class(address)
        if refused is not None and not policy.names(str(address), port):
            raise TargetNotAllowed(bare, port, refused)
    return addresses


# --- httpx: a transport that connects only to checked addresses -------------------------------


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking each host itself and connecting to a
    checked address (TLS still verifies the certificate against the name in the URL)."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # the connect timeout covers resolving too
                addresses = await checked_addresses(
                    host, port, policy=self._policy, resolver=self._resolver
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetNotAllowed(path, 0, "local socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    policy: EgressPolicy,
    *,
    verify: ssl.SSLContext | bool = True,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through ``GuardedBackend``; no proxy from
    the environment (a proxy would make the connection, unchecked)."""
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False)
    # httpx takes no network backend: its pool is replaced by one with the same TLS settings
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        network_backend=GuardedBackend(policy, resolver=resolver),
    )
    return transport


def tls_verify(*, insecure: bool, ca_pem: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a server someone registered: none when they said it is insecure,
    the system's authorities when they gave no CA, else their CA only."""
    if insecure:
        return False
    if ca_pem is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=ca_pem)
    return context


@contextlib.asynccontextmanager
async def guarded_client(
    policy: EgressPolicy,
    base_url: str,
    *,
    token: str | None,
    verify: ssl.SSLContext | bool,
    timeout_s: float,
    resolver: Resolver = system_resolver,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for a user-chosen API server (a cluster's): every connection through
    ``guarded_transport``, the bearer ``token`` (if any) on every request, and the whole block
    bounded by ``timeout_s`` (a ``TimeoutError`` once it is over)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = guarded_transport(policy, verify=verify, resolver=resolver)
    async with (
        asyncio.timeout(timeout_s),
        httpx.AsyncClient(
            transport=transport, timeout=timeout_s, base_url=base_url, headers=headers
        ) as client,
    ):
        yield client
