"""One IMAP session per owner and thread, over imaplib (the standard library).

Settings (``options`` of the connector's configuration; the SDK's ``url`` is for HTTP peers):
``host``, ``port`` (993 with ``tls: implicit``, else 143), ``tls`` (``implicit``, ``starttls``, or
``none``, allowed for a loopback host only), and ``impersonate`` (default true: the account of
``auth`` logs in *as* each owner through SASL PLAIN's authorization identity, RFC 4616: a Dovecot
master user, a Cyrus admin). The CA to trust is the configuration's ``verify_tls``; the timeout its
``timeout``. The password comes from the environment variable ``auth.password_env`` names; it and
the messages' contents are never logged nor put in errors.
"""
from __future__ import annotations

import imaplib
import ipaddress
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.sdk import AuthError, BadResponse, ConfigError, ConnectorConfig, ConnectorError, TransientError
from connectors.sdk.auth import BasicAuth

from . import utf7

NAME = "imap"
_LIST_LINE = re.compile(rb'\((?P<attrs>[^)]*)\) (?:"(?P<delim>[^"]*)"|NIL) (?P<name>.*)$')


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    tls: str
    impersonate: bool
    username: str | None
    password: Any  # a connectors.sdk Secret
    timeout: float
    ssl_context: ssl.SSLContext | None

    @classmethod
    def from_config(cls, config: ConnectorConfig) -> Settings:
        opts: Mapping[str, Any] = config.options
        unknown = set(opts) - {"host", "port", "tls", "impersonate", "owners", "owners_file"}
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}", connector=NAME)
        host = opts.get("host")
        if not isinstance(host, str) or not host:
            raise ConfigError("options.host is required (the IMAP server's name)", connector=NAME)
        tls = opts.get("tls", "implicit")
        if tls not in ("implicit", "starttls", "none"):
            raise ConfigError(f"options.tls must be implicit, starttls or none, not {tls!r}", connector=NAME)
        if tls == "none" and not _loopback(host):
            raise ConfigError(f"options.tls none sends the password in clear: allowed for a loopback host only, "
                              f"not {host!r}", connector=NAME)
        port = opts.get("port", 993 if tls == "implicit" else 143)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"options.port must be a port number, not {port!r}", connector=NAME)
        impersonate = opts.get("impersonate", True)
        if not isinstance(impersonate, bool):
            raise ConfigError("options.impersonate must be true or false", connector=NAME)
        if not isinstance(config.auth, BasicAuth):
            raise ConfigError("auth must be {type: basic, username: ..., password_env: ...}", connector=NAME)
        context = None
        if tls != "none":
            if config.verify_tls is False:
                context = ssl._create_unverified_context()
            else:
                cafile = config.verify_tls if isinstance(config.verify_tls, str) else None
                context = ssl.create_default_context(cafile=cafile)
        return cls(host, port, tls, impersonate, config.auth.username, config.auth.password,
                   config.timeout, context)

    @property
    def where(self) -> str:
        return f"imap{'s' if self.tls == 'implicit' else ''}://{self.host}:{self.port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Mailbox:
    path: str  # "/"-separated, decoded
    wire: str  # as the server names it (modified UTF-7, its own delimiter)
    special_use: str | None
    selectable: bool


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Session:
    """An authenticated connection for one owner. Methods raise the SDK's errors."""

    def __init__(self, settings: Settings, owner: str) -> None:
        self.settings = settings
        self.owner = owner
        self.selected: tuple[str, bool] | None = None
        self.uidvalidity = ""  # of the mailbox selected last: UIDs are unique under it only
        self.delimiter = "/"
        s = settings
        try:
            if s.tls == "implicit":
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=s.ssl_context,
                                                             timeout=s.timeout)
            else:
                self.conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
                if s.tls == "starttls":
                    self.conn.starttls(ssl_context=s.ssl_context)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise TransientError(f"cannot connect: {type(exc).__name__}: {exc}", connector=NAME,
                                 url=s.where) from None
        user = s.username or ""
        password = s.password.reveal() if hasattr(s.password, "reveal") else str(s.password)
        try:
            if s.impersonate:
                token = f"{owner}\0{user}\0{password}".encode()
                self.conn.authenticate("PLAIN", lambda _challenge: token)
            else:
                if owner != user:
                    raise AuthError(f"without options.impersonate the account {user!r} reads only its own mail",
                                    connector=NAME, url=s.where, item=owner)
                self.conn.login(user, password)
        except imaplib.IMAP4.error:
            self.close()
            raise AuthError(f"the server refused to log {user!r} in as {owner!r}", connector=NAME,
                            url=s.where) from None
        except OSError as exc:
            self.close()
            raise TransientError(f"connection lost while logging in: {type(exc).__name__}", connector=NAME,
                                 url=s.where) from None

    def close(self) -> None:
        try:
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error, AttributeError):
            pass

    def call(self, name: str, *args: Any) -> list[Any]:
        """``conn.<name>(*args)``; OK -> its data, NO/BAD -> BadResponse, a lost link -> TransientError."""
        try:
            typ, data = getattr(self.conn, name)(*args)
        except imaplib.IMAP4.abort as exc:
            raise TransientError(f"{name.upper()}: the connection was lost ({exc})", connector=NAME,
                                 url=self.settings.where) from None
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"{name.upper()}: {type(exc).__name__}", connector=NAME,
                                 url=self.settings.where) from None
        except imaplib.IMAP4.error as exc:
            raise BadResponse(f"{name.upper()} refused: {exc}", connector=NAME, url=self.settings.where) from None
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise BadResponse(f"{name.upper()} answered {typ}: {text}", connector=NAME, url=self.settings.where)
        return list(data)

    def uid(self, command: str, *args: Any) -> list[Any]:
        return self.call("uid", command, *args)

    def mailboxes(self) -> list[Mailbox]:
        out: list[Mailbox] = []
        for line in self.call("list", '""', "*"):
            if isinstance(line, tuple):  # a name sent as a literal
                line = line[0].rsplit(b"{", 1)[0] + quote(line[1].decode("utf-8", "replace")).encode()
            if not line:
                continue
            m = _LIST_LINE.match(line)
            if not m:
                raise BadResponse(f"LIST line not understood: {line[:200]!r}", connector=NAME,
                                  url=self.settings.where)
            attrs = m.group("attrs").decode("ascii", "replace").split()
            delim = (m.group("delim") or b"/").decode("ascii").replace("\\\\", "\\")
            self.delimiter = delim
            raw = m.group("name").decode("utf-8", "replace")
            if raw.startswith('"'):
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            try:
                name = utf7.decode(raw)
            except ValueError as exc:
                raise BadResponse(str(exc), connector=NAME, url=self.settings.where) from None
            special = next((a for a in attrs if a in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")), None)
            if delim != "/" and "/" in name:
                raise BadResponse(f"mailbox {name!r} holds a '/' (the server's delimiter is {delim!r}): "
                                  "it cannot be an item id", connector=NAME, url=self.settings.where)
            path = name.replace(delim, "/") if delim else name
            out.append(Mailbox(path, raw, special, "\\Noselect" not in attrs and "\\NonExistent" not in attrs))
        return sorted(out, key=lambda b: b.path)

    def wire(self, path: str) -> str:
        return utf7.encode(path.replace("/", self.delimiter) if self.delimiter else path)

    def select(self, path: str, *, write: bool = False) -> int:
        """Select a mailbox; returns how many messages it holds."""
        data = self.call("select", quote(self.wire(path)), not write)
        self.selected = (path, write)
        _typ, validity = self.conn.response("UIDVALIDITY")
        self.uidvalidity = (validity[-1] or b"").decode("ascii", "replace") if validity and validity[-1] else ""
        return int(data[0] or 0)

    def create(self, path: str) -> bool:
        """Create a mailbox (and its parents); False when it was there already."""
        try:
            self.call("create", quote(self.wire(path)))
        except BadResponse as exc:
            if "ALREADYEXISTS" in str(exc) or "already exists" in str(exc).lower():
                return False
            raise
        try:
            self.call("subscribe", quote(self.wire(path)))
        except ConnectorError:
            pass
        return True
