"""Password hashing, JWTs, and the Redis-backed checks that make revocation immediate."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from jose import ExpiredSignatureError, JWTError, jwt
from passlib.context import CryptContext
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.shared.cache import CACHE_LOOKUPS
from app.shared.domain import Unauthorized
from app.shared.principals import PRINCIPALS_CHANNEL, session_ended_notice, user_changed_notice
from app.shared.security import Principal, Role, role_permissions
from app.users.domain.model import User
from app.users.domain.ports import RefreshClaims
from app.users.infrastructure.principal_cache import RecentPrincipals
from app.users.infrastructure.tables import users

ACCESS, REFRESH = "access", "refresh"
_VERIFIED_MAX = 10_000


class PasslibHasher:
    """argon2 for new hashes; bcrypt hashes still verify and are upgraded on login."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._context = CryptContext(
            schemes=["argon2", "bcrypt"],
            deprecated="auto",
            argon2__rounds=time_cost,
            argon2__memory_cost=memory_kib,
        )
        self._dummy = self._context.hash("dummy password for timing")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._context.hash, password)

    async def verify(
        self, password: str, password_hash: str | None, *, upgrade: bool = True
    ) -> tuple[bool, str | None]:
        if password_hash is None:
            await asyncio.to_thread(self._context.verify, password, self._dummy)
            return False, None
        try:
            if upgrade:
                return await asyncio.to_thread(
                    self._context.verify_and_update, password, password_hash
                )
            return await asyncio.to_thread(self._context.verify, password, password_hash), None
        except ValueError:
            return False, None


class JwtTokenService:
    def __init__(
        self, *, secret: str, algorithm: str, issuer: str, access_ttl: int, refresh_ttl: int
    ) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self._issuer = issuer
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._verified: dict[str, dict[str, Any]] = {}

    @property
    def access_ttl(self) -> int:
        return self._access_ttl

    @property
    def refresh_ttl(self) -> int:
        return self._refresh_ttl

    def _encode(self, claims: dict[str, Any], now: datetime, ttl: int) -> str:
        issued = int(now.timestamp())
        payload = {**claims, "iss": self._issuer, "iat": issued, "exp": issued + ttl}
        return jwt.encode(payload, self._secret, algorithm=self._algorithm)

    def issue_access(self, user: User, *, session_id: uuid.UUID, now: datetime) -> str:
        principal = Principal(
            user_id=user.id, username=user.username, role=user.role, session_id=session_id
        )
        claims = {
            "sub": str(user.id),
            "username": user.username,
            "role": user.role.value,
            "permissions": sorted(p.value for p in principal.permissions),
            "sid": str(session_id),
            "jti": str(uuid.uuid4()),
            "type": ACCESS,
        }
        return self._encode(claims, now, self._access_ttl)

    def issue_refresh(
        self, *, token_id: uuid.UUID, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime
    ) -> str:
        claims = {"sub": str(user_id), "jti": str(token_id), "sid": str(family_id), "type": REFRESH}
        return self._encode(claims, now, self._refresh_ttl)

    def decode(self, token: str, expected_type: str) -> dict[str, Any]:
        """Verify a token; access tokens already verified are remembered until they expire."""
        cached = self._verified.get(token)
        if cached is not None and cached["type"] == expected_type:
            if cached["exp"] > time.time():
                return cached
            del self._verified[token]
        claims = self._verify(token, expected_type)
        if expected_type == ACCESS:
            if len(self._verified) >= _VERIFIED_MAX:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return claims

    def _verify(self, token: str, expected_type: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                options={"require_exp": True, "require_iat": True, "require_sub": True},
            )
        except ExpiredSignatureError as exc:
            raise Unauthorized(
                f"{expected_type} token has expired", reason="token-expired"
            ) from exc
        except JWTError as exc:
            raise Unauthorized(
                f"{expected_type} token is not valid", reason="token-invalid"
            ) from exc
        if claims.get("type") != expected_type:
            raise Unauthorized(
                f"a {claims.get('type', 'unknown')} token was given where a {expected_type} token "
                "is required",
                reason="wrong-token-type",
            )
        try:
            uuid.UUID(str(claims["sub"]))
            uuid.UUID(str(claims["sid"]))
            uuid.UUID(str(claims["jti"]))
        except (KeyError, ValueError) as exc:
            raise Unauthorized(
                f"{expected_type} token is not valid", reason="token-invalid"
            ) from exc
        return claims

    def decode_refresh(self, token: str) -> RefreshClaims:
        claims = self.decode(token, REFRESH)
        return RefreshClaims(
            token_id=uuid.UUID(claims["jti"]),
            user_id=uuid.UUID(claims["sub"]),
            family_id=uuid.UUID(claims["sid"]),
        )


def _perms_key(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}:perms"


def _revoked_key(session_id: uuid.UUID | str) -> str:
    return f"auth:session:{session_id}:revoked"


class RedisSessionRevocations:
    def __init__(
        self, redis: Redis, *, access_ttl: int, recent: RecentPrincipals | None = None
    ) -> None:
        self._redis = redis
        self._access_ttl = access_ttl
        self._recent = recent

    async def revoke_session(self, session_id: uuid.UUID) -> None:
        """Mark the session revoked, then tell every API process to check its open sockets
        (and to forget the principals it authenticated for it; this process forgets at once)."""
        if self._recent is not None:
            self._recent.forget(session_id=session_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_revoked_key(session_id), "1", ex=self._access_ttl + 60)
            pipe.publish(PRINCIPALS_CHANNEL, session_ended_notice(session_id))
            await pipe.execute()

    async def forget_user(self, user_id: uuid.UUID) -> None:
        """Drop the cached role and status, then tell every API process to check the sockets
        (and to forget the user's principals; this process forgets at once)."""
        if self._recent is not None:
            self._recent.forget(user_id=user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(_perms_key(user_id))
            pipe.publish(PRINCIPALS_CHANNEL, user_changed_notice(user_id))
            await pipe.execute()


def derive_key(secret: str, label: str) -> bytes:
    """A key for one purpose, derived from the signing key, so no stored key serves two uses."""
    return hmac.new(secret.encode(), f"mcdash:{label}".encode(), hashlib.sha256).digest()


class SignedPermissionsCache:
    """A user's role and status in Redis, signed with a key Redis never holds.

    Whoever can write to Redis can still delete an entry (a miss: the database is read) but not
    forge one: an entry is bound to its user id, and one without a valid signature is a miss.
    """

    def __init__(self, redis: Redis, key: bytes, *, ttl: int) -> None:
        self._redis = redis
        self._key = key
        self._ttl = ttl

    def _sign(self, user_id: uuid.UUID, body: str) -> str:
        return hmac.new(self._key, f"{user_id}\n{body}".encode(), hashlib.sha256).hexdigest()

    def read(self, user_id: uuid.UUID, cached: str | bytes | None) -> dict[str, Any] | None:
        """The state in a cache entry fetched by the caller, or None unless its signature holds."""
        state = self._verify(user_id, cached)
        CACHE_LOOKUPS.labels("permissions", "miss" if state is None else "hit").inc()
        return state

    def _verify(self, user_id: uuid.UUID, cached: str | bytes | None) -> dict[str, Any] | None:
        if cached is None:
            return None
        if isinstance(cached, bytes):
            cached = cached.decode(errors="replace")
        signature, _, body = cached.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(user_id, body).encode()):
            return None
        try:
            state = json.loads(body)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    async def write(self, user_id: uuid.UUID, state: dict[str, Any]) -> None:
        body = json.dumps(state, sort_keys=True, separators=(",", ":"))
        entry = f"{self._sign(user_id, body)}.{body}"
        await self._redis.set(_perms_key(user_id), entry, ex=self._ttl)


class JwtAuthenticator:
    """Checks an access token, its session's revocation, and the user's current role and status.

    The answer for a token is kept for a second in `recent` (app/users/infrastructure/
    principal_cache.py says how it is dropped when the session or the user changes)."""

    def __init__(
        self,
        tokens: JwtTokenService,
        redis: Redis,
        engine: AsyncEngine,
        *,
        cache_key: bytes,
        cache_ttl: int,
        users_install_code: bool = False,
        recent: RecentPrincipals | None = None,
    ) -> None:
        self._tokens = tokens
        self._redis = redis
        self._engine = engine
        self._cache = SignedPermissionsCache(redis, cache_key, ttl=cache_ttl)
        self._users_install_code = users_install_code
        self.recent = recent if recent is not None else RecentPrincipals()  # empty is falsy

    def forget(
        self, *, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None
    ) -> None:
        """A session or a user changed (both None: anything may have): ask Redis again."""
        self.recent.forget(user_id=user_id, session_id=session_id)

    def identify(self, access_token: str) -> uuid.UUID | None:
        """The subject of a valid access token, without asking Redis: for rate-limit keys."""
        try:
            return uuid.UUID(self._tokens.decode(access_token, ACCESS)["sub"])
        except Unauthorized:
            return None

    def expires_at(self, access_token: str) -> float:
        """When a valid access token expires (epoch seconds): open sockets close then."""
        return float(self._tokens.decode(access_token, ACCESS)["exp"])

    async def authenticate(self, access_token: str, *, fresh: bool = False) -> Principal:
        """The token's principal now; within a second of the last check of this token it is
        served from memory, unless `fresh` (commands, a socket's re-checks) asks Redis again."""
        claims = self._tokens.decode(access_token, ACCESS)
        recent = None if fresh else self.recent.get(access_token)
        if recent is not None:
            return recent
        epoch = self.recent.epoch
        principal = await self._check(claims)
        self.recent.put(access_token, principal, epoch=epoch)
        return principal

    async def _check(self, claims: dict[str, Any]) -> Principal:
        user_id = uuid.UUID(claims["sub"])
        revoked, cached = await self._redis.mget(_revoked_key(claims["sid"]), _perms_key(user_id))
        if revoked is not None:
            raise Unauthorized("this session has been logged out", reason="session-revoked")
        state = self._cache.read(user_id, cached) or await self._load(user_id)
        if state is None or not state["active"] or not state["approved"]:
            raise Unauthorized("this account can no longer sign in", reason="account-disabled")
        role = Role(state["role"])
        return Principal(
            user_id=user_id,
            username=state["username"],
            role=role,
            session_id=uuid.UUID(claims["sid"]),
            permissions=role_permissions(role, users_install_code=self._users_install_code),
        )

    async def _load(self, user_id: uuid.UUID) -> dict[str, Any] | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        users.c.username, users.c.role, users.c.is_active, users.c.is_approved
                    ).where(users.c.id == user_id)
                )
            ).first()
        if row is None:
            return None
        state = {"username": row[0], "role": row[1], "active": row[2], "approved": row[3]}
        await self._cache.write(user_id, state)
        return state
