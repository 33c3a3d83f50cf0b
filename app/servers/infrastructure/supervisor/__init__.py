"""The node supervisor: launches, adopts, tails, samples and stops this node's game servers."""

from app.servers.infrastructure.supervisor.core import Supervisor

__all__ = ["Supervisor"]
