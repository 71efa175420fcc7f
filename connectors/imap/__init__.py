"""Messages over IMAP (``imap``): folders, flags and whole RFC 5322 messages; see :mod:`.connector`.

Modules: :mod:`.client` (settings, TLS, login, one session per owner and thread), :mod:`.message`
(what a message's header says, its key; no I/O), :mod:`.utf7` (mailbox names), :mod:`.connector`
(the exporter and importer).
"""
from connectors.sdk.registry import ConnectorInfo

from .connector import ImapExporter, ImapImporter, exporter_from_config, importer_from_config

CONNECTOR = ConnectorInfo(
    name="imap", verticals=("messages",),
    summary="Mail over IMAP: folders, flags and whole RFC 5322 messages (attachments as their MIME parts)",
    exporter=exporter_from_config, importer=importer_from_config,
    options={"host": "the IMAP server's name (required)",
             "port": "its port (default 993 with tls implicit, else 143)",
             "tls": "implicit (default), starttls, or none (a loopback host only: the password would go in clear)",
             "impersonate": "true (default): the auth account logs in as each owner (SASL PLAIN authorization "
                            "identity: a Dovecot master user, a Cyrus admin); false: it reads its own mail only",
             "owners": "the accounts to export (IMAP cannot list them)",
             "owners_file": "a file of accounts, one a line; the importer adds those it writes to"})

__all__ = ["CONNECTOR", "ImapExporter", "ImapImporter"]
