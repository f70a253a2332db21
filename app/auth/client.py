"""Who the client is, for the login throttle: the TCP peer, or what a trusted proxy says.

By default no proxy is trusted and the peer address is the client (a spoofed
X-Forwarded-For changes nothing). With TRUSTED_PROXIES set (CIDRs), a request from one of
them is attributed to the right-most X-Forwarded-For address that is not itself trusted:
the left part of that header is whatever the client wrote, only the hops appended by our
own proxies can be believed. IPv6 clients are counted per /64, the block one host gets.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import Request

from app.core.config import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32


@lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _is_trusted(text: str, networks: tuple[Network, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in net for net in networks)


def _identity(text: str) -> str:
    address = _address(text)
    if address is None:
        return "other:" + text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_id(request: Request, settings: Settings) -> str:
    peer = request.client.host if request.client else ""
    networks = trusted_networks(settings.trusted_proxies)
    if not networks or not _is_trusted(peer, networks):
        return _identity(peer)
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")][-MAX_HOPS:]
    for hop in reversed(hops):
        if hop and not _is_trusted(hop, networks):
            return _identity(hop)
    return _identity(peer)
