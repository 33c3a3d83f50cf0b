"""The `mcdash` command: up, api, worker, scheduler, migrate, create-admin."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import structlog

from app.settings import Settings
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


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    settings = _settings(args)
    settings.require_database_url()
    settings.require_redis_url()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        log_config=None,
        access_log=False,
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
    from app.worker import run_worker

    settings = _settings(args)
    run_worker(settings, args.node or settings.node_name, burst=args.burst)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from app.scheduler import run_scheduler

    asyncio.run(run_scheduler(_settings(args)))
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


def cmd_up(args: argparse.Namespace) -> int:
    from app.embedded import EmbeddedServices
    from app.shared.migrations import upgrade

    settings = _settings(args)
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedServices(data_dir)
    env = dict(os.environ)
    env["MCDASH_DATA_DIR"] = str(data_dir)
    try:
        env["MCDASH_DATABASE_URL"] = settings.database_url or embedded.start_postgres()
        env["MCDASH_REDIS_URL"] = settings.redis_url or embedded.start_redis()
        settings.jwt_key()
        upgrade(env["MCDASH_DATABASE_URL"])
        children = {
            "api": ["api", "--host", settings.host, "--port", str(settings.port)],
            "worker": ["worker", "--node", settings.node_name],
            "scheduler": ["scheduler"],
        }
        return _supervise(children, env, settings)
    finally:
        embedded.stop()


def _supervise(children: dict[str, list[str]], env: dict[str, str], settings: Settings) -> int:
    """Run the child processes until Ctrl-C, SIGTERM, or one of them exits."""
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "app.cli", *argv], env=env)
        for name, argv in children.items()
    }
    log.info(
        "mcdash_up",
        url=f"http://{settings.host}:{settings.port}",
        docs=f"http://{settings.host}:{settings.port}/docs",
        pids={name: proc.pid for name, proc in processes.items()},
    )
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    while not stopping:
        exited = [(name, proc) for name, proc in processes.items() if proc.poll() is not None]
        if exited:
            name, proc = exited[0]
            log.error("child_exited", process=name, returncode=proc.returncode)
            status = proc.returncode or 1
            break
        time.sleep(0.2)
    for proc in processes.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.info("mcdash_stopped")
    return status


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

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    admin = sub.add_parser("create-admin", help="create an approved admin account")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: MCDASH_ADMIN_PASSWORD or a prompt")
    admin.set_defaults(handler=cmd_create_admin)
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
