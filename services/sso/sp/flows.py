"""The SAML SP's use cases: log in through a national IdP, choose an account, log out (both directions).

`ServiceProvider` is built once per application from the `saml:` settings; it
holds our keys, the SP metadata and the trusted IdPs' metadata in memory, so
the assertion consumer path parses nothing but the response. Everything it
must remember between two HTTP requests (pending requests, choices, IdP
session links, the replay cache) is in the database, so any instance can finish
what another started.

The HTTP side (http.py) only translates: each method here takes plain
values (the browser binding cookie, form fields) and returns an outcome.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine

from relais.db import writer

from .. import events
from ..attribute_source import AttributeSource
from ..config import Lifetimes
from ..connections import alone
from ..directory_port import DirectoryPort
from ..rules.account_matching import Candidate, match_identity
from ..rules.national_attributes import named_attributes
from ..rules.redirects import LOCAL_NEXT_DEFAULT, return_url_allowed, safe_next
from ..rules.usage_facts import NO_FACTS, UsageFacts, usage_facts
from ..saml.bindings import Outgoing, encode
from ..saml.metadata import Endpoint
from ..saml.xml import BINDING_REDIRECT, STATUS_SUCCESS, Refused, new_id
from ..sessions import ClosedSession, Session, close_session, close_session_by_key, digest, open_session
from . import store
from .config import IdpSettings, SamlSettings
from .messages import (
    VerifiedLogout,
    authn_request,
    logout_request,
    logout_response,
    read_logout,
    sp_metadata,
    verify_logout,
)
from .response_checks import Expected, Policy, VerifiedLogin, read_response, verify
from .store import PendingRequest, SamlSessionLink
from .trusted_idps import IdpMetadata, IdpSource, fetch_url

log = logging.getLogger(__name__)

CHOICE_LIFETIME = timedelta(minutes=10)
LOGOUT_REQUEST_LIFETIME = timedelta(minutes=5)


# -- outcomes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedIn:
    session: Session
    next: str


@dataclass(frozen=True)
class ChoiceNeeded:
    token: str
    candidates: tuple[Candidate, ...]
    idp_label: str


@dataclass(frozen=True)
class LoginRefused:
    reason: str
    detail: str
    incident: str  # shown to the user and logged, so support can find the log line
    idp: IdpSettings | None = None


@dataclass(frozen=True)
class LogoutStarted:
    outgoing: Outgoing | None  # to the IdP's SLO endpoint, or None (local logout only)
    return_url: str | None  # where to send the user when there is no IdP round trip


@dataclass(frozen=True)
class LogoutAnswered:
    """An IdP's LogoutRequest was handled: answer it; `closed_refs` says which sessions ended."""

    outgoing: Outgoing
    closed_refs: tuple[str, ...]
    closed_keys: tuple[str, ...]


@dataclass(frozen=True)
class LogoutFinished:
    """The IdP answered our LogoutRequest."""

    return_url: str | None
    complete: bool


class ServiceProvider:
    """Our SAML 2.0 SP towards the national IdPs (see the module docstring)."""

    def __init__(self, settings: SamlSettings, *, engine: Engine, directory: DirectoryPort, tenant: str,
                 lifetimes: Lifetimes, clock: Callable[[], datetime],
                 notify: Callable[[ClosedSession, datetime], Any] | None = None,
                 fetch: Callable[[str], bytes] = fetch_url,
                 uai_of: Callable[[str], str | None] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.directory = directory
        # A structure's UAI, for the session's usage facts: the application's cache (app.py), shared with CAS.
        self.uai_of = uai_of or AttributeSource(directory, uai_ttl=300).uai_of
        self.tenant = tenant
        self.lifetimes = lifetimes
        self.clock = clock
        self.notify = notify
        self.sources = {idp.id: IdpSource(idp, engine=engine, fetch=fetch) for idp in settings.idps}
        self._metadata_xml: bytes | None = None
        self._refreshing = threading.Lock()
        self.skew = timedelta(seconds=settings.clock_skew)

    # -- metadata --------------------------------------------------------------------------------

    def load_idp_metadata(self) -> dict[str, str | None]:
        """Load every IdP's metadata now; returns IdP id -> None (loaded) or the error."""
        now = self.clock()
        return {idp_id: None if source.refresh(now, force=True) else source.last_error
                for idp_id, source in self.sources.items()}

    def refresh_due_metadata(self) -> None:
        """Start a background refresh of the metadata that is due (never blocks a login)."""
        now = self.clock()
        if not any(s.due(now) for s in self.sources.values()) or not self._refreshing.acquire(blocking=False):
            return

        def run() -> None:
            try:
                for source in self.sources.values():
                    source.refresh(self.clock())
            finally:
                self._refreshing.release()

        threading.Thread(target=run, daemon=True, name="saml-metadata-refresh").start()

    def metadata(self) -> bytes:
        """Our SP metadata (built and signed once)."""
        if self._metadata_xml is None:
            self._metadata_xml = sp_metadata(self.settings)
        return self._metadata_xml

    # -- login -----------------------------------------------------------------------------------

    def start_login(self, idp: IdpSettings, *, next_path: str, force_authn: bool, browser: str) -> Outgoing:
        """A signed AuthnRequest to the IdP, remembered in the database for whichever instance gets the answer."""
        now = self.clock()
        metadata = self.sources[idp.id].current(now)
        endpoint = metadata.endpoint("sso")
        if endpoint is None:  # parse_idp_metadata refuses metadata without one
            raise Refused("idp-unavailable", f"IdP {idp.id} publishes no SingleSignOnService we can use")
        request_id = new_id()
        message = authn_request(request_id=request_id, now=now, destination=endpoint.location,
                                settings=self.settings, force_authn=force_authn)
        with writer(self.engine).begin() as conn:
            store.save_request(conn, PendingRequest(
                id=request_id, kind="authn", idp=idp.id, browser_sha256=digest(browser), next=safe_next(next_path),
                force_authn=force_authn, issued_at=now,
                expires_at=now + timedelta(seconds=self.settings.request_lifetime)))
        binding = "Redirect" if endpoint.binding == BINDING_REDIRECT else "POST"
        log.info("AuthnRequest %s sent to IdP %s (%s binding)%s", request_id, idp.id, binding,
                 " with ForceAuthn" if force_authn else "")
        return encode(message, binding=endpoint.binding, location=endpoint.location, param="SAMLRequest",
                      key=self.settings.signing_key)

    def finish_login(self, saml_response: str | None, browser: str | None) -> LoggedIn | ChoiceNeeded | LoginRefused:
        """The assertion consumer service: verify, match, open the session (or ask the user to choose)."""
        now = self.clock()
        idp: IdpSettings | None = None
        try:
            doc = read_response(saml_response)
            if doc.in_response_to is None:
                raise Refused("unsolicited", "the response answers no request (IdP-initiated login is not accepted)")
            with self.engine.connect() as conn, alone(conn):  # a read: no BEGIN, no ROLLBACK (connections.py)
                pending = store.find_request(conn, doc.in_response_to)
            if pending is None or pending.kind != "authn":
                raise Refused("unknown-request", "InResponseTo names no login request of this SP")
            idp = self.settings.idp(pending.idp)
            if idp is None:
                raise Refused("unknown-request", f"the request was sent to IdP {pending.idp}, no longer configured")
            if pending.expires_at <= now:
                raise Refused("request-expired", f"the login request expired {(now - pending.expires_at).seconds} s "
                                                 "ago (request_lifetime)")
            if not browser or digest(browser) != pending.browser_sha256:
                raise Refused("browser-mismatch", "the login was started in another browser, or cookies are blocked")
            metadata = self.sources[idp.id].current(now)
            login = verify(doc, self._expected(metadata, pending), self._policy(idp, metadata), now)
        except Refused as exc:
            return self._refused(exc, idp, now, audit=idp is not None)

        attributes = named_attributes(login.attributes)
        match = match_identity(idp.kind, attributes, self.directory, email_attribute=idp.email_attribute)
        # From the records the matching read (a structure's UAI at most, cached), before the transaction.
        usage = {c.jointure: usage_facts(c.record, self.uai_of, via_uai=c.via_uai) for c in match.candidates}
        try:
            with writer(self.engine).begin() as conn:
                if not store.remember_once(conn, login.issuer, login.assertion_id, login.replay_until):
                    raise Refused("replay", "this assertion was already used")
                if not store.consume_request(conn, pending.id, now):
                    raise Refused("already-answered", "the login request was already answered by another response")
                login_facts = self._login_facts(idp, login, attributes, pending.next or LOCAL_NEXT_DEFAULT)
                if match.unique is not None:
                    jointure = match.unique.jointure
                    session = self._open(conn, login_facts, jointure, now, usage[jointure])
                    log.info("national login through %s matched by %s: session %s opened for %s", idp.id,
                             match.method, session.ref, session.person_jointure)
                    return LoggedIn(session, login_facts["next"])
                if match.candidates:
                    token = secrets.token_urlsafe(32)
                    store.save_choice(conn, token, browser, {**login_facts, "candidates": [
                        [c.jointure, c.label] for c in match.candidates],
                        "usage": {j: f.to_json() for j, f in usage.items()}}, now + CHOICE_LIFETIME)
                    log.info("national login through %s matched %d accounts by %s: the user chooses", idp.id,
                             len(match.candidates), match.method)
                    return ChoiceNeeded(token, match.candidates, idp.label)
                incident = secrets.token_hex(4)
                detail = "; ".join(match.notes)
                log.warning("national login through %s refused: no-account (%s) [incident %s]", idp.id, detail,
                            incident)
                events.login_failed(conn, auth_source=idp.id, reason="no-account", now=now, tenant=self.tenant,
                                    detail=f"{detail} [incident {incident}]"[:500])
                return LoginRefused("no-account", detail, incident, idp)
        except Refused as exc:
            return self._refused(exc, idp, now, audit=True)

    def choose(self, token: str | None, browser: str | None, jointure: str | None) -> LoggedIn | LoginRefused:
        """The user picked one of the accounts their national identity matched."""
        now = self.clock()
        try:
            with writer(self.engine).begin() as conn:
                facts = store.peek_choice(conn, token, browser, now)
                if facts is None or token is None:
                    raise Refused("choice-expired", "no pending account choice for this browser (expired, "
                                                    "already made, or another browser)")
                if jointure is None or jointure not in {j for j, _label in facts["candidates"]}:
                    raise Refused("choice-invalid", "the chosen account is not one the identity matched")
                if not store.take_choice(conn, token, now):
                    raise Refused("choice-expired", "the account choice was already made")
                chosen = facts.get("usage")
                session = self._open(conn, facts, jointure, now,
                                     UsageFacts.from_json(chosen.get(jointure) if isinstance(chosen, dict) else None))
                log.info("national login through %s: the user chose among %d accounts, session %s opened for %s",
                         facts["idp"], len(facts["candidates"]), session.ref, session.person_jointure)
                return LoggedIn(session, facts["next"])
        except Refused as exc:
            return self._refused(exc, None, now, audit=False)

    def _expected(self, metadata: IdpMetadata, pending: PendingRequest) -> Expected:
        return Expected(sp_entity_id=self.settings.entity_id, acs_url=self.settings.acs_url,
                        idp_entity_id=metadata.entity_id, request_id=pending.id,
                        request_issued_at=pending.issued_at, force_authn=pending.force_authn)

    def _policy(self, idp: IdpSettings, metadata: IdpMetadata) -> Policy:
        return Policy(trusted=metadata.signing_certificates, decryption_keys=self.settings.keys, clock_skew=self.skew,
                      want_assertions_signed=idp.want_assertions_signed,
                      want_assertions_encrypted=idp.want_assertions_encrypted,
                      allow_legacy=idp.allow_legacy_algorithms)

    @staticmethod
    def _login_facts(idp: IdpSettings, login: VerifiedLogin, attributes: dict[str, list[str]], next_path: str) -> dict:
        """What opening the session needs, JSON-serialisable (it may wait in sso_saml_choice)."""
        national_id = (attributes.get("FrEduCtId") or [login.name_id])[0]
        return_urls = attributes.get("FrEduUrlRetour")
        return_url = return_urls[0] if return_urls else None
        return {"idp": idp.id, "national_id": national_id, "attributes": attributes, "next": next_path,
                "link": {"idp": idp.id, "name_id": login.name_id, "name_id_format": login.name_id_format,
                         "name_qualifier": login.name_qualifier, "sp_name_qualifier": login.sp_name_qualifier,
                         "session_index": login.session_index, "return_url": return_url}}

    def _open(self, conn: Connection, facts: dict, jointure: str, now: datetime,
              usage: UsageFacts = NO_FACTS) -> Session:
        session = open_session(conn, person_jointure=jointure, auth_source=facts["idp"],
                               national_id=facts["national_id"][:255], attributes=facts["attributes"], now=now,
                               tenant=self.tenant, lifetimes=self.lifetimes, usage=usage)
        store.link_session(conn, session.id, facts["link"], session.expires_at)
        return session

    def _refused(self, exc: Refused, idp: IdpSettings | None, now: datetime, *, audit: bool) -> LoginRefused:
        """Log a refusal (reason and detail, never message contents) and audit it when it concerns a real login."""
        incident = secrets.token_hex(4)
        log.warning("SAML login refused: %s (%s) idp=%s [incident %s]", exc.reason, exc.detail,
                    idp.id if idp else "?", incident)
        if audit and idp is not None:
            with writer(self.engine).begin() as conn:
                events.login_failed(conn, auth_source=idp.id, reason=exc.reason, now=now, tenant=self.tenant,
                                    detail=f"{exc.detail} [incident {incident}]"[:500])
        return LoginRefused(exc.reason, exc.detail, incident, idp)

    # -- logout ----------------------------------------------------------------------------------

    def start_logout(self, session_id: str | None, fallback_url: str | None = None) -> LogoutStarted:
        """SP-initiated logout: end our session (and tell the CAS apps), then ask the IdP to end its own.

        The user ends up at the IdP's FrEduUrlRetour when allowed, else at `fallback_url` (a URL the caller
        checked: a registered CAS service asking to be returned to), else on our "logged out" page.
        """
        now = self.clock()
        outgoing, return_url = None, fallback_url
        with writer(self.engine).begin() as conn:
            link = store.session_link(conn, session_id) if session_id else None
            closed = close_session(conn, session_id, now, tenant=self.tenant, reason="user")
            if link is not None:
                store.unlink(conn, link.session_sha256)
                idp = self.settings.idp(link.idp)
                return_url = self._return_url(link, idp, now) or fallback_url
                endpoint = self._slo_endpoint(idp, now)
                if endpoint is not None and idp is not None:
                    request_id = new_id()
                    message = logout_request(
                        request_id=request_id, now=now, destination=endpoint.location, settings=self.settings,
                        name_id=link.name_id, name_id_format=link.name_id_format, name_qualifier=link.name_qualifier,
                        sp_name_qualifier=link.sp_name_qualifier, session_index=link.session_index,
                        lifetime=LOGOUT_REQUEST_LIFETIME)
                    store.save_request(conn, PendingRequest(
                        id=request_id, kind="logout", idp=idp.id, browser_sha256=None, next=return_url,
                        force_authn=False, issued_at=now, expires_at=now + LOGOUT_REQUEST_LIFETIME))
                    outgoing = encode(message, binding=endpoint.binding, location=endpoint.location,
                                      param="SAMLRequest", key=self.settings.signing_key)
                    log.info("LogoutRequest %s sent to IdP %s for session %s", request_id, idp.id,
                             closed.ref if closed else "?")
        if closed is not None and self.notify is not None:
            self.notify(closed, now)
        return LogoutStarted(outgoing, return_url)

    def receive_logout(self, *, args: dict[str, str], form: dict[str, str], method: str,
                       raw_query: bytes) -> LogoutAnswered | LogoutFinished:
        """A LogoutRequest from an IdP (end the sessions it names) or its LogoutResponse to ours."""
        now = self.clock()
        message = read_logout(args, form, method)
        idp, metadata = self._idp_by_entity(message.issuer, now)
        verified = verify_logout(message, raw_query=raw_query, idp_entity_id=metadata.entity_id,
                                 trusted=metadata.signing_certificates, slo_url=self.settings.slo_url,
                                 decryption_keys=self.settings.keys, now=now, skew=self.skew,
                                 allow_legacy=idp.allow_legacy_algorithms)
        if message.kind == "LogoutResponse":
            return self._logout_answered(idp, verified, now)
        endpoint = self._slo_endpoint(idp, now, prefer=message.binding)
        if endpoint is None:
            raise Refused("idp-unavailable", f"IdP {idp.id} publishes no SingleLogoutService to answer on")
        if not verified.name_id:  # verify_logout refuses a LogoutRequest without one
            raise Refused("no-nameid", "the LogoutRequest names no NameID")
        closed: list[ClosedSession] = []
        keys: list[str] = []
        with writer(self.engine).begin() as conn:
            until = verified.not_on_or_after or now + LOGOUT_REQUEST_LIFETIME
            if not store.remember_once(conn, metadata.entity_id, verified.id, until + self.skew):
                raise Refused("replay", "this LogoutRequest was already handled")
            for link in store.sessions_named(conn, idp.id, verified.name_id, list(verified.session_indexes)):
                ended = close_session_by_key(conn, link.session_sha256, now, tenant=self.tenant, reason="idp")
                store.unlink(conn, link.session_sha256)
                keys.append(link.session_sha256)
                if ended is not None:
                    closed.append(ended)
        log.info("LogoutRequest %s from IdP %s: %d session(s) ended", verified.id, idp.id, len(closed))
        for ended in closed:
            if self.notify is not None:
                self.notify(ended, now)
        answer = logout_response(now=now, destination=endpoint.response_location or endpoint.location,
                                 settings=self.settings, in_response_to=verified.id, status=STATUS_SUCCESS)
        outgoing = encode(answer, binding=endpoint.binding, location=endpoint.response_location or endpoint.location,
                          param="SAMLResponse", key=self.settings.signing_key, relay_state=message.relay_state)
        return LogoutAnswered(outgoing, tuple(c.ref for c in closed), tuple(keys))

    def _logout_answered(self, idp: IdpSettings, verified: VerifiedLogout, now: datetime) -> LogoutFinished:
        with writer(self.engine).begin() as conn:
            pending = store.find_request(conn, verified.in_response_to)
            if pending is None or pending.kind != "logout" or pending.idp != idp.id:
                raise Refused("unknown-request", "the LogoutResponse answers no logout request of this SP")
            if not store.consume_request(conn, pending.id, now):
                raise Refused("already-answered", "the logout request was already answered, or expired")
        complete = verified.status == STATUS_SUCCESS
        log.info("LogoutResponse from IdP %s: %s", idp.id, "success" if complete else f"status {verified.status}")
        return LogoutFinished(pending.next, complete)

    def _idp_by_entity(self, entity_id: str | None, now: datetime) -> tuple[IdpSettings, IdpMetadata]:
        for idp in self.settings.idps:
            try:
                metadata = self.sources[idp.id].current(now)
            except Refused:
                continue
            if metadata.entity_id == entity_id:
                return idp, metadata
        raise Refused("wrong-issuer", f"the message comes from {entity_id!r}, not a trusted IdP")

    def _slo_endpoint(self, idp: IdpSettings | None, now: datetime, prefer: str | None = None) -> Endpoint | None:
        if idp is None:
            return None
        try:
            metadata = self.sources[idp.id].current(now)
        except Refused:
            return None
        if prefer:
            chosen = next((e for e in metadata.slo if e.binding == prefer), None)
            if chosen is not None:
                return chosen
        return metadata.endpoint("slo")

    def _return_url(self, link: SamlSessionLink, idp: IdpSettings | None, now: datetime) -> str | None:
        """FrEduUrlRetour, if it is an https URL (http for an http deployment) on a host this IdP may send to."""
        url = link.return_url
        if not url or idp is None:
            return None
        hosts = set(idp.return_url_hosts)
        if not hosts:
            try:
                hosts = set(self.sources[idp.id].current(now).hosts)
            except Refused:
                hosts = set()
        if return_url_allowed(url, hosts, base_url=self.settings.base_url):
            return url
        parts = urlsplit(url)
        log.warning("FrEduUrlRetour of IdP %s ignored: %s://%s is not an allowed return address", idp.id,
                    parts.scheme, parts.hostname)
        return None

