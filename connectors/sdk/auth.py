"""Credentials for sources and targets. Secrets never appear in reprs, logs or errors.

A :class:`Secret` prints as ``'***'``; only :meth:`Secret.reveal` gives the value, and the
only caller of it is :meth:`Auth.headers`, whose result goes into an HTTP request.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass


class Secret:
    """A string that does not show itself: ``repr``/``str`` give ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled into a log or a checkpoint by accident
        raise TypeError("a Secret cannot be pickled")

    def __copy__(self) -> Secret:  # immutable: copies (and deep copies of configurations) share it
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self


class Auth:
    """How a connector proves who it is to its peer."""

    def headers(self) -> Mapping[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """Safe to show: the scheme and the user name, never the secret."""
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True, repr=False)
class BasicAuth(Auth):
    """HTTP Basic (RFC 7617). Use it over TLS only."""

    username: str
    password: Secret

    def headers(self) -> Mapping[str, str]:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def describe(self) -> str:
        return f"basic as {self.username!r}"

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


@dataclass(frozen=True, repr=False)
class BearerToken(Auth):
    """An OAuth 2.0 bearer token (RFC 6750), e.g. a vendor's API token."""

    token: Secret

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token.reveal()}"}

    def describe(self) -> str:
        return "bearer token"

    def __repr__(self) -> str:
        return "BearerToken(token=***)"
