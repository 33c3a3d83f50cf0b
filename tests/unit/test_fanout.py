"""Live feeds of WebSocket viewers: encoded once per batch, pushed in order, slow ones dropped."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest

from app.servers.api.websockets import _after, console_messages, status_messages
from app.shared.fanout import QueuedWire, SharedText, Viewer
from app.shared.realtime import Batch


def published(*lines: str, start: int = 0) -> str:
    """What ConsoleTail publishes: a JSON array of entries."""
    return json.dumps(
        [{"id": f"1-{start + n}", "line": line, "at": 1.0} for n, line in enumerate(lines)]
    )


class FakeWire:
    def __init__(self, room: int = 1000) -> None:
        self.sent: list[str] = []
        self.room = room
        self.dropped: tuple[int, str] | None = None

    def push(self, message: SharedText, *, limit: int) -> bool:
        if len(self.sent) >= self.room:
            return False
        self.sent.append(message.text)
        return True

    def drop(self, code: int, reason: str) -> None:
        self.dropped = (code, reason)

    def lines(self) -> list[str]:
        return [line["line"] for text in self.sent for line in json.loads(text)["lines"]]


def test_a_batch_of_published_arrays_is_one_lines_message_in_order():
    items = [published("a", "b"), "[]", published("c", start=2), " [ ] "]
    (message,) = console_messages(items)
    decoded = json.loads(message.text)
    assert decoded["type"] == "lines"
    assert [line["line"] for line in decoded["lines"]] == ["a", "b", "c"]
    assert console_messages(["[]"]) == ()


def test_status_messages_stay_one_a_status():
    texts = [m.text for m in status_messages(['{"state":"running"}', '{"state":"stopping"}'])]
    assert [json.loads(t)["data"]["state"] for t in texts] == ["running", "stopping"]


def test_a_batch_is_encoded_once_for_every_viewer():
    calls = []

    def encode(items):
        calls.append(items)
        return (SharedText("x"),)

    batch = Batch(["[]"])
    assert batch.encoded(encode) is batch.encoded(encode)
    assert len(calls) == 1


def test_shared_frames_are_built_once_per_variant_and_read_back():
    message = SharedText('{"type":"lines","lines":[]}' * 20)
    plain = message.frame(None)
    assert plain is message.frame(None)
    assert plain[0] == 0x81
    assert plain.endswith(message.text.encode())
    deflated = message.frame(12)
    assert deflated is message.frame(12)
    assert deflated[0] == 0xC1, "FIN, RSV1 (compressed), text"
    length = deflated[1]
    body = deflated[2:] if length < 126 else deflated[4:]
    inflated = zlib.decompressobj(-12).decompress(body + b"\x00\x00\xff\xff")
    assert inflated.decode() == message.text
    assert len(deflated) < len(plain)


async def test_a_viewer_is_held_until_live_then_gets_everything_in_order():
    wire = FakeWire()
    viewer = Viewer(wire, console_messages, limit=10)
    viewer.deliver(Batch([published("held 1", start=0)]))
    viewer.deliver(Batch([published("held 2", start=1)]))
    assert wire.sent == []
    viewer.go_live()
    viewer.deliver(Batch([published("live 3", start=2), published("live 4", start=3)]))
    assert wire.lines() == ["held 1", "held 2", "live 3", "live 4"]
    assert len(wire.sent) == 3, "the two live arrays went as one message"


async def test_live_lines_the_backlog_showed_are_skipped_once():
    wire = FakeWire()
    viewer = Viewer(wire, console_messages, limit=10)
    viewer.deliver(Batch([published("seen 0", "seen 1", start=0)]))
    viewer.deliver(Batch([published("seen 2", "new 3", start=2)]))
    viewer.go_live(_after((1, 2)))
    shared = Batch([published("new 4", start=4)])
    viewer.deliver(shared)
    assert wire.lines() == ["new 3", "new 4"]
    other = FakeWire()
    late = Viewer(other, console_messages, limit=10)
    late.go_live()
    late.deliver(shared)
    assert wire.sent[-1] is other.sent[-1], "past the overlap, viewers share one encoding"


async def test_a_viewer_falling_behind_is_dropped_with_4008_alone():
    slow, fast = FakeWire(room=2), FakeWire()
    viewers = [Viewer(slow, console_messages, limit=10), Viewer(fast, console_messages, limit=10)]
    for viewer in viewers:
        viewer.go_live()
    for n in range(5):
        for viewer in viewers:
            viewer.deliver(Batch([published(f"line {n}", start=n)]))
    assert slow.dropped is not None
    assert slow.dropped[0] == 4008
    assert viewers[0].ended.result()[0] == 4008
    assert len(slow.sent) == 2
    assert fast.lines() == [f"line {n}" for n in range(5)]
    assert not viewers[1].ended.done()


async def test_a_viewer_holding_too_much_before_going_live_is_dropped():
    wire = FakeWire()
    viewer = Viewer(wire, console_messages, limit=3)
    for n in range(4):
        viewer.deliver(Batch([published(f"line {n}", start=n)]))
    assert viewer.ended.done()
    assert wire.dropped is not None
    viewer.go_live()
    assert wire.sent == []


class FakeWebSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(text)


async def test_the_queued_wire_sends_in_order_and_refuses_past_its_limit():
    websocket = FakeWebSocket()
    wire = QueuedWire(websocket)  # type: ignore[arg-type]
    try:
        assert all(wire.push(SharedText(str(n)), limit=3) for n in range(3))
        await asyncio.sleep(0)
        assert wire.push(SharedText("3"), limit=3), "one is being sent: room for one more"
        assert not wire.push(SharedText("4"), limit=3)
        websocket.gate.set()
        async with asyncio.timeout(5):
            while len(websocket.sent) < 4:
                await asyncio.sleep(0.01)
        assert websocket.sent == ["0", "1", "2", "3"]
    finally:
        wire.stop()


@pytest.mark.parametrize("skipped", [0, 1])
async def test_a_backlog_that_covers_a_whole_batch_skips_it(skipped):
    wire = FakeWire()
    viewer = Viewer(wire, console_messages, limit=10)
    viewer.go_live(_after((1, 1 + skipped)))
    viewer.deliver(Batch([published("old 0", "old 1", start=0)]))
    viewer.deliver(Batch([published("2", "3", start=2)]))
    assert wire.lines() == ["2", "3"][skipped:]
