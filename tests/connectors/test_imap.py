"""The IMAP messages connector against a real Dovecot (Debian's dovecot-imapd, started unprivileged on free
ports by tests/connectors/dovecot.py): the connector conformance kit, implicit TLS with the server's own CA,
a master user logging in as each owner, mail written by another client read byte for byte, flags and dates
kept, and what IMAP cannot hold refused."""
from __future__ import annotations

import email.utils
import hashlib
import imaplib
import json
import logging
import os
import ssl
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import strategies as st

from connectors.imap import message as msg
from connectors.imap.utf7 import decode, encode
from connectors.sdk import AuthError, BadItem, ConfigError, ConnectorError, Item, Outcome, open_exporter, open_importer
from connectors.sdk.conformance import ConformancePair, ConnectorConformance, ConnectorDeclaration, export_all
from tests.connectors.dovecot import MASTER, dovecot

ENV_VAR = "IMAP_MASTER_PASSWORD"


@pytest.fixture(scope="module")
def server():
    with dovecot() as running:
        yield running


@pytest.fixture(scope="module")
def owners_file(tmp_path_factory):
    return tmp_path_factory.mktemp("imap") / "owners.txt"


def config(server, owners_file, **options):
    opts = {"host": "localhost", "port": server.tls_port, "tls": "implicit", "owners_file": str(owners_file),
            **options}
    return {"auth": {"type": "basic", "username": MASTER, "password_env": ENV_VAR}, "verify_tls": str(server.ca),
            "timeout": 10, "retries": {"attempts": 2, "base_delay": 0.05, "max_delay": 0.1}, "options": opts}


@pytest.fixture(scope="module")
def env(server):
    return {ENV_VAR: server.password}


@pytest.fixture
def pair(server, owners_file, env):
    exp = open_exporter("imap", config(server, owners_file), environ=env)
    imp = open_importer("imap", config(server, owners_file), environ=env)
    yield exp, imp
    exp.close()
    imp.close()


# -- generated mailboxes -------------------------------------------------------------------------
FOLDERS = ["Projets", "Réunions & conseils", "Vie scolaire", "Archives", "Archives/2024"]
_date = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2025, 12, 31)).map(  # past: see below
    lambda d: d.replace(microsecond=0, tzinfo=UTC))
_flags = st.lists(st.sampled_from(["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Forwarded", "Important"]),
                  unique=True, max_size=4).map(sorted)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)


def rfc5322(subject: str, sent: datetime, body: str, attachment: bytes | None, mid: str | None = None) -> bytes:
    """A message as a mail client writes it (CRLF lines, MIME, an attachment in base64)."""
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    mid = mid or uuid.uuid4().hex
    m["Message-ID"] = f"<{mid}@ent-a.example>"
    m["From"] = "Mme Durand <durand@ent-a.example>"
    m["To"] = "Léa Martin <lea.martin@ent-a.example>, parents-6a@ent-a.example"
    m["Subject"] = subject
    m["Date"] = email.utils.format_datetime(sent)
    m.set_content(body or "(vide)")
    if attachment is not None:
        m.add_attachment(attachment, maintype="application", subtype="pdf", filename="fiche été.pdf")
        m.set_boundary(f"=_part_{mid}")  # not the email package's random one: hypothesis draws must not use random
    return m.as_bytes()


def message_item(owner: str, folder: str, data: bytes, flags: list[str], received: datetime) -> Item:
    meta = {"media_type": msg.MEDIA_TYPE, "role": "message", "folder": "inbox" if folder == "INBOX" else folder,
            "flags": flags, "read": "\\Seen" in flags, "received": received.isoformat().replace("+00:00", "Z"),
            **msg.describe(data)}
    key = f"{folder}/{msg.file_name(msg.base_key(data), 1)}"
    return Item.from_bytes(owner, "messages", key, data, metadata=meta)


@st.composite
def mailboxes(draw, owner: str) -> list[Item]:
    folders = draw(st.lists(st.sampled_from(FOLDERS), unique=True, max_size=3))
    if "Archives/2024" in folders and "Archives" not in folders:
        folders.append("Archives")
    folders.sort()
    items = [Item.from_bytes(owner, "messages", f, b"", kind="folder") for f in folders]
    for _ in range(draw(st.integers(1, 4))):
        folder = draw(st.sampled_from(["INBOX", *folders]))
        attachment = draw(st.one_of(st.none(), st.binary(max_size=600)))
        data = rfc5322(draw(_text), draw(_date), draw(_text), attachment, draw(st.uuids()).hex)
        items.append(message_item(owner, folder, data, draw(_flags), draw(_date)))
    return items


def sample(owner: str) -> Item:
    data = rfc5322("Sortie au musée", datetime(2024, 9, 2, 8, tzinfo=UTC), "Bonjour,\nrendez-vous à 8 h.", b"%PDF")
    return message_item(owner, "Projets", data, ["\\Seen"], datetime(2024, 9, 2, 8, 1, tzinfo=UTC))


class TestImapDeclaration(ConnectorDeclaration):
    @pytest.fixture
    def connector_name(self):
        return "imap"

    @pytest.fixture
    def connector_config(self, env, monkeypatch):
        monkeypatch.setenv(ENV_VAR, "unused")
        return {"auth": {"type": "basic", "username": MASTER, "password_env": ENV_VAR},
                "options": {"host": "imap.ent-a.example", "owners": ["2605692"]}}


class TestImapConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, pair):
        exp, imp = pair
        return ConformancePair(exporter=exp, importer=imp, items=mailboxes, sample=sample, examples=6,
                               invalid_contents=[b"not a message at all", b"Subject: LF only\n\nbody\n",
                                                 b"Subject: nul\r\n\r\n\x00\r\n"])


# -- beyond the kit ------------------------------------------------------------------------------
def test_mailbox_names_in_modified_utf7():
    assert encode("Réunions & conseils") == "R&AOk-unions &- conseils"
    assert decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    with pytest.raises(ValueError, match="modified UTF-7"):
        decode("&A-")


def test_mail_written_by_another_client_is_read_byte_for_byte(server, owners_file, env, pair):
    """Thunderbird-like mail appended by imaplib itself, outside the connector: folders, flags, dates,
    header metadata and the attachment inside the message's bytes."""
    exp, _ = pair
    owner = f"eleve-{uuid.uuid4().hex[:8]}"
    data = rfc5322("Devoir de maths", datetime(2024, 11, 5, 17, 30, tzinfo=UTC), "Exercice 3 p. 42", b"%PDF-1.7")
    conn = imaplib.IMAP4_SSL("localhost", server.tls_port, ssl_context=ssl.create_default_context(cafile=server.ca))
    conn.authenticate("PLAIN", lambda _: f"{owner}\0{MASTER}\0{server.password}".encode())
    assert conn.create('"Sent"')[0] == "OK" and conn.create('"&AMk-cole"')[0] == "OK"  # École
    conn.append('"Sent"', "(\\Seen $Forwarded)", imaplib.Time2Internaldate(datetime(2024, 11, 5, 17, 31,
                                                                                   tzinfo=UTC)), data)
    conn.append('"INBOX"', None, None, data)  # the same message twice: two items
    conn.append('"INBOX"', None, None, data)
    conn.logout()
    owners_file.open("a").write(owner + "\n")

    items = {i.id: i for i in export_all(exp, owner)}
    key = msg.base_key(data)
    assert sorted(items) == sorted(["Sent", "École", f"Sent/{key}.eml", f"INBOX/{key}.eml", f"INBOX/{key}-2.eml"])
    sent = items[f"Sent/{key}.eml"]
    assert sent.content.read() == data and sent.sha256 == hashlib.sha256(data).hexdigest()
    assert b"JVBERi0xLjc=" in data  # the attachment, base64 in the message itself
    assert dict(sent.metadata) == {
        "media_type": "message/rfc822", "role": "message", "folder": "sent", "flags": ["$Forwarded", "\\Seen"],
        "read": True, "received": "2024-11-05T17:31:00Z", "subject": "Devoir de maths",
        "from": {"id": "durand@ent-a.example", "email": "durand@ent-a.example", "name": "Mme Durand"},
        "to": [{"id": "lea.martin@ent-a.example", "email": "lea.martin@ent-a.example", "name": "Léa Martin"},
               {"id": "parents-6a@ent-a.example", "email": "parents-6a@ent-a.example"}],
        "sent": "2024-11-05T17:30:00Z"}
    assert items[f"INBOX/{key}.eml"].metadata["read"] is False
    assert owner in set(exp.iter_owners())


def test_flags_only_change_sets_flags_and_keeps_the_message(pair):
    exp, imp = pair
    item = sample(f"prof-{uuid.uuid4().hex[:8]}")
    assert imp.put(item) == Outcome.CREATED
    flagged = Item.from_bytes(item.owner, "messages", item.id, item.content.read(),
                              metadata={**item.metadata, "flags": ["\\Flagged", "\\Seen"]})
    assert imp.put(flagged) == Outcome.UPDATED
    assert imp.put(flagged) == Outcome.UNCHANGED
    (got,) = [i for i in export_all(exp, item.owner) if i.kind == "file"]
    assert got.metadata["flags"] == ["\\Flagged", "\\Seen"] and got.content.read() == item.content.read()
    assert got.metadata["received"] == "2024-09-02T08:01:00Z"


@pytest.mark.parametrize(("change", "word"), [
    ({"sharing": [{"principal": {"type": "class", "id": "0750001A$6A"}, "rights": "read"}]}, "sharing"),
    ({"extra": {"vendor": 1}}, "extra"),
    ({"subject": "Autre chose"}, "header says"),
    ({"to": [{"id": "x@ent-a.example"}]}, "'to'"),
    ({"read": False}, "\\Seen"),
    ({"media_type": "text/html"}, "message/rfc822"),
    ({"folder": "Ailleurs"}, "'folder'"),
    ({"received": "2099-01-01T00:00:00Z"}, "future"),  # Dovecot would store the time of the import instead
])
def test_what_imap_cannot_hold_is_refused_not_dropped(pair, change, word):
    _, imp = pair
    item = sample(f"refus-{uuid.uuid4().hex[:8]}")
    bad = Item.from_bytes(item.owner, "messages", item.id, item.content.read(), metadata={**item.metadata, **change})
    with pytest.raises(BadItem) as info:
        imp.put(bad)
    assert "imap" in str(info.value) and word in str(info.value)
    assert "Sortie au musée" not in str(info.value) and "durand@" not in str(info.value)  # no contents in errors


def test_an_id_not_derived_from_the_message_is_refused(pair):
    _, imp = pair
    item = sample(f"id-{uuid.uuid4().hex[:8]}")
    bad = Item.from_bytes(item.owner, "messages", "Projets/bienvenue.eml", item.content.read(),
                          metadata=dict(item.metadata))
    with pytest.raises(BadItem, match="Message-ID"):
        imp.put(bad)


def test_a_wrong_password_is_an_auth_error_that_never_shows_it(server, owners_file, caplog):
    caplog.set_level(logging.DEBUG)
    exp = open_exporter("imap", config(server, owners_file), environ={ENV_VAR: "wrong-Pa55word"})
    with pytest.raises(AuthError) as info:
        list(exp.iter_refs("2605692"))
    assert "wrong-Pa55word" not in str(info.value) + caplog.text
    assert "2605692" in str(info.value)


def test_tls_is_checked_against_the_configured_ca(server, owners_file, env):
    exp = open_exporter("imap", {**config(server, owners_file), "verify_tls": True}, environ=env)
    with pytest.raises(ConnectorError, match="connect"):  # the test CA is not the system's
        list(exp.iter_refs("2605692"))
    starttls = open_exporter("imap", config(server, owners_file, port=server.port, tls="starttls"), environ=env)
    assert list(starttls.iter_refs(f"vide-{uuid.uuid4().hex[:6]}")) == []
    starttls.close()


def test_clear_text_only_on_loopback(server, owners_file, env):
    with pytest.raises(ConfigError, match="loopback"):
        open_exporter("imap", config(server, owners_file, host="imap.ent-a.example", tls="none"), environ=env)
    plain = open_exporter("imap", config(server, owners_file, host="127.0.0.1", port=server.port, tls="none"),
                          environ=env)
    assert list(plain.iter_refs(f"vide-{uuid.uuid4().hex[:6]}")) == []
    plain.close()
    with pytest.raises(ConfigError, match="owners"):
        open_exporter("imap", {**config(server, owners_file), "options": {"host": "localhost"}},
                      environ=env).owner_list()  # type: ignore[attr-defined]


def test_relais_connectors_check_logs_in_as_the_owner(server, owners_file, env, tmp_path):
    cfg = tmp_path / "imap.yaml"
    cfg.write_text(json.dumps(config(server, owners_file)))
    relais = str(Path(sys.executable).with_name("relais"))
    run = [relais, "connectors", "check", "imap", "--config", str(cfg), "--owner", "2605692"]
    ok = subprocess.run(run, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "imap: ok" in ok.stdout and "2605692: 0 files" in ok.stdout, ok.stderr
    bad = subprocess.run(run, env={**os.environ, ENV_VAR: "bad-Pa55"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "refused to log" in bad.stderr and "bad-Pa55" not in bad.stderr + bad.stdout
