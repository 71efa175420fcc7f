"""Hypothesis strategies that generate valid item sets per vertical (for the conformance kit).

Names mix ASCII, accented Latin, other scripts and URL-special characters (``% # ? & + '``),
since those are what break path quoting. Each set is a list of :class:`Item` for one owner,
folders before their contents, every record valid against the vertical's schema.
"""
from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from hypothesis import strategies as st

from .items import Item

_NAME_CHARS = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                              + list("éèêàçùôîÉÀœæßñü") + list("中文Ωжλ") + list(" -_.()'&+%#?,;=@!~$"))


def _clean(name: str) -> str | None:
    name = unicodedata.normalize("NFC", name).strip()
    if name in ("", ".", "..") or name.startswith(".") or name.endswith("."):
        return None
    return name


names = st.text(_NAME_CHARS, min_size=1, max_size=16).map(_clean).filter(lambda n: n is not None)

_dates = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC).isoformat().replace("+00:00", "Z"))
_vendor_extra = st.dictionaries(st.sampled_from(["vendorId", "x-legacy", "app", "flags", "rev"]),
                                st.one_of(st.integers(-10**6, 10**6), st.text(max_size=12), st.booleans(),
                                          st.lists(st.integers(0, 9), max_size=3)),
                                max_size=3)
_person = st.builds(lambda i, n: {"id": i, "name": n}, st.from_regex(r"[0-9]{5,8}", fullmatch=True),
                    st.text(_NAME_CHARS, max_size=12))
_share = st.builds(lambda pid, rights: {"principal": {"type": "person", "id": pid}, "rights": rights},
                   st.from_regex(r"[0-9]{5,8}", fullmatch=True),
                   st.lists(st.sampled_from(["read", "comment", "write", "manage"]), min_size=1, max_size=4,
                            unique=True))


def _document_metadata() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional={
        "media_type": st.sampled_from(["application/octet-stream", "text/plain", "application/pdf",
                                       "application/vnd.oasis.opendocument.text"]),
        "owner": _person, "created": _dates, "modified": _dates, "description": st.text(max_size=40),
        "sharing": st.lists(_share, max_size=2), "extra": _vendor_extra})


@st.composite
def documents(draw, owner: str, *, max_files: int = 6, max_bytes: int = 4096) -> list[Item]:
    """A folder tree (up to two levels) with files of arbitrary bytes."""
    folders: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        parent = draw(st.sampled_from([""] + folders))
        folders.append(f"{parent}/{draw(names)}" if parent else draw(names))
    folders = sorted(set(folders), key=lambda p: (p.count("/"), p))
    taken = {p.casefold() for p in folders}
    items = [Item.folder(owner, "documents", f, metadata=draw(st.fixed_dictionaries({}, optional={
        "modified": _dates, "sharing": st.lists(_share, max_size=1), "extra": _vendor_extra})))
        for f in folders]
    for _ in range(draw(st.integers(1, max_files))):
        parent = draw(st.sampled_from([""] + folders))
        path = f"{parent}/{draw(names)}" if parent else draw(names)
        if path.casefold() in taken or any(f.casefold().startswith(path.casefold() + "/") for f in folders):
            continue
        taken.add(path.casefold())
        items.append(Item.from_bytes(owner, "documents", path, draw(st.binary(max_size=max_bytes)),
                                     metadata=draw(_document_metadata())))
    return sorted(items, key=lambda i: (i.kind != "folder", i.id.count("/"), i.id))


def _ical_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


_summary = (st.text(st.sampled_from(list("abcdefghij ABC éàç中Ω,;") + ["\\"]), min_size=1, max_size=30)
            .map(str.strip).filter(bool))
_displayname = st.text(_NAME_CHARS, min_size=1, max_size=20).map(str.strip).filter(bool)
_uid = st.from_regex(r"[a-z0-9]{6,12}(-[a-z0-9]{3,6})?", fullmatch=True)
_collection = st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True)


def calendar_object(uid: str, summary: str, start: datetime, *, prodid: str = "-//Relais conformance//EN") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{prodid}", "BEGIN:VEVENT", f"UID:{uid}",
             f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}", f"DTSTART:{start:%Y%m%dT%H%M%SZ}",
             f"SUMMARY:{_ical_text(summary)}", "END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def vcard(uid: str, name: str, email: str, *, version: str = "3.0") -> bytes:
    lines = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:{uid}", f"FN:{_ical_text(name)}",
             f"N:{_ical_text(name)};;;;", f"EMAIL:{email}", "END:VCARD"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@st.composite
def calendars(draw, owner: str, *, max_events: int = 4) -> list[Item]:
    """One or two calendars, each with a few VEVENT objects."""
    items: list[Item] = []
    for cal in draw(st.lists(_collection, min_size=1, max_size=2, unique=True)):
        items.append(Item.folder(owner, "calendars", cal, metadata={"displayname": draw(_displayname)}))
        for uid in draw(st.lists(_uid, max_size=max_events, unique=True)):
            start = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)))
            data = calendar_object(uid, draw(_summary), start)
            items.append(Item.from_bytes(owner, "calendars", f"{cal}/{uid}.ics", data,
                                         metadata={"media_type": "text/calendar", "uid": uid, "component": "VEVENT"}))
    return items


@st.composite
def contacts(draw, owner: str, *, max_cards: int = 4) -> list[Item]:
    """One or two address books, each with a few vCards."""
    items: list[Item] = []
    for book in draw(st.lists(_collection, min_size=1, max_size=2, unique=True)):
        items.append(Item.folder(owner, "contacts", book, metadata={"displayname": draw(_displayname)}))
        for uid in draw(st.lists(_uid, max_size=max_cards, unique=True)):
            version = draw(st.sampled_from(["3.0", "4.0"]))
            data = vcard(uid, draw(_summary), f"{uid}@example.org", version=version)
            items.append(Item.from_bytes(owner, "contacts", f"{book}/{uid}.vcf", data,
                                         metadata={"media_type": "text/vcard", "uid": uid, "vcard_version": version}))
    return items


@st.composite
def html_items(draw, owner: str, vertical: str) -> list[Item]:
    """Messages, blog posts or log entries: HTML bodies, some with an attachment."""
    items: list[Item] = []
    for key in draw(st.lists(_uid, min_size=1, max_size=4, unique=True)):
        body = f"<p>{draw(_summary)}</p>".encode()
        meta: dict = {"media_type": "text/html", "title": draw(_summary)}
        if vertical == "messages":
            meta |= {"role": "message", "subject": meta.pop("title"), "sent": draw(_dates), "folder": "inbox"}
        elif vertical == "blogs":
            meta |= {"role": "post", "state": "published"}
        elif vertical == "homework":
            meta |= {"entry_type": "homework", "due": "2026-09-14", "subject": "MATHS"}
        items.append(Item.from_bytes(owner, vertical, key, body, metadata=meta))
        if draw(st.booleans()):
            data = draw(st.binary(max_size=512))
            att = {"media_type": "application/octet-stream", "parent": key}
            att |= {"messages": {"role": "attachment"}, "blogs": {"role": "asset"},
                    "homework": {"entry_type": "attachment"}}.get(vertical, {})
            items.append(Item.from_bytes(owner, vertical, f"{key}/attachments/{draw(names)}", data, metadata=att))
    return items


def items_for(vertical: str, owner: str) -> st.SearchStrategy[list[Item]]:
    """The default generated item sets of ``vertical`` for ``owner``."""
    if vertical == "documents":
        return documents(owner)
    if vertical == "calendars":
        return calendars(owner)
    if vertical == "contacts":
        return contacts(owner)
    return html_items(owner, vertical)


#: What :func:`sample_file` adds to an HTML item's metadata, by vertical.
_SAMPLE_HTML_META: dict[str, dict[str, str]] = {
    "messages": {"role": "message", "subject": "Bienvenue"}, "blogs": {"role": "post", "state": "published"},
    "homework": {"entry_type": "lesson", "date": "2024-09-02"}}


def sample_file(vertical: str, owner: str) -> Item:
    """One valid file item of ``vertical``, in a folder (or calendar, book) not created yet."""
    if vertical == "documents":
        return Item.from_bytes(owner, vertical, "Dossier été/fiche #1.txt", "bonjour à tous\n".encode(),
                               metadata={"media_type": "text/plain", "modified": "2024-09-02T08:00:00Z"})
    if vertical == "calendars":
        return Item.from_bytes(owner, vertical, "agenda/rentree-2024.ics",
                               calendar_object("rentree-2024", "Rentrée", datetime(2024, 9, 2, 8)),
                               metadata={"media_type": "text/calendar", "uid": "rentree-2024", "component": "VEVENT"})
    if vertical == "contacts":
        return Item.from_bytes(owner, vertical, "carnet/vie-scolaire.vcf",
                               vcard("vie-scolaire", "Vie scolaire", "vie.scolaire@example.org"),
                               metadata={"media_type": "text/vcard", "uid": "vie-scolaire", "vcard_version": "3.0"})
    meta = {"media_type": "text/html", **_SAMPLE_HTML_META.get(vertical, {})}
    return Item.from_bytes(owner, vertical, "entree-1/contenu.html", b"<p>Bienvenue</p>", metadata=meta)
