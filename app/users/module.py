"""The users context: accounts, approval, roles and sessions; and who is behind a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from app.shared.infrastructure import Infrastructure
from app.shared.wiring import Handlers
from app.users.application import handlers
from app.users.application import messages as m
from app.users.domain import events
from app.users.infrastructure.principal_cache import RecentPrincipals
from app.users.infrastructure.repositories import SqlUserReadModel, SqlUsersUnitOfWork
from app.users.infrastructure.security import (
    JwtAuthenticator,
    JwtTokenService,
    PasslibHasher,
    RedisSessionRevocations,
    derive_key,
)

EVENTS = events.USER_EVENTS
HANDLERS = Handlers(
    messages={
        m.RegisterUser: handlers.handle_register_user,
        m.LogIn: handlers.handle_log_in,
        m.RefreshSession: handlers.handle_refresh_session,
        m.LogOut: handlers.handle_log_out,
        m.UpdateProfile: handlers.handle_update_profile,
        m.ApproveUser: handlers.handle_approve_user,
        m.ChangeUserRole: handlers.handle_change_user_role,
        m.DeactivateUser: handlers.handle_deactivate_user,
        m.ReactivateUser: handlers.handle_reactivate_user,
        m.GetUser: handlers.handle_get_user,
        m.ListUsers: handlers.handle_list_users,
    },
    events=[
        (event, handlers.forget_changed_user)
        for event in (
            events.UserApproved,
            events.UserRoleChanged,
            events.UserDeactivated,
            events.UserReactivated,
        )
    ],
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Users:
    """What the rest of the app gets from this context."""

    authenticator: JwtAuthenticator
    tokens: JwtTokenService


def wire(infra: Infrastructure, **overrides: Any) -> tuple[dict[str, Any], Users]:
    settings = infra.settings
    jwt_key = settings.jwt_key()
    tokens = JwtTokenService(
        secret=jwt_key,
        algorithm=settings.jwt_algorithm,
        issuer=settings.jwt_issuer,
        access_ttl=settings.access_token_ttl_seconds,
        refresh_ttl=settings.refresh_token_ttl_seconds,
    )
    recent = RecentPrincipals(ttl=settings.principal_cache_seconds)
    deps: dict[str, Any] = {
        "uow": infra.unit_of_work(SqlUsersUnitOfWork),
        "hasher": overrides.pop("hasher", None)
        or PasslibHasher(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        ),
        "tokens": tokens,
        "clock": infra.clock,
        "revocations": RedisSessionRevocations(
            infra.redis, access_ttl=settings.access_token_ttl_seconds, recent=recent
        ),
        "read_model": SqlUserReadModel(infra.read_engine),
        **overrides,
    }
    authenticator = JwtAuthenticator(
        deps["tokens"],
        infra.redis,
        infra.read_engine,
        cache_key=derive_key(jwt_key, "permissions-cache"),
        cache_ttl=settings.permissions_cache_ttl_seconds,
        users_install_code=settings.users_install_code,
        recent=recent,
    )
    return deps, Users(authenticator=authenticator, tokens=deps["tokens"])


def routers() -> list[APIRouter]:
    from app.users.api.routes import admin_router, auth_router, users_router

    return [auth_router, users_router, admin_router]
