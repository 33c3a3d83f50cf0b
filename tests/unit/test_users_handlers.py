"""Handlers of the users context, driven through the bootstrapped bus with in-memory fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.shared.bus import MessageBus
from app.shared.domain import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.shared.security import Permission, Role
from app.users.application.handlers import LOGIN_REFUSED
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
)
from app.users.domain.events import (
    UserApproved,
    UserDeactivated,
    UserLoggedIn,
    UserLoggedOut,
    UserProfileUpdated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
    UserSessionsRevoked,
)
from app.users.domain.ports import IssuedTokens, UserListFilter
from app.users.infrastructure.security import JwtTokenService
from tests.fakes import (
    FakeClock,
    FakeEventLog,
    FakeHasher,
    FakeRevocations,
    FakeUsersUnitOfWork,
    fake_app,
    fake_settings,
)

PASSWORD = "Correct-Horse-7"
ACCESS_TTL, REFRESH_TTL = 900, 3600


@dataclass(kw_only=True)
class Context:
    bus: MessageBus
    uow: FakeUsersUnitOfWork
    clock: FakeClock
    tokens: JwtTokenService
    revocations: FakeRevocations
    hasher: FakeHasher
    events: FakeEventLog

    async def register(self, username: str, *, password: str = PASSWORD) -> uuid.UUID:
        return await self.bus.handle(
            RegisterUser(username=username, email=f"{username}@example.org", password=password)
        )

    async def log_in(self, username: str, password: str = PASSWORD) -> IssuedTokens:
        return await self.bus.handle(LogIn(username=username, password=password))

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        return await self.bus.handle(RefreshSession(refresh_token=refresh_token))

    def claims(self, issued: IssuedTokens) -> tuple[dict[str, Any], dict[str, Any]]:
        return (
            self.tokens.decode(issued.access_token, "access"),
            self.tokens.decode(issued.refresh_token, "refresh"),
        )


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[Context]:
    """The bootstrapped app on fakes, with the token lifetimes these tests count on."""
    settings = fake_settings(
        tmp_path, access_token_ttl_seconds=ACCESS_TTL, refresh_token_ttl_seconds=REFRESH_TTL
    )
    world = fake_app(tmp_path, settings=settings)
    yield Context(
        bus=world.bus,
        uow=world.users.uow,
        clock=world.clock,
        tokens=world.container.users.tokens,
        revocations=world.users.revocations,
        hasher=world.users.hasher,
        events=world.events,
    )
    await world.close()


async def admin_and_member(ctx: Context) -> tuple[uuid.UUID, uuid.UUID]:
    """`root` (the first user, an admin) and `bob`, an approved user."""
    root = await ctx.register("root")
    bob = await ctx.register("bob")
    await ctx.bus.handle(ApproveUser(user_id=bob, approved_by=root))
    return root, bob


class TestRegisterUser:
    async def test_first_user_is_an_approved_admin_and_later_ones_wait(self, ctx: Context) -> None:
        root = await ctx.register("root")
        bob = await ctx.register("bob")

        stored_root, stored_bob = ctx.uow.stored_users[root], ctx.uow.stored_users[bob]
        assert (stored_root.role, stored_root.is_approved) == (Role.ADMIN, True)
        assert (stored_bob.role, stored_bob.is_approved) == (Role.USER, False)
        assert stored_bob.password_hash == f"hashed:{PASSWORD}"
        assert stored_bob.created_at == ctx.clock.now()
        assert stored_root.version == stored_bob.version == 1
        assert [(type(e), e.aggregate_id) for e in ctx.uow.committed_events] == [
            (UserRegistered, root),
            (UserRegistered, bob),
        ]

    async def test_as_admin_makes_a_later_user_an_approved_admin(self, ctx: Context) -> None:
        await ctx.register("root")

        carol = await ctx.bus.handle(
            RegisterUser(
                username="carol", email="carol@example.org", password=PASSWORD, as_admin=True
            )
        )

        assert ctx.uow.stored_users[carol].role is Role.ADMIN
        assert ctx.uow.stored_users[carol].is_approved

    async def test_email_and_full_name_are_normalized(self, ctx: Context) -> None:
        user_id = await ctx.bus.handle(
            RegisterUser(
                username="Alice",
                email="Alice@Example.ORG",
                password=PASSWORD,
                full_name="  Alice Liddell ",
            )
        )

        stored = ctx.uow.stored_users[user_id]
        assert (stored.username, stored.email, stored.full_name) == (
            "Alice",
            "alice@example.org",
            "Alice Liddell",
        )

    @pytest.mark.parametrize(
        ("username", "email", "field"),
        [
            pytest.param("root", "other@example.org", "username", id="same-username"),
            pytest.param("ROOT", "other@example.org", "username", id="username-other-case"),
            pytest.param("other", "root@example.org", "email", id="same-email"),
            pytest.param("other", "Root@EXAMPLE.org", "email", id="email-other-case"),
        ],
    )
    async def test_duplicate_conflicts_and_stores_nothing(
        self, ctx: Context, username: str, email: str, field: str
    ) -> None:
        await ctx.register("root")

        with pytest.raises(Conflict) as caught:
            await ctx.bus.handle(RegisterUser(username=username, email=email, password=PASSWORD))

        assert caught.value.extra == {"field": field}
        assert [u.username for u in ctx.uow.stored_users.values()] == ["root"]
        assert len(ctx.uow.committed_events) == 1

    async def test_weak_password_is_refused_before_anything_is_stored(self, ctx: Context) -> None:
        with pytest.raises(InvalidInput):
            await ctx.register("root", password="password123")

        assert ctx.uow.stored_users == {}
        assert ctx.uow.commits == 0


class TestLogIn:
    @pytest.mark.parametrize(
        ("username", "password"),
        [
            pytest.param("root", "Wrong-Horse-7", id="wrong-password"),
            pytest.param("nobody", PASSWORD, id="unknown-user"),
            pytest.param("root", "", id="empty-password"),
        ],
    )
    async def test_bad_credentials_are_unauthorized(
        self, ctx: Context, username: str, password: str
    ) -> None:
        await ctx.register("root")

        with pytest.raises(Unauthorized):
            await ctx.log_in(username, password)

        assert ctx.uow.stored_tokens == {}
        assert ctx.uow.events_of(UserLoggedIn) == []

    @pytest.mark.parametrize(
        ("state", "password"),
        [
            pytest.param("unapproved", PASSWORD, id="unapproved-right-password"),
            pytest.param("unapproved", "Wrong-Horse-7", id="unapproved-wrong-password"),
            pytest.param("deactivated", PASSWORD, id="deactivated-right-password"),
            pytest.param("deactivated", "Wrong-Horse-7", id="deactivated-wrong-password"),
            pytest.param("unknown", PASSWORD, id="unknown-user"),
        ],
    )
    async def test_an_account_that_cannot_log_in_never_reveals_the_password_was_right(
        self, ctx: Context, state: str, password: str
    ) -> None:
        root = await ctx.register("root")
        bob = await ctx.register("bob")
        if state == "deactivated":
            await ctx.bus.handle(ApproveUser(user_id=bob, approved_by=root))
            await ctx.bus.handle(DeactivateUser(user_id=bob, deactivated_by=root))
        ctx.uow.stored_users[bob].password_hash = f"legacy:{PASSWORD}"
        ctx.hasher.verified.clear()

        with pytest.raises(Unauthorized) as caught:
            await ctx.log_in("bob" if state != "unknown" else "nobody", password)

        assert caught.value.detail == LOGIN_REFUSED
        assert caught.value.extra == {}
        expected_hash = None if state == "unknown" else f"legacy:{PASSWORD}"
        assert ctx.hasher.verified == [(expected_hash, False)], "the same work, no re-hash"
        assert ctx.uow.stored_users[bob].password_hash == f"legacy:{PASSWORD}"
        assert ctx.uow.stored_tokens == {}
        assert ctx.uow.events_of(UserLoggedIn) == []

    async def test_issues_tokens_carrying_role_permissions_and_type(self, ctx: Context) -> None:
        root = await ctx.register("root")

        issued = await ctx.log_in("root")

        access, refresh = ctx.claims(issued)
        assert access["sub"] == refresh["sub"] == str(root)
        assert (access["type"], refresh["type"]) == ("access", "refresh")
        assert access["role"] == "admin"
        assert access["username"] == "root"
        assert Permission.ADMIN_ALL.value in access["permissions"]
        assert access["sid"] == refresh["sid"]
        assert access["exp"] - access["iat"] == ACCESS_TTL
        assert refresh["exp"] - refresh["iat"] == REFRESH_TTL
        assert (issued.expires_in, issued.refresh_expires_in) == (ACCESS_TTL, REFRESH_TTL)
        stored = ctx.uow.stored_tokens[uuid.UUID(refresh["jti"])]
        assert stored.family_id == uuid.UUID(refresh["sid"])
        assert stored.expires_at == ctx.clock.now() + timedelta(seconds=REFRESH_TTL)
        assert ctx.uow.stored_users[root].last_login_at == ctx.clock.now()
        [logged_in] = ctx.uow.events_of(UserLoggedIn)
        assert logged_in.session_id == stored.family_id

    async def test_plain_user_tokens_lack_admin_permissions(self, ctx: Context) -> None:
        await admin_and_member(ctx)

        access, _ = ctx.claims(await ctx.log_in("bob"))

        assert access["role"] == "user"
        assert Permission.ADMIN_ALL.value not in access["permissions"]
        assert Permission.USER_READ.value not in access["permissions"]
        assert Permission.SERVER_READ.value in access["permissions"]

    async def test_username_is_case_insensitive(self, ctx: Context) -> None:
        root = await ctx.register("root")

        access, _ = ctx.claims(await ctx.log_in("ROOT"))

        assert access["sub"] == str(root)

    async def test_outdated_hash_is_upgraded(self, ctx: Context) -> None:
        root = await ctx.register("root")
        ctx.uow.stored_users[root].password_hash = f"legacy:{PASSWORD}"

        await ctx.log_in("root")

        assert ctx.uow.stored_users[root].password_hash == f"hashed:{PASSWORD}"


class TestRefreshSession:
    async def test_rotates_the_refresh_token(self, ctx: Context) -> None:
        await ctx.register("root")
        first = await ctx.log_in("root")
        ctx.clock.advance(60)

        second = await ctx.refresh(first.refresh_token)

        _, first_claims = ctx.claims(first)
        access, second_claims = ctx.claims(second)
        assert second_claims["sid"] == first_claims["sid"] == access["sid"]
        old = ctx.uow.stored_tokens[uuid.UUID(first_claims["jti"])]
        new = ctx.uow.stored_tokens[uuid.UUID(second_claims["jti"])]
        assert old.replaced_by == new.id
        assert old.revoked_at is None
        assert new.issued_at == ctx.clock.now()
        third = await ctx.refresh(second.refresh_token)
        assert ctx.claims(third)[1]["sid"] == first_claims["sid"]

    async def test_reused_token_revokes_the_whole_family(self, ctx: Context) -> None:
        root = await ctx.register("root")
        first = await ctx.log_in("root")
        other_session = await ctx.log_in("root")
        second = await ctx.refresh(first.refresh_token)
        family = uuid.UUID(ctx.claims(first)[1]["sid"])

        with pytest.raises(Unauthorized) as caught:
            await ctx.refresh(first.refresh_token)

        assert caught.value.extra == {"reason": "token-reused"}
        family_tokens = [t for t in ctx.uow.tokens_of(root) if t.family_id == family]
        assert len(family_tokens) == 2
        assert all(t.revoke_reason == "refresh token reused" for t in family_tokens)
        assert ctx.revocations.revoked_sessions == [family]
        [revoked] = ctx.uow.events_of(UserSessionsRevoked)
        assert (revoked.session_id, revoked.user_id) == (family, root)
        with pytest.raises(Unauthorized):
            await ctx.refresh(second.refresh_token)
        assert await ctx.refresh(other_session.refresh_token)

    async def test_access_token_is_refused(self, ctx: Context) -> None:
        await ctx.register("root")
        issued = await ctx.log_in("root")

        with pytest.raises(Unauthorized) as caught:
            await ctx.refresh(issued.access_token)

        assert caught.value.extra == {"reason": "wrong-token-type"}
        assert len(ctx.uow.stored_tokens) == 1

    async def test_expired_token_is_refused(self, ctx: Context) -> None:
        await ctx.register("root")
        ctx.clock.set(datetime.now(UTC) - timedelta(seconds=REFRESH_TTL + 60))
        issued = await ctx.log_in("root")

        with pytest.raises(Unauthorized) as caught:
            await ctx.refresh(issued.refresh_token)

        assert caught.value.extra == {"reason": "token-expired"}

    async def test_token_past_its_stored_expiry_is_refused(self, ctx: Context) -> None:
        await ctx.register("root")
        issued = await ctx.log_in("root")
        ctx.clock.advance(REFRESH_TTL)

        with pytest.raises(Unauthorized, match="expired"):
            await ctx.refresh(issued.refresh_token)

        assert len(ctx.uow.stored_tokens) == 1

    async def test_unknown_token_is_refused(self, ctx: Context) -> None:
        root = await ctx.register("root")
        forged = ctx.tokens.issue_refresh(
            token_id=uuid.uuid4(), user_id=root, family_id=uuid.uuid4(), now=ctx.clock.now()
        )

        with pytest.raises(Unauthorized, match="not known"):
            await ctx.refresh(forged)

    async def test_token_presented_with_another_family_is_refused(self, ctx: Context) -> None:
        root = await ctx.register("root")
        issued = await ctx.log_in("root")
        token_id = uuid.UUID(ctx.claims(issued)[1]["jti"])
        forged = ctx.tokens.issue_refresh(
            token_id=token_id, user_id=root, family_id=uuid.uuid4(), now=ctx.clock.now()
        )

        with pytest.raises(Unauthorized, match="not known"):
            await ctx.refresh(forged)

        assert ctx.uow.stored_tokens[token_id].replaced_by is None


class TestLogOut:
    async def test_revokes_only_the_session_family(self, ctx: Context) -> None:
        root = await ctx.register("root")
        leaving = await ctx.log_in("root")
        staying = await ctx.log_in("root")
        family = uuid.UUID(ctx.claims(leaving)[1]["sid"])

        await ctx.bus.handle(LogOut(user_id=root, session_id=family))

        revoked = {t.family_id: t.revoke_reason for t in ctx.uow.tokens_of(root)}
        assert revoked == {family: "logout", uuid.UUID(ctx.claims(staying)[1]["sid"]): None}
        assert ctx.revocations.revoked_sessions == [family]
        [logged_out] = ctx.uow.events_of(UserLoggedOut)
        assert logged_out.session_id == family
        with pytest.raises(Unauthorized):
            await ctx.refresh(leaving.refresh_token)
        assert await ctx.refresh(staying.refresh_token)

    async def test_unknown_user_is_not_found(self, ctx: Context) -> None:
        with pytest.raises(NotFound):
            await ctx.bus.handle(LogOut(user_id=uuid.uuid4(), session_id=uuid.uuid4()))

        assert ctx.revocations.revoked_sessions == []


class TestUpdateProfile:
    async def test_changes_email_name_and_password(self, ctx: Context) -> None:
        root = await ctx.register("root")

        await ctx.bus.handle(
            UpdateProfile(
                user_id=root,
                email="Boss@Example.org",
                full_name=" The Boss ",
                current_password=PASSWORD,
                new_password="Better-Horse-8",
            )
        )

        stored = ctx.uow.stored_users[root]
        assert (stored.email, stored.full_name) == ("boss@example.org", "The Boss")
        [updated] = ctx.uow.events_of(UserProfileUpdated)
        assert updated.changed_fields == ("email", "full_name", "password")
        assert await ctx.log_in("root", "Better-Horse-8")
        with pytest.raises(Unauthorized):
            await ctx.log_in("root", PASSWORD)

    @pytest.mark.parametrize(
        "current_password",
        [pytest.param("Wrong-Horse-7", id="wrong"), pytest.param(None, id="missing")],
    )
    async def test_wrong_current_password_is_forbidden(
        self, ctx: Context, current_password: str | None
    ) -> None:
        root = await ctx.register("root")

        with pytest.raises(Forbidden) as caught:
            await ctx.bus.handle(
                UpdateProfile(
                    user_id=root,
                    email="boss@example.org",
                    current_password=current_password,
                    new_password="Better-Horse-8",
                )
            )

        assert caught.value.extra == {"field": "current_password"}
        stored = ctx.uow.stored_users[root]
        assert (stored.email, stored.password_hash) == ("root@example.org", f"hashed:{PASSWORD}")
        assert ctx.uow.events_of(UserProfileUpdated) == []

    async def test_weak_new_password_is_invalid(self, ctx: Context) -> None:
        root = await ctx.register("root")

        with pytest.raises(InvalidInput):
            await ctx.bus.handle(
                UpdateProfile(user_id=root, current_password=PASSWORD, new_password="root-Root-1")
            )

        assert ctx.uow.stored_users[root].password_hash == f"hashed:{PASSWORD}"

    async def test_email_of_another_user_conflicts(self, ctx: Context) -> None:
        _, bob = await admin_and_member(ctx)

        with pytest.raises(Conflict) as caught:
            await ctx.bus.handle(
                UpdateProfile(user_id=bob, email="ROOT@example.org", current_password=PASSWORD)
            )

        assert caught.value.extra == {"field": "email"}
        assert ctx.uow.stored_users[bob].email == "bob@example.org"

    async def test_email_change_needs_the_current_password(self, ctx: Context) -> None:
        _, bob = await admin_and_member(ctx)

        with pytest.raises(Forbidden) as caught:
            await ctx.bus.handle(UpdateProfile(user_id=bob, email="new@example.org"))

        assert caught.value.extra == {"field": "current_password"}
        assert ctx.uow.stored_users[bob].email == "bob@example.org"

    async def test_new_password_ends_other_sessions_but_keeps_this_one(self, ctx: Context) -> None:
        _, bob = await admin_and_member(ctx)
        here = await ctx.log_in("bob")
        elsewhere = await ctx.log_in("bob")
        here_family = ctx.tokens.decode_refresh(here.refresh_token).family_id
        other_family = ctx.tokens.decode_refresh(elsewhere.refresh_token).family_id

        await ctx.bus.handle(
            UpdateProfile(
                user_id=bob,
                session_id=here_family,
                current_password=PASSWORD,
                new_password="Brand-New-Pass-77",
            )
        )

        assert ctx.revocations.revoked_sessions == [other_family]
        with pytest.raises(Unauthorized):
            await ctx.bus.handle(RefreshSession(refresh_token=elsewhere.refresh_token))
        rotated = await ctx.bus.handle(RefreshSession(refresh_token=here.refresh_token))
        assert rotated.access_token

    async def test_own_email_in_other_case_changes_nothing(self, ctx: Context) -> None:
        root = await ctx.register("root")
        events_before = len(ctx.uow.committed_events)

        await ctx.bus.handle(UpdateProfile(user_id=root, email="ROOT@Example.org"))

        assert ctx.uow.stored_users[root].email == "root@example.org"
        assert len(ctx.uow.committed_events) == events_before

    async def test_unknown_user_is_not_found(self, ctx: Context) -> None:
        with pytest.raises(NotFound):
            await ctx.bus.handle(UpdateProfile(user_id=uuid.uuid4(), full_name="Ghost"))


class TestAdministration:
    async def test_approval_lets_the_user_log_in(self, ctx: Context) -> None:
        root = await ctx.register("root")
        bob = await ctx.register("bob")

        await ctx.bus.handle(ApproveUser(user_id=bob, approved_by=root))

        assert ctx.uow.stored_users[bob].is_approved
        [approved] = ctx.uow.events_of(UserApproved)
        assert (approved.user_id, approved.approved_by) == (bob, root)
        assert await ctx.log_in("bob")

    async def test_approving_an_unknown_user_is_not_found(self, ctx: Context) -> None:
        root = await ctx.register("root")

        with pytest.raises(NotFound):
            await ctx.bus.handle(ApproveUser(user_id=uuid.uuid4(), approved_by=root))

    async def test_last_active_admin_cannot_be_demoted(self, ctx: Context) -> None:
        root, bob = await admin_and_member(ctx)

        with pytest.raises(Conflict):
            await ctx.bus.handle(ChangeUserRole(user_id=root, role=Role.USER, changed_by=bob))

        assert ctx.uow.stored_users[root].role is Role.ADMIN
        assert ctx.uow.events_of(UserRoleChanged) == []

    async def test_an_admin_can_be_demoted_while_another_remains(self, ctx: Context) -> None:
        root, bob = await admin_and_member(ctx)
        await ctx.bus.handle(ChangeUserRole(user_id=bob, role=Role.ADMIN, changed_by=root))

        await ctx.bus.handle(ChangeUserRole(user_id=root, role=Role.OPERATOR, changed_by=bob))

        assert ctx.uow.stored_users[root].role is Role.OPERATOR
        assert [(e.old_role, e.new_role) for e in ctx.uow.events_of(UserRoleChanged)] == [
            (Role.USER, Role.ADMIN),
            (Role.ADMIN, Role.OPERATOR),
        ]
        access, _ = ctx.claims(await ctx.log_in("root"))
        assert access["role"] == "operator"

    async def test_unapproved_admin_does_not_count_as_remaining_admin(self, ctx: Context) -> None:
        root = await ctx.register("root")
        bob = await ctx.register("bob")
        await ctx.bus.handle(ChangeUserRole(user_id=bob, role=Role.ADMIN, changed_by=root))

        with pytest.raises(Conflict):
            await ctx.bus.handle(ChangeUserRole(user_id=root, role=Role.USER, changed_by=root))

    async def test_last_active_admin_cannot_be_deactivated(self, ctx: Context) -> None:
        root, bob = await admin_and_member(ctx)

        with pytest.raises(Conflict):
            await ctx.bus.handle(DeactivateUser(user_id=root, deactivated_by=bob))

        assert ctx.uow.stored_users[root].is_active
        assert ctx.uow.events_of(UserDeactivated) == []

    async def test_deactivation_revokes_every_refresh_token_of_the_user(self, ctx: Context) -> None:
        root, bob = await admin_and_member(ctx)
        bob_sessions = [await ctx.log_in("bob"), await ctx.log_in("bob")]
        await ctx.log_in("root")

        await ctx.bus.handle(DeactivateUser(user_id=bob, deactivated_by=root))

        assert not ctx.uow.stored_users[bob].is_active
        assert [t.revoke_reason for t in ctx.uow.tokens_of(bob)] == ["deactivated"] * 2
        assert [t.revoked_at for t in ctx.uow.tokens_of(root)] == [None]
        for session in bob_sessions:
            with pytest.raises(Unauthorized):
                await ctx.refresh(session.refresh_token)

    async def test_reactivation_lets_the_user_log_in_again(self, ctx: Context) -> None:
        root, bob = await admin_and_member(ctx)
        await ctx.bus.handle(DeactivateUser(user_id=bob, deactivated_by=root))

        await ctx.bus.handle(ReactivateUser(user_id=bob, reactivated_by=root))

        assert ctx.uow.stored_users[bob].is_active
        [reactivated] = ctx.uow.events_of(UserReactivated)
        assert reactivated.reactivated_by == root
        assert await ctx.log_in("bob")

    async def test_access_changes_forget_the_user_in_the_handler_and_on_the_relay(
        self, ctx: Context
    ) -> None:
        ctx.events.held = True
        root, bob = await admin_and_member(ctx)
        await ctx.bus.handle(ChangeUserRole(user_id=bob, role=Role.OPERATOR, changed_by=root))
        await ctx.bus.handle(DeactivateUser(user_id=bob, deactivated_by=root))
        await ctx.bus.handle(ReactivateUser(user_id=bob, reactivated_by=root))
        await ctx.log_in("bob")

        # approve, role change, deactivate and reactivate each forget at once, with no relay;
        # logging in does not
        assert ctx.revocations.forgotten_users == [bob] * 4

        await ctx.events.deliver()

        assert ctx.revocations.forgotten_users == [bob] * 8

    async def test_a_refused_change_forgets_nobody(self, ctx: Context) -> None:
        root, _ = await admin_and_member(ctx)
        forgotten = list(ctx.revocations.forgotten_users)

        with pytest.raises(Conflict):
            await ctx.bus.handle(DeactivateUser(user_id=root, deactivated_by=root))

        assert ctx.revocations.forgotten_users == forgotten


class TestQueries:
    async def test_get_user_returns_its_view(self, ctx: Context) -> None:
        root = await ctx.register("root")

        view = await ctx.bus.handle(GetUser(user_id=root))

        assert (view.id, view.username, view.role) == (root, "root", Role.ADMIN)

    async def test_get_unknown_user_is_not_found(self, ctx: Context) -> None:
        with pytest.raises(NotFound):
            await ctx.bus.handle(GetUser(user_id=uuid.uuid4()))

    async def test_list_users_applies_the_filter(self, ctx: Context) -> None:
        await ctx.register("root")
        bob = await ctx.register("bob")

        page = await ctx.bus.handle(ListUsers(filter=UserListFilter(is_approved=False)))

        assert [view.id for view in page.items] == [bob]
        assert page.total == 1
