"""The user aggregate's rules and the validators of usernames, emails, passwords and names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.shared.domain import Conflict, Forbidden, InvalidInput
from app.shared.security import Role
from app.users.domain.events import (
    UserApproved,
    UserDeactivated,
    UserProfileUpdated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from app.users.domain.model import (
    User,
    validate_email,
    validate_full_name,
    validate_password,
    validate_username,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ADMIN_ID = uuid.uuid4()


def make_user(*, first_user: bool = False, username: str = "alice") -> User:
    user = User.register(
        user_id=uuid.uuid4(),
        username=username,
        email=f"{username}@example.org",
        password_hash="hashed:x",
        full_name="Alice Liddell",
        first_user=first_user,
        now=NOW,
    )
    user.collect_events()
    return user


class TestRegister:
    def test_first_user_is_an_approved_admin(self) -> None:
        user_id = uuid.uuid4()

        user = User.register(
            user_id=user_id,
            username="root",
            email="root@example.org",
            password_hash="hashed:x",
            full_name=None,
            first_user=True,
            now=NOW,
        )

        assert (user.role, user.is_approved, user.is_active) == (Role.ADMIN, True, True)
        assert user.created_at == NOW
        assert user.collect_events() == [
            UserRegistered(
                occurred_at=NOW,
                user_id=user_id,
                username="root",
                email="root@example.org",
                role=Role.ADMIN,
                is_approved=True,
            )
        ]

    def test_later_user_waits_for_approval_as_plain_user(self) -> None:
        user = User.register(
            user_id=uuid.uuid4(),
            username="bob",
            email="bob@example.org",
            password_hash="hashed:x",
            full_name="Bob",
            first_user=False,
            now=NOW,
        )

        assert (user.role, user.is_approved, user.is_active) == (Role.USER, False, True)
        [event] = user.collect_events()
        assert isinstance(event, UserRegistered)
        assert (event.role, event.is_approved) == (Role.USER, False)
        assert user.changed


class TestApprove:
    def test_records_who_approved(self) -> None:
        user = make_user()

        user.approve(by=ADMIN_ID, now=LATER)

        assert user.is_approved
        assert user.collect_events() == [
            UserApproved(occurred_at=LATER, user_id=user.id, approved_by=ADMIN_ID)
        ]

    def test_nobody_approves_themselves(self) -> None:
        user = make_user()

        with pytest.raises(Forbidden):
            user.approve(by=user.id, now=LATER)

        assert not user.is_approved
        assert user.collect_events() == []

    def test_approving_twice_conflicts(self) -> None:
        user = make_user()
        user.approve(by=ADMIN_ID, now=LATER)
        user.collect_events()

        with pytest.raises(Conflict):
            user.approve(by=ADMIN_ID, now=LATER)

        assert user.collect_events() == []


class TestChangeRole:
    def test_records_old_and_new_role(self) -> None:
        user = make_user()

        user.change_role(Role.OPERATOR, by=ADMIN_ID, now=LATER)

        assert user.role is Role.OPERATOR
        assert user.collect_events() == [
            UserRoleChanged(
                occurred_at=LATER,
                user_id=user.id,
                old_role=Role.USER,
                new_role=Role.OPERATOR,
                changed_by=ADMIN_ID,
            )
        ]

    def test_same_role_conflicts(self) -> None:
        user = make_user()

        with pytest.raises(Conflict):
            user.change_role(Role.USER, by=ADMIN_ID, now=LATER)

        assert user.collect_events() == []


class TestDeactivateAndReactivate:
    def test_deactivate_then_reactivate(self) -> None:
        user = make_user()

        user.deactivate(by=ADMIN_ID, now=NOW)
        assert not user.is_active
        user.reactivate(by=ADMIN_ID, now=LATER)

        assert user.is_active
        assert user.collect_events() == [
            UserDeactivated(occurred_at=NOW, user_id=user.id, deactivated_by=ADMIN_ID),
            UserReactivated(occurred_at=LATER, user_id=user.id, reactivated_by=ADMIN_ID),
        ]

    def test_nobody_deactivates_themselves(self) -> None:
        user = make_user(first_user=True)

        with pytest.raises(Forbidden):
            user.deactivate(by=user.id, now=NOW)

        assert user.is_active

    def test_deactivating_twice_conflicts(self) -> None:
        user = make_user()
        user.deactivate(by=ADMIN_ID, now=NOW)
        user.collect_events()

        with pytest.raises(Conflict):
            user.deactivate(by=ADMIN_ID, now=LATER)

        assert user.collect_events() == []

    def test_reactivating_an_active_user_conflicts(self) -> None:
        user = make_user()

        with pytest.raises(Conflict):
            user.reactivate(by=ADMIN_ID, now=NOW)


class TestEnsureCanLogIn:
    def test_unapproved_user_is_refused(self) -> None:
        user = make_user()

        with pytest.raises(Forbidden) as caught:
            user.ensure_can_log_in()

        assert caught.value.extra == {"reason": "unapproved"}

    def test_deactivated_user_is_refused_even_when_unapproved(self) -> None:
        user = make_user()
        user.deactivate(by=ADMIN_ID, now=NOW)

        with pytest.raises(Forbidden) as caught:
            user.ensure_can_log_in()

        assert caught.value.extra == {"reason": "deactivated"}


class TestUpdateProfile:
    def test_records_only_the_fields_that_changed(self) -> None:
        user = make_user()

        user.update_profile(
            email="new@example.org", full_name="Alice Liddell", password_hash="hashed:y", now=LATER
        )

        assert (user.email, user.password_hash) == ("new@example.org", "hashed:y")
        assert user.collect_events() == [
            UserProfileUpdated(
                occurred_at=LATER, user_id=user.id, changed_fields=("email", "password")
            )
        ]

    def test_full_name_change_is_recorded(self) -> None:
        user = make_user()

        user.update_profile(email=None, full_name="Alice L.", password_hash=None, now=LATER)

        assert user.full_name == "Alice L."
        [event] = user.collect_events()
        assert isinstance(event, UserProfileUpdated)
        assert event.changed_fields == ("full_name",)

    def test_nothing_changed_records_nothing(self) -> None:
        user = make_user()

        user.update_profile(
            email=user.email, full_name=user.full_name, password_hash=None, now=LATER
        )

        assert user.collect_events() == []


class TestValidateUsername:
    @pytest.mark.parametrize("username", ["abc", "Steve_99", "a.b-c", "9lives", "x" * 50], ids=str)
    def test_accepts(self, username: str) -> None:
        assert validate_username(username) == username

    @pytest.mark.parametrize(
        "username",
        [
            pytest.param("", id="empty"),
            pytest.param("ab", id="too-short"),
            pytest.param("x" * 51, id="too-long"),
            pytest.param("stéve", id="unicode-letter"),
            pytest.param("Стив", id="cyrillic"),
            pytest.param("a'; DROP TABLE users;--", id="sql-injection"),
            pytest.param("bob smith", id="space"),
            pytest.param(".hidden", id="leading-dot"),
            pytest.param("_bob", id="leading-underscore"),
            pytest.param("-bob", id="leading-dash"),
            pytest.param("bob\n", id="trailing-newline"),
            pytest.param("bob\x00", id="nul-byte"),
            pytest.param("<script>", id="html"),
            pytest.param("\uff42\uff4f\uff42", id="fullwidth-letters"),
        ],
    )
    def test_refuses(self, username: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_username(username)
        assert caught.value.extra == {"field": "username"}


class TestValidateEmail:
    def test_normalizes_to_lower_case(self) -> None:
        assert validate_email("Alice.Smith@Example.ORG") == "alice.smith@example.org"

    def test_internationalized_address_is_lowered(self) -> None:
        assert validate_email("Élise@Example.org") == "élise@example.org"

    @pytest.mark.parametrize(
        "email",
        [
            pytest.param("", id="empty"),
            pytest.param("plainaddress", id="no-at-sign"),
            pytest.param("@example.org", id="no-local-part"),
            pytest.param("alice@", id="no-domain"),
            pytest.param("alice@@example.org", id="double-at"),
            pytest.param("alice smith@example.org", id="space"),
            pytest.param("a..b@example.org", id="double-dot"),
            pytest.param("alice@localhost", id="domain-without-dot"),
            pytest.param("alice@example.org\n", id="trailing-newline"),
            pytest.param("alice@example.org'; DROP TABLE users;--", id="sql-injection"),
        ],
    )
    def test_refuses(self, email: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_email(email)
        assert caught.value.extra == {"field": "email"}

    def test_refuses_over_255_characters_before_parsing(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_email("a" * 244 + "@example.org")
        assert caught.value.detail == "email must be at most 255 characters"


class TestValidatePassword:
    @pytest.mark.parametrize(
        "password", ["Correct-Horse-7", "tr0ub4dor&3x", "ÄÖÜäöüßàéè", "x" * 127 + "Y"], ids=str
    )
    def test_accepts(self, password: str) -> None:
        assert validate_password(password, username="alice") == password

    @pytest.mark.parametrize(
        "password",
        [
            pytest.param("Sh0rt!", id="too-short"),
            pytest.param("Aa1!" * 250, id="1000-chars"),
            pytest.param("x" * 128 + "Y", id="129-chars"),
            pytest.param("abcdefghijkl", id="lowercase-only"),
            pytest.param("ABCDEFGHIJKL", id="uppercase-only"),
            pytest.param("123456789012", id="digits-only"),
            pytest.param("!@#$%^&*()-_", id="symbols-only"),
            pytest.param("Password123", id="common-password"),
            pytest.param("MINECRAFT1", id="common-password-upper-case"),
            pytest.param("My-ALICE-pass", id="contains-username"),
            pytest.param("Good-pass\x007", id="nul-byte"),
        ],
    )
    def test_refuses(self, password: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_password(password, username="alice")
        assert caught.value.extra == {"field": "password"}


class TestValidateFullName:
    @pytest.mark.parametrize(
        ("full_name", "expected"),
        [
            pytest.param("Alice Liddell", "Alice Liddell", id="ascii"),
            pytest.param("  Zoë Ångström  ", "Zoë Ångström", id="unicode-trimmed"),
            pytest.param("李小龍", "李小龍", id="cjk"),
            pytest.param("\tBob\n", "Bob", id="outer-whitespace-trimmed"),
            pytest.param("   ", None, id="blank-becomes-none"),
            pytest.param(None, None, id="none"),
            pytest.param("x" * 255, "x" * 255, id="255-chars"),
        ],
    )
    def test_accepts(self, full_name: str | None, expected: str | None) -> None:
        assert validate_full_name(full_name) == expected

    @pytest.mark.parametrize(
        "full_name",
        [
            pytest.param("Bob\nSmith", id="newline"),
            pytest.param("Bob\x00", id="nul-byte"),
            pytest.param("Bob\x1b[31m", id="ansi-escape"),
            pytest.param("Bob\x7f", id="delete"),
            pytest.param("x" * 256, id="256-chars"),
        ],
    )
    def test_refuses(self, full_name: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_full_name(full_name)
        assert caught.value.extra == {"field": "full_name"}

    def test_refuses_c1_control_characters(self) -> None:
        with pytest.raises(InvalidInput):
            validate_full_name("Bob\x9b31m")
