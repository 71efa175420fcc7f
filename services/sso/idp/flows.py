"""The SAML identity provider's use cases: answer an AuthnRequest, open a platform, come back after login, log out.

- `receive` (SP-initiated): an AuthnRequest from a registered platform is read
  and checked (messages.py), then answered at once when the browser has an SSO
  session, else the browser goes to log in and comes back to `resume`.
- `launch` (IdP-initiated): the ENT opens a platform with an unsolicited
  response to its default ACS (`RelayState` says where to land there).
- `resume`: the way back from the login, carrying the request as a signed,
  short-lived token (`/idp/sso/continue?request=…`), so no instance needs to
  remember it and any instance can finish it.
- `receive_logout` / `resume_logout`: a platform's signed LogoutRequest ends the
  browser's SSO session when it names it (by the SessionIndex we gave the
  platform, or its persistent NameID), CAS apps get their back-channel logout,
  and the platform gets a signed LogoutResponse.

A request made over HTTP-POST without the session cookie goes through a GET on
our own site first (`Resume`): the SSO cookie is `SameSite=Lax`, so a browser
does not send it with a cross-site POST, but does with the top-level GET.

An assertion sent writes `sso.saml.response.sent` (the platform's id, the session's usage facts) in a
transaction of its own once the response is built, as answering changes nothing else in the database; an
error response (NoPassive...) writes nothing.

Outcomes: `Answer` (send this to the platform), `NeedLogin` (go to the SAML
SP's login, then to `next`), `Resume` (GET this local URL), `LoggedOut`. A
request that can be answered nowhere safe raises `saml.xml.Refused`; a changed
deployment secret raises `nameid_secret.SecretChanged`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import Engine

from relais.db import writer

from .. import events
from ..attribute_source import AttributeSource
from ..config import Lifetimes
from ..directory_port import DirectoryPort
from ..rules.platform_attributes import AttributeRelease, gar_attributes, released
from ..rules.pseudonyms import persistent_name_id, session_index
from ..saml.bindings import Outgoing, encode
from ..saml.xml import BINDING_POST, STATUS_SUCCESS, Refused
from ..sessions import ClosedSession, Session, close_session, get_session
from .config import IdentityProviderSettings
from .messages import (
    MAX_RELAY_STATE,
    NO_PASSIVE,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    IncomingRequest,
    LogoutRequest,
    Subject,
    check_authn_request,
    check_logout_request,
    idp_metadata,
    logout_response,
    read_request,
    response,
)
from .nameid_secret import check_secret
from .platforms import NAMEID_PERSISTENT, Platform

log = logging.getLogger(__name__)

CONTINUE_PATH = "/idp/sso/continue"
LOGOUT_CONTINUE_PATH = "/idp/slo/continue"
UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
_TOKEN_LABEL = b"relais:idp-continue:v1\0"


@dataclass(frozen=True)
class Answer:
    """Post `outgoing.form` to `outgoing.url` (the platform's ACS)."""

    outgoing: Outgoing
    platform: Platform


@dataclass(frozen=True)
class NeedLogin:
    """No (fresh enough) SSO session: log in through the SAML SP, then GET `next`."""

    next: str
    force_authn: bool

    @property
    def location(self) -> str:
        return "/saml/login?" + urlencode({"next": self.next, **({"force_authn": "true"} if self.force_authn else {})})


@dataclass(frozen=True)
class Resume:
    """GET this local URL (a request that came by cross-site POST, without the SSO cookie)."""

    location: str


@dataclass(frozen=True)
class LoggedOut:
    """A platform's LogoutRequest was handled: send `outgoing` (its LogoutResponse), if the platform has an SLO
    endpoint; `closed` says whether this browser's session ended."""

    outgoing: Outgoing | None
    closed: bool
    platform: Platform


@dataclass(frozen=True)
class Pending:
    """A request being answered, as the continuation token carries it."""

    platform: str
    request_id: str | None  # None: IdP-initiated (unsolicited response)
    acs: str
    relay_state: str | None
    auth_after: float | None  # ForceAuthn: only a login at or after this moment (epoch seconds) will do
    passive: bool
    expires: float  # epoch seconds
    after_login: bool  # the browser has been through the login already


class IdentityProvider:
    """Our SAML 2.0 IdP towards resource platforms (see the module docstring)."""

    def __init__(self, settings: IdentityProviderSettings, *, engine: Engine, directory: DirectoryPort,
                 secret: bytes, lifetimes: Lifetimes, clock: Callable[[], datetime], tenant: str,
                 notify: Callable[[ClosedSession, datetime], object] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.directory = directory
        self._secret = secret
        self.lifetimes = lifetimes
        self.clock = clock
        self.tenant = tenant
        self.notify = notify  # back-channel logout of the CAS apps a closed session logged into
        self._metadata: bytes | None = None

    def metadata(self) -> bytes:
        if self._metadata is None:
            self._metadata = idp_metadata(self.settings)
        return self._metadata

    # -- the ways in ------------------------------------------------------------------------------

    def receive(self, *, binding: str, params: dict[str, str], raw_query: bytes,
                sid: str | None) -> Answer | NeedLogin | Resume:
        """An AuthnRequest (SP-initiated SSO) over HTTP-Redirect (GET) or HTTP-POST."""
        now = self.clock()
        incoming = read_request(params, binding=binding, kind="AuthnRequest")
        platform = self._platform_of(incoming)
        request = check_authn_request(incoming, platform, raw_query=raw_query, settings=self.settings, now=now)
        if request.problem is not None:
            log.warning("SAML IdP: AuthnRequest from %s answered with %s: %s", platform.id,
                        request.problem[1].rsplit(":", 1)[-1], request.problem[2])
            return self._error(platform, request.acs.location, request.id, request.relay_state, request.problem, now)
        pending = Pending(platform.id, request.id, request.acs.location, request.relay_state,
                          auth_after=now.timestamp() if request.force_authn else None, passive=request.is_passive,
                          expires=(now + timedelta(seconds=self.settings.request_lifetime)).timestamp(),
                          after_login=False)
        if binding == BINDING_POST and not sid:
            return Resume(self._seal(CONTINUE_PATH, asdict(pending)))
        return self._answer_or_login(pending, sid, now)

    def launch(self, platform_id: str, *, relay_state: str | None, sid: str | None) -> Answer | NeedLogin:
        """IdP-initiated SSO: an unsolicited response to the platform's default ACS."""
        now = self.clock()
        platform = self.settings.platform(platform_id)
        if platform is None:
            raise Refused("unknown-platform", f"no platform {platform_id[:64]!r} in the configuration")
        if not platform.idp_initiated:
            raise Refused("idp-initiated-refused", f"platform {platform.id} is configured with idp_initiated: false")
        if relay_state is not None and len(relay_state.encode()) > MAX_RELAY_STATE:
            raise Refused("malformed", f"RelayState is longer than {MAX_RELAY_STATE} bytes")
        pending = Pending(platform.id, None, platform.metadata.default_acs.location, relay_state or None,
                          auth_after=None, passive=False,
                          expires=(now + timedelta(seconds=self.settings.request_lifetime)).timestamp(),
                          after_login=False)
        return self._answer_or_login(pending, sid, now)

    def resume(self, token: str | None, *, sid: str | None) -> Answer | NeedLogin:
        """Back from the login (or from a cross-site POST): answer the request the token carries."""
        now = self.clock()
        try:
            pending = Pending(**self._unseal(CONTINUE_PATH, token, now))
        except TypeError:
            raise Refused("malformed", "the continuation of a SAML request cannot be read") from None
        return self._answer_or_login(pending, sid, now)

    def receive_logout(self, *, binding: str, params: dict[str, str], raw_query: bytes,
                       sid: str | None) -> LoggedOut | Resume:
        """A platform's LogoutRequest (SP-initiated single logout) over HTTP-Redirect or HTTP-POST."""
        now = self.clock()
        incoming = read_request(params, binding=binding, kind="LogoutRequest")
        platform = self._platform_of(incoming)
        request = check_logout_request(incoming, platform, raw_query=raw_query, settings=self.settings, now=now)
        if binding == BINDING_POST and not sid:
            return Resume(self._seal(LOGOUT_CONTINUE_PATH, {
                "platform": platform.id, "id": request.id, "name_id": request.name_id,
                "indexes": list(request.session_indexes), "relay_state": request.relay_state,
                "expires": (now + timedelta(seconds=self.settings.request_lifetime)).timestamp()}))
        return self._log_out(request, sid, now)

    def resume_logout(self, token: str | None, *, sid: str | None) -> LoggedOut:
        now = self.clock()
        data = self._unseal(LOGOUT_CONTINUE_PATH, token, now)
        platform = self.settings.platform(str(data.get("platform")))
        if platform is None:
            raise Refused("unknown-platform", "the platform of this logout is no longer configured")
        try:
            request = LogoutRequest(str(data["id"]), platform, str(data["name_id"]), tuple(data["indexes"]),
                                    data["relay_state"])
        except (KeyError, TypeError):
            raise Refused("malformed", "the continuation of a logout cannot be read") from None
        return self._log_out(request, sid, now)

    # -- answering -------------------------------------------------------------------------------

    def _answer_or_login(self, pending: Pending, sid: str | None, now: datetime) -> Answer | NeedLogin:
        platform = self.settings.platform(pending.platform)
        if platform is None:  # the configuration changed while the user was logging in
            raise Refused("unknown-platform", f"platform {pending.platform} is no longer configured")
        session = None
        if sid:
            with writer(self.engine).begin() as conn:
                session = get_session(conn, sid, now, lifetimes=self.lifetimes)
                if session is not None and pending.auth_after is not None \
                        and session.created_at.timestamp() < pending.auth_after:
                    session = None  # ForceAuthn: this session's login is older than the request
                if session is not None and platform.name_id_format == NAMEID_PERSISTENT:
                    check_secret(conn, self._secret, now)
        if session is not None:
            return self._assert(platform, pending, session, now)
        if pending.passive:
            return self._error(platform, pending.acs, pending.request_id, pending.relay_state,
                               (STATUS_RESPONDER, NO_PASSIVE, "the user is not logged in"), now)
        if pending.after_login:
            raise Refused("no-session-after-login", "the browser came back from the login without an SSO session "
                                                    "(cookies blocked, or the login was made in another browser)")
        return NeedLogin(self._seal(CONTINUE_PATH, asdict(replace(pending, after_login=True))),
                         force_authn=pending.auth_after is not None)

    def _assert(self, platform: Platform, pending: Pending, session: Session, now: datetime) -> Answer:
        if platform.name_id_format == NAMEID_PERSISTENT:
            name_id = persistent_name_id(self._secret, platform.entity_id, session.person_jointure)
        else:
            name_id = "_" + secrets.token_hex(20)
        attributes: tuple[tuple[AttributeRelease, tuple[str, ...]], ...] = ()
        if platform.releases:
            source = AttributeSource(self.directory)
            ent = source.for_person(session.person_jointure)
            if ent is None:
                log.warning("SAML IdP: person of session %s not in the directory; no attributes for %s",
                            session.ref, platform.id)
                ent = {}
            values = {**ent, **gar_attributes(ent, source.uai_of)}
            attributes = tuple((r, tuple(v)) for r, v in released(values, platform.releases))
        subject = Subject(name_id=name_id, name_id_format=platform.name_id_format,
                          authn_instant=session.created_at,
                          session_index=session_index(self._secret, session.ref, platform.entity_id),
                          session_not_on_or_after=session.expires_at, attributes=attributes)
        document = response(self.settings, platform, acs_url=pending.acs, in_response_to=pending.request_id,
                            subject=subject, now=now)
        answer = Answer(self._outgoing(pending.acs, document, pending.relay_state), platform)
        with writer(self.engine).begin() as conn:
            events.saml_response_sent(conn, session=session.ref, person=session.person_jointure, platform=platform.id,
                                      usage=session.usage, now=now, tenant=self.tenant)
        log.info("SAML IdP: %s assertion for session %s to platform %s (%d attribute(s)%s)",
                 "solicited" if pending.request_id else "unsolicited", session.ref, platform.id, len(attributes),
                 ", encrypted" if platform.encrypt_assertions else "")
        return answer

    def _error(self, platform: Platform, acs: str, request_id: str | None, relay_state: str | None,
               status: tuple[str, str, str], now: datetime) -> Answer:
        document = response(self.settings, platform, acs_url=acs, in_response_to=request_id, subject=None, now=now,
                            status=status)
        return Answer(self._outgoing(acs, document, relay_state), platform)

    @staticmethod
    def _outgoing(acs: str, document: bytes, relay_state: str | None) -> Outgoing:
        form = {"SAMLResponse": base64.b64encode(document).decode()}
        if relay_state is not None:
            form["RelayState"] = relay_state
        return Outgoing(acs, form)

    def _platform_of(self, incoming: IncomingRequest) -> Platform:
        platform = self.settings.platform_for(incoming.issuer)
        if platform is None:
            shown = (incoming.issuer or "(none)")[:200]
            raise Refused("unknown-platform", f"the {incoming.kind}'s Issuer {shown!r} is not a registered platform")
        return platform

    # -- single logout ----------------------------------------------------------------------------

    def _log_out(self, request: LogoutRequest, sid: str | None, now: datetime) -> LoggedOut:
        platform = request.platform
        status: tuple[str, str | None] = (STATUS_SUCCESS, None)  # no session here: the user is logged out anyway
        closed = None
        if sid:
            with writer(self.engine).begin() as conn:
                session = get_session(conn, sid, now, lifetimes=self.lifetimes, touch=False)
                if session is not None and self._names(request, session, platform):
                    closed = close_session(conn, sid, now, tenant=self.tenant, reason="user")
                elif session is not None:
                    log.warning("SAML IdP: LogoutRequest from %s names another session than %s's; kept",
                                platform.id, session.ref)
                    status = (STATUS_REQUESTER, UNKNOWN_PRINCIPAL)
        if closed is not None:
            log.info("SAML IdP: session %s ended at the request of platform %s", closed.ref, platform.id)
            if self.notify is not None:
                self.notify(closed, now)
        endpoint = platform.metadata.slo_endpoint
        if endpoint is None:
            return LoggedOut(None, closed is not None, platform)
        destination = endpoint.response_location or endpoint.location
        message = logout_response(self.settings, destination=destination, in_response_to=request.id, status=status,
                                  now=now)
        outgoing = encode(message, binding=endpoint.binding, location=destination, param="SAMLResponse",
                          key=self.settings.signing_key, relay_state=request.relay_state)
        return LoggedOut(outgoing, closed is not None, platform)

    def _names(self, request: LogoutRequest, session: Session, platform: Platform) -> bool:
        """Does the request name this session: by the SessionIndex we gave, else by the persistent NameID?"""
        if request.session_indexes:
            return session_index(self._secret, session.ref, platform.entity_id) in request.session_indexes
        if platform.name_id_format == NAMEID_PERSISTENT:
            expected = persistent_name_id(self._secret, platform.entity_id, session.person_jointure)
            return hmac.compare_digest(request.name_id, expected)
        return False  # a transient NameID without SessionIndex names nobody we can recognise

    # -- continuation tokens ----------------------------------------------------------------------

    def _seal(self, path: str, data: dict) -> str:
        """`path?request=<data, signed>`: a request carried through the browser, tamper-proof until it expires."""
        payload = base64.urlsafe_b64encode(json.dumps({"path": path, **data}, separators=(",", ":")).encode())
        return f"{path}?{urlencode({'request': (payload + b'.' + self._mac(payload)).decode()})}"

    def _mac(self, payload: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.new(self._secret, _TOKEN_LABEL + payload, hashlib.sha256).digest()[:18])

    def _unseal(self, path: str, token: str | None, now: datetime) -> dict:
        """The data `_seal(path, …)` carried; a token made for another path is refused."""
        payload, _, mac = (token or "").encode().partition(b".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            raise Refused("malformed", "the continuation of a SAML request is missing or altered")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload))
            expires = float(data.pop("expires"))
            if data.pop("path") != path:
                raise ValueError(path)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Refused("malformed", "the continuation of a SAML request cannot be read") from None
        if expires < now.timestamp():
            raise Refused("request-expired", f"the request of platform {data.get('platform')} expired at "
                                             f"{datetime.fromtimestamp(expires, UTC):%H:%M:%S} UTC; start again "
                                             "from the platform")
        return {**data, "expires": expires}
