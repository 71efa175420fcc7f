"""The trusted national IdPs' metadata (what our SP relies on): read from a file or a URL, verified when
signed, refreshed on schedule.

`parse_idp_metadata` (pure) turns a metadata document into `IdpMetadata`: the
entity id, its SSO and SLO endpoints, its signing keys. It refuses expired
metadata (`validUntil` of the document, the entity or its IDPSSODescriptor:
the earliest counts), and when certificates are configured for it, metadata
that is not signed by one of them. Parsing is safe (no DTD, entities, network).

`IdpSource` keeps the current metadata of one configured IdP in memory, so a
login never parses metadata. `refresh(now)` re-reads the file (only if it
changed) or re-fetches the URL when due (rules/metadata_refresh.py: every
`refresh_interval` seconds, sooner with a shorter `cacheDuration` or halfway to
`validUntil`). A failed refresh keeps the previous metadata until its
`validUntil`; the last good copy of URL metadata is kept in the database
(`sso_saml_metadata`) so an instance starting while the IdP's server is down can
still log users in.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from lxml import etree
from sqlalchemy import Engine, delete, insert, select

from relais.db import writer

from ..rules.metadata_refresh import next_refresh
from ..saml.keys import Certificate
from ..saml.metadata import SAML2_PROTOCOL, Endpoint, metadata_root, parse_duration, the_entity
from ..saml.signatures import verify_enveloped
from ..saml.xml import BINDING_POST, BINDING_REDIRECT, DS, MD, Refused, parse_instant
from ..tables import saml_metadata
from .config import IdpSettings

log = logging.getLogger(__name__)

MAX_METADATA_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    signing_certificates: tuple[Certificate, ...]
    sso: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...]
    valid_until: datetime | None
    cache_duration: timedelta | None
    want_authn_requests_signed: bool
    signature_checked: bool  # the document's signature was verified with a configured certificate

    def endpoint(self, kind: str) -> Endpoint | None:
        """The SSO or SLO endpoint to use: HTTP-Redirect preferred, else HTTP-POST; None if neither."""
        endpoints = self.sso if kind == "sso" else self.slo
        for binding in (BINDING_REDIRECT, BINDING_POST):
            for e in endpoints:
                if e.binding == binding:
                    return e
        return None

    @property
    def hosts(self) -> frozenset[str]:
        """The host names of the IdP's endpoints (default destinations FrEduUrlRetour may point to)."""
        return frozenset((urlsplit(e.location).hostname or "").lower() for e in self.sso + self.slo)


def parse_idp_metadata(document: bytes, *, where: str, now: datetime, entity_id: str | None = None,
                       trusted: Sequence[Certificate] = ()) -> IdpMetadata:
    """Read one IdP's metadata; raises `Refused` (reason `metadata-*`) saying what is wrong and where."""
    root = metadata_root(document, where, MAX_METADATA_BYTES)
    checked = False
    if trusted:
        try:
            verify_enveloped(root, trusted, f"metadata {where}", allow_whole_document=True)
        except Refused as exc:
            raise Refused("metadata-signature", exc.detail) from None
        checked = True
    elif root.find(f"{DS}Signature") is not None:
        log.warning("metadata %s is signed but no metadata_certificates are configured: its signature is "
                    "not checked", where)

    entity = the_entity(root, "IDPSSODescriptor", entity_id, where, "an identity provider", "identity providers")
    descriptors = [d for d in entity.findall(f"{MD}IDPSSODescriptor")
                   if SAML2_PROTOCOL in (d.get("protocolSupportEnumeration") or "").split()]
    if not descriptors:
        raise Refused("metadata-unusable", f"metadata {where}: the IdP does not declare SAML 2.0 support")
    idp = descriptors[0]

    valid_until = None
    cache = None
    node: etree._Element | None = idp
    while node is not None:  # the document, the entity and the descriptor: the earliest limit counts
        limit = parse_instant(node.get("validUntil"), f"metadata {where}: validUntil")
        if limit is not None and (valid_until is None or limit < valid_until):
            valid_until = limit
        duration = parse_duration(node.get("cacheDuration"))
        if duration is not None and (cache is None or duration < cache):
            cache = duration
        node = node.getparent()
    if valid_until is not None and valid_until <= now:
        raise Refused("metadata-expired", f"metadata {where}: expired (validUntil {valid_until:%Y-%m-%dT%H:%M:%SZ})")

    certs: list[Certificate] = []
    for kd in idp.findall(f"{MD}KeyDescriptor"):
        if kd.get("use") not in (None, "signing"):
            continue
        for text in kd.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate"):
            try:
                cert = Certificate.from_base64(text.text or "")
            except ValueError:
                raise Refused("metadata-unusable", f"metadata {where}: a signing X509Certificate is not a valid "
                                                   "certificate") from None
            if cert not in certs:
                certs.append(cert)
    if not certs:
        raise Refused("metadata-unusable", f"metadata {where}: the IdP publishes no signing certificate")

    def endpoints(tag: str) -> tuple[Endpoint, ...]:
        out = []
        for e in idp.findall(f"{MD}{tag}"):
            location = e.get("Location") or ""
            if urlsplit(location).scheme not in ("https", "http"):
                raise Refused("metadata-unusable", f"metadata {where}: {tag} Location {location!r} is not http(s)")
            out.append(Endpoint(e.get("Binding") or "", location, e.get("ResponseLocation")))
        return tuple(out)

    sso, slo = endpoints("SingleSignOnService"), endpoints("SingleLogoutService")
    result = IdpMetadata(entity_id=entity.get("entityID") or "", signing_certificates=tuple(certs), sso=sso,
                         slo=slo, valid_until=valid_until, cache_duration=cache,
                         want_authn_requests_signed=idp.get("WantAuthnRequestsSigned") in ("true", "1"),
                         signature_checked=checked)
    if not result.entity_id:
        raise Refused("metadata-unusable", f"metadata {where}: the entity has no entityID")
    if result.endpoint("sso") is None:
        raise Refused("metadata-unusable", f"metadata {where}: no SingleSignOnService with the HTTP-Redirect or "
                                           "HTTP-POST binding")
    return result


def fetch_url(url: str, *, timeout: float = 10.0) -> bytes:
    """GET metadata (TLS verified, size-capped); raises OSError with what went wrong."""
    request = urllib.request.Request(url, headers={"Accept": "application/samlmetadata+xml, application/xml"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_METADATA_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, ValueError) as exc:
        raise OSError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_METADATA_BYTES:
        raise OSError(f"{url}: more than {MAX_METADATA_BYTES} bytes")
    return body


class IdpSource:
    """The current metadata of one configured IdP, refreshed on schedule (thread-safe)."""

    def __init__(self, settings: IdpSettings, *, engine: Engine | None = None,
                 fetch: Callable[[str], bytes] = fetch_url) -> None:
        self.settings = settings
        self.engine = engine
        self.fetch = fetch
        self._metadata: IdpMetadata | None = None
        self._next_refresh: datetime | None = None
        self._file_stamp: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def current(self, now: datetime) -> IdpMetadata:
        """The metadata in force; raises `Refused("idp-unavailable")` if there is none or it expired."""
        metadata = self._metadata
        if metadata is None:
            raise Refused("idp-unavailable", f"IdP {self.settings.id}: no usable metadata ({self.last_error})")
        if metadata.valid_until is not None and metadata.valid_until <= now:
            raise Refused("idp-unavailable", f"IdP {self.settings.id}: its metadata expired at "
                                             f"{metadata.valid_until:%Y-%m-%dT%H:%M:%SZ} and no fresh copy was loaded")
        return metadata

    def due(self, now: datetime) -> bool:
        return self._next_refresh is None or now >= self._next_refresh

    def refresh(self, now: datetime, *, force: bool = False) -> bool:
        """Load the metadata again if due (or `force`); True if usable metadata is in force afterwards."""
        with self._lock:
            if not force and not self.due(now):
                return self._metadata is not None
            where = self.settings.source
            try:
                document = self._read()
                if document is not None:
                    self._metadata = self._parse(document, where, now)
                    self._store(document, now)
                    log.info("metadata of IdP %s loaded from %s (valid until %s)", self.settings.id, where,
                             self._metadata.valid_until)
                self.last_error = None
                self._schedule(now, ok=True)
            except (OSError, Refused) as exc:
                self.last_error = str(exc)
                log.error("metadata of IdP %s not refreshed from %s: %s", self.settings.id, where, exc)
                if self._metadata is None:
                    self._metadata = self._from_cache(now)
                self._schedule(now, ok=False)
            return self._metadata is not None

    def _parse(self, document: bytes, where: str, now: datetime) -> IdpMetadata:
        return parse_idp_metadata(document, where=where, now=now, entity_id=self.settings.entity_id,
                                  trusted=self.settings.metadata_certificates)

    def _read(self) -> bytes | None:
        """The document, or None when the file did not change since the last read."""
        if self.settings.metadata_url:
            return self.fetch(self.settings.metadata_url)
        path = self.settings.metadata_file
        if path is None:
            raise OSError(f"IdP {self.settings.id} has neither metadata_url nor metadata_file")
        stat = path.stat()
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._file_stamp and self._metadata is not None:
            return None
        document = path.read_bytes()
        self._file_stamp = stamp
        return document

    def _schedule(self, now: datetime, ok: bool) -> None:
        metadata = self._metadata
        self._next_refresh = next_refresh(
            now, refresh_interval=timedelta(seconds=self.settings.refresh_interval), succeeded=ok,
            cache_duration=metadata.cache_duration if metadata else None,
            valid_until=metadata.valid_until if metadata else None)

    def _store(self, document: bytes, now: datetime) -> None:
        if self.engine is None or not self.settings.metadata_url:
            return
        with writer(self.engine).begin() as conn:
            conn.execute(delete(saml_metadata).where(saml_metadata.c.idp == self.settings.id))
            conn.execute(insert(saml_metadata).values(idp=self.settings.id, source=self.settings.metadata_url,
                                                       document=document.decode("utf-8", errors="replace"),
                                                       fetched_at=now))

    def _from_cache(self, now: datetime) -> IdpMetadata | None:
        if self.engine is None or not self.settings.metadata_url:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(saml_metadata.c.document, saml_metadata.c.source, saml_metadata.c.fetched_at)
                               .where(saml_metadata.c.idp == self.settings.id)).first()
        if row is None or row.source != self.settings.metadata_url:
            return None
        try:
            metadata = self._parse(row.document.encode("utf-8"), f"{row.source} (copy kept in the database)", now)
        except Refused as exc:
            log.error("the kept copy of IdP %s's metadata is not usable either: %s", self.settings.id, exc)
            return None
        log.warning("IdP %s: using the copy of its metadata fetched at %s", self.settings.id, row.fetched_at)
        return metadata
