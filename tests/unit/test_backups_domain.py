"""The backups domain: status transitions, retention, schedules and cron reading."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.backups.domain.errors import BackupBusy, InvalidBackupState, InvalidSchedule
from app.backups.domain.events import (
    BackupCompleted,
    BackupCreated,
    BackupFailed,
    BackupScheduled,
)
from app.backups.domain.model import Backup, BackupStatus, BackupType, Compression
from app.backups.domain.schedule import BackupSchedule, Retention
from app.backups.infrastructure.cron import ApsCronCalendar
from app.shared.domain import InvalidInput

NOW = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)


def requested(**extra) -> Backup:
    return Backup.request(
        backup_id=uuid.uuid4(),
        server_id=uuid.uuid4(),
        node="local",
        backup_type=BackupType.MANUAL,
        compression=Compression.ZSTD,
        now=NOW,
        **extra,
    )


def test_a_backup_runs_then_completes_once():
    backup = requested()
    assert backup.file_path == f"{backup.server_id}/{backup.id}.tar.zst"
    backup.start(now=NOW)
    backup.complete(
        size_bytes=10, sha256="ab" * 32, saving_off_ms=120, now=NOW + timedelta(seconds=2)
    )
    events = backup.collect_events()
    assert [type(e) for e in events] == [BackupCreated, BackupCompleted]
    assert events[1].duration_ms == 2000
    assert backup.status is BackupStatus.COMPLETED
    assert backup.fail("late", now=NOW) is False
    with pytest.raises(InvalidBackupState):
        backup.complete(size_bytes=1, sha256="x", saving_off_ms=None, now=NOW)


def test_a_failed_backup_keeps_its_reason_and_cannot_be_restored():
    backup = requested()
    backup.start(now=NOW)
    assert backup.fail("S3 storage unreachable: ConnectionRefusedError", saving_off_ms=5, now=NOW)
    assert isinstance(backup.collect_events()[-1], BackupFailed)
    assert backup.error.startswith("S3 storage unreachable")
    with pytest.raises(InvalidBackupState, match="only completed backups"):
        backup.request_restore()


def test_a_running_backup_cannot_be_deleted():
    backup = requested()
    backup.start(now=NOW)
    with pytest.raises(BackupBusy):
        backup.delete(reason="owner", now=NOW)


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_keep_last_keeps_the_newest_n():
    backups = ids(5)
    items = [(b, NOW - timedelta(hours=i)) for i, b in enumerate(backups)]
    assert Retention(keep_last=2).expired(items, now=NOW) == backups[2:]


def test_keep_days_drops_older_ones_but_never_the_newest():
    backups = ids(3)
    items = [
        (backups[0], NOW - timedelta(days=9)),
        (backups[1], NOW - timedelta(days=10)),
        (backups[2], NOW - timedelta(days=1)),
    ]
    assert Retention(keep_days=7).expired(items, now=NOW) == [backups[0], backups[1]]
    assert Retention(keep_days=7).expired(items[:1], now=NOW) == []


def test_both_limits_apply():
    backups = ids(4)
    items = [(b, NOW - timedelta(days=i * 3)) for i, b in enumerate(backups)]
    assert Retention(keep_last=3, keep_days=5).expired(items, now=NOW) == backups[2:]
    assert Retention().expired(items, now=NOW) == []


@pytest.mark.parametrize(
    ("keep_last", "keep_days"),
    [(0, None), (-1, None), (None, 0), (None, -3)],
    ids=["keep_last-0", "keep_last-negative", "keep_days-0", "keep_days-negative"],
)
def test_retention_limits_must_be_positive(keep_last, keep_days):
    with pytest.raises(InvalidSchedule, match="must be at least 1"):
        Retention(keep_last=keep_last, keep_days=keep_days)


@pytest.mark.parametrize(
    ("keep_last", "keep_days"),
    [(1001, None), (2**31, None), (None, 3651), (None, 1_000_000), (None, 2**63)],
    ids=[
        "keep-last-1001",
        "keep-last-2147483648",
        "keep-days-3651",
        "keep-days-1000000",
        "keep-days-2**63",
    ],
)
def test_retention_limits_are_bounded(keep_last, keep_days):
    with pytest.raises(InvalidSchedule, match="must be at most"):
        Retention(keep_last=keep_last, keep_days=keep_days)


def test_the_longest_retention_never_overflows_the_calendar():
    retention = Retention(keep_last=1000, keep_days=3650)
    ids = [uuid.uuid4() for _ in range(3)]
    old = [(i, NOW - timedelta(days=4000 + n)) for n, i in enumerate(ids)]
    assert retention.expired(old, now=NOW) == ids[1:]
    early = datetime(1, 1, 2, tzinfo=UTC)
    assert retention.cutoff(early) is None
    assert retention.expired([(ids[0], early), (ids[1], early)], now=early) == []


@pytest.mark.parametrize(
    "name",
    ["a\x00b", "line\nbreak", "bell\x07", "c1\x85", "x" * 201],
    ids=["nul-byte", "newline", "bell", "c1-control", "201-characters"],
)
def test_a_backup_name_is_one_printable_line(name):
    with pytest.raises(InvalidInput) as caught:
        requested(name=name)
    assert caught.value.extra == {"field": "name"}


def test_a_blank_backup_name_gets_the_dated_default():
    assert requested(name="  ").name == "manual-20260501-120030"
    assert requested(name="бэкап-1").name == "бэкап-1"


def test_a_schedule_plans_its_next_run_and_collapses_missed_runs():
    calendar = ApsCronCalendar()
    schedule = BackupSchedule.create(
        schedule_id=uuid.uuid4(),
        server_id=uuid.uuid4(),
        cron_expression="*/15  *  * * *",
        timezone="Europe/Berlin",
        is_active=True,
        only_when_running=False,
        retention=Retention(keep_last=2),
        compression=Compression.GZIP,
        calendar=calendar,
        created_by=None,
        now=NOW,
    )
    assert schedule.cron_expression == "*/15 * * * *"
    assert schedule.next_run == datetime(2026, 5, 1, 12, 15, tzinfo=UTC)
    assert isinstance(schedule.collect_events()[0], BackupScheduled)
    much_later = NOW + timedelta(hours=5, minutes=1)
    schedule.ran(at=much_later, calendar=calendar)
    assert schedule.last_run == much_later
    assert schedule.next_run == datetime(2026, 5, 1, 17, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "needle"),
    [
        ("0 25 * * *", "UTC", "not valid"),
        ("0 3 * *", "UTC", "needs 5"),
        ("0 3 * * *", "Nowhere/City", "unknown timezone"),
        ("0 3 * * *", "../../etc/passwd", "unknown timezone"),
        ("0 3 32 * *", "UTC", "not valid"),
    ],
    ids=["hour-25", "four-fields", "unknown-zone", "path-as-zone", "day-32"],
)
def test_bad_cron_or_timezone_says_why(expression, timezone, needle):
    with pytest.raises(InvalidSchedule, match=needle):
        ApsCronCalendar().validate(expression, timezone)


def test_a_full_storage_is_named_in_the_reason():
    from app.backups.infrastructure.node import describe

    assert describe(OSError(28, "No space left on device")).startswith("the backup storage is full")
    assert describe(InvalidSchedule("bad cron")) == "bad cron"
