"""The `mcdash import-v1` command line: its arguments, and the run turned into a report on stdout
or a one-line reason (exit status 2). Imported by the CLI's parser, so it imports little."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from app.settings import Settings


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", required=True, help="V1's database URL or SQLite file")
    parser.add_argument("--root", required=True, help="V1's working directory (servers/, backups/)")
    parser.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    parser.add_argument("--include-deleted", action="store_true", help="import deleted servers too")
    parser.add_argument("--node", help="the node that takes the servers (default: the emptiest)")
    parser.add_argument(
        "--keep-jars", action="store_true", help="servers run V1's server.jar as a custom jar"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Raises ValueError (the CLI prints it as one line) for every problem the user can fix."""
    for chatty in ("httpx", "alembic"):  # every agent request, Alembic's plugin set-up
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from rich.console import Console

    from app.importer.run import Options, import_v1
    from app.shared.domain import DomainError

    settings.require_database_url()
    settings.require_redis_url()
    options = Options(
        database=args.database,
        root=Path(args.root),
        dry_run=args.dry_run,
        include_deleted=args.include_deleted,
        node=args.node,
        keep_jars=args.keep_jars,
        progress=not args.no_progress,
    )
    try:
        report = asyncio.run(import_v1(settings, options, Console(stderr=True)))
    except DomainError as exc:
        raise ValueError(exc.detail) from exc
    except OSError as exc:
        raise ValueError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc
    if args.json:
        print(json.dumps(report.as_dict(), default=str))
    else:
        report.render(Console())
    return 0
