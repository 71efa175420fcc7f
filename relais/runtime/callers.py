"""Who called an RPC method, by the broker user RabbitMQ vouched for, and whether they may (no I/O).

RabbitMQ refuses a message whose `user_id` property is not the user its connection logged in as, so
`user_id` is an identity the broker checked: the RPC client (`relais.runtime.rpc.RpcClient`) sets it
on every request, and the server reads it, never an argument the caller chose.

Each service and the operator have their own broker user, named `<prefix><role>`
(`relais-directory`, `relais-sso`, `relais-operator`; `relais deploy broker-users` makes them). A
server takes the prefix from its own user: `relais-directory`, serving `directory`, reads the caller
`relais-sso` as the role `sso`. A server whose user does not end with its service's name (`guest`
in development, or one user for the whole deployment) cannot tell callers apart: it takes a caller
with its own user for the operator, and refuses any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from .process import OPERATOR, RpcMethod


class RpcRefused(Exception):
    """A request refused before the method ran: the message names the method, the caller and why."""


@dataclass(frozen=True)
class Caller:
    """The caller of one request: the broker user RabbitMQ checked, and the role it stands for."""

    user: str
    role: str


def per_service_users(server_user: str, service: str) -> bool:
    """Whether the server's own broker user says the deployment gives each service its own user."""
    return server_user.endswith(service)


def role_of(user: str, server_user: str, service: str) -> str | None:
    """The role (a service's name, or `OPERATOR`) broker user `user` stands for; None: no Relais role."""
    if not per_service_users(server_user, service):
        return OPERATOR if user == server_user else None
    prefix = server_user[: len(server_user) - len(service)]
    role = user[len(prefix):] if user.startswith(prefix) else ""
    return role or None


def authorise(service: str, method: str, declared: RpcMethod, user_id: object, server_user: str) -> Caller:
    """The caller of `service.method`, when the declaration lets it call; RpcRefused otherwise."""
    where = f"{service}.{method}"
    if not isinstance(user_id, str) or not user_id:
        raise RpcRefused(f"{where}: refused a request without user_id (the broker user it was sent as, which "
                         "RabbitMQ checks): call through `relais rpc` or relais.runtime.rpc.RpcClient")
    role = role_of(user_id, server_user, service)
    allowed = ", ".join(declared.callers)
    if role is None:
        expected = (f"users named {server_user[: len(server_user) - len(service)]}<role>"
                    if per_service_users(server_user, service) else
                    f"{server_user!r}, the user this server shares (give each service its own: deploy/broker-users.md)")
        raise RpcRefused(f"{where}: refused to broker user {user_id!r}, which stands for no Relais role "
                         f"(expected {expected}; allowed: {allowed})")
    if role not in declared.callers:
        raise RpcRefused(f"{where}: refused to {role} (broker user {user_id!r}); allowed callers: {allowed}")
    return Caller(user=user_id, role=role)
