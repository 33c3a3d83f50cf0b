"""The admin audit export through the real API: 100,000 rows stream out with flat memory.

The rows are written straight into audit_log with SQL, at negative positions: the projector
tails positions above its checkpoint only, so it neither sees them nor waits on them as gaps,
and the live stack's own rows (the admin's registration and logins) stay as they are.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROWS = 100_000
RSS_GROWTH_LIMIT = 40 * 1024 * 1024

# Widths like the projection's: usernames, a summary of about a hundred characters, a
# details payload of a few hundred bytes, UUIDs and an address.
FILL = f"""
INSERT INTO audit_log (position, event_id, occurred_at, actor_id, actor_username, action,
    resource_type, resource_id, server_id, client_addr, request_id, summary, details)
SELECT -s, gen_random_uuid(), now() - interval '30 days' + s * interval '1 second',
    gen_random_uuid(), 'player' || (s % 500),
    (ARRAY['ConsoleCommandExecuted', 'FileModified', 'ServerStartRequested'])[1 + s % 3],
    'server', gen_random_uuid(), gen_random_uuid(), '10.0.' || (s % 250) || '.' || (s % 200),
    md5(s::text),
    'player' || (s % 500) || ' ran `say the quick brown fox jumps over the lazy dog ' || s
        || '` on survival-' || (s % 40),
    jsonb_build_object('command', 'say the quick brown fox jumps over the lazy dog ' || s,
        'server_id', gen_random_uuid()::text, 'user_id', gen_random_uuid()::text,
        'path', 'plugins/config-' || (s % 97) || '.yml', 'note', repeat('x', 120))
FROM generate_series(1, {ROWS}) AS s
"""


class RssSampler:
    """The API process's resident memory every 50 ms, in a thread of its own."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._process.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def stream(http, fmt: str, until: str, pid: int) -> tuple[int, int, float, int, int]:
    """Lines and bytes of one export, its seconds, and the RSS before it and at its peak."""
    before = psutil.Process(pid).memory_info().rss
    lines = size = 0
    tail = b""
    started = time.perf_counter()
    with RssSampler(pid) as sampler:
        params = {"format": fmt, "until": until}
        async with http.stream("GET", "/api/v2/admin/audit", params=params) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                lines += chunk.count(b"\n")
                tail = (tail + chunk)[-4096:]
    elapsed = time.perf_counter() - started
    assert tail.endswith(b"\n")
    return lines, size, elapsed, before, max([before, *sampler.samples])


async def test_a_hundred_thousand_rows_stream_out_with_flat_memory(dashboard, live_server, db):
    await db.execute(FILL)
    await db.execute("ANALYZE audit_log")
    until = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    pid = live_server.process.pid
    # One small export first, so what a first export loads is not counted as growth.
    warm = await dashboard.http.get(
        "/api/v2/admin/audit", params={"format": "csv", "until": "2000-01-01T00:00:00Z"}
    )
    assert warm.status_code == 200
    assert warm.text.splitlines() == [",".join(next(csv.reader(io.StringIO(warm.text))))]

    for fmt, expected in (("csv", ROWS + 1), ("ndjson", ROWS)):
        lines, size, elapsed, before, peak = await stream(dashboard.http, fmt, until, pid)
        mb = size / 1e6
        print(
            f"\naudit export {fmt}: {lines} lines, {mb:.1f} MB in {elapsed:.2f} s"
            f" ({mb / elapsed:.1f} MB/s), API RSS {before / 2**20:.1f} MiB before,"
            f" {peak / 2**20:.1f} MiB peak (+{(peak - before) / 2**20:.1f} MiB)"
        )
        assert lines == expected, fmt
        assert peak - before < RSS_GROWTH_LIMIT, f"{fmt}: RSS grew {peak - before} bytes"

    # The content is the rows, newest first: spot-check the first and the last.
    first = await dashboard.http.get(
        "/api/v2/admin/audit", params={"format": "json", "until": until, "limit": 1}
    )
    assert first.json()["items"][0]["position"] == -1
    first_line = last_line = ""
    async with dashboard.http.stream(
        "GET", "/api/v2/admin/audit", params={"format": "ndjson", "until": until}
    ) as response:
        async for line in response.aiter_lines():
            first_line, last_line = first_line or line, line or last_line
    assert json.loads(first_line)["position"] == -1
    assert json.loads(last_line)["position"] == -ROWS
    assert json.loads(last_line)["details"]["note"] == "x" * 120
