"""Runtime configuration, read from MCDASH_* environment variables and an optional .env file."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from limits import parse_many
from pydantic import (
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_BYTES = 32
# Values published in examples and docs, or obviously not random: a key containing one is refused.
_PLACEHOLDER_MARKS = (
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "example",
    "placeholder",
    "your-secret",
    "yoursecret",
    "secretkey",
    "secret-key",
)
_GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class InsecureSetting(RuntimeError):
    """A setting that would leave the install open; refused at startup, printed as one line.

    A RuntimeError rather than a ValueError, so that pydantic does not wrap it (with the value)
    in a multi-line validation error.
    """


def refuse_weak_secret(name: str, value: str) -> str:
    """The secret, unless it is short, a known placeholder, or too repetitive to be random."""
    size = len(value.encode())
    if size < MIN_SECRET_BYTES:
        raise InsecureSetting(
            f"{name} is {size} bytes; a signing key needs at least {MIN_SECRET_BYTES} random "
            f"bytes (generate one with: {_GENERATE})"
        )
    lowered = value.lower()
    if any(mark in lowered for mark in _PLACEHOLDER_MARKS):
        raise InsecureSetting(
            f"{name} is a published placeholder, not a secret (generate one with: {_GENERATE})"
        )
    if len(set(value)) < 8:
        raise InsecureSetting(
            f"{name} repeats a few characters; it is not random (generate one with: {_GENERATE})"
        )
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MCDASH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: str = "development"
    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "mcdash"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024)

    rate_limits_enabled: bool = True
    # register, login and refresh: each its own bucket of this size per client address
    rate_limit_auth: str = "5/minute"
    rate_limit_login_username: str = "5/minute"
    # every /api/ request, and every WebSocket opened or message received: per user when the
    # token is valid, else per client address
    rate_limit_api_general: str = "100/minute"
    rate_limit_websocket: str = "1000/minute"
    # Proxies (addresses or networks) whose X-Forwarded-For names the client; none by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # The API process runs the event relay (false when `mcdash relay` runs it), and keeps the
    # read models current (projections, which its commands wait for) with its background work.
    relay_enabled: bool = True
    projections_enabled: bool = True
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=200, ge=1)
    # Projections (read models with checkpoints): events read per batch; also the audit
    # retention's delete batch.
    projection_batch_size: int = Field(default=500, ge=1, le=10_000)
    # An event whose handlers fail is retried `relay_retry_seconds` x attempts apart; after
    # `relay_max_attempts` (or at once if it cannot be decoded) it is a dead letter, skipped.
    relay_max_attempts: int = Field(default=5, ge=1, le=100)
    relay_retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    permissions_cache_ttl_seconds: int = Field(default=15 * 60, ge=1)
    # How long an API process serves a token's principal without asking Redis again (whether
    # its session was revoked, the user's role and status): the staleness bound when a change's
    # announcement is lost (app/users/infrastructure/principal_cache.py). 0: ask every time.
    principal_cache_seconds: float = Field(default=1.0, ge=0, le=5)
    # server:code (custom jars, .jar files into plugins/ or mods/) for the `user` role too;
    # admins and operators always hold it.
    users_install_code: bool = False

    node_name: str = Field(default="local", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    # The node agent: the worker's internal HTTP API, through which the API reaches a server's
    # disk. It listens on MCDASH_NODE_LISTEN (host:port) and advertises MCDASH_NODE_URL (default:
    # http://<listen>); the API signs each request with MCDASH_NODE_SECRET (generated into
    # <data dir>/node.key when unset, which is all `mcdash up` needs: one data directory).
    node_listen: str = Field(default="127.0.0.1:8765", pattern=r"^[^\s:/]+:\d{1,5}$")
    node_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    node_secret: SecretStr | None = None
    node_token_ttl_seconds: int = Field(default=60, ge=5, le=600)
    node_request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Game servers: `auto` uses bubblewrap where it works, `bubblewrap` insists on it, `none`
    # skips it. A root worker also runs each server as its own uid, from this range.
    server_sandbox: Literal["auto", "bubblewrap", "none"] = "auto"
    server_uid_base: int = Field(default=2_000_000, ge=1000, le=2**31 - 2**20)
    server_uid_count: int = Field(default=60_000, ge=1, le=2**20)
    # Variables of the worker's environment passed on to game servers: exact names or `PREFIX_*`.
    server_env_passthrough: list[
        Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,63}\*?$")]
    ] = Field(default_factory=list, max_length=50)
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    scheduler_lock_ttl_seconds: float = Field(default=30.0, gt=1)

    mojang_manifest_url: str = "https://piston-meta.mojang.com/mc/game/version_manifest_v2.json"
    paper_api_url: str = "https://fill.papermc.io/v3"
    fabric_meta_url: str = "https://meta.fabricmc.net"
    forge_maven_url: str = "https://maven.minecraftforge.net"
    forge_promotions_url: str = (
        "https://files.minecraftforge.net/net/minecraftforge/forge/promotions_slim.json"
    )
    neoforge_maven_url: str = "https://maven.neoforged.net/releases"
    loader_install_timeout_seconds: float = Field(default=900.0, gt=0, le=7200)
    download_user_agent: str = "mcdash/0.1 (self-hosted Minecraft dashboard; admin@localhost)"
    download_timeout_seconds: float = Field(default=120.0, gt=0)
    # Mods and plugins (issue 14): Modrinth's API v2, which wants a User-Agent naming us.
    modrinth_api_url: str = "https://api.modrinth.com/v2"
    modrinth_user_agent: str = "mcdash/0.1 (self-hosted Minecraft dashboard; admin@localhost)"
    max_mod_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # How long a mod change or version change waits for the safety backup it asked for.
    safety_backup_timeout_seconds: float = Field(default=600.0, ge=1, le=7200)
    catalog_cache_ttl_seconds: int = Field(default=3600, ge=1)
    java_paths: list[Path] = Field(default_factory=list)
    max_jar_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    # Every request body; uploads and file edits declare their own, larger limits.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3)

    server_port_range_start: int = Field(default=25565, ge=1024, le=65535)
    server_port_range_end: int = Field(default=25665, ge=1024, le=65535)
    # The heap a non-admin may give a server; admins may go up to 32768 (the API's maximum).
    server_max_memory_mb: int = Field(default=8192, ge=512, le=32768)
    # A node takes servers while the heaps given to them stay within its memory times this
    # ratio (above 1 overcommits: heaps are maxima, and idle servers rarely use all of theirs;
    # small or idle servers, or stand-ins as in tests/performance/test_node_scale.py, far more).
    placement_memory_ratio: float = Field(default=1.0, ge=0.1, le=100.0)
    console_denied_verbs: list[str] = Field(
        default_factory=lambda: ["reload", "restart", "shutdown", "end", "rl"]
    )
    # Unset: any verb not denied may be sent. Set: only these (after every `run` too).
    console_allowed_verbs: list[str] | None = Field(default=None, max_length=1000)
    rate_limit_console: str = "30/minute"
    server_start_timeout_seconds: float = Field(default=300.0, gt=0)
    server_stop_timeout_seconds: float = Field(default=60.0, gt=0)
    server_term_timeout_seconds: float = Field(default=10.0, gt=0)
    status_interval_seconds: float = Field(default=2.0, gt=0)
    status_ttl_seconds: int = Field(default=30, ge=1)
    job_ttl_seconds: int = Field(default=300, ge=1)
    stale_start_check_seconds: float = Field(default=30.0, gt=0)
    console_history_lines: int = Field(default=10_000, ge=100)
    console_backlog_lines: int = Field(default=100, ge=0, le=5000)
    websocket_queue_size: int = Field(default=1000, ge=10)
    websocket_ticket_ttl_seconds: int = Field(default=30, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = True
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)

    # groups
    mojang_profile_api_url: str = "https://api.mojang.com"
    mojang_timeout_seconds: float = Field(default=10.0, gt=0)
    groups_reply_timeout_seconds: float = Field(default=10.0, gt=0)
    # files
    file_edit_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    file_upload_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    file_rejected_keep_bytes: int = Field(default=64 * 1024, ge=0, le=16 * 1024 * 1024)
    # backups
    backup_storage: Literal["local", "s3"] = "local"
    backup_local_dir: Path | None = None
    backup_compression: Literal["gzip", "zstd"] = "gzip"
    backup_gzip_level: int = Field(default=6, ge=1, le=9)
    backup_zstd_level: int = Field(default=3, ge=1, le=22)
    backup_s3_endpoint: str | None = None
    backup_s3_bucket: str = "mcdash-backups"
    backup_s3_access_key: SecretStr | None = None
    backup_s3_secret_key: SecretStr | None = None
    backup_s3_secure: bool = True
    backup_s3_region: str | None = None
    backup_s3_part_size_mb: int = Field(default=16, ge=5, le=5120)
    backup_s3_timeout_seconds: float = Field(default=30.0, gt=0)
    backup_save_timeout_seconds: float = Field(default=60.0, gt=0)
    # Copy the flushed world aside and turn saving back on before compressing: saving is off
    # only for the copy, at the cost of free disk space for one copy of the server directory.
    backup_snapshot_copy: bool = False
    backup_job_timeout_seconds: int = Field(default=6 * 3600, ge=60)
    backup_scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    # Test-only: how many seconds a schedule's warning "minute" lasts (60 outside tests).
    schedule_warning_minute_seconds: float = Field(default=60.0, ge=1, le=60)
    backup_sweep_seconds: float = Field(default=30.0, gt=0)
    backup_requested_grace_seconds: float = Field(default=600.0, gt=0)
    backup_max_upload_bytes: int = Field(default=50 * 1024**3, ge=1024)
    # Restores (and uploads) refuse archives that unpack to more than this many times their
    # size, to more than a total, to more members, or into less free disk than the reserve.
    backup_max_expansion_ratio: float = Field(default=100.0, ge=1.0, le=100_000.0)
    backup_max_unpacked_bytes: int = Field(default=200 * 1024**3, ge=1024**2, le=1024**5)
    backup_max_members: int = Field(default=1_000_000, ge=10, le=100_000_000)
    backup_min_free_bytes: int = Field(default=1024**3, ge=0, le=1024**5)
    # monitoring: the audit log
    audit_retention_days: int = Field(default=365, ge=1, le=36_500)
    audit_export_max_rows: int = Field(default=10_000_000, ge=1, le=1_000_000_000)
    # monitoring: metrics history, sampled by each node; kept per level (raw, 1 minute, 1 hour)
    metrics_interval_seconds: float = Field(default=10.0, ge=1.0, le=3600.0)
    metrics_disk_interval_seconds: float = Field(default=300.0, ge=10.0, le=86_400.0)
    metrics_raw_retention_hours: int = Field(default=48, ge=1, le=24 * 365)
    metrics_minute_retention_days: int = Field(default=14, ge=1, le=3650)
    metrics_hour_retention_days: int = Field(default=400, ge=1, le=36_500)
    metrics_rollup_seconds: float = Field(default=60.0, ge=5.0, le=3600.0)
    # the scheduler's Prometheus endpoint (host:port); the worker's is on its node agent
    scheduler_metrics_listen: str | None = Field(default=None, pattern=r"^[^\s:/]+:\d{1,5}$")
    # `mcdash relay`'s Prometheus endpoint (host:port)
    relay_metrics_listen: str | None = Field(default=None, pattern=r"^[^\s:/]+:\d{1,5}$")
    # monitoring: notifications kept per user, and the admin snapshot socket's period
    notifications_retention_days: int = Field(default=90, ge=1, le=3650)
    metrics_socket_interval_seconds: float = Field(default=2.0, ge=0.1, le=60.0)
    # monitoring: webhooks
    webhooks_max_per_user: int = Field(default=25, ge=1, le=1000)
    webhooks_allow_private_addresses: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=6, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0.1, le=3600)
    webhook_delivery_retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("backup_s3_endpoint")
    @classmethod
    def _endpoint_without_scheme(cls, value: str | None) -> str | None:
        if value is not None and ("://" in value or "/" in value or not value.strip()):
            raise ValueError(
                f"{value!r} is not host[:port]: MCDASH_BACKUP_S3_ENDPOINT takes no scheme or"
                " path (MCDASH_BACKUP_S3_SECURE chooses https)"
            )
        return value

    @model_validator(mode="after")
    def _port_range_in_order(self) -> Self:
        if self.server_port_range_start > self.server_port_range_end:
            raise ValueError(
                f"MCDASH_SERVER_PORT_RANGE_START ({self.server_port_range_start}) is above"
                f" MCDASH_SERVER_PORT_RANGE_END ({self.server_port_range_end})"
            )
        return self

    @field_validator("server_env_passthrough")
    @classmethod
    def _not_our_own(cls, names: list[str]) -> list[str]:
        if any(name.startswith("MCDASH") or name == "*" for name in names):
            raise ValueError("mcdash's own MCDASH_* variables are never passed to game servers")
        return names

    @field_validator("jwt_secret", "node_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            refuse_weak_secret(f"MCDASH_{str(info.field_name).upper()}", value.get_secret_value())
        return value

    @field_validator(
        "rate_limit_auth",
        "rate_limit_login_username",
        "rate_limit_console",
        "rate_limit_api_general",
        "rate_limit_websocket",
    )
    @classmethod
    def _one_rate_limit(cls, value: str) -> str:
        try:
            items = parse_many(value)
        except ValueError:
            items = []
        if len(items) != 1 or items[0].amount < 1:
            raise ValueError(f"{value!r} is not one rate limit like '100/minute'")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: Any) -> Any:
        """A JSON list or comma-separated addresses and networks, normalized."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value
        items = [str(item).strip() for item in value if str(item).strip()]
        try:
            return [str(ipaddress.ip_network(item, strict=False)) for item in items]
        except ValueError as exc:
            raise ValueError(f"trusted proxies must be IP addresses or networks: {exc}") from exc

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "MCDASH_DATABASE_URL is not set (use `mcdash up` to run with an embedded database)"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "MCDASH_REDIS_URL is not set (use `mcdash up` to run with an embedded Redis)"
            )
        return self.redis_url

    def jwt_key(self) -> str:
        """The signing key; a per-data-dir key is created on first use when none is configured."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        key_file = self.resolved_data_dir / "jwt.key"
        return refuse_weak_secret(str(key_file), read_or_create_secret(key_file))

    def node_key(self) -> str:
        """The secret node tokens are signed with; like the JWT key, a per-data-dir one is
        created when none is configured (what `mcdash up` runs on: one data directory)."""
        if self.node_secret is not None:
            return self.node_secret.get_secret_value()
        key_file = self.resolved_data_dir / "node.key"
        return refuse_weak_secret(str(key_file), read_or_create_secret(key_file))


def ensure_private_dir(path: Path) -> None:
    """The data directory is its owner's alone: nobody else may list or change it (0700). Only
    a pass-through bit set on purpose survives (the embedded PostgreSQL's own account under a
    root `mcdash up`, game servers' accounts where a root worker has no private mounts)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700 | (stat.S_IMODE(path.stat().st_mode) & 0o011))


def read_or_create_secret(path: Path) -> str:
    """A generated secret kept in a 0600 file; when two processes race, the first link wins."""
    if not path.exists():
        ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.fsync(fd)
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    os.chmod(path, 0o600)
    return path.read_text().strip()
