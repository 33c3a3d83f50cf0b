"""The pub/sub hub: every viewer gets every message, and a slow viewer is dropped alone."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from app.shared.realtime import PubSubHub


@pytest.fixture
async def hub(redis_url, clean):
    redis = Redis.from_url(redis_url, decode_responses=True)
    publisher = Redis.from_url(redis_url, decode_responses=True)
    hub = PubSubHub(redis)
    task = asyncio.create_task(hub.run())
    yield hub, publisher
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await publisher.aclose()
    await redis.aclose()


async def wait_for(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_fan_out_and_slow_viewer_dropped(hub):
    hub, publisher = hub
    fast = await hub.subscribe("server:x:console", size=100, kind="console")
    slow = await hub.subscribe("server:x:console", size=3, kind="console")
    other = await hub.subscribe("server:y:console", size=100, kind="console")
    for index in range(10):
        assert await publisher.publish("server:x:console", f"line {index}") == 1
    await wait_for(lambda: fast.queue.qsize() == 10)
    assert [fast.queue.get_nowait() for _ in range(10)] == [f"line {i}" for i in range(10)]
    assert slow.overflowed.is_set()
    assert slow.queue.qsize() == 3
    assert await slow.next() is None, "an overflowed viewer is told to go, whatever it holds"
    await publisher.publish("server:x:console", "line 10")
    assert await asyncio.wait_for(fast.next(), 5) == "line 10"
    assert not fast.overflowed.is_set()
    assert other.queue.empty()


async def test_channel_is_unsubscribed_when_the_last_viewer_leaves(hub):
    hub, publisher = hub
    first = await hub.subscribe("server:z:status", size=10, kind="status")
    second = await hub.subscribe("server:z:status", size=10, kind="status")
    assert (await publisher.pubsub_numsub("server:z:status"))[0][1] == 1, "one connection"
    await hub.unsubscribe(first, kind="status")
    assert (await publisher.pubsub_numsub("server:z:status"))[0][1] == 1
    await hub.unsubscribe(second, kind="status")
    for _ in range(100):  # the UNSUBSCRIBE is sent, not waited for: Redis may count it later
        if (await publisher.pubsub_numsub("server:z:status"))[0][1] == 0:
            break
        await asyncio.sleep(0.05)
    assert (await publisher.pubsub_numsub("server:z:status"))[0][1] == 0
    again = await hub.subscribe("server:z:status", size=10, kind="status")
    await publisher.publish("server:z:status", "{}")
    await wait_for(lambda: again.queue.qsize() == 1)


class Recorder:
    """A live sink: what the hub hands it, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def deliver(self, batch) -> None:
        self.batches.append(list(batch.items))


async def test_a_first_message_goes_at_once_and_those_after_it_as_one_batch(redis_url, clean):
    redis = Redis.from_url(redis_url, decode_responses=True)
    publisher = Redis.from_url(redis_url, decode_responses=True)
    hub = PubSubHub(redis, batch_seconds=0.2)
    task = asyncio.create_task(hub.run())
    try:
        live, other = Recorder(), Recorder()
        queued = await hub.subscribe("server:b:console", size=100, kind="console")
        await hub.attach("server:b:console", live, kind="console")
        await hub.attach("server:c:console", other, kind="console")
        async with publisher.pipeline(transaction=False) as pipe:
            for index in range(5):
                pipe.publish("server:b:console", f"m{index}")
            pipe.publish("server:c:console", "elsewhere")
            await pipe.execute()
        await wait_for(lambda: len(live.batches) == 2 and other.batches)
        assert live.batches == [["m0"], [f"m{index}" for index in range(1, 5)]]
        assert other.batches == [["elsewhere"]]
        assert [queued.queue.get_nowait() for _ in range(5)] == [f"m{i}" for i in range(5)]
        await hub.detach("server:b:console", live, kind="console")
        await publisher.publish("server:b:console", "after")
        assert await asyncio.wait_for(queued.next(), 5) == "after"
        await asyncio.sleep(0.3)  # past the window the message opened
        assert len(live.batches) == 2, "detached: no more"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await publisher.aclose()
        await redis.aclose()
