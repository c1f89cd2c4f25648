"""Where the standalone host listens: ``--host`` resolved once, that exact address bound, and "loopback" (no
login needed) decided from the address bound, never from how ``--host`` was spelled.

Spellings of one address (``localhost``, ``LOCALHOST``, ``localhost.``, ``[::1]``, ``0:0:0:0:0:0:0:1``, ``127.1``,
``2130706433``) all end as the address the system resolves them to, which is the one bound; a spelling the system
cannot resolve (``::1%nosuchif``, ``[::1``, an unknown name) is refused with one line naming it and what to give
instead. A name that resolves to several addresses is bound to the first only, and that one decides.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .host_auth import PolicyError, is_loopback_ip

FIX = "give an IP address such as 127.0.0.1, ::1 or 0.0.0.0, or a name this machine resolves"


@dataclass(frozen=True)
class Address:
    """One resolved address: what ``socket.bind`` takes (``sockaddr``) and of which family."""

    family: int
    sockaddr: tuple

    @property
    def ip(self) -> str:
        return str(self.sockaddr[0]).partition("%")[0]

    @property
    def port(self) -> int:
        return int(self.sockaddr[1])

    @property
    def loopback(self) -> bool:
        """Reachable from this machine only: 127.0.0.0/8, ::1, or an IPv6-mapped 127.x address."""
        return is_loopback_ip(self.ip)

    def with_port(self, port: int) -> Address:
        return Address(self.family, (self.sockaddr[0], port, *self.sockaddr[2:]))

    @property
    def url(self) -> str:
        host = f"[{self.ip}]" if self.family == socket.AF_INET6 else self.ip
        return f"http://{host}:{self.port}/"


def normalise(host: str) -> str:
    """``--host`` as the resolver should see it: outer blanks, one pair of ``[]`` around an IPv6 address and a
    name's final dot dropped, lower case (``" [::1] "`` -> ``::1``, ``LOCALHOST.`` -> ``localhost``)."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]
    return name.lower()


def resolve(host: str, port: int) -> Address:
    """The first address ``host`` resolves to (``PolicyError`` with a one-line reason when there is none)."""
    name, quoted = normalise(host), repr(host if len(host) <= 80 else host[:77] + "...")
    if not name or any(c.isspace() for c in name):
        raise PolicyError(f"--host {quoted} is not an address: {FIX}")
    try:
        family, _kind, _proto, _name, sockaddr = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError, ValueError) as e:  # gaierror is an OSError; IDNA errors are UnicodeError
        raise PolicyError(f"--host {quoted} does not resolve on this machine ({e}): {FIX}") from e
    return Address(family, tuple(sockaddr))


def bind(address: Address) -> socket.socket:
    """A listening socket on exactly ``address`` (uvicorn's options: reuse a port in TIME_WAIT, not one in use)."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address.sockaddr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bound(sock: socket.socket) -> Address:
    """The address a socket is bound to: what decides whether the host is loopback-only."""
    return Address(sock.family, tuple(sock.getsockname()))
