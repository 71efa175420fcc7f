"""CalDAV calendars and CardDAV contacts against real Radicale servers: the conformance kit for
both, a migration from one server (ENT A) to another (ENT B) keeping iCalendar and vCard bytes
and collection metadata, metadata a server cannot keep refused, auth errors."""
from __future__ import annotations

import pytest

from connectors.dav import same_content
from connectors.sdk import AuthError, BadItem, Item, Outcome, open_exporter, open_importer
from connectors.sdk.conformance import ConformancePair, ConnectorConformance, export_all, rehome
from connectors.testing import radicale_app, serve_wsgi

PASSWORD = "s3cret-radicale"
ENV = {"DAV_PASSWORD": PASSWORD}

# folded lines, a time zone, vendor X- properties, parameters, an override: what must survive as served
ICS = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Vendor ENT A//FR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
       "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
       "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\n"
       "UID:cours-maths-6a@ent-a\r\nDTSTAMP:20240901T080000Z\r\nDTSTART;TZID=Europe/Paris:20240902T080000\r\n"
       "DTEND;TZID=Europe/Paris:20240902T090000\r\nRRULE:FREQ=WEEKLY;COUNT=30\r\n"
       "SUMMARY:Mathématiques 6ᵉA — salle 12\\, bâtiment B\r\n"
       "DESCRIPTION:Une longue description qui dépasse largement soixante-quinze octets afin de "
       "vérifier le repliement des lignes\r\nATTENDEE;CN=\"Mme Dupont\";ROLE=CHAIR:mailto:dupont@example.org\r\n"
       "X-ENTA-CLASSE:6A\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:cours-maths-6a@ent-a\r\n"
       "RECURRENCE-ID;TZID=Europe/Paris:20240909T080000\r\nDTSTAMP:20240901T080000Z\r\n"
       "DTSTART;TZID=Europe/Paris:20240909T100000\r\nSUMMARY:Maths (déplacé)\r\nEND:VEVENT\r\n"
       "END:VCALENDAR\r\n").encode()
VCF = ("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\nFN:Élise Müller\r\n"
       "N:Müller;Élise;;;\r\nEMAIL;TYPE=work:elise.muller@example.org\r\nTEL;TYPE=cell:+33 6 12 34 56 78\r\n"
       "X-ENTA-ROLE:parent\r\nEND:VCARD\r\n").encode()


@pytest.fixture(scope="module")
def radicale_url(tmp_path_factory):
    with serve_wsgi(radicale_app(tmp_path_factory.mktemp("radicale"), {"relais": PASSWORD})) as url:
        yield url + "/"


def cfg(url):
    return {"url": url, "auth": {"type": "basic", "username": "relais", "password_env": "DAV_PASSWORD"}}


def _pair(name, url, invalid):
    return ConformancePair(exporter=open_exporter(name, cfg(url), environ=ENV),
                           importer=open_importer(name, cfg(url), environ=ENV),
                           exact_bytes=False, same_content=same_content, invalid_contents=invalid)


class TestCalDavConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, radicale_url):
        return _pair("caldav", radicale_url, [b"this is not a calendar", b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"])


class TestCardDavConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, radicale_url):
        return _pair("carddav", radicale_url, [b"this is not a vcard", b"BEGIN:VCARD\r\nFN:x\r\n"])


@pytest.mark.parametrize("name,vertical,data,coll_meta", [
    ("caldav", "calendars", ICS, {"displayname": "Emploi du temps 6ᵉA", "color": "#3366ffff",
                                  "description": "Cours", "extra": {"enta:calendarId": 42}}),
    ("carddav", "contacts", VCF, {"displayname": "Parents d'élèves", "extra": {"enta:bookId": "b-7"}}),
])
def test_migration_from_one_server_to_another_keeps_everything(tmp_path, name, vertical, data, coll_meta):
    """ENT A's server is seeded; export, import into ENT B's empty server, export again: identical."""
    with serve_wsgi(radicale_app(tmp_path / "a", {"relais": PASSWORD})) as a, \
            serve_wsgi(radicale_app(tmp_path / "b", {"relais": PASSWORD})) as b:
        a, b = a + "/", b + "/"
        ext = ".ics" if vertical == "calendars" else ".vcf"
        seed = [Item.folder("2605692", vertical, "perso", metadata=coll_meta),
                Item.from_bytes("2605692", vertical, f"perso/obj-1{ext}", data,
                                metadata={"media_type": "text/calendar" if ext == ".ics" else "text/vcard"})]
        open_importer(name, cfg(a), environ=ENV).import_items(seed, stop_on_error=True)
        source = open_exporter(name, cfg(a), environ=ENV)
        assert "2605692" in list(source.iter_owners())
        e1 = export_all(source, "2605692")
        assert [i.id for i in e1] == ["perso", f"perso/obj-1{ext}"]
        assert e1[0].metadata == coll_meta
        assert same_content(data, e1[1].content.read())
        assert e1[1].metadata["uid"] == data.split(b"UID:")[1].split(b"\r\n")[0].decode()
        report = open_importer(name, cfg(b), environ=ENV).import_items(e1, stop_on_error=True)
        assert report.created == 2
        e2 = export_all(open_exporter(name, cfg(b), environ=ENV), "2605692")
        assert [(i.id, i.kind, i.sha256, i.metadata) for i in e2] == [(i.id, i.kind, i.sha256, i.metadata) for i in e1]
        assert e2[1].content.read() == e1[1].content.read()
        again = open_importer(name, cfg(b), environ=ENV).import_items(e1, stop_on_error=True)
        assert again.unchanged == 2


def test_metadata_a_calendar_object_cannot_keep_is_refused(radicale_url):
    imp = open_importer("caldav", cfg(radicale_url), environ=ENV)
    item = Item.from_bytes("refus", "calendars", "cal/x.ics", ICS,
                           metadata={"media_type": "text/calendar", "extra": {"vendor": 1}})
    with pytest.raises(BadItem, match="'extra'.*cannot be kept") as info:
        imp.put(item)
    assert "caldav" in str(info.value) and "refus:calendars/cal/x.ics" in str(info.value)
    wrong_uid = Item.from_bytes("refus", "calendars", "cal/x.ics", ICS,
                                metadata={"media_type": "text/calendar", "uid": "other"})
    with pytest.raises(BadItem, match="uid"):
        imp.put(wrong_uid)
    assert imp.put(Item.from_bytes("refus", "calendars", "cal/x.ics", ICS,
                                   metadata={"media_type": "text/calendar"})) == Outcome.CREATED


def test_wrong_password_is_refused_clearly(radicale_url, caplog):
    exp = open_exporter("carddav", cfg(radicale_url), environ={"DAV_PASSWORD": "not-it-987"})
    with pytest.raises(AuthError) as info:
        list(exp.iter_owners())
    assert "carddav" in str(info.value) and "401" in str(info.value)
    assert "not-it-987" not in str(info.value) + caplog.text


def test_same_content_ignores_order_and_folding_but_not_values():
    refolded = ICS.replace(b"afin de v", b"afin de\r\n  v")  # folding inside a value
    assert same_content(ICS, refolded)
    lines = ICS.split(b"\r\n")
    swapped = lines[:]
    i = lines.index(b"DTSTAMP:20240901T080000Z")
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    assert same_content(ICS, b"\r\n".join(swapped))
    assert not same_content(ICS, ICS.replace(b"salle 12", b"salle 13"))
    assert not same_content(ICS, ICS.replace(b"X-ENTA-CLASSE:6A\r\n", b""))
    assert not same_content(VCF, VCF.replace(b"VERSION:4.0", b"VERSION:3.0"))
    assert rehome([], "x") == []
