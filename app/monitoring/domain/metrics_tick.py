"""Tick time, where a server reports it: Paper's `mspt` and `tps`, vanilla 1.20.3+ `tick query`.

A server that does not answer is asked again later and later (never every sample), and one
whose type cannot answer is never asked, so probes do not flood its console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COLOUR = re.compile(r"\x1b\[[0-9;]*m|§.")
# Paper `mspt`: "◴ 0.8/0.5/2.1, 0.8/0.5/2.1, 0.9/0.4/5.3" (avg/min/max over 5 s, 10 s, 1 min).
_MSPT = re.compile(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)\s*,")
# Paper `tps`: "TPS from last 1m, 5m, 15m: 20.0, 20.0, 20.0" (a star marks more than 20).
_TPS = re.compile(r"TPS from last [^:]*:\s*\*?(\d+(?:\.\d+)?)")
# Vanilla `tick query`: "Average time per tick: 1.2ms (Target: 50.0ms)".
_TICK_QUERY = re.compile(r"Average time per tick:\s*(\d+(?:\.\d+)?)\s*ms")
FIRST_TICK_QUERY = (1, 20, 3)
PAPER_LIKE = frozenset({"paper", "purpur", "folia"})


def _plain(message: str) -> str:
    return _COLOUR.sub("", message)


@dataclass(frozen=True, slots=True, kw_only=True)
class TickReading:
    tick_ms: float
    tick_ms_max: float | None = None
    tps: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TickQuestion:
    """A console command, which answer to it to wait for, and how to read that answer."""

    command: str
    pattern: re.Pattern[str]

    def accepts(self, message: str) -> bool:
        return self.pattern.search(_plain(message)) is not None

    def match(self, message: str) -> re.Match[str]:
        found = self.pattern.search(_plain(message))
        if found is None:
            raise ValueError(f"not an answer to {self.command}: {message!r}")
        return found


MSPT = TickQuestion(command="mspt", pattern=_MSPT)
TPS = TickQuestion(command="tps", pattern=_TPS)
TICK_QUERY = TickQuestion(command="tick query", pattern=_TICK_QUERY)


def _release(version: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(\.\d+){1,2}", version):
        return None  # snapshots, pre-releases: not known to answer
    return tuple(int(part) for part in version.split("."))


def tick_questions(server_type: str, version: str) -> tuple[TickQuestion, ...]:
    """What to ask a server of this type and version for its tick time; () when it can't say."""
    if server_type in PAPER_LIKE:
        return (MSPT, TPS)
    release = _release(version)
    if server_type == "vanilla" and release is not None and release >= FIRST_TICK_QUERY:
        return (TICK_QUERY,)
    return ()


def read_answers(answers: dict[str, str]) -> TickReading:
    """The tick reading in the answers to `tick_questions` (command -> answer)."""
    if "mspt" in answers:
        found = MSPT.match(answers["mspt"])
        tps = float(TPS.match(answers["tps"]).group(1)) if "tps" in answers else None
        return TickReading(
            tick_ms=float(found.group(1)), tick_ms_max=float(found.group(3)), tps=tps
        )
    tick_ms = float(TICK_QUERY.match(answers["tick query"]).group(1))
    return TickReading(
        tick_ms=tick_ms, tps=round(min(20.0, 1000.0 / tick_ms), 2) if tick_ms else 20.0
    )


@dataclass(slots=True)
class TickSchedule:
    """When to ask one server next: every `every` seconds while it answers, then backing off
    (doubling up to `longest`) while it does not."""

    every: float
    longest: float = 3600.0
    next_at: float = 0.0
    failures: int = 0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def answered(self, now: float) -> None:
        self.failures = 0
        self.next_at = now + self.every

    def unanswered(self, now: float) -> None:
        self.failures += 1
        self.next_at = now + min(self.every * 2**self.failures, self.longest)
