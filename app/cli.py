"""The `mcdash` command: up, api, worker, scheduler, relay, migrate, create-admin,
projections, import-v1."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import getpass
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import structlog

from app.importer.command import add_import_arguments
from app.settings import Settings, ensure_private_dir
from app.shared.observability import configure_logging

log = structlog.get_logger("mcdash")


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key, value in (
            ("host", getattr(args, "host", None)),
            ("port", getattr(args, "port", None)),
            ("data_dir", getattr(args, "data_dir", None)),
        )
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level, json_output=settings.log_json)
    return settings


def _keep_proc_private() -> None:
    """Not root: a game server runs under this same user when it has no sandbox, so make this
    process non-dumpable. Its /proc entries (environment with the database URL, memory) then
    belong to root, and it cannot be ptraced by its own user's other processes."""
    if os.geteuid() == 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


_PR_SET_DUMPABLE = 4


def cmd_api(args: argparse.Namespace) -> int:
    _keep_proc_private()
    import uvicorn

    from app.main import create_app
    from app.shared.wsprotocol import FanoutWebSocketProtocol

    settings = _settings(args)
    settings.require_database_url()
    settings.require_redis_url()
    ensure_private_dir(settings.resolved_data_dir)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # The app reads X-Forwarded-For itself, from MCDASH_TRUSTED_PROXIES only.
        proxy_headers=False,
        log_config=None,
        access_log=False,
        # Console fan-out: shared frames, deflate without context takeover (wsprotocol.py).
        ws=FanoutWebSocketProtocol,
        ws_max_size=64 * 1024,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.shared.migrations import upgrade

    settings = _settings(args)
    upgrade(settings.require_database_url(), args.revision)
    log.info("migrated", revision=args.revision)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    _keep_proc_private()
    from app.worker import run_worker

    settings = _settings(args)
    ensure_private_dir(settings.resolved_data_dir)
    run_worker(settings, args.node or settings.node_name, burst=args.burst)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    _keep_proc_private()
    from app.scheduler import run_scheduler

    asyncio.run(run_scheduler(_settings(args)))
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    _keep_proc_private()
    from app.relay_process import run_relay

    settings = _settings(args)
    settings.require_database_url()
    settings.require_redis_url()
    asyncio.run(run_relay(settings))
    return 0


async def _create_admin(settings: Settings, username: str, email: str, password: str) -> str:
    from app.bootstrap import bootstrap
    from app.users.application.messages import RegisterUser

    container = bootstrap(settings)
    try:
        user_id = await container.bus.handle(
            RegisterUser(username=username, email=email, password=password, as_admin=True)
        )
    finally:
        await container.close()
    return str(user_id)


def cmd_create_admin(args: argparse.Namespace) -> int:
    from app.shared.domain import DomainError

    settings = _settings(args)
    password = args.password or os.environ.get("MCDASH_ADMIN_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise CliError(
                "give --password or set MCDASH_ADMIN_PASSWORD (no terminal to prompt on)"
            )
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            raise CliError("the passwords do not match")
    try:
        user_id = asyncio.run(_create_admin(settings, args.username, args.email, password))
    except DomainError as exc:
        raise CliError(exc.detail) from exc
    print(f"created admin {args.username} ({user_id})")
    return 0


# The projections of every context, which can be rebuilt from the event store.
PROJECTIONS = ("audit", "backup_summary", "group_summary", "server_list")


async def _rebuild(settings: Settings, name: str) -> None:
    from app.bootstrap import bootstrap

    container = bootstrap(settings)
    try:
        await container.projections.rebuild(name)
    finally:
        await container.close()


def cmd_projections_rebuild(args: argparse.Namespace) -> int:
    if args.name not in PROJECTIONS:
        raise CliError(f"unknown projection {args.name!r}; known: {', '.join(PROJECTIONS)}")
    settings = _settings(args)
    settings.require_database_url()
    asyncio.run(_rebuild(settings, args.name))
    print(f"emptied {args.name}; the API's projections replay it from the event store")
    return 0


def cmd_import_v1(args: argparse.Namespace) -> int:
    from app.importer.command import run_command

    return run_command(args, _settings(args))


def cmd_up(args: argparse.Namespace) -> int:
    _keep_proc_private()
    from app.embedded import EmbeddedServices
    from app.servers.infrastructure.probe import detect_isolation
    from app.shared.migrations import upgrade

    settings = _settings(args)
    data_dir = settings.resolved_data_dir
    ensure_private_dir(data_dir)
    isolation = detect_isolation(
        settings.server_sandbox,
        uid_base=settings.server_uid_base,
        uid_count=settings.server_uid_count,
        passthrough=settings.server_env_passthrough,
    )
    embedded = EmbeddedServices(data_dir)
    env = dict(os.environ)
    env["MCDASH_DATA_DIR"] = str(data_dir)
    try:
        env["MCDASH_DATABASE_URL"] = settings.database_url or embedded.start_postgres()
        env["MCDASH_REDIS_URL"] = settings.redis_url or embedded.start_redis()
        settings.jwt_key()
        settings.node_key()
        upgrade(env["MCDASH_DATABASE_URL"])
        # The relay gets a process (and a core) of its own; the API leaves it to that one.
        children = [
            _Child(
                "api",
                ["api", "--host", settings.host, "--port", str(settings.port)],
                {**env, "MCDASH_RELAY_ENABLED": "false"},
            ),
            _Child("relay", ["relay"], env),
            _Child("worker", ["worker", "--node", settings.node_name], env),
            _Child("scheduler", ["scheduler"], env),
        ]
        print(f"mcdash up: game servers run with {isolation.summary()}", file=sys.stderr)
        return _supervise(children, settings, isolation=isolation.describe())
    finally:
        embedded.stop()


class _Child:
    """One process of `mcdash up`, started again with a growing delay each time it dies."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self._argv = [sys.executable, "-m", "app.cli", *argv]
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._failures = 0
        self._due = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(self._argv, env=self._env)
        self._started_at = time.monotonic()
        log.info("child_started", process=self.name, pid=self.process.pid)

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart; start it once its delay has passed."""
        if self.process is None:
            if now >= self._due:
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self._started_at > _HEALTHY_AFTER:
            self._failures = 0
        delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**self._failures)
        self._failures += 1
        self.process, self._due = None, now + delay
        log.error("child_exited", process=self.name, returncode=code, restart_in=delay)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_BACKOFF_FIRST, _BACKOFF_MAX, _HEALTHY_AFTER = 0.5, 30.0, 60.0


def _supervise(processes: list[_Child], settings: Settings, *, isolation: dict[str, object]) -> int:
    """Run the child processes until Ctrl-C or SIGTERM. A child that dies is started again
    with backoff while the others keep serving; game servers outlive a dying worker anyway."""
    for child in processes:
        child.start()
    log.info(
        "mcdash_up",
        url=f"http://{settings.host}:{settings.port}",
        docs=f"http://{settings.host}:{settings.port}/docs",
        pids={child.name: child.process.pid for child in processes if child.process},
        isolation=isolation,
    )
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        now = time.monotonic()
        for child in processes:
            child.check(now)
        time.sleep(0.2)
    for child in processes:
        child.terminate()
    deadline = time.monotonic() + 20
    for child in processes:
        child.wait(deadline)
    log.info("mcdash_stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcdash", description="Minecraft server dashboard: API, node worker and scheduler."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything; starts embedded PostgreSQL/Redis if none set")
    up.add_argument("--host")
    up.add_argument("--port", type=int)
    up.add_argument("--data-dir")
    up.set_defaults(handler=cmd_up)

    api = sub.add_parser("api", help="serve the REST and WebSocket API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(handler=cmd_api)

    worker = sub.add_parser("worker", help="run the node worker that supervises game servers")
    worker.add_argument("--node", help="node name (default: MCDASH_NODE_NAME)")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.set_defaults(handler=cmd_worker)

    scheduler = sub.add_parser("scheduler", help="run scheduled jobs (one active instance)")
    scheduler.set_defaults(handler=cmd_scheduler)

    relay = sub.add_parser("relay", help="dispatch committed events to their handlers")
    relay.set_defaults(handler=cmd_relay)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    admin = sub.add_parser("create-admin", help="create an approved admin account")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: MCDASH_ADMIN_PASSWORD or a prompt")
    admin.set_defaults(handler=cmd_create_admin)

    v1 = sub.add_parser("import-v1", help="import a V1 installation (repeatable, resumable)")
    add_import_arguments(v1)
    v1.set_defaults(handler=cmd_import_v1)

    projections = sub.add_parser("projections", help="maintain read models fed by events")
    actions = projections.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="empty a projection; it is replayed from 0")
    rebuild.add_argument("name", help=f"one of: {', '.join(PROJECTIONS)}")
    rebuild.set_defaults(handler=cmd_projections_rebuild)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except (CliError, RuntimeError, ValueError) as exc:
        print(f"mcdash {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
