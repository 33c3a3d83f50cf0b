"""Benchmark: 5,000 console WebSocket viewers on one API process, against a real stack.

Run on demand: `.venv/bin/pytest tests/performance/test_websocket_viewers.py -m performance -s
--no-cov -p no:cacheprovider`.
Two runs, each on a fresh stack: 5,000 viewers of one server, and 5,000 spread over 100 servers
(50 each), every server printing 5 lines/s. Targets (issue 13): every line reaches every viewer
in order, none is dropped, delivery latency p99 < 100 ms, API RSS < 256 MB, and the API under
60% of a core while the lines are published and drained.

One real `mcdash api` process (uvicorn) watches the servers' consoles. No worker or JVM runs:
the servers sit on a stand-in node record, and the benchmark writes console lines the way the
supervisor's `ConsoleTail` does (XADD to the console stream, then PUBLISH the batch on the
console channel), so what is measured is the API's fan-out (`PubSubHub` -> `Viewer` ->
`FanoutWebSocketProtocol.push`) and nothing else.

The viewers are deliberately cheap so that the client side, which shares the machine's cores
with the API, costs as little as possible: a minimal WebSocket client on `asyncio.Protocol`
(handshake by hand, frame parsing, pong replies, permessage-deflate like a browser offers it),
spread over a few client processes. Every line carries its publish time
(`time.monotonic()`, a system-wide clock on Linux), so each viewer's receipt is a latency sample:
it includes the client processes' own time to read it, and on a loaded box their wait for a core.

Knobs (environment): MCDASH_BENCH_VIEWERS (5000), MCDASH_BENCH_SERVERS (the spread run's, 100),
MCDASH_BENCH_CLIENTS (client processes, 3), MCDASH_BENCH_RATE (lines/s a server, 5),
MCDASH_BENCH_SECONDS (20), MCDASH_BENCH_BATCH (connects in flight per client process, 50),
MCDASH_BENCH_DEFLATE (offer permessage-deflate, 1), MCDASH_BENCH_BACKLOG (lines, 100).
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
from app.shared.nodes import NODE_NAMES, node_key

pytestmark = [pytest.mark.performance, pytest.mark.e2e]

VIEWERS = int(os.environ.get("MCDASH_BENCH_VIEWERS", "5000"))
CLIENTS = int(os.environ.get("MCDASH_BENCH_CLIENTS", "3"))
RATE = float(os.environ.get("MCDASH_BENCH_RATE", "5"))
SECONDS = float(os.environ.get("MCDASH_BENCH_SECONDS", "20"))
BATCH = int(os.environ.get("MCDASH_BENCH_BATCH", "50"))
DEFLATE = os.environ.get("MCDASH_BENCH_DEFLATE", "1") != "0"
SPREAD_SERVERS = int(os.environ.get("MCDASH_BENCH_SERVERS", "100"))
RSS_TARGET_MB = 256
LATENCY_P99_TARGET_S = 0.1
CPU_TARGET = 0.6  # of one core, while publishing and draining
BACKLOG_LINES = int(os.environ.get("MCDASH_BENCH_BACKLOG", "100"))
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

    def __init__(self, cfg: dict[str, Any], path: str, latencies: array[float]) -> None:
        self.cfg = cfg
        self.path = path
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
            f"GET {self.path} HTTP/1.1",
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
    paths = cfg["paths"]
    for offset in range(0, len(paths), cfg["batch"]):
        group = [Viewer(cfg, path, latencies) for path in paths[offset : offset + cfg["batch"]]]
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


async def _create_servers(dashboard: Any, redis: Redis, count: int) -> list[str]:
    """Servers on a stand-in node record: no worker runs, the benchmark writes their consoles."""
    await redis.hset(node_key("bench"), mapping={"host": "127.0.0.1", "last_seen": time.time()})
    await redis.sadd(NODE_NAMES, "bench")
    await redis.expire(node_key("bench"), 3600)
    ids = []
    for index in range(count):
        created = await dashboard.http.post(
            "/api/v2/servers/",
            json={
                "name": f"watched-{index:03d}",
                "server_type": "custom",
                "version": "1.20.4",
                "memory_mb": 512,
                "eula_accepted": True,
            },
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    for server_id in ids:
        for index in range(BACKLOG_LINES):
            await publish(redis, server_id, f"[12:00:00] [Server thread/INFO]: history {index}")
    return ids


async def _publish_lines(redis: Redis, server_ids: list[str], lines: int) -> float:
    """`lines` to each server at RATE a second, the servers' lines spread over each interval."""
    started = time.monotonic()
    step = 1 / (RATE * len(server_ids))
    for seq in range(lines):
        for index, server_id in enumerate(server_ids):
            delay = started + seq / RATE + index * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = time.monotonic()
            text = f"[12:00:01] [Server thread/INFO]: mcbench {seq} {stamp:.6f}"
            await publish(redis, server_id, text)
    return time.monotonic() - started


async def _run(dashboard: Any, live_server: Any, stack_env: dict[str, str], servers: int) -> dict:
    """VIEWERS viewers spread evenly over `servers` servers; every figure of one run."""
    redis = Redis.from_url(stack_env["MCDASH_REDIS_URL"], decode_responses=True)
    server_ids = await _create_servers(dashboard, redis, servers)
    lines = round(RATE * SECONDS)
    paths = [f"/ws/servers/{server_ids[n % servers]}/console" for n in range(VIEWERS)]

    sampler = Sampler(live_server.process.pid)
    rss_idle = sampler.rss_mb()
    port = int(live_server.url.rsplit(":", 1)[1])
    context = multiprocessing.get_context("spawn")
    conns: list[Any] = []
    processes = []
    started = time.monotonic()
    for client in range(CLIENTS):
        parent, child = context.Pipe()
        cfg = {
            "host": "127.0.0.1",
            "port": port,
            "paths": paths[client::CLIENTS],
            "token": dashboard.token,
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
            published_s = await _publish_lines(redis, server_ids, lines)
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
    served = served or 1
    return {
        "servers": servers,
        "served": served,
        "failures": failures,
        "deflated": deflated,
        "connect_s": connect_s,
        "rss": (rss_idle, rss_connected, rss_after, sampler.peak / 2**20),
        "lines": lines,
        "published_s": published_s,
        "drain_s": drain_s,
        "cpu": cpu_s / busy_s,
        "clients_cpu": client_cpu_s / busy_s,
        "busy_s": busy_s,
        "delivered": sum(r["got"] for r in results),
        "expected": served * lines,
        "latency": [percentile(ordered, p) for p in (50, 95, 99, 100)],
        "complete": sum(r["complete"] for r in results),
        "closed": sum((r["closed"] for r in results), Counter()),
        "load": os.getloadavg()[0],
    }


def _report(run: dict) -> None:
    idle, connected, after, peak = run["rss"]
    p50, p95, p99, worst = (f"{v * 1000:.0f}" for v in run["latency"])
    figures = [
        ("viewers wanted / served", f"{VIEWERS} / {run['served']}"),
        ("servers watched (viewers each)", f"{run['servers']} ({VIEWERS // run['servers']})"),
        ("connect failures", dict(run["failures"]) or "none"),
        ("client processes, connects in flight each", f"{CLIENTS}, {BATCH}"),
        ("permessage-deflate offered / negotiated", f"{DEFLATE} / {run['deflated']} viewers"),
        ("time to connect all (incl. backlog)", f"{run['connect_s']:.1f} s"),
        (
            "API RSS idle / connected / after / peak",
            f"{idle:.0f} / {connected:.0f} / {after:.0f} / {peak:.0f} MB",
        ),
        ("RSS per viewer", f"{(connected - idle) * 1024 / run['served']:.1f} KB"),
        (
            "lines published a server, rate",
            f"{run['lines']} in {run['published_s']:.1f} s ({RATE:g}/s)",
        ),
        ("drain after last publish", f"{run['drain_s']:.1f} s"),
        ("API CPU while publishing+draining", f"{run['cpu']:.0%} of a core"),
        ("client processes' CPU meanwhile", f"{run['clients_cpu']:.0%} of a core"),
        (
            "deliveries",
            f"{run['delivered']} of {run['expected']} ({run['delivered'] / run['expected']:.2%})",
        ),
        ("latency p50 / p95 / p99 / max", f"{p50} / {p95} / {p99} / {worst} ms"),
        ("viewers with every line", f"{run['complete']} of {run['served']}"),
        ("viewers closed (by code)", dict(run["closed"]) or "none"),
        ("load average (1 min) at the end", f"{run['load']:.1f}"),
    ]
    width = max(len(name) for name, _ in figures)
    print(
        f"\n{VIEWERS} console viewers on one API process, {run['servers']} server(s), {RATE:g} lines/s each"
    )
    for name, value in figures:
        print(f"  {name:<{width}}  {value}")
    print(
        f"  | viewers | servers | p50 | p99 | API CPU | RSS peak | delivered |\n"
        f"  | {run['served']} | {run['servers']} | {p50} ms | {p99} ms | {run['cpu']:.0%} "
        f"| {peak:.0f} MB | {run['delivered']}/{run['expected']} |"
    )


def _assert_targets(run: dict) -> None:
    """Every target checked, every miss named at once."""
    peak, p99 = run["rss"][3], run["latency"][2]
    missed = []
    if run["served"] != VIEWERS:
        missed.append(f"only {run['served']} of {VIEWERS} connected: {dict(run['failures'])}")
    if run["closed"]:
        missed.append(f"viewers were closed: {dict(run['closed'])}")
    if run["delivered"] != run["expected"] or run["complete"] != run["served"]:
        missed.append(f"{run['complete']} of {run['served']} viewers got every line")
    if peak >= RSS_TARGET_MB:
        missed.append(f"API RSS peaked at {peak:.0f} MB (target < {RSS_TARGET_MB})")
    if p99 >= LATENCY_P99_TARGET_S:
        missed.append(
            f"latency p99 {p99 * 1000:.0f} ms (target < {LATENCY_P99_TARGET_S * 1000:.0f})"
        )
    if run["cpu"] >= CPU_TARGET:
        missed.append(f"API CPU {run['cpu']:.0%} of a core (target < {CPU_TARGET:.0%})")
    assert not missed, "; ".join(missed)


async def test_websocket_viewers_of_one_server(dashboard, live_server, stack_env):
    run = await _run(dashboard, live_server, stack_env, servers=1)
    _report(run)
    _assert_targets(run)


async def test_websocket_viewers_spread_over_100_servers(dashboard, live_server, stack_env):
    run = await _run(dashboard, live_server, stack_env, servers=SPREAD_SERVERS)
    _report(run)
    _assert_targets(run)
