"""The OpenID Connect provider's use cases, each on one database transaction: authorize, token, userinfo, logout.

Outcomes are plain objects the HTTP side translates (`Redirect`, `Page`, `Json`); nothing here reads a request.

- **authorize**: a request that names an unknown client or a redirect URI not registered for it (exact match) gets
  a page, never a redirect. Other refusals go back to the redirect URI as OAuth errors (with `state` and `iss`,
  RFC 9207). With the SSO's live session: a one-time code (PKCE challenge, nonce, redirect URI and scopes kept with
  it). Without: the national login, then back here (`prompt=none`: `login_required`; `prompt=login`, or a login
  older than `max_age` seconds: only a login after the request will do, as CAS `renew=true`).
- **token**: (a code exchanged writes `sso.oidc.token.issued` for the usage statistics, in its transaction) client
  authentication (`client_secret_basic` or `client_secret_post` for confidential clients; public
  clients name themselves and prove the code with PKCE), the code consumed first, then checked: its client, its
  redirect URI, its PKCE verifier, its age. A refresh token is rotated; a reused one revokes its grant.
- **userinfo**: the pairwise `sub` and the claims the client's policy releases, from the directory.
- **logout** (RP-initiated): with an `id_token_hint` we signed for this session, at once; else after the person
  confirms on our page. Redirected afterwards only to a `post_logout_redirect_uri` registered for the hint's client.

Pairwise subjects derive from the deployment secret as the SAML IdP's NameIDs do, under the same guard
(idp/nameid_secret.py): started with another secret than the one recorded, the provider issues no code, token or
userinfo answer (every client would see new users) until the secret is restored or the change accepted
(`relais sso idp-secret --accept-change`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine, bindparam, select

from relais.db import writer
from relais.i18n import Translator, translator

from .. import events
from ..attribute_source import AttributeSource
from ..compiled_sql import Statement
from ..config import Lifetimes
from ..idp.nameid_secret import SecretChanged, check_secret
from ..rules.oidc import (
    challenge_problem,
    pairwise_subject,
    redirect_uri_registered,
    released_claims,
    requested_scopes,
    session_id_claim,
    verifier_matches,
)
from ..rules.renew_stamps import ForgedStamp, logged_in_after, renew_stamp
from ..rules.usage_facts import UsageFacts
from ..sessions import ClosedSession, Session, close_session, digest, get_session
from ..tables import session as session_t
from . import store
from .config import OidcClient, OidcSettings
from .keys import BadToken, Keys

log = logging.getLogger(__name__)
_LIVE_SESSION = Statement(select(session_t.c.profile, session_t.c.structure, session_t.c.level).where(
    session_t.c.sid_sha256 == bindparam("b_key"), session_t.c.expires_at > bindparam("b_now")))
AUTHORIZE_PATH = "/oidc/authorize"
_JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class Redirect:
    location: str
    clear_cookie: bool = False


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    message: str
    lang: str = "fr"
    form: dict[str, str] | None = None  # hidden fields of a logout confirmation form
    button: str = ""
    clear_cookie: bool = False


@dataclass(frozen=True)
class Json:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def language(params: dict[str, str]) -> Translator:
    """French, unless `ui_locales` asks English first (OpenID Connect Core 3.1.2.1)."""
    for tag in (params.get("ui_locales") or "").split():
        if tag.lower().startswith("en"):
            return _translator("en")
        if tag.lower().startswith("fr"):
            break
    return _translator("fr")


@functools.cache
def _translator(lang: str) -> Translator:
    return translator(lang)  # found and read once per process, not at every request


class OidcProvider:
    """The provider of one SSO instance (several instances over one database share codes and tokens)."""

    def __init__(self, settings: OidcSettings, *, engine: Engine, attributes: AttributeSource, secret: bytes,
                 lifetimes: Lifetimes, clock: Callable[[], datetime], tenant: str,
                 notify: Callable[[ClosedSession, datetime], object]) -> None:
        self.settings = settings
        self.engine = engine
        self.attributes = attributes
        self._secret = secret
        self.lifetimes = lifetimes
        self.clock = clock
        self.tenant = tenant
        self.notify = notify
        life = settings.lifetimes
        self.keys = Keys(settings, lifetime=max(life.id_token, life.access_token, life.refresh_token))
        self._secret_checked = False
        self.origins = frozenset(f"{u.scheme}://{u.netloc}" for c in settings.clients.values()
                                 for u in map(urlsplit, c.redirect_uris))  # CORS: the clients' own origins

    def secret_changed(self) -> SecretChanged | None:
        """Whether the deployment secret is not the one subjects derive from (checked until found right once)."""
        if self._secret_checked:
            return None
        try:
            with writer(self.engine).begin() as conn:
                check_secret(conn, self._secret, self.clock())
        except SecretChanged as exc:
            log.error("OIDC provider answers nothing: %s", exc)
            return exc
        self._secret_checked = True
        return None

    # -- discovery ---------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        issuer = self.settings.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": sorted({k.alg for k in self.settings.keys}),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name",
                                 "given_name", "family_name", "birthdate", "email"],
            "ui_locales_supported": ["fr", "en"],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
        }

    def jwks(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self.keys.jwks(conn, self.clock())

    # -- authorize ---------------------------------------------------------------------------------

    def authorize(self, params: dict[str, str], sid: str | None, query: str) -> Redirect | Page:
        _ = language(params)
        client = self.settings.clients.get(params.get("client_id") or "")
        if client is None:
            log.warning("OIDC authorize refused: unknown client")
            return Page(400, _("Unknown application"), _("This application is not registered with the ENT's "
                                                        "single sign-on. No redirection was made."), _.lang)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri_registered(redirect_uri, client.redirect_uris):
            log.warning("OIDC authorize refused: redirect_uri not registered for client %s", client.id)
            return Page(400, _("Unknown return address"), _("The address this application asked to return to is "
                                                           "not registered for it. No redirection was made."), _.lang)
        assert redirect_uri is not None
        state = params.get("state")

        def error(code: str, description: str) -> Redirect:
            log.warning("OIDC authorize refused for client %s: %s (%s)", client.id, code, description)
            return Redirect(self._back(redirect_uri, {"error": code, "error_description": description,
                                                      "state": state}))

        if "request" in params:
            return error("request_not_supported", "request objects are not supported")
        if "request_uri" in params:
            return error("request_uri_not_supported", "request objects are not supported")
        if self.secret_changed() is not None:
            return Page(503, _("Single sign-on unavailable"), _("This application cannot be opened at the moment. "
                                                                "Please try again later."), _.lang)
        if params.get("response_type") != "code":
            return error("unsupported_response_type", "only the authorization code flow (response_type=code)")
        if params.get("response_mode") not in (None, "query"):
            return error("invalid_request", "only response_mode=query")
        scopes, scope_problem = requested_scopes(params.get("scope"), client.scopes)
        if scope_problem:
            return error("invalid_scope", scope_problem)
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        pkce_problem = challenge_problem(challenge, method, public=client.public)
        if pkce_problem:
            return error("invalid_request", pkce_problem)
        nonce = params.get("nonce")
        if nonce is not None and len(nonce) > 512:
            return error("invalid_request", "nonce longer than 512 characters")
        prompt = set((params.get("prompt") or "").split())
        raw_max_age = params.get("max_age")
        if raw_max_age is not None and not (raw_max_age.isdigit() and len(raw_max_age) <= 9):
            return error("invalid_request", "max_age must be a number of seconds")
        now = self.clock()
        with writer(self.engine).begin() as conn:
            session = get_session(conn, sid, now, lifetimes=self.lifetimes)
            too_old = session is not None and raw_max_age is not None \
                and (now - session.created_at).total_seconds() > int(raw_max_age)
            renew = "login" in prompt or too_old
            if session is not None and renew and not self._fresh(params.get("auth_after"), session):
                session = None
            if session is None:
                if "none" in prompt:
                    return error("login_required", "no single sign-on session, or one older than max_age")
                return self._login(query, renew=renew, now=now)
            self.keys.publish(conn, now)  # before any token this key signs
            grant = store.Grant(store.new_grant_id(), client.id, digest(session.id), session.ref,
                                session.person_jointure, scopes, session.created_at, nonce, redirect_uri,
                                challenge, (method or "plain") if challenge else None)
            code = store.issue_code(conn, grant, now=now, lifetime=self.settings.lifetimes.code)
        log.info("OIDC code issued to client %s in session %s", client.id, session.ref)
        return Redirect(self._back(redirect_uri, {"code": code, "state": state}))

    def _back(self, redirect_uri: str, params: dict[str, str | None]) -> str:
        query = urlencode({k: v for k, v in {**params, "iss": self.settings.issuer}.items() if v is not None})
        return redirect_uri + ("&" if urlsplit(redirect_uri).query else "?") + query

    def _login(self, query: str, *, renew: bool, now: datetime) -> Redirect:
        next_path = f"{AUTHORIZE_PATH}?{query}"
        if renew:
            next_path += "&" + urlencode({"auth_after": renew_stamp(now, self._secret)})
        saml = {"next": next_path, **({"force_authn": "true"} if renew else {})}
        return Redirect(f"/saml/login?{urlencode(saml)}")

    def _fresh(self, stamp: str | None, session: Session) -> bool:
        try:
            return logged_in_after(stamp, session.created_at, self._secret)
        except ForgedStamp:
            log.warning("OIDC authorize: prompt=login proof refused (bad signature)")
            return False

    # -- token -------------------------------------------------------------------------------------

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> Json:
        client = self._client(form, basic)
        if client is None:
            return Json(401, {"error": "invalid_client", "error_description": "client authentication failed"},
                        {"WWW-Authenticate": 'Basic realm="oidc"', **_JSON_HEADERS})
        if self.secret_changed() is not None:
            return Json(503, {"error": "temporarily_unavailable"}, dict(_JSON_HEADERS))
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        return _error("unsupported_grant_type", "authorization_code or refresh_token")

    def _client(self, form: dict[str, str], basic: tuple[str, str] | None) -> OidcClient | None:
        if basic is not None:
            client_id, secret = basic
            if form.get("client_id") not in (None, client_id):
                return None
        else:
            client_id, secret = form.get("client_id") or "", form.get("client_secret") or ""
        client = self.settings.clients.get(client_id)
        if client is None:
            log.warning("OIDC token refused: unknown client")
            return None
        if client.public:
            if secret:
                log.warning("OIDC token refused: public client %s sent a secret", client.id)
                return None
            return client
        if not client.secret_matches(secret):
            log.warning("OIDC token refused: client %s failed to authenticate", client.id)
            return None
        return client

    def _code(self, client: OidcClient, form: dict[str, str]) -> Json:
        now = self.clock()
        with writer(self.engine).begin() as conn:  # committed even when refused: the code stays consumed
            try:
                grant = store.redeem_code(conn, form.get("code"), now)
                self._check_code(grant, client, form)
                live = _LIVE_SESSION.first(conn, {"b_key": grant.session_sha256, "b_now": now})
                if live is None:
                    raise store.GrantError("the SSO session has ended")
                events.oidc_token_issued(conn, session=grant.session_ref, person=grant.person_jointure,
                                         client=client.id, now=now, tenant=self.tenant,
                                         usage=UsageFacts(live["profile"], live["structure"], live["level"]))
                answer = self._issue(conn, grant, client, now=now, nonce=grant.nonce, refresh_until=(
                    now + timedelta(seconds=self.settings.lifetimes.refresh_token)
                    if "offline_access" in grant.scope else None))
            except store.GrantError as exc:
                log.warning("OIDC code refused for client %s: %s", client.id, exc.reason)
                refused = exc
            else:
                return answer
        return _error("invalid_grant", refused.reason)

    def _check_code(self, grant: store.Grant, client: OidcClient, form: dict[str, str]) -> None:
        if grant.client != client.id:
            raise store.GrantError(f"code issued to another client ({grant.client}): burnt")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise store.GrantError("redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier")
        if grant.code_challenge is None:
            if verifier:
                raise store.GrantError("code_verifier without a code_challenge at authorization")
        elif not verifier_matches(verifier, grant.code_challenge, grant.code_challenge_method or "plain"):
            raise store.GrantError("PKCE: code_verifier missing or wrong")

    def _refresh(self, client: OidcClient, form: dict[str, str]) -> Json:
        now = self.clock()
        with writer(self.engine).begin() as conn:
            try:
                grant = store.rotate_refresh(conn, form.get("refresh_token"), now)
                if grant.client != client.id:
                    store.revoke_grant(conn, grant.grant_id, now)
                    raise store.GrantError(f"refresh token of another client ({grant.client}): grant revoked")
                asked = tuple((form.get("scope") or "").split())
                if asked and not set(asked) <= set(grant.scope):
                    raise store.GrantError("scope beyond the original grant")
                answer = self._issue(conn, grant, client, now=now, nonce=None, refresh_until=grant.expires_at)
            except store.GrantError as exc:
                log.warning("OIDC refresh refused for client %s: %s", client.id, exc.reason)
                refused = exc
            else:
                return answer
        return _error("invalid_grant", refused.reason)

    def _issue(self, conn: Any, grant: store.Grant, client: OidcClient, *, now: datetime, nonce: str | None,
               refresh_until: datetime | None) -> Json:
        life = self.settings.lifetimes
        self.keys.publish(conn, now)
        access, refresh = store.issue_tokens(conn, grant, now=now, access_lifetime=life.access_token,
                                             refresh_until=refresh_until)
        claims: dict[str, Any] = {
            "iss": self.settings.issuer, "sub": self.subject(client, grant.person_jointure), "aud": client.id,
            "azp": client.id, "iat": int(now.timestamp()), "exp": int(now.timestamp()) + life.id_token,
            "auth_time": int(grant.auth_time.timestamp()), "at_hash": _half_hash(access, self.keys.signing.alg),
            "sid": session_id_claim(self._secret, grant.session_ref, client.id)}
        if nonce is not None:
            claims["nonce"] = nonce
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": life.access_token,
                                "scope": " ".join(grant.scope), "id_token": self.keys.sign(claims)}
        if refresh is not None:
            body["refresh_token"] = refresh
        log.info("OIDC tokens issued to client %s in session %s", client.id, grant.session_ref)
        return Json(200, body, dict(_JSON_HEADERS))

    def subject(self, client: OidcClient, jointure: str) -> str:
        return pairwise_subject(self._secret, client.sector, jointure)

    # -- userinfo ----------------------------------------------------------------------------------

    def userinfo(self, token: str | None) -> Json:
        with self.engine.connect() as conn:
            grant = store.access_grant(conn, token, self.clock())
        client = self.settings.clients.get(grant.client) if grant is not None else None
        if grant is not None and self.secret_changed() is not None:
            return Json(503, {"error": "temporarily_unavailable"}, dict(_JSON_HEADERS))
        if grant is None or client is None:
            return Json(401, {"error": "invalid_token"},
                        {"WWW-Authenticate": 'Bearer error="invalid_token"', **_JSON_HEADERS})
        claims: dict[str, Any] = {"sub": self.subject(client, grant.person_jointure)}
        if client.claims:
            attributes = self.attributes.for_person(grant.person_jointure) or {}
            claims.update(released_claims(attributes, client.claims, grant.scope))
        return Json(200, claims, dict(_JSON_HEADERS))

    # -- RP-initiated logout -----------------------------------------------------------------------

    def logout(self, params: dict[str, str], sid: str | None, *, confirmed_csrf: str | None) -> Redirect | Page:
        """End the session (with a hint we signed for it, or a confirmed form) and return where to go."""
        _ = language(params)
        now = self.clock()
        hint_client: OidcClient | None = None
        hint: dict[str, Any] | None = None
        with self.engine.connect() as conn:
            if params.get("id_token_hint"):
                try:
                    hint = self.keys.verify(params["id_token_hint"], conn, now)
                except BadToken as exc:
                    log.warning("OIDC logout refused: id_token_hint not ours (%s)", exc)
                    return Page(400, _("Logout refused"), _("The logout request is not valid. You are still "
                                                            "logged in."), _.lang)
        if hint is not None:
            aud = hint.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if hint.get("iss") != self.settings.issuer or len(auds) != 1 or auds[0] not in self.settings.clients:
                log.warning("OIDC logout refused: id_token_hint not issued by us to a registered client")
                return Page(400, _("Logout refused"), _("The logout request is not valid. You are still "
                                                        "logged in."), _.lang)
            hint_client = self.settings.clients[auds[0]]
        named = params.get("client_id")
        if named is not None and hint_client is not None and named != hint_client.id:
            log.warning("OIDC logout refused: id_token_hint of client %s, client_id %s", hint_client.id, named)
            return Page(400, _("Logout refused"), _("The logout request is not valid. You are still logged in."),
                        _.lang)
        client = hint_client or self.settings.clients.get(named or "")
        target = params.get("post_logout_redirect_uri")
        if target is not None and (client is None or not redirect_uri_registered(target,
                                                                                client.post_logout_redirect_uris)):
            log.warning("OIDC logout refused: post_logout_redirect_uri not registered for the client")
            return Page(400, _("Logout refused"), _("The address to return to after logout is not registered for "
                                                    "this application. You are still logged in."), _.lang)
        with writer(self.engine).begin() as conn:
            session = get_session(conn, sid, now, lifetimes=self.lifetimes, touch=False)
            if session is None:
                closed = None
            elif (hint_client is not None and hint is not None
                  and hint.get("sid") == session_id_claim(self._secret, session.ref, hint_client.id)) \
                    or (confirmed_csrf is not None and session.check_csrf(confirmed_csrf)):
                closed = close_session(conn, sid, now, tenant=self.tenant, reason="user")
            else:
                fields = {k: v for k, v in params.items() if k in ("client_id", "post_logout_redirect_uri",
                                                                   "state", "ui_locales")}
                if hint_client is not None:
                    fields["client_id"] = hint_client.id
                return Page(200, _("Log out"), _("Do you want to log out of the ENT and of its applications?"),
                            _.lang, form={**fields, "csrf_token": session.csrf_token}, button=_("Log out"))
        if closed is not None:
            self.notify(closed, now)
        if target is not None:
            state = params.get("state")
            return Redirect(target + (("&" if urlsplit(target).query else "?") + urlencode({"state": state})
                                      if state else ""), clear_cookie=True)
        return Page(200, _("Logged out"), _("You are logged out of the ENT. Close the browser to finish."), _.lang,
                    clear_cookie=True)

    def purge(self, now: datetime) -> int:
        with writer(self.engine).begin() as conn:
            return store.purge(conn, now)


def _error(code: str, description: str) -> Json:
    return Json(400, {"error": code, "error_description": description}, dict(_JSON_HEADERS))


def _half_hash(token: str, alg: str) -> str:
    """`at_hash`: the left half of the token's SHA-256, base64url (OpenID Connect Core 3.1.3.6; RS256, ES256)."""
    del alg  # both supported algorithms hash with SHA-256
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16]).decode().rstrip("=")
