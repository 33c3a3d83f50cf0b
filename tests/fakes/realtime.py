"""Stand-ins for the realtime plumbing of WebSockets: pub/sub and token authentication."""

from __future__ import annotations

import time
import uuid

from app.shared.realtime import Subscription
from app.shared.security import Principal


class FakePubSubHub:
    """The PubSubHub's interface over plain subscriptions: a test offers messages itself."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self.failing_subscribes = 0

    async def subscribe(self, channel: str, *, size: int, kind: str) -> Subscription:
        if self.failing_subscribes:
            self.failing_subscribes -= 1
            raise ConnectionError("redis is away")
        subscription = Subscription(channel, size)
        self.subscriptions.append(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription, *, kind: str) -> None:
        self.subscriptions.remove(subscription)

    def publish(self, data: str) -> None:
        for subscription in self.subscriptions:
            subscription.offer(data)


class FakeSocketAuthenticator:
    """Tokens mapped to who they are now: a Principal, or the DomainError authenticating raises."""

    def __init__(self, *, ttl: float = 900.0) -> None:
        self.current: dict[str, Principal | Exception] = {}
        self.calls: list[str] = []
        self.forgotten: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
        self.ttl = ttl

    async def authenticate(self, access_token: str, *, fresh: bool = False) -> Principal:
        self.calls.append(access_token)
        outcome = self.current[access_token]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def expires_at(self, access_token: str) -> float:
        return time.time() + self.ttl

    def forget(
        self, *, user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None
    ) -> None:
        self.forgotten.append((user_id, session_id))
