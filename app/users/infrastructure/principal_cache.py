"""The principals this process authenticated in the last second, by access token.

Authenticating a request asks Redis whether its session was revoked and what the user's role
and status are now. Within `ttl` seconds (1 by default) of that answer a read (GET, HEAD) with
the same token is served from here instead, so a dashboard polling at hundreds of requests a
second costs one Redis round trip a second per token, not one a request. Commands (every other
method) and an open socket's re-checks (before each console command, on a notice) always ask
Redis, and what they learn replaces the entry.

Staleness is bounded and invalidation is immediate where it can be:
- in this process, a logout, a revoked session or a changed user (role, status, approval) drops
  the entries it concerns before the change is announced (RedisSessionRevocations);
- in every other API process, the announcement on `auth:principals:changed` drops them as it
  arrives (PrincipalWatch);
- an announcement that is lost (pub/sub delivers at most once) leaves an entry at most `ttl`
  seconds old: a revoked token or a disabled user is refused within that second.
An authentication that was already asking Redis when an entry was dropped does not store its
(possibly older) answer: every drop moves the epoch on, and an answer is kept only if the epoch
it was asked under is still the current one.
"""

from __future__ import annotations

import time
import uuid

from app.shared.security import Principal

DEFAULT_TTL = 1.0
DEFAULT_SIZE = 10_000


class RecentPrincipals:
    def __init__(self, *, ttl: float = DEFAULT_TTL, size: int = DEFAULT_SIZE) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[str, tuple[Principal, float]] = {}
        self.epoch = 0
        """Moves on at every drop; `put` keeps an answer only if asked in the current epoch."""

    def get(self, token: str) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, until = entry
        if time.monotonic() < until:
            return principal
        del self._entries[token]
        return None

    def put(self, token: str, principal: Principal, *, epoch: int) -> None:
        if epoch != self.epoch:
            return
        if len(self._entries) >= self._size:
            self._evict()
        self._entries[token] = (principal, time.monotonic() + self._ttl)

    def _evict(self) -> None:
        now = time.monotonic()
        for token in [t for t, (_, until) in self._entries.items() if until <= now]:
            del self._entries[token]
        while len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]

    def forget(
        self, *, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None
    ) -> None:
        """Drop the entries of a user or of a session (both None: every entry)."""
        self.epoch += 1
        if user_id is None and session_id is None:
            self._entries.clear()
            return
        doomed = [
            token
            for token, (principal, _) in self._entries.items()
            if principal.user_id == user_id or principal.session_id == session_id
        ]
        for token in doomed:
            del self._entries[token]

    def __len__(self) -> int:
        return len(self._entries)
