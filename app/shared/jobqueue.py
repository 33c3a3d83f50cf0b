"""RQ jobs carry JSON, never pickles, and a worker runs only the job functions it was given.

Anyone who can write to Redis could otherwise queue a pickle (code that runs on load) or name
any importable function (`os.system`) as a job. Jobs are plain JSON here, and a worker's job
class refuses a function, a bound instance or a callback that is not on its allowlist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

SERIALIZER = JSONSerializer


class UnknownJobFunction(LookupError):
    """A job named a function this worker does not run: forged, or from a newer version."""


class AllowlistedJob(Job):
    """A job that resolves its function only from `allowed`, with no instance or callbacks."""

    allowed: ClassVar[frozenset[str]] = frozenset()

    @property
    def func(self) -> Any:
        name = self.func_name
        if name not in self.allowed or self.instance is not None:
            raise UnknownJobFunction(f"job function {name!r} is not one this worker runs")
        return super().func

    @property
    def success_callback(self) -> Any:
        return self._refuse_callback(self._success_callback_name)

    @property
    def failure_callback(self) -> Any:
        return self._refuse_callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> Any:
        return self._refuse_callback(self._stopped_callback_name)

    @staticmethod
    def _refuse_callback(name: str | None) -> None:
        if name:
            raise UnknownJobFunction(f"job callback {name!r} is not allowed")


def job_class(functions: Iterable[str]) -> type[AllowlistedJob]:
    """A job class for a worker that runs exactly `functions` (dotted paths)."""
    return type("NodeJob", (AllowlistedJob,), {"allowed": frozenset(functions)})


def json_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=SERIALIZER)
