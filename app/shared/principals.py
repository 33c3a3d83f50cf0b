"""Open WebSockets follow their principal: they close when its session or user changes, or when
its access token expires.

The users context publishes a notice on one Redis channel whenever it revokes a session or
changes a user (role, status, approval). Every API process listens once, through the PubSubHub,
and re-authenticates only the sockets of that session or user: a notice is a hint to look
again, never trusted by itself, so a forged one can at most cause a re-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from prometheus_client import Counter

from app.shared.domain import DomainError
from app.shared.realtime import PubSubHub, Subscription
from app.shared.security import Principal

log = structlog.get_logger(__name__)

PRINCIPALS_CHANNEL = "auth:principals:changed"
REVOKED, FORBIDDEN, CHECK_FAILED = 4401, 4403, 1011

SOCKETS_ENDED = Counter(
    "mcdash_websocket_revocations_total",
    "WebSockets closed because their session, user or token changed",
    ["code"],
)

# Whether the principal may still hold the socket: None if so, else why not (closes with 4403).
Allows = Callable[[Principal], Awaitable[str | None]]


def session_ended_notice(session_id: uuid.UUID) -> str:
    return json.dumps({"session_id": str(session_id)})


def user_changed_notice(user_id: uuid.UUID) -> str:
    return json.dumps({"user_id": str(user_id)})


class SocketAuthenticator(Protocol):
    async def authenticate(self, access_token: str, *, fresh: bool = False) -> Principal: ...
    def expires_at(self, access_token: str) -> float: ...
    def forget(
        self, *, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None
    ) -> None:
        """Drop what this process remembers of the session or the user (both None: all)."""


class WatchedSocket:
    """One open socket's principal, kept current; `ended` resolves to the close code and reason."""

    def __init__(
        self, authenticator: SocketAuthenticator, principal: Principal, token: str, allows: Allows
    ) -> None:
        self.principal = principal
        self.ended: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._authenticator = authenticator
        self._token = token
        self._allows = allows
        self.expiry: asyncio.TimerHandle | None = None

    def end(self, code: int, reason: str) -> None:
        if not self.ended.done():
            SOCKETS_ENDED.labels(str(code)).inc()
            self.ended.set_result((code, reason))

    async def recheck(self) -> bool:
        """Authenticate the token again, against the current user; False once it must close."""
        if self.ended.done():
            return False
        try:
            principal = await self._authenticator.authenticate(self._token, fresh=True)
            refusal = await self._allows(principal)
        except DomainError as exc:
            self.end(REVOKED, exc.detail[:120])
            return False
        except Exception:
            log.exception("websocket_recheck_failed", user_id=str(self.principal.user_id))
            self.end(CHECK_FAILED, "could not check the session; reconnect")
            return False
        if refusal is not None:
            self.end(FORBIDDEN, refusal[:120])
            return False
        self.principal = principal
        return True


class PrincipalWatch:
    """The open sockets of one API process, by user and by session."""

    def __init__(
        self, hub: PubSubHub, authenticator: SocketAuthenticator, *, queue_size: int = 10_000
    ) -> None:
        self._hub = hub
        self._authenticator = authenticator
        self._queue_size = queue_size
        self._by_user: dict[uuid.UUID, set[WatchedSocket]] = defaultdict(set)
        self._by_session: dict[uuid.UUID, set[WatchedSocket]] = defaultdict(set)
        self._rechecks: set[asyncio.Task[None]] = set()
        self.notices = 0
        """How many notices arrived; a socket opened across one is checked again."""

    def open(
        self, principal: Principal, token: str, *, allows: Allows, notices_before: int
    ) -> WatchedSocket:
        """Watch a socket whose principal was authenticated when `notices` was `notices_before`."""
        socket = WatchedSocket(self._authenticator, principal, token, allows)
        self._by_user[principal.user_id].add(socket)
        self._by_session[principal.session_id].add(socket)
        delay = max(0.0, self._authenticator.expires_at(token) - time.time())
        socket.expiry = asyncio.get_running_loop().call_later(
            delay, socket.end, REVOKED, "the access token has expired"
        )
        if self.notices != notices_before:
            self._recheck([socket])
        return socket

    def close(self, socket: WatchedSocket) -> None:
        if socket.expiry is not None:
            socket.expiry.cancel()
        for index, key in (
            (self._by_user, socket.principal.user_id),
            (self._by_session, socket.principal.session_id),
        ):
            sockets = index.get(key)
            if sockets is not None:
                sockets.discard(socket)
                if not sockets:
                    del index[key]

    def sockets(self) -> int:
        return sum(len(sockets) for sockets in self._by_session.values())

    async def run(self) -> None:
        """Follow the notices; if this process fell behind on them, check every socket.

        Cancelled at shutdown, it leaves its subscription to the hub, which closes them all.
        """
        subscription = await self._subscribe()
        while True:
            data = await subscription.next()
            self.notices += 1
            if data is not None:
                self._recheck(self._affected(data))
                continue
            log.warning("principal_notices_overflowed")
            self._authenticator.forget()
            await self._hub.unsubscribe(subscription, kind="principals")
            subscription = await self._subscribe()
            self._recheck([s for sockets in self._by_session.values() for s in sockets])

    async def _subscribe(self) -> Subscription:
        """Subscribe, retrying while Redis is away; notices may have been missed by then, so
        every socket is checked again."""
        delay = 0.5
        while True:
            try:
                subscription = await self._hub.subscribe(
                    PRINCIPALS_CHANNEL, size=self._queue_size, kind="principals"
                )
            except Exception:
                log.warning("principal_watch_subscribe_failed", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if delay > 0.5:
                self.notices += 1
                self._authenticator.forget()
                self._recheck([s for sockets in self._by_session.values() for s in sockets])
            return subscription

    def _affected(self, data: str) -> list[WatchedSocket]:
        """The sockets a notice concerns; first, the authenticator forgets what it kept of them
        (a forged notice only costs a Redis round trip)."""
        try:
            notice: Any = json.loads(data)
            user_id, session_id = notice.get("user_id"), notice.get("session_id")
            if user_id:
                self._authenticator.forget(user_id=uuid.UUID(user_id))
                return list(self._by_user.get(uuid.UUID(user_id), ()))
            if session_id:
                self._authenticator.forget(session_id=uuid.UUID(session_id))
                return list(self._by_session.get(uuid.UUID(session_id), ()))
        except (ValueError, TypeError, AttributeError):
            log.warning("principal_notice_malformed", data=data[:200])
        return []

    def _recheck(self, sockets: list[WatchedSocket]) -> None:
        """Check one after another: the first load fills the permissions cache for the rest."""
        if not sockets:
            return

        async def check_all() -> None:
            for socket in sockets:
                await socket.recheck()

        task = asyncio.create_task(check_all())
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def aclose(self) -> None:
        for task in tuple(self._rechecks):
            task.cancel()
        for task in tuple(self._rechecks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
