"""Who may read the web view: requests named for the address it serves, and on any bind but loopback only
those that show its token.

A page the user visits elsewhere can make the browser send requests to the view (DNS rebinding: a name
of the attacker's that resolves to 127.0.0.1); such a request names the attacker's host in its `Host`
header, and is refused. Off loopback, the network itself can reach the view, so it also needs a token:
given once in the printed URL (`?token=...`), then kept by the browser as a cookie (HttpOnly,
SameSite=Strict, one per port); both are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie

from evolve.errors import ConfigError

__all__ = ["Access", "Refusal", "is_loopback"]

_EVERYWHERE = ("", "0.0.0.0", "::")
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) is this machine's loopback only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def _hostname(header: str) -> str:
    """The name in a `Host` header, without its port or brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the status and a one-line message."""

    status: HTTPStatus
    message: str


class Access:
    """The view's rules for one bind: the host names it answers to, and its token (None: loopback, none)."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        """`token`: None gives a random one off loopback (none on it); "" asks for none, which only loopback
        may do."""
        self.everywhere = host in _EVERYWHERE
        loopback = not self.everywhere and is_loopback(host)
        if token is None:
            token = "" if loopback else secrets.token_urlsafe(24)
        if not token and not loopback:
            where = "every interface" if self.everywhere else f"{host}, which is not loopback"
            raise ConfigError(f"evolve ui --host {host or '0.0.0.0'} serves {where}: it needs a token; leave "
                              "--no-token out (a random one is printed in the URL) or give --token")
        self.token = token
        self.cookie = f"evolve_ui_{port}"  # cookies are per host, not per port: one view's never replaces another's
        names = {host.lower()}
        if loopback or self.everywhere:
            names |= _LOOPBACK_NAMES
        if not loopback:  # the names this machine goes by, as a user elsewhere would type them
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.names = frozenset(names)

    def check(self, host_header: str | None, cookie_header: str | None, query_token: str | None) -> Refusal | None:
        """None when the request may be answered, else why not."""
        name = _hostname(host_header or "")
        # off one address, any address literal is this machine's own: a rebinding attack needs a name
        if name not in self.names and not (self.everywhere and _is_address(name)):
            shown = (host_header or "")[:100]
            return Refusal(HTTPStatus.FORBIDDEN, f"Host {shown!r} is not an address this view serves: open the URL "
                           "that `evolve ui` printed")
        if self.token and not (self._matches(query_token) or self._matches(self._cookie_token(cookie_header))):
            return Refusal(HTTPStatus.UNAUTHORIZED, "this view needs its token: open the URL that `evolve ui` "
                           "printed (it ends in ?token=...)")
        return None

    def set_cookie(self, query_token: str | None) -> str | None:
        """The `Set-Cookie` value that keeps a token given in the URL, or None."""
        if not self.token or not self._matches(query_token):
            return None
        return f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/"

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _cookie_token(self, header: str | None) -> str | None:
        if not header:
            return None
        jar = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value if morsel is not None else None
