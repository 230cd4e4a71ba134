"""Who may use a live view: anyone on loopback, beyond it only with the token (kept out of logs).

A view bound to loopback needs no token unless one is given; bound to any
other address it always has one (random unless given). A request carries it
as ``?token=`` or ``Authorization: Bearer``; it is compared in constant
time. :func:`redact_url` hides the secrets of a URL before it is shown or
logged.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

__all__ = ["HIDDEN", "LOOPBACK", "SECRET_PARAMETERS", "UNAUTHORISED", "TokenRule", "redact_url"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""The addresses a view may listen on without a token."""

UNAUTHORISED = (
    b"HTTP/1.0 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Cache-Control: no-store\r\nConnection: close\r\n\r\nunauthorised\n"
)
"""The whole answer to a request without the token."""

SECRET_PARAMETERS = frozenset({"token", "access_token", "secret", "password", "key", "api_key"})
"""Query parameters whose values :func:`redact_url` hides (compared without case)."""

HIDDEN = "***"
"""What a hidden secret shows as."""
_MIN_TOKEN = 8


def redact_url(url: str) -> str:
    """``url`` with the values of its secret query parameters and its password as ``***``.

    ``http://box:8321/?token=abc&x=1`` becomes ``http://box:8321/?token=***&x=1``.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:  # http://user:password@host/
        netloc = netloc.replace(f":{parts.password}@", f":{HIDDEN}@", 1)
    query = [
        (name, HIDDEN if name.lower() in SECRET_PARAMETERS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return parts._replace(netloc=netloc, query=urlencode(query, safe="*")).geturl()


class TokenRule:
    """The token a view on ``host`` asks for, and the check of a request against it.

    Args:
        host: the address the view listens on.
        token: the token; None: none on loopback, a random one anywhere else.
    """

    __slots__ = ("token",)

    def __init__(self, host: str, token: str | None) -> None:
        if token is not None:
            if not isinstance(token, str):
                raise TypeError(f"token must be a str or None, got {type(token).__name__}")
            if len(token) < _MIN_TOKEN:
                raise ValueError(f"token must be at least {_MIN_TOKEN} characters long")
        elif host not in LOOPBACK:
            token = secrets.token_urlsafe(16)  # never open beyond loopback without one
        self.token = token

    def __repr__(self) -> str:
        return f"TokenRule(token={'None' if self.token is None else repr(HIDDEN)})"

    @property
    def query(self) -> str:
        """What a URL of the view ends with: ``?token=...``, or nothing without a token."""
        return "" if self.token is None else f"?token={self.token}"

    def allows(self, target: str, headers: Any) -> bool:
        """Whether a request for ``target`` (path and query) with ``headers`` carries the token."""
        if self.token is None:
            return True
        given = (parse_qs(urlsplit(target).query).get("token") or [""])[0]
        auth = headers.get("Authorization", "")
        if not given and auth.startswith("Bearer "):
            given = auth[len("Bearer ") :]
        return hmac.compare_digest(given.encode(), self.token.encode())
