"""The message bus, the event codec, principals, JWTs and password hashing."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

import pytest
from jose import jwt
from passlib.hash import bcrypt

from app.shared.bus import Command, HandlerMissing, MessageBus
from app.shared.domain import DomainEvent, Unauthorized
from app.shared.events import EventCodec
from app.shared.security import ROLE_PERMISSIONS, Permission, Principal, Role
from app.users.domain.events import USER_EVENTS, UserApproved, UserEvent
from app.users.domain.model import User
from app.users.infrastructure.security import JwtTokenService, PasslibHasher

OCCURRED_AT = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
SECRET = "test-secret"


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Command[str]):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unhandled(Command[None]):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleChanged(DomainEvent):
    """Payload types the user events do not have: datetimes, optionals, lists, enum tuples."""

    aggregate_type: ClassVar[str] = "schedule"

    schedule_id: uuid.UUID
    next_run: datetime
    last_run: datetime | None
    owner_ids: list[uuid.UUID]
    roles: tuple[Role, ...]
    note: str | None

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.schedule_id


class TestMessageBus:
    async def test_routes_a_command_to_its_handler(self) -> None:
        bus = MessageBus()

        async def echo(cmd: Ping) -> str:
            return cmd.text.upper()

        bus.register(Ping, echo)

        assert await bus.handle(Ping(text="hi")) == "HI"

    def test_a_second_handler_for_a_command_is_refused(self) -> None:
        bus = MessageBus()

        async def first(cmd: Ping) -> str:
            return "first"

        async def second(cmd: Ping) -> str:
            return "second"

        bus.register(Ping, first)

        with pytest.raises(ValueError, match="Ping already has a handler"):
            bus.register(Ping, second)

    async def test_a_command_without_handler_raises(self) -> None:
        with pytest.raises(HandlerMissing, match="Unhandled"):
            await MessageBus().handle(Unhandled())

    async def test_publish_runs_every_subscriber_then_raises_the_first_failure(self) -> None:
        bus = MessageBus()
        ran: list[str] = []
        event = UserApproved(
            occurred_at=OCCURRED_AT, user_id=uuid.uuid4(), approved_by=uuid.uuid4()
        )

        def subscriber(name: str, error: Exception | None = None) -> Any:
            async def run(received: DomainEvent) -> None:
                assert received is event
                ran.append(name)
                if error is not None:
                    raise error

            return run

        first_failure = RuntimeError("first")
        bus.subscribe(UserApproved, subscriber("a"))
        bus.subscribe(UserApproved, subscriber("b", first_failure))
        bus.subscribe(UserApproved, subscriber("c", KeyError("second")))
        bus.subscribe(UserApproved, subscriber("d"))

        with pytest.raises(RuntimeError) as caught:
            await bus.publish(event)

        assert caught.value is first_failure
        assert ran == ["a", "b", "c", "d"]


def _sample(hint: Any, name: str) -> Any:
    """A non-default value of a field's type, so a lost or mangled field shows."""
    origin = get_origin(hint)
    if hint is uuid.UUID:
        return uuid.uuid4()
    if hint is str:
        return f'{name}-Ünïcode-"quoted"'
    if hint is bool:
        return True
    if hint is datetime:
        return datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    if isinstance(hint, type) and issubclass(hint, Role):
        return Role.OPERATOR
    if origin is tuple:
        item = get_args(hint)[0]
        return (_sample(item, name), _sample(item, name + "2"))
    if origin is list:
        return [_sample(get_args(hint)[0], name)]
    non_none = [arg for arg in get_args(hint) if arg is not type(None)]
    if len(non_none) == 1:
        return _sample(non_none[0], name)
    raise AssertionError(f"add a sample for {hint!r} ({name})")


def _sample_event[E: DomainEvent](cls: type[E]) -> E:
    hints = get_type_hints(cls)
    values = {
        f.name: _sample(hints[f.name], f.name) for f in fields(cls) if f.name != "occurred_at"
    }
    return cls(occurred_at=OCCURRED_AT, **values)


def _round_trip(codec: EventCodec, event: DomainEvent) -> DomainEvent:
    stored = json.loads(json.dumps(codec.encode(event)))
    return codec.decode(event.event_type(), stored, event.occurred_at)


class TestEventCodec:
    @pytest.mark.parametrize("event_class", USER_EVENTS, ids=lambda cls: cls.__name__)
    def test_user_event_survives_json(self, event_class: type[UserEvent]) -> None:
        codec = EventCodec(USER_EVENTS)
        event = _sample_event(event_class)

        decoded = _round_trip(codec, event)

        assert decoded == event
        assert type(decoded) is event_class

    def test_every_field_type_is_restored(self) -> None:
        codec = EventCodec([ScheduleChanged])
        event = _sample_event(ScheduleChanged)

        decoded = _round_trip(codec, event)

        assert decoded == event
        assert isinstance(decoded, ScheduleChanged)
        assert isinstance(decoded.roles[0], Role)
        assert decoded.next_run.tzinfo is not None

    def test_missing_optional_values_stay_none(self) -> None:
        codec = EventCodec([ScheduleChanged])
        event = ScheduleChanged(
            occurred_at=OCCURRED_AT,
            schedule_id=uuid.uuid4(),
            next_run=OCCURRED_AT,
            last_run=None,
            owner_ids=[],
            roles=(),
            note=None,
        )

        assert _round_trip(codec, event) == event

    def test_knows_only_its_event_types(self) -> None:
        codec = EventCodec(USER_EVENTS)

        assert codec.knows("UserApproved")
        assert not codec.knows("ScheduleChanged")


class TestPrincipal:
    @staticmethod
    def principal(role: Role) -> Principal:
        return Principal(user_id=uuid.uuid4(), username="p", role=role, session_id=uuid.uuid4())

    @pytest.mark.parametrize("permission", list(Permission), ids=str)
    def test_admin_has_every_permission(self, permission: Permission) -> None:
        assert self.principal(Role.ADMIN).has(permission)

    def test_user_owns_servers_but_cannot_read_users(self) -> None:
        user = self.principal(Role.USER)

        assert user.has(Permission.SERVER_WRITE)
        assert not user.has(Permission.USER_READ)
        assert not user.has(Permission.ADMIN_ALL)
        assert not user.sees_everything()

    def test_operator_reads_but_does_not_write_users(self) -> None:
        operator = self.principal(Role.OPERATOR)

        assert operator.has(Permission.USER_READ)
        assert not operator.has(Permission.USER_WRITE)
        assert operator.sees_everything()


def _token_service(secret: str = SECRET) -> JwtTokenService:
    return JwtTokenService(
        secret=secret, algorithm="HS256", issuer="mcdash", access_ttl=900, refresh_ttl=3600
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    """Built when tests are collected: valid for a day, so a long suite cannot outlive them."""
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "type": "refresh",
        "iss": "mcdash",
        "iat": now,
        "exp": now + 86_400,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


class TestJwtTokenService:
    def test_decodes_its_own_tokens(self) -> None:
        tokens = _token_service()
        user_id, family_id, token_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

        token = tokens.issue_refresh(
            token_id=token_id, user_id=user_id, family_id=family_id, now=datetime.now(UTC)
        )
        claims = tokens.decode_refresh(token)

        assert (claims.token_id, claims.user_id, claims.family_id) == (token_id, user_id, family_id)

    def test_access_token_carries_the_role_permissions(self) -> None:
        tokens = _token_service()
        user = User.register(
            user_id=uuid.uuid4(),
            username="op",
            email="op@example.org",
            password_hash="x",
            full_name=None,
            first_user=False,
            now=datetime.now(UTC),
        )
        user.role = Role.OPERATOR
        session_id = uuid.uuid4()

        claims = tokens.decode(
            tokens.issue_access(user, session_id=session_id, now=datetime.now(UTC)), "access"
        )

        assert claims["role"] == "operator"
        assert claims["sid"] == str(session_id)
        assert claims["permissions"] == sorted(p.value for p in ROLE_PERMISSIONS[Role.OPERATOR])

    @pytest.mark.parametrize(
        ("token", "reason"),
        [
            pytest.param("not-a-token", "token-invalid", id="garbled"),
            pytest.param("", "token-invalid", id="empty"),
            pytest.param(
                jwt.encode(_claims(), "another-secret", algorithm="HS256"),
                "token-invalid",
                id="other-secret",
            ),
            pytest.param(
                _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
                "token-invalid",
                id="alg-none",
            ),
            pytest.param(
                jwt.encode(_claims(sub=None), SECRET, algorithm="HS256"),
                "token-invalid",
                id="missing-sub",
            ),
            pytest.param(
                jwt.encode(_claims(sub="not-a-uuid"), SECRET, algorithm="HS256"),
                "token-invalid",
                id="sub-not-uuid",
            ),
            pytest.param(
                jwt.encode(_claims(sid=None), SECRET, algorithm="HS256"),
                "token-invalid",
                id="missing-sid",
            ),
            pytest.param(
                jwt.encode(_claims(iss="someone-else"), SECRET, algorithm="HS256"),
                "token-invalid",
                id="other-issuer",
            ),
            pytest.param(
                jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
                "token-invalid",
                id="missing-exp",
            ),
            pytest.param(
                jwt.encode(_claims(iat=1, exp=2), SECRET, algorithm="HS256"),
                "token-expired",
                id="expired",
            ),
            pytest.param(
                jwt.encode(_claims(type="access"), SECRET, algorithm="HS256"),
                "wrong-token-type",
                id="access-as-refresh",
            ),
            pytest.param(
                jwt.encode(_claims(type=None), SECRET, algorithm="HS256"),
                "wrong-token-type",
                id="missing-type",
            ),
        ],
    )
    def test_refuses(self, token: str, reason: str) -> None:
        with pytest.raises(Unauthorized) as caught:
            _token_service().decode(token, "refresh")

        assert caught.value.extra == {"reason": reason}


@pytest.fixture(scope="module")
def hasher() -> PasslibHasher:
    return PasslibHasher()


class TestPasslibHasher:
    async def test_hashes_with_argon2_and_verifies(self, hasher: PasslibHasher) -> None:
        password_hash = await hasher.hash("Correct-Horse-7")

        assert password_hash.startswith("$argon2")
        assert await hasher.verify("Correct-Horse-7", password_hash) == (True, None)
        assert await hasher.verify("Wrong-Horse-7", password_hash) == (False, None)

    async def test_bcrypt_hash_verifies_and_is_upgraded(self, hasher: PasslibHasher) -> None:
        legacy = bcrypt.hash("Correct-Horse-7")

        matches, upgraded = await hasher.verify("Correct-Horse-7", legacy)

        assert matches
        assert upgraded is not None
        assert upgraded.startswith("$argon2")
        assert await hasher.verify("Correct-Horse-7", upgraded) == (True, None)

    async def test_no_upgrade_asked_no_new_hash_is_made(self, hasher: PasslibHasher) -> None:
        """A login that will be refused does the same work for a right and a wrong password."""
        legacy = bcrypt.hash("Correct-Horse-7")

        assert await hasher.verify("Correct-Horse-7", legacy, upgrade=False) == (True, None)
        assert await hasher.verify("Wrong-Horse-7", legacy, upgrade=False) == (False, None)

    async def test_wrong_password_against_bcrypt_hash_is_not_upgraded(
        self, hasher: PasslibHasher
    ) -> None:
        assert await hasher.verify("Wrong-Horse-7", bcrypt.hash("Correct-Horse-7")) == (
            False,
            None,
        )

    @pytest.mark.parametrize(
        "password_hash",
        [
            pytest.param("garbage", id="garbage"),
            pytest.param("", id="empty"),
            pytest.param("$argon2id$v=19$m=65536,t=3,p=4$abc", id="truncated-argon2"),
            pytest.param(None, id="no-user"),
        ],
    )
    async def test_unusable_hash_never_matches(
        self, hasher: PasslibHasher, password_hash: str | None
    ) -> None:
        assert await hasher.verify("Correct-Horse-7", password_hash) == (False, None)
