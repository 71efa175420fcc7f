"""The SSO cookie: the session id, HttpOnly, SameSite=Lax, Secure unless configured off (local http tests)."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from .config import SsoConfig


def set_session_cookie(response: Response, sid: str, config: SsoConfig) -> None:
    """Give the browser its session id (call after `sessions.open_session` commits)."""
    response.set_cookie(config.cookie.name, sid, max_age=config.lifetimes.session_max, path="/",
                        domain=config.cookie.domain, secure=config.cookie.secure, httponly=True, samesite="Lax")


def clear_session_cookie(response: Response, config: SsoConfig) -> None:
    response.delete_cookie(config.cookie.name, path="/", domain=config.cookie.domain,
                           secure=config.cookie.secure, httponly=True, samesite="Lax")


def session_id(request: Request, config: SsoConfig) -> str | None:
    return request.cookies.get(config.cookie.name) or None
