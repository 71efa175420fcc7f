"""Messages over IMAP (RFC 9051 / 3501): folders, flags and whole RFC 5322 messages.

An owner is an IMAP account. Its mailboxes are folder items (id: the mailbox path, ``/``-separated,
decoded from modified UTF-7; INBOX, which every account has, is not listed as an item). Each
message is a file item ``<mailbox>/<key>.eml`` (:mod:`.message`) whose bytes are the message as the
server stores it, attachments included as its MIME parts; its metadata: ``media_type``
``message/rfc822``, ``role`` ``message``, ``folder``, ``flags`` (every flag, ``\\Seen`` included),
``read``, ``received`` (the INTERNALDATE), and what the header says (``subject``, ``from``, ``to``,
``cc``, ``bcc``, ``sent``, ``in_reply_to``).

Import APPENDs with the item's flags and ``received`` date; an item already there with other bytes
is appended again and the old copy expunged (IMAP messages are immutable), with other flags only
its flags are set. An item whose metadata says what IMAP cannot hold (sharing, vendor ``extra``...)
or contradicts its header is refused, never dropped.
"""
from __future__ import annotations

import imaplib
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sdk import (
    BadItem,
    BadResponse,
    Body,
    ConfigError,
    ConnectorConfig,
    Exporter,
    Importer,
    Item,
    ItemRef,
    NotFound,
    Outcome,
    Page,
)
from connectors.sdk.items import ref_label

from . import message as msg
from .client import NAME, Mailbox, Session, Settings, quote

_FETCH_HEAD = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"|RFC822\.SIZE (\d+)")
_SESSIONS_PER_THREAD = 4
_MESSAGE_FIELDS = {"media_type", "role", "folder", "flags", "read", "received", *msg.HEADER_FIELDS}


@dataclass(frozen=True)
class Stored:
    uid: int
    flags: tuple[str, ...]
    received: str | None
    size: int
    header: bytes


class _Imap:
    def __init__(self, config: ConnectorConfig) -> None:
        self.settings = Settings.from_config(config)
        opts = config.options
        owners = opts.get("owners")
        if owners is not None and (not isinstance(owners, list) or not all(isinstance(o, str) for o in owners)):
            raise ConfigError("options.owners must be a list of account names", connector=NAME)
        self._owners: list[str] | None = owners
        file = opts.get("owners_file")
        self.owners_file = Path(file) if isinstance(file, str) and file else None
        self._local = threading.local()
        self._all: list[Session] = []
        self._lock = threading.Lock()

    def owner_list(self) -> list[str]:
        found: list[str] = list(self._owners or [])
        if self.owners_file is not None and self.owners_file.exists():
            found += [line.strip() for line in self.owners_file.read_text(encoding="utf-8").splitlines()
                      if line.strip() and not line.startswith("#")]
        if not found and self._owners is None and self.owners_file is None:
            if self.settings.impersonate:
                raise ConfigError("IMAP cannot list accounts: give options.owners or options.owners_file",
                                  connector=NAME)
            found = [self.settings.username or ""]
        return sorted(set(found))

    def session(self, owner: str) -> Session:
        """This thread's session for ``owner``; a thread keeps the last few owners' open, logging out of
        the oldest (a server bounds the connections it takes per user and address)."""
        sessions: dict[str, Session] = self._local.__dict__.setdefault("sessions", {})
        session = sessions.pop(owner, None)
        if session is None:
            session = Session(self.settings, owner)
            with self._lock:
                self._all.append(session)
            while len(sessions) >= _SESSIONS_PER_THREAD:
                oldest = next(iter(sessions))
                self._forget(sessions.pop(oldest))
        sessions[owner] = session  # the most recent last
        return session

    def _forget(self, session: Session) -> None:
        session.close()
        with self._lock:
            if session in self._all:
                self._all.remove(session)

    def drop(self, owner: str) -> None:
        """Forget a session whose connection failed (the next call opens another)."""
        sessions: dict[str, Session] = self._local.__dict__.setdefault("sessions", {})
        session = sessions.pop(owner, None)
        if session is not None:
            self._forget(session)

    def close(self) -> None:
        with self._lock:
            for session in self._all:
                session.close()
            self._all.clear()

    def scan(self, session: Session, box: Mailbox) -> list[tuple[str, Stored]]:
        """The messages of a mailbox in UID order, each with its file name (``<key>.eml``)."""
        count = session.select(box.path)
        if count == 0:
            return []
        data = session.uid("fetch", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])")
        stored: list[Stored] = []
        for part in data:
            if not isinstance(part, tuple):
                continue
            found: dict[str, Any] = {}
            for m in _FETCH_HEAD.finditer(part[0]):
                if m.group(1):
                    found["uid"] = int(m.group(1))
                elif m.group(2) is not None:
                    found["flags"] = tuple(sorted(f for f in m.group(2).decode().split() if f != "\\Recent"))
                elif m.group(3):
                    found["received"] = msg.internaldate(m.group(3).decode())
                elif m.group(4):
                    found["size"] = int(m.group(4))
            if "uid" not in found:
                raise BadResponse(f"FETCH answer without UID in {box.path!r}", connector=NAME,
                                  url=self.settings.where)
            stored.append(Stored(found["uid"], found.get("flags", ()), found.get("received"),
                                 found.get("size", 0), part[1]))
        stored.sort(key=lambda s: s.uid)
        seen: dict[str, int] = {}
        out = []
        for s in stored:
            key = msg.base_key(s.header)
            seen[key] = seen.get(key, 0) + 1
            out.append((msg.file_name(key, seen[key]), s))
        return out

    def message_meta(self, box: Mailbox, stored: Stored) -> dict[str, Any]:
        meta: dict[str, Any] = {"media_type": msg.MEDIA_TYPE, "role": "message",
                                "folder": msg.folder_label(box.path, box.special_use),
                                "flags": list(stored.flags), "read": "\\Seen" in stored.flags}
        if stored.received:
            meta["received"] = stored.received
        meta.update(msg.describe(stored.header))
        return meta


class ImapExporter(_Imap, Exporter):
    def __init__(self, config: ConnectorConfig) -> None:
        _Imap.__init__(self, config)
        Exporter.__init__(self, NAME, "messages", retry=config.retry)

    def owners(self, cursor: str | None = None) -> Page[str]:
        return Page(self.owner_list())

    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        """The first page holds the folders; then one page per mailbox's messages. The cursor is the JSON
        list of mailboxes still to read."""
        session = self.session(owner)
        boxes = {b.path: b for b in session.mailboxes()}
        items: list[ItemRef] = []
        if cursor is None:
            todo = [p for p, b in boxes.items() if b.selectable]
            items = [ItemRef(owner, self.vertical, p, p, kind="folder", metadata={}, size=0, etag=p)
                     for p in boxes if p.upper() != "INBOX"]
        else:
            try:
                todo = json.loads(cursor)
                assert isinstance(todo, list) and all(isinstance(p, str) for p in todo)
            except (ValueError, AssertionError):
                raise ConfigError(f"cursor {cursor[:80]!r} is not one this connector gave", connector=NAME,
                                  item=owner) from None
        while todo and not items:
            path = todo.pop(0)
            box = boxes.get(path)
            if box is None:
                continue  # deleted since the cursor was given
            for name, stored in self.scan(session, box):
                item_id = f"{path}/{name}"
                items.append(ItemRef(owner, self.vertical, item_id, item_id, metadata=self.message_meta(box, stored),
                                     size=stored.size, locator=f"{path}\n{stored.uid}",
                                     etag=f"{session.uidvalidity}:{stored.uid}:{' '.join(stored.flags)}"))
        return Page(items, json.dumps(todo) if todo else None)

    def open(self, ref: ItemRef) -> Body:
        session = self.session(ref.owner)
        path, _, name = ref.id.rpartition("/")
        uid: int | None = None
        if ref.locator:
            path, _, uid_text = ref.locator.partition("\n")
            uid = int(uid_text)
        else:
            box = next((b for b in session.mailboxes() if b.path == path), None)
            if box is not None:
                uid = next((s.uid for n, s in self.scan(session, box) if n == name), None)
        if uid is None:
            raise NotFound("no such message", connector=NAME, item=ref_label(ref))
        try:
            session.select(path)
            data = session.uid("fetch", str(uid), "(BODY.PEEK[])")
        except BadResponse:
            self.drop(ref.owner)
            raise NotFound("no such mailbox", connector=NAME, item=ref_label(ref)) from None
        body = next((p[1] for p in data if isinstance(p, tuple)), None)
        if body is None:
            raise NotFound("the message is gone (expunged since it was listed)", connector=NAME,
                           item=ref_label(ref))
        return Body([body], size=ref.size, url=f"{self.settings.where}/{path}")

    def close(self) -> None:
        _Imap.close(self)


class ImapImporter(_Imap, Importer):
    def __init__(self, config: ConnectorConfig) -> None:
        _Imap.__init__(self, config)
        Importer.__init__(self, NAME, "messages")
        self._known: set[str] = set()

    def _record_owner(self, owner: str) -> None:
        if owner in self._known or self.owners_file is None:
            return
        with self._lock:
            listed = set(self.owner_list())
            if owner not in listed:
                with self.owners_file.open("a", encoding="utf-8") as out:
                    out.write(owner + "\n")
            self._known.add(owner)

    def write(self, item: Item) -> Outcome:
        label = f"{item.owner}:{item.vertical}/{item.id}"
        try:
            if item.kind == "folder":
                return self._folder(item)
            return self._message(item)
        except BadItem as exc:
            exc.with_context(connector=NAME, item=label)
            raise
        except (BadResponse, NotFound) as exc:
            self.drop(item.owner)
            exc.with_context(connector=NAME, item=label)
            raise

    def _folder(self, item: Item) -> Outcome:
        extra = set(item.metadata) - {"folder"}
        if extra:
            raise BadItem(f"a mail folder keeps no {', '.join(sorted(extra))} over IMAP")
        if item.id.upper() == "INBOX":
            return Outcome.UNCHANGED
        session = self.session(item.owner)
        self._record_owner(item.owner)
        return Outcome.CREATED if session.create(item.id) else Outcome.UNCHANGED

    def _message(self, item: Item) -> Outcome:
        meta = dict(item.metadata)
        data = item.content.read()
        why = msg.problem(data)
        if why:
            raise BadItem(f"not an RFC 5322 message: {why}")
        if meta.get("media_type", msg.MEDIA_TYPE) != msg.MEDIA_TYPE:
            raise BadItem(f"media_type {meta['media_type']!r}: only whole messages ({msg.MEDIA_TYPE}) go over IMAP")
        if meta.get("role", "message") != "message":
            raise BadItem(f"role {meta['role']!r}: an attachment travels inside its message over IMAP")
        cannot = set(meta) - _MESSAGE_FIELDS
        if cannot:
            raise BadItem(f"IMAP cannot keep {', '.join(sorted(cannot))} (the message's header and flags are all "
                          "it stores)")
        said = msg.describe(data)
        for key in msg.HEADER_FIELDS:
            if key in meta and meta[key] != said.get(key):
                # the values stay out of the error: subjects and addresses are personal data, errors get logged
                raise BadItem(f"metadata {key!r} is not what the message's header says")
        path, _, name = item.id.rpartition("/")
        parsed = msg.parse_name(name)
        key = msg.base_key(data)
        if not path or parsed is None or parsed[0] != key:
            raise BadItem(f"the id of this message must be <folder>/{msg.file_name(key, 1)} (its key comes from its "
                          f"Message-ID), not {item.id!r}")
        flags = self._flags(meta)
        received = msg.parse_date(meta["received"]) if "received" in meta else None
        if received is not None and received > datetime.now(UTC):
            raise BadItem(f"received {meta['received']} is in the future: an IMAP server would store the time of the "
                          "import instead")
        session = self.session(item.owner)
        self._record_owner(item.owner)
        session.create(path)
        box = next((b for b in session.mailboxes() if b.path == path), None)
        if box is None:
            raise BadResponse(f"mailbox {path!r} is not listed after CREATE")
        if "folder" in meta and meta["folder"] not in (path, msg.folder_label(path, box.special_use)):
            raise BadItem(f"metadata 'folder' is {meta['folder']!r} but the message is in {path!r}")
        here = dict(self.scan(session, box))
        old = here.get(name)
        if old is None and parsed[1] > 1 and f"{msg.file_name(key, parsed[1] - 1)}" not in here:
            raise BadItem(f"{name} is a duplicate numbered {parsed[1]}: import the ones before it first")
        if old is not None:
            same_date = received is None or old.received == meta.get("received")
            if old.size == len(data) and same_date and self._body(session, box, old.uid) == data:
                if set(old.flags) == set(flags):
                    return Outcome.UNCHANGED
                session.select(box.path, write=True)
                session.uid("store", str(old.uid), "FLAGS.SILENT", "(" + " ".join(flags) + ")")
                return Outcome.UPDATED
        when = imaplib.Time2Internaldate(received) if received else None
        session.call("append", quote(session.wire(path)), "(" + " ".join(flags) + ")" if flags else None, when, data)
        if old is None:
            return Outcome.CREATED
        session.select(box.path, write=True)
        session.uid("store", str(old.uid), "+FLAGS.SILENT", "(\\Deleted)")
        session.uid("expunge", str(old.uid))
        return Outcome.UPDATED

    @staticmethod
    def _flags(meta: dict[str, Any]) -> list[str]:
        flags = list(meta.get("flags", []))
        for flag in flags:
            if flag == "\\Recent" or not re.fullmatch(r"\\?[!#$&'+-\[^-z|}~]+", flag):
                raise BadItem(f"flag {flag!r} cannot be set over IMAP")
        if "read" in meta:
            if "flags" in meta and meta["read"] != ("\\Seen" in flags):
                raise BadItem(f"metadata 'read' is {meta['read']} but the flags {'lack' if meta['read'] else 'hold'} "
                              "\\Seen")
            if meta["read"] and "\\Seen" not in flags:
                flags.append("\\Seen")
        return sorted(set(flags))

    @staticmethod
    def _body(session: Session, box: Mailbox, uid: int) -> bytes | None:
        session.select(box.path)
        data = session.uid("fetch", str(uid), "(BODY.PEEK[])")
        return next((p[1] for p in data if isinstance(p, tuple)), None)

    def close(self) -> None:
        _Imap.close(self)


def exporter_from_config(config: ConnectorConfig, vertical: str) -> ImapExporter:
    return ImapExporter(config)


def importer_from_config(config: ConnectorConfig, vertical: str) -> ImapImporter:
    return ImapImporter(config)
