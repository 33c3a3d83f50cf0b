"""Benchmark: many console WebSocket viewers on one API process, against a real stack.

Run on demand: `.venv/bin/pytest tests/performance/test_websocket_viewers.py -m performance -s
--no-cov -p no:cacheprovider`.
Target: 5,000 WebSocket viewers per API instance - all connected and served every line,
none dropped, API RSS < 256 MB, and (what "served" means here) delivery latency
p99 < 1 s.

One real `mcdash api` process (uvicorn) watches one server's console. No JVM runs: the
benchmark writes console lines the way the supervisor's `ConsoleTail` does (XADD to the console
stream, then PUBLISH the batch on the console channel), so what is measured is the API's
fan-out (`PubSubHub` -> per-viewer queues -> WebSocket sends) and nothing else.

The viewers are deliberately cheap so that the client side, which shares the machine's cores
with the API, costs as little as possible: a minimal WebSocket client on `asyncio.Protocol`
(handshake by hand, frame parsing, pong replies, permessage-deflate like a browser offers it),
spread over a few client processes. Every line carries its publish time
(`time.monotonic()`, a system-wide clock on Linux), so each viewer's receipt is a latency sample.

Knobs (environment): MCDASH_BENCH_VIEWERS (5000), MCDASH_BENCH_CLIENTS (client processes, 3),
MCDASH_BENCH_RATE (lines/s, 5), MCDASH_BENCH_SECONDS (20), MCDASH_BENCH_BATCH (connects in
flight per client process, 50), MCDASH_BENCH_DEFLATE (offer permessage-deflate, 1).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import re
import resource
import time
import zlib
from array import array
from collections import Counter
from typing import Any

import psutil
import pytest
from redis.asyncio import Redis

from app.servers.infrastructure.runtime import CONSOLE_CHANNEL, CONSOLE_STREAM

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

VIEWERS = int(os.environ.get("MCDASH_BENCH_VIEWERS", "5000"))
CLIENTS = int(os.environ.get("MCDASH_BENCH_CLIENTS", "3"))
RATE = float(os.environ.get("MCDASH_BENCH_RATE", "5"))
SECONDS = float(os.environ.get("MCDASH_BENCH_SECONDS", "20"))
BATCH = int(os.environ.get("MCDASH_BENCH_BATCH", "50"))
DEFLATE = os.environ.get("MCDASH_BENCH_DEFLATE", "1") != "0"
RSS_TARGET_MB = 256
LATENCY_P99_TARGET_S = 1.0  # "served": a console line reaches every viewer within a second
BACKLOG_LINES = 100
CONNECT_TIMEOUT = float(os.environ.get("MCDASH_BENCH_CONNECT_TIMEOUT", "60"))
DRAIN_TIMEOUT = 120.0

MARK = re.compile(rb"mcbench (\d+) (\d+\.\d+)")
DEFLATE_BITS = re.compile(r"server_max_window_bits=(\d+)")


def raise_nofile() -> tuple[int, int]:
    """Lift the soft limit on open files to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def percentile(ordered: list[float], pct: float) -> float:
    """`ordered` is sorted."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# --- the client side: a minimal WebSocket viewer ------------------------------------------------


class Viewer(asyncio.Protocol):
    """One console viewer: handshake, then frames; counts every benchmark line it receives."""

    def __init__(self, cfg: dict[str, Any], latencies: array[float]) -> None:
        self.cfg = cfg
        self.latencies = latencies
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.served: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inflater: Any = None
        self.fragments: list[bytes] = []
        self.fragment_compressed = False
        self.seen = bytearray(cfg["lines"])
        self.got = 0
        self.close_code: int | None = None
        self.failure: str | None = None
        self.leaving = False

    async def open(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(lambda: self, self.cfg["host"], self.cfg["port"])
                await self.served
        except Exception as exc:
            self.failure = self.failure or type(exc).__name__
            if os.environ.get("MCDASH_BENCH_DEBUG"):
                self.failure += f" upgraded={self.upgraded} buffer={bytes(self.buffer[:300])!r}"
            if self.transport is not None:
                self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] - uvloop's is no asyncio.Transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.cfg['path']} HTTP/1.1",
            f"Host: {self.cfg['host']}:{self.cfg['port']}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Protocol: bearer, {self.cfg['token']}",
        ]
        if self.cfg["deflate"]:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            status = head[0].split(" ", 2)
            if len(status) < 2 or status[1] != "101":
                self._fail(f"http {status[1] if len(status) > 1 else '?'}")
                return
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])
            }
            extensions = headers.get("sec-websocket-extensions", "")
            if "permessage-deflate" in extensions:
                bits = DEFLATE_BITS.search(extensions)
                self.inflater = zlib.decompressobj(-int(bits.group(1)) if bits else -15)
            self.upgraded = True
        self._frames(time.monotonic())

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + length:
                break
            payload = bytes(buffer[pos + head : pos + head + length])
            pos += head + length
            self._frame(first, payload, now)
            if self.transport is None or self.transport.is_closing():
                break
        del buffer[:pos]

    def _frame(self, first: int, payload: bytes, now: float) -> None:
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode in (1, 2):
            self.fragments = [payload]
            self.fragment_compressed = bool(first & 0x40)
        elif opcode == 0:
            self.fragments.append(payload)
        elif opcode == 8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._send(8, payload[:2])
            self._finish()
            return
        elif opcode == 9:
            self._send(10, payload)
            return
        else:
            return
        if not fin:
            return
        message = b"".join(self.fragments)
        self.fragments = []
        if self.fragment_compressed:
            message = self.inflater.decompress(message + b"\x00\x00\xff\xff")
        self._message(message, now)

    def _message(self, message: bytes, now: float) -> None:
        if not self.served.done():
            self.served.set_result(None)
        for match in MARK.finditer(message):
            seq = int(match.group(1))
            if seq < len(self.seen) and not self.seen[seq]:
                self.seen[seq] = 1
                self.got += 1
                self.latencies.append(now - float(match.group(2)))

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self._finish()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None and not self.leaving:
            self.close_code = 1006
        if not self.served.done():
            self.served.set_exception(ConnectionError(f"closed {self.close_code}"))

    def leave(self) -> None:
        self.leaving = True
        if self.transport is not None:
            self.transport.abort()


async def _client(conn: Any, cfg: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    latencies: array[float] = array("d")
    viewers: list[Viewer] = []
    started = time.monotonic()
    for offset in range(0, cfg["count"], cfg["batch"]):
        group = [Viewer(cfg, latencies) for _ in range(min(cfg["batch"], cfg["count"] - offset))]
        await asyncio.gather(*(viewer.open(loop) for viewer in group))
        viewers.extend(group)
    served = [v for v in viewers if v.failure is None and v.close_code is None]
    conn.send(
        {
            "served": len(served),
            "connect_s": time.monotonic() - started,
            "deflated": sum(1 for v in served if v.inflater is not None),
            "failures": Counter(
                v.failure or f"closed {v.close_code}" for v in viewers if v.failure or v.close_code
            ),
        }
    )
    while True:
        request = await asyncio.to_thread(conn.recv)
        closed = Counter(v.close_code for v in served if v.close_code is not None)
        if request == "progress":
            conn.send({"got": sum(v.got for v in served), "closed": sum(closed.values())})
            continue
        conn.send(
            {
                "complete": sum(1 for v in served if v.got == cfg["lines"]),
                "got": sum(v.got for v in served),
                "closed": closed,
                "latencies": latencies.tobytes(),
            }
        )
        break
    for viewer in viewers:
        viewer.leave()
    await asyncio.sleep(0.2)


def client_main(conn: Any, cfg: dict[str, Any]) -> None:
    """Entry point of one client process (spawned): opens its share of viewers, reports back."""
    raise_nofile()
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    asyncio.run(_client(conn, cfg), loop_factory=factory)


# --- the API side: publishing console lines, sampling the API process ------------------------


async def publish(redis: Redis, server_id: str, text: str) -> None:
    """What the supervisor's ConsoleTail does for a batch of one line."""
    at = time.time()
    entry = await redis.xadd(
        CONSOLE_STREAM.format(server_id=server_id),
        {"line": text, "at": f"{at:.3f}"},
        maxlen=10000,
        approximate=True,
    )
    payload = [{"id": entry, "line": text, "at": at}]
    await redis.publish(CONSOLE_CHANNEL.format(server_id=server_id), json.dumps(payload))


class Sampler:
    """Peak RSS and CPU time of the API process while it runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def rss_mb(self) -> float:
        rss = self.process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss / 2**20

    def cpu_s(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    async def _run(self) -> None:
        while True:
            self.rss_mb()
            await asyncio.sleep(0.5)

    def __enter__(self) -> Sampler:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def clients_cpu(processes: list[Any]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
    return total


@pytest.fixture
def stack_env(stack_env):
    """Raise the open-files limit before the API process is spawned, so it inherits it."""
    soft, hard = raise_nofile()
    assert soft >= VIEWERS + 1000, f"RLIMIT_NOFILE {soft} (hard {hard}) is too low for {VIEWERS}"
    return {
        **stack_env,
        "MCDASH_LOG_LEVEL": "WARNING",
        "MCDASH_ACCESS_TOKEN_TTL_SECONDS": "3600",
        "MCDASH_CONSOLE_BACKLOG_LINES": str(BACKLOG_LINES),
    }


async def _ask(conns: list[Any], message: Any) -> list[Any]:
    for conn in conns:
        conn.send(message)
    return [await asyncio.to_thread(conn.recv) for conn in conns]


async def test_websocket_viewers(dashboard, live_server, stack_env):
    created = await dashboard.http.post(
        "/api/v2/servers/",
        json={
            "name": "watched",
            "server_type": "custom",
            "version": "1.20.4",
            "memory_mb": 512,
            "eula_accepted": True,
        },
    )
    assert created.status_code == 201, created.text
    server_id = created.json()["id"]
    lines = round(RATE * SECONDS)
    redis = Redis.from_url(stack_env["MCDASH_REDIS_URL"], decode_responses=True)
    for index in range(BACKLOG_LINES):
        await publish(redis, server_id, f"[12:00:00] [Server thread/INFO]: history line {index}")

    sampler = Sampler(live_server.process.pid)
    rss_idle = sampler.rss_mb()
    port = int(live_server.url.rsplit(":", 1)[1])
    context = multiprocessing.get_context("spawn")
    conns: list[Any] = []
    processes = []
    shares = [VIEWERS // CLIENTS + (1 if i < VIEWERS % CLIENTS else 0) for i in range(CLIENTS)]
    started = time.monotonic()
    for share in shares:
        parent, child = context.Pipe()
        cfg = {
            "host": "127.0.0.1",
            "port": port,
            "path": f"/ws/servers/{server_id}/console",
            "token": dashboard.token,
            "count": share,
            "batch": BATCH,
            "deflate": DEFLATE,
            "lines": lines,
        }
        process = context.Process(target=client_main, args=(child, cfg), daemon=True)
        process.start()
        conns.append(parent)
        processes.append(process)
    try:
        with sampler:
            opened = [await asyncio.to_thread(conn.recv) for conn in conns]
            connect_s = time.monotonic() - started
            served = sum(o["served"] for o in opened)
            deflated = sum(o["deflated"] for o in opened)
            failures = sum((o["failures"] for o in opened), Counter())
            await asyncio.sleep(2)
            rss_connected = sampler.rss_mb()

            cpu_before = sampler.cpu_s()
            clients_cpu_before = clients_cpu(processes)
            publish_started = time.monotonic()
            for seq in range(lines):
                delay = publish_started + seq / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                stamp = time.monotonic()
                await publish(
                    redis, server_id, f"[12:00:01] [Server thread/INFO]: mcbench {seq} {stamp:.6f}"
                )
            published_s = time.monotonic() - publish_started
            publish_ended = time.monotonic()

            expected = served * lines
            got, last_progress = 0, time.monotonic()
            while time.monotonic() - publish_ended < DRAIN_TIMEOUT:
                progress = await _ask(conns, "progress")
                now_got = sum(p["got"] for p in progress)
                if now_got >= expected:
                    got = now_got
                    break
                if now_got > got:
                    got, last_progress = now_got, time.monotonic()
                elif time.monotonic() - last_progress > 10:
                    break
                await asyncio.sleep(0.5)
            drain_s = time.monotonic() - publish_ended
            cpu_s = sampler.cpu_s() - cpu_before
            client_cpu_s = clients_cpu(processes) - clients_cpu_before
            busy_s = time.monotonic() - publish_started
            rss_after = sampler.rss_mb()
            results = await _ask(conns, "finish")
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        await redis.aclose()

    latencies: array[float] = array("d")
    for result in results:
        latencies.frombytes(result["latencies"])
    ordered = sorted(latencies)
    complete = sum(r["complete"] for r in results)
    closed = sum((r["closed"] for r in results), Counter())
    delivered = sum(r["got"] for r in results)
    rss_peak = sampler.peak / 2**20
    figures = [
        ("viewers wanted / served", f"{VIEWERS} / {served}"),
        ("connect failures", dict(failures) or "none"),
        ("client processes, connects in flight each", f"{CLIENTS}, {BATCH}"),
        ("permessage-deflate offered / negotiated", f"{DEFLATE} / {deflated} viewers"),
        ("time to connect all (incl. backlog)", f"{connect_s:.1f} s ({served / connect_s:.0f}/s)"),
        (
            "API RSS idle / connected / after / peak",
            f"{rss_idle:.0f} / {rss_connected:.0f} / {rss_after:.0f} / {rss_peak:.0f} MB",
        ),
        ("RSS per viewer", f"{(rss_connected - rss_idle) * 1024 / max(served, 1):.1f} KB"),
        (
            "lines published, rate",
            f"{lines} in {published_s:.1f} s ({(lines - 1) / published_s:.1f}/s)",
        ),
        ("drain after last publish", f"{drain_s:.1f} s"),
        (
            "API CPU while publishing+draining",
            f"{cpu_s:.1f} s in {busy_s:.1f} s ({cpu_s / busy_s:.0%} of a core)",
        ),
        (
            "client processes' CPU meanwhile",
            f"{client_cpu_s:.1f} s ({client_cpu_s / busy_s:.0%} of a core)",
        ),
        (
            "deliveries",
            f"{delivered} of {served * lines} ({delivered / max(served * lines, 1):.2%})",
        ),
        (
            "latency p50 / p95 / p99 / max",
            " / ".join(f"{percentile(ordered, p) * 1000:.0f}" for p in (50, 95, 99, 100)) + " ms",
        ),
        ("viewers with every line", f"{complete} of {served} ({complete / max(served, 1):.2%})"),
        ("viewers closed (by code)", dict(closed) or "none"),
    ]
    width = max(len(name) for name, _ in figures)
    print(
        f"\nWebSocket viewers on one API process ({VIEWERS} wanted, {RATE:g} lines/s for {SECONDS:g} s)"
    )
    for name, value in figures:
        print(f"  {name:<{width}}  {value}")

    assert served == VIEWERS, f"only {served} of {VIEWERS} viewers connected: {dict(failures)}"
    assert not closed, f"viewers were closed: {dict(closed)}"
    assert complete == served, f"only {complete} of {served} viewers received every line"
    assert rss_peak < RSS_TARGET_MB, f"API RSS peaked at {rss_peak:.0f} MB"
    p99 = percentile(ordered, 99)
    assert p99 < LATENCY_P99_TARGET_S, f"delivery latency p99 {p99 * 1000:.0f} ms"
