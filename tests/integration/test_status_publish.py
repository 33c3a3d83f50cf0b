"""A status round on real Redis: every server's key is written, and a status goes to its channel
only when someone listens there; a single change goes out to its channel regardless."""

from __future__ import annotations

import asyncio
import json
import uuid

from redis.asyncio import Redis

from app.servers.domain.ports import ServerRuntime
from app.servers.infrastructure.runtime import STATUS_CHANNEL, STATUS_KEY
from app.servers.infrastructure.supervisor.status import Sampler
from app.shared.bus import MessageBus


async def test_a_round_publishes_only_where_someone_listens(redis_url, settings, clean):
    redis = Redis.from_url(redis_url)
    listener = Redis.from_url(redis_url)
    watched, unwatched = uuid.uuid4(), uuid.uuid4()
    sampler = Sampler(bus=MessageBus(), redis=redis, settings=settings, managed={})
    pubsub = listener.pubsub()
    try:
        await pubsub.subscribe(STATUS_CHANNEL.format(server_id=watched))
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        monitor = await redis.pubsub_numsub(STATUS_CHANNEL.format(server_id=unwatched))
        assert monitor[0][1] == 0

        await sampler._publish_many(
            [
                (watched, ServerRuntime(state="running", pid=11)),
                (unwatched, ServerRuntime(state="running", pid=12)),
            ]
        )

        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None
        assert json.loads(message["data"])["pid"] == 11
        for server_id, pid in ((watched, 11), (unwatched, 12)):
            stored = await redis.get(STATUS_KEY.format(server_id=server_id))
            assert json.loads(stored)["pid"] == pid
            assert await redis.ttl(STATUS_KEY.format(server_id=server_id)) > 0

        await pubsub.subscribe(STATUS_CHANNEL.format(server_id=unwatched))
        await pubsub.get_message(timeout=1)
        await sampler.publish(unwatched, ServerRuntime(state="stopped"))
        single = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert single is not None
        assert json.loads(single["data"])["state"] == "stopped"
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()
        await asyncio.gather(redis.aclose(), listener.aclose())
