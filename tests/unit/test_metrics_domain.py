"""Metrics windows, sample windows and tick probes: pure domain rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.monitoring.domain.metrics import (
    MAX_POINTS,
    InvalidMetricsWindow,
    SampleWindow,
    metrics_window,
)
from app.monitoring.domain.metrics_tick import (
    MSPT,
    TICK_QUERY,
    TPS,
    TickSchedule,
    read_answers,
    tick_questions,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("step", "resolution"), [(10, 0), (59, 0), (60, 60), (3599, 60), (3600, 3600), (86400, 3600)]
)
def test_the_step_picks_the_stored_level(step, resolution):
    window = metrics_window(now=NOW, start=NOW - timedelta(seconds=step * 100), end=NOW, step=step)
    assert window.resolution == resolution


def test_defaults_are_the_last_hour_in_at_most_500_points():
    window = metrics_window(now=NOW, start=None, end=None, step=None)
    assert (window.start, window.end, window.step) == (NOW - timedelta(hours=1), NOW, 10)
    week = metrics_window(now=NOW, start=NOW - timedelta(days=7), end=None, step=None)
    assert week.points <= 500
    assert week.step == 3600


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        pytest.param(NOW, NOW - timedelta(seconds=1), 10, id="reversed-range"),
        pytest.param(NOW, NOW, 10, id="empty-range"),
        pytest.param(NOW - timedelta(hours=1), NOW, 0, id="step-zero"),
        pytest.param(NOW - timedelta(hours=1), NOW, 8 * 86400, id="step-too-large"),
        pytest.param(NOW - timedelta(days=1), NOW, 10, id="too-many-points"),
        pytest.param(datetime(2024, 5, 1), NOW, 60, id="naive-from"),
    ],
)
def test_bad_windows(start, end, step):
    with pytest.raises(InvalidMetricsWindow):
        metrics_window(now=NOW, start=start, end=end, step=step)


def test_at_most_max_points():
    seconds = MAX_POINTS * 10
    window = metrics_window(now=NOW, start=NOW - timedelta(seconds=seconds), end=NOW, step=10)
    assert window.points == MAX_POINTS


def test_a_sample_window_averages_and_keeps_maxima():
    window = SampleWindow()
    window.add(state="running", cpu_percent=10.0, rss_bytes=100, players=1)
    window.add(state="running", cpu_percent=30.0, rss_bytes=300, players=3)
    recorded = window.recorded(
        server_id=uuid.uuid4(),
        name="s",
        node="n",
        at=1.0,
        disk_bytes=None,
        tick_ms=None,
        tick_ms_max=None,
        tps=None,
    )
    assert (recorded.samples, recorded.cpu_percent, recorded.cpu_percent_max) == (2, 20.0, 30.0)
    assert (recorded.rss_bytes, recorded.rss_bytes_max, recorded.players_online) == (200, 300, 2)
    assert '"type": "MetricRecorded"' in recorded.to_json()


@pytest.mark.parametrize(
    ("server_type", "version", "questions"),
    [
        ("paper", "1.20.4", (MSPT, TPS)),
        ("vanilla", "1.20.3", (TICK_QUERY,)),
        ("vanilla", "1.21.4", (TICK_QUERY,)),
        ("vanilla", "1.20.2", ()),
        ("vanilla", "24w14a", ()),
        ("custom", "1.21.4", ()),
    ],
)
def test_who_is_asked_for_tick_time(server_type, version, questions):
    assert tick_questions(server_type, version) == questions


def test_answers_are_read():
    paper = read_answers(
        {
            "mspt": "§6◴ §a1.5§7/§a0.5§7/§a4.1§e, §a1.4§7/§a0.4§7/§a4.0§e, §a1.3§7/§a0.3§7/§a9.2",
            "tps": "§6TPS from last 1m, 5m, 15m: §a*20.0, §a19.5, §a19.9",
        }
    )
    assert (paper.tick_ms, paper.tick_ms_max, paper.tps) == (1.5, 4.1, 20.0)
    vanilla = read_answers({"tick query": "Average time per tick: 2.5ms (Target: 50.0ms)"})
    assert (vanilla.tick_ms, vanilla.tps) == (2.5, 20.0)
    assert not MSPT.accepts("Server tick times (avg/min/max) from last 5s, 10s, 1m:")
    assert not TICK_QUERY.accepts("Unknown or incomplete command, see below for error")


def test_an_unanswered_server_is_asked_later_and_later():
    schedule = TickSchedule(every=30.0, longest=600.0)
    assert schedule.due(0.0)
    gaps = []
    for _ in range(6):
        schedule.unanswered(0.0)
        gaps.append(schedule.next_at)
    assert gaps == [60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    schedule.answered(1000.0)
    assert (schedule.failures, schedule.next_at) == (0, 1030.0)
