"""Handlers of the users context: registration, sessions, profile and administration."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from app.shared.context import set_actor
from app.shared.domain import Clock, Conflict, Forbidden, NotFound, Page, Unauthorized, new_id
from app.shared.security import Role
from app.users.application.messages import (
    ApproveUser,
    ChangeUserRole,
    DeactivateUser,
    GetUser,
    ListUsers,
    LogIn,
    LogOut,
    ReactivateUser,
    RefreshSession,
    RegisterUser,
    UpdateProfile,
    UserView,
)
from app.users.domain.events import UserEvent
from app.users.domain.model import (
    RefreshToken,
    User,
    validate_email,
    validate_full_name,
    validate_password,
    validate_username,
)
from app.users.domain.ports import (
    IssuedTokens,
    PasswordHasher,
    SessionRevocations,
    TokenService,
    UserListFilter,
    UsersUnitOfWork,
)

UowFactory = Callable[[], UsersUnitOfWork]
LOGIN_REFUSED = (
    "username or password is wrong, or the account is waiting for approval or deactivated"
)
"""One answer for every refused login, so it never tells which accounts exist or are usable."""


class UserReadModel(Protocol):
    async def get(self, user_id: uuid.UUID) -> UserView | None: ...
    async def page(self, filter: UserListFilter) -> Page[UserView]: ...


async def handle_register_user(
    cmd: RegisterUser, *, uow: UowFactory, hasher: PasswordHasher, clock: Clock
) -> uuid.UUID:
    username = validate_username(cmd.username)
    email = validate_email(cmd.email)
    validate_password(cmd.password, username=username)
    full_name = validate_full_name(cmd.full_name)
    password_hash = await hasher.hash(cmd.password)
    async with uow() as work:
        first_user = await work.users.claim_first_user()
        taken = await work.users.username_or_email_taken(username, email)
        if taken:
            raise Conflict(f"{taken} is already registered", field=taken)
        user = User.register(
            user_id=new_id(),
            username=username,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            first_user=first_user or cmd.as_admin,
            now=clock.now(),
        )
        work.users.add(user)
        await work.commit()
        return user.id


async def _start_session(
    work: UsersUnitOfWork, user: User, *, tokens: TokenService, clock: Clock, family_id: uuid.UUID
) -> tuple[IssuedTokens, uuid.UUID]:
    """Store a new refresh token of the session family and issue the token pair."""
    now = clock.now()
    token_id = new_id()
    await work.refresh_tokens.add(
        RefreshToken(
            id=token_id,
            user_id=user.id,
            family_id=family_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=tokens.refresh_ttl),
        )
    )
    issued = IssuedTokens(
        access_token=tokens.issue_access(user, session_id=family_id, now=now),
        refresh_token=tokens.issue_refresh(
            token_id=token_id, user_id=user.id, family_id=family_id, now=now
        ),
        expires_in=tokens.access_ttl,
        refresh_expires_in=tokens.refresh_ttl,
    )
    return issued, token_id


async def handle_log_in(
    cmd: LogIn, *, uow: UowFactory, hasher: PasswordHasher, tokens: TokenService, clock: Clock
) -> IssuedTokens:
    async with uow() as work:
        user = await work.users.get_by_username(cmd.username)
        allowed = user is not None and user.can_log_in
        matches, upgraded_hash = await hasher.verify(
            cmd.password, user.password_hash if user else None, upgrade=allowed
        )
        if user is None or not matches or not allowed:
            raise Unauthorized(LOGIN_REFUSED)
        set_actor(user.id)  # who logs in is the actor of the login, in its event's metadata
        if upgraded_hash is not None:
            user.password_hash = upgraded_hash
        family_id = new_id()
        issued, _ = await _start_session(
            work, user, tokens=tokens, clock=clock, family_id=family_id
        )
        user.logged_in(session_id=family_id, now=clock.now())
        await work.commit()
        return issued


async def handle_refresh_session(
    cmd: RefreshSession,
    *,
    uow: UowFactory,
    tokens: TokenService,
    clock: Clock,
    revocations: SessionRevocations,
) -> IssuedTokens:
    claims = tokens.decode_refresh(cmd.refresh_token)
    async with uow() as work:
        stored = await work.refresh_tokens.get_for_update(claims.token_id)
        if stored is None or stored.family_id != claims.family_id:
            raise Unauthorized("refresh token is not known")
        if stored.revoked_at is not None:
            raise Unauthorized("refresh token has been revoked", reason="token-revoked")
        if stored.replaced_by is not None:
            await work.refresh_tokens.revoke_family(
                stored.family_id, now=clock.now(), reason="refresh token reused"
            )
            reused_by = await work.users.get(stored.user_id)
            if reused_by is not None:
                reused_by.sessions_revoked(
                    session_id=stored.family_id, reason="refresh token reused", now=clock.now()
                )
            await work.commit()
            await revocations.revoke_session(stored.family_id)
            raise Unauthorized(
                "refresh token was already used; every token of this session is now revoked",
                reason="token-reused",
            )
        if stored.expires_at <= clock.now():
            raise Unauthorized("refresh token has expired")
        user = await work.users.get(stored.user_id)
        if user is None:
            raise Unauthorized("the user of this token no longer exists")
        try:
            user.ensure_can_log_in()
        except Forbidden as exc:
            raise Unauthorized(exc.detail) from exc
        issued, token_id = await _start_session(
            work, user, tokens=tokens, clock=clock, family_id=stored.family_id
        )
        await work.refresh_tokens.mark_replaced(stored.id, token_id)
        await work.commit()
        return issued


async def handle_log_out(
    cmd: LogOut, *, uow: UowFactory, clock: Clock, revocations: SessionRevocations
) -> None:
    async with uow() as work:
        user = await work.users.get(cmd.user_id)
        if user is None:
            raise NotFound("user not found")
        await work.refresh_tokens.revoke_family(cmd.session_id, now=clock.now(), reason="logout")
        user.logged_out(session_id=cmd.session_id, now=clock.now())
        await work.commit()
    await revocations.revoke_session(cmd.session_id)


async def handle_update_profile(
    cmd: UpdateProfile,
    *,
    uow: UowFactory,
    hasher: PasswordHasher,
    clock: Clock,
    revocations: SessionRevocations,
) -> None:
    email = validate_email(cmd.email) if cmd.email is not None else None
    full_name = validate_full_name(cmd.full_name) if cmd.full_name is not None else None
    ended_sessions: set[uuid.UUID] = set()
    async with uow() as work:
        user = await _get_user(work, cmd.user_id)
        new_hash = None
        if cmd.new_password is not None or (email is not None and email != user.email):
            if cmd.current_password is None:
                raise Forbidden(
                    "changing email or password needs current_password", field="current_password"
                )
            matches, _ = await hasher.verify(cmd.current_password, user.password_hash)
            if not matches:
                raise Forbidden("current_password is wrong", field="current_password")
        if cmd.new_password is not None:
            validate_password(cmd.new_password, username=user.username)
            new_hash = await hasher.hash(cmd.new_password)
            ended_sessions = await work.refresh_tokens.revoke_all_of_user(
                user.id, now=clock.now(), reason="password changed", keep_family=cmd.session_id
            )
        if (
            email is not None
            and email != user.email
            and await work.users.username_or_email_taken("", email)
        ):
            raise Conflict("email is already registered", field="email")
        user.update_profile(
            email=email, full_name=full_name, password_hash=new_hash, now=clock.now()
        )
        await work.commit()
    for session_id in ended_sessions:
        await revocations.revoke_session(session_id)


async def _get_user(work: UsersUnitOfWork, user_id: uuid.UUID) -> User:
    user = await work.users.get(user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


async def _ensure_another_admin_remains(work: UsersUnitOfWork, user: User) -> None:
    if (
        user.role is Role.ADMIN
        and user.is_active
        and user.is_approved
        and await work.users.count_active_admins() <= 1
    ):
        raise Conflict("this is the last active admin; promote another admin first")


# The handlers that change who a user is drop the cached role and status right after commit,
# so the change holds at once even while the event relay is stalled or stopped.


async def handle_approve_user(
    cmd: ApproveUser, *, uow: UowFactory, clock: Clock, revocations: SessionRevocations
) -> None:
    async with uow() as work:
        user = await _get_user(work, cmd.user_id)
        user.approve(by=cmd.approved_by, now=clock.now())
        await work.commit()
    await revocations.forget_user(cmd.user_id)


async def handle_change_user_role(
    cmd: ChangeUserRole, *, uow: UowFactory, clock: Clock, revocations: SessionRevocations
) -> None:
    async with uow() as work:
        user = await _get_user(work, cmd.user_id)
        if cmd.role is not Role.ADMIN:
            await _ensure_another_admin_remains(work, user)
        user.change_role(cmd.role, by=cmd.changed_by, now=clock.now())
        await work.commit()
    await revocations.forget_user(cmd.user_id)


async def handle_deactivate_user(
    cmd: DeactivateUser, *, uow: UowFactory, clock: Clock, revocations: SessionRevocations
) -> None:
    async with uow() as work:
        user = await _get_user(work, cmd.user_id)
        await _ensure_another_admin_remains(work, user)
        user.deactivate(by=cmd.deactivated_by, now=clock.now())
        await work.refresh_tokens.revoke_all_of_user(user.id, now=clock.now(), reason="deactivated")
        await work.commit()
    await revocations.forget_user(cmd.user_id)


async def forget_changed_user(event: UserEvent, *, revocations: SessionRevocations) -> None:
    """Drop the cached role and status of a user whose access changed (again, via the relay)."""
    await revocations.forget_user(event.user_id)


async def handle_reactivate_user(
    cmd: ReactivateUser, *, uow: UowFactory, clock: Clock, revocations: SessionRevocations
) -> None:
    async with uow() as work:
        user = await _get_user(work, cmd.user_id)
        user.reactivate(by=cmd.reactivated_by, now=clock.now())
        await work.commit()
    await revocations.forget_user(cmd.user_id)


async def handle_get_user(query: GetUser, *, read_model: UserReadModel) -> UserView:
    view = await read_model.get(query.user_id)
    if view is None:
        raise NotFound(f"user {query.user_id} not found")
    return view


async def handle_list_users(query: ListUsers, *, read_model: UserReadModel) -> Page[UserView]:
    return await read_model.page(query.filter)
