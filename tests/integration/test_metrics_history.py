"""Metrics history against real PostgreSQL: batched writes, rollups, retention and the routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from app.main import create_app
from app.monitoring.domain.metrics import MetricRecorded, NodeSample
from app.monitoring.infrastructure.metrics_store import MetricsStore
from tests.agent import in_process
from tests.conftest import admin_owner_other
from tests.integration.test_auth_api import assert_problem

HOUR_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
async def api(settings, clean):
    app = create_app(settings)
    async with in_process(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users, _ = await admin_owner_other(http)
            yield http, app, users


async def create_server(http, headers) -> str:
    body = {"name": "lobby", "server_type": "custom", "version": "1.20.4", "memory_mb": 512}
    created = await http.post("/api/v2/servers/", headers=headers, json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def sample(server_id: uuid.UUID, at: float, cpu: float, *, players: int = 2) -> MetricRecorded:
    return MetricRecorded(
        server_id=server_id,
        name="lobby",
        node="local",
        at=at,
        state="running",
        samples=2,
        cpu_percent=cpu,
        cpu_percent_max=cpu + 10,
        rss_bytes=1000 + int(cpu),
        rss_bytes_max=2000,
        players_online=players,
        players_max=players,
        disk_bytes=4096,
        tick_ms=5.0,
        tick_ms_max=9.0,
        tps=20.0,
    )


def node_sample(at: float) -> NodeSample:
    return NodeSample(
        node="local",
        at=at,
        cpu_percent=50.0,
        memory_used_bytes=10,
        memory_total_bytes=100,
        disk_used_bytes=20,
        disk_total_bytes=200,
        servers_running=1,
    )


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def fill(app, server_id: uuid.UUID) -> MetricsStore:
    """Ten minutes of raw samples every 10 s: cpu counts 0, 1, 2, ... (60 rows)."""
    store = MetricsStore(app.state.container.infra.engine)
    for index in range(60):
        at = HOUR_START + index * 10
        await store.write([sample(server_id, at, float(index))], node_sample(at))
    return store


async def test_raw_minute_and_hour_series(api, db):
    http, app, users = api
    sid = await create_server(http, users["owner"])
    store = await fill(app, uuid.UUID(sid))
    url = f"/api/v2/servers/{sid}/metrics"
    window = {"from": iso(HOUR_START), "to": iso(HOUR_START + 600)}

    raw = await http.get(url, headers=users["owner"], params={**window, "step": 10})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert (body["step"], body["resolution"]) == (10, 0)
    assert body["times"][:2] == [HOUR_START, HOUR_START + 10]
    assert body["series"]["cpu_percent"][:3] == [0.0, 1.0, 2.0]
    assert len(body["times"]) == 60
    assert set(body["series"]) >= {"cpu_percent", "rss_bytes", "players_online", "disk_bytes"}

    bucketed = (await http.get(url, headers=users["owner"], params={**window, "step": 30})).json()
    assert bucketed["series"]["cpu_percent"][:2] == [1.0, 4.0]  # means of 0,1,2 and 3,4,5

    await store.roll_up(now=HOUR_START + 700)
    await store.roll_up(now=HOUR_START + 700)  # idempotent: the same rows again
    minutes = await db.fetch(
        "SELECT at, samples, cpu_percent, cpu_percent_max FROM server_metrics "
        "WHERE resolution = 60 ORDER BY at"
    )
    assert [row["samples"] for row in minutes] == [12] * 10
    assert minutes[0]["cpu_percent"] == pytest.approx(2.5)
    assert minutes[0]["cpu_percent_max"] == 15.0
    by_minute = (await http.get(url, headers=users["owner"], params={**window, "step": 60})).json()
    assert by_minute["resolution"] == 60
    assert by_minute["series"]["cpu_percent"][0] == pytest.approx(2.5)
    assert len(by_minute["times"]) == 10
    hourly = await http.get(
        url,
        headers=users["owner"],
        params={"from": iso(HOUR_START), "to": iso(HOUR_START + 86400), "step": 3600},
    )
    assert hourly.json()["resolution"] == 3600
    assert hourly.json()["series"]["cpu_percent"] == [pytest.approx(29.5)]
    assert await db.fetchval("SELECT samples FROM server_metrics WHERE resolution = 3600") == 120
    nodes = await db.fetchval("SELECT count(*) FROM node_metrics WHERE resolution = 60")
    assert nodes == 10

    admin_view = await http.get(url, headers=users["admin"], params={**window, "step": 10})
    assert admin_view.status_code == 200


async def test_retention_deletes_each_level_past_its_age(api, db):
    http, app, users = api
    sid = await create_server(http, users["owner"])
    store = await fill(app, uuid.UUID(sid))
    await store.roll_up(now=HOUR_START + 700)
    deleted = await store.expire({0: HOUR_START + 300, 60: HOUR_START, 3600: HOUR_START})
    assert deleted == 30 + 30  # half the raw server rows and half the raw node rows
    assert await db.fetchval("SELECT min(at) FROM server_metrics WHERE resolution = 0") == (
        datetime.fromtimestamp(HOUR_START + 300, UTC)
    )
    assert await db.fetchval("SELECT count(*) FROM server_metrics WHERE resolution = 60") == 10


async def test_one_insert_statement_per_flush(app):
    """500 servers' samples are one multi-row INSERT, not one statement per server."""
    engine = app.state.container.infra.engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        store = MetricsStore(engine)
        batch = [sample(uuid.uuid4(), HOUR_START, 1.0) for _ in range(500)]
        await store.write(batch, node_sample(HOUR_START))
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    # The app's background work (the audit projection) may write on the same engine meanwhile.
    inserts = [
        s
        for s in statements
        if s.lstrip().upper().startswith(("INSERT INTO SERVER_METRICS", "INSERT INTO NODE_METRICS"))
    ]
    assert len(inserts) == 2  # server_metrics and node_metrics


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param(
            {"from": iso(HOUR_START + 60), "to": iso(HOUR_START)}, 422, id="reversed-range"
        ),
        pytest.param({"from": iso(HOUR_START), "to": iso(HOUR_START)}, 422, id="empty-range"),
        pytest.param({"step": 0}, 422, id="step-zero"),
        pytest.param({"step": -10}, 422, id="step-negative"),
        pytest.param({"step": 10**9}, 422, id="step-too-large"),
        pytest.param({"step": "ten"}, 422, id="step-not-a-number"),
        pytest.param(
            {"from": iso(HOUR_START), "to": iso(HOUR_START + 86400), "step": 10},
            422,
            id="too-many-points",
        ),
        pytest.param({"from": "yesterday"}, 422, id="from-not-a-time"),
        pytest.param({"from": "2024-05-01T12:00:00"}, 422, id="from-without-zone"),
    ],
)
async def test_bad_windows_are_refused(api, params, status):
    http, _, users = api
    sid = await create_server(http, users["owner"])
    response = await http.get(
        f"/api/v2/servers/{sid}/metrics", headers=users["owner"], params=params
    )
    assert_problem(response, status)


async def test_another_owners_server_is_not_found(api):
    http, _, users = api
    sid = await create_server(http, users["owner"])
    other = await http.get(f"/api/v2/servers/{sid}/metrics", headers=users["other"])
    assert_problem(other, 404)
    unknown = await http.get(f"/api/v2/servers/{uuid.uuid4()}/metrics", headers=users["owner"])
    assert_problem(unknown, 404)
    anonymous = await http.get(f"/api/v2/servers/{sid}/metrics")
    assert anonymous.status_code == 401


async def test_node_metrics_for_operators(api):
    http, app, users = api
    sid = await create_server(http, users["owner"])
    store = await fill(app, uuid.UUID(sid))
    await store.roll_up(now=HOUR_START + 700)
    url = "/api/v2/nodes/local/metrics"
    params = {"from": iso(HOUR_START), "to": iso(HOUR_START + 600), "step": 60}
    node = await http.get(url, headers=users["admin"], params=params)
    assert node.status_code == 200, node.text
    body = node.json()
    assert len(body["times"]) == 10
    assert body["series"]["cpu_percent"][0] == 50.0
    assert body["series"]["servers_running"][0] == 1.0
    assert_problem(await http.get(url, headers=users["owner"], params=params), 403)
    unknown = await http.get("/api/v2/nodes/nowhere/metrics", headers=users["admin"])
    assert_problem(unknown, 404)
    bad_name = await http.get("/api/v2/nodes/Bad..Name/metrics", headers=users["admin"])
    assert bad_name.status_code == 422
