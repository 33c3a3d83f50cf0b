"""Where a server goes: a node with room for its heap, and a free port of that node's range.

A node takes a server while the memory given to the servers placed on it, this one included,
stays within its memory total (times MCDASH_PLACEMENT_MEMORY_RATIO). Without a node named, the
online, uncordoned node with the most memory left after the server takes it. The choice is made
under the node's lock (one transaction at a time per node), so concurrent creates never race for
one port, and a node never takes more than it has room for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.servers.domain.errors import PortUnavailable
from app.servers.domain.model import MEMORY_RANGE, validate_port
from app.servers.domain.ports import NodeInfo, NodeUsage, ServerRepository
from app.shared.domain import Conflict, DomainError, InvalidInput


class NoNodeOnline(DomainError):
    status = 503
    slug = "no-node-online"
    title = "No node online"


class NodeFull(Conflict):
    slug = "node-full"
    title = "No room on the node"


class NodeCordoned(Conflict):
    slug = "node-cordoned"
    title = "Node cordoned"


class NodeRaced(Exception):
    """The chosen node filled up between choosing it and locking it: choose again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementRules:
    port_range: tuple[int, int]
    """Ports of a node that has not advertised its own range."""
    memory_ratio: float


@dataclass(frozen=True, slots=True)
class Placement:
    node: str
    port: int


def room_mb(info: NodeInfo | None, usage: NodeUsage, ratio: float) -> int | None:
    """Memory a node has left for servers; None when it has not said how much it has."""
    total = info.memory_total_mb if info is not None else None
    return None if total is None else int(total * ratio) - usage.memory_mb


def ranked(
    online: Mapping[str, NodeInfo],
    usage: Mapping[str, NodeUsage],
    cordoned: set[str],
    memory_mb: int,
    ratio: float,
) -> list[str]:
    """Online, uncordoned nodes with room for `memory_mb`, the most room left first."""
    fitting = []
    for name, info in online.items():
        room = room_mb(info, usage.get(name, NodeUsage()), ratio)
        if name not in cordoned and (room is None or room >= memory_mb):
            fitting.append((-(room if room is not None else 0), name))
    return [name for _, name in sorted(fitting)]


async def place(
    servers: ServerRepository,
    nodes: Sequence[NodeInfo],
    rules: PlacementRules,
    *,
    memory_mb: int,
    node: str | None,
    port: int | None,
    check_port_range: bool,
    prefer_port: int | None = None,
) -> Placement:
    """Choose and lock the node, then its port (`prefer_port` when no port is asked for and it
    is free and in the node's range). Raises NodeRaced when the best node filled up meanwhile;
    the caller opens a new transaction and asks again."""
    online = {info.name: info for info in nodes}
    cordoned = await servers.cordoned()
    chosen = node is None
    if node is None:
        if not online:
            raise NoNodeOnline(
                "no node is online to take the server: start a worker (mcdash worker --node NAME)"
            )
        usage = await servers.node_usage(*online)  # not the offline nodes' servers: O(online)
        candidates = ranked(online, usage, cordoned, memory_mb, rules.memory_ratio)
        if not candidates:
            _refuse_beyond_every_node(online, cordoned, memory_mb)
            raise _full(online, usage, cordoned, memory_mb, rules.memory_ratio)
        node = candidates[0]
    else:
        if node in cordoned:
            raise NodeCordoned(f"node {node} is cordoned: it takes no new servers", node=node)
        if node not in online and node not in await servers.node_usage(node):
            raise InvalidInput(
                f"node {node} is unknown: no worker of that name is online and no server is"
                " placed on it",
                field="node",
            )
    info = online.get(node)
    refuse_heap_beyond(node, info.memory_total_mb if info is not None else None, memory_mb)
    await servers.lock_node(node)
    fresh = (await servers.node_usage(node)).get(node, NodeUsage())
    room = room_mb(online.get(node), fresh, rules.memory_ratio)
    if room is not None and room < memory_mb:
        if not chosen:
            raise NodeFull(
                f"node {node} has {max(room, 0)} MiB left for servers; this one needs"
                f" {memory_mb} MiB",
                node=node,
                free_mb=max(room, 0),
            )
        raise NodeRaced(node)
    port_range = (info.port_range if info is not None else None) or rules.port_range
    taken = await servers.ports_in_use(node)
    chosen_port = choose_port(port, taken, port_range, node, check_port_range, prefer=prefer_port)
    return Placement(node, chosen_port)


def _refuse_beyond_every_node(
    online: Mapping[str, NodeInfo], cordoned: set[str], memory_mb: int
) -> None:
    """A heap more than the largest node's whole memory would never fit: a 422, not a 409."""
    totals = [
        (info.memory_total_mb, name)
        for name, info in online.items()
        if name not in cordoned and info.memory_total_mb is not None
    ]
    if totals and len(totals) == len(set(online) - cordoned):
        total, name = max(totals)
        refuse_heap_beyond(name, total, memory_mb, ", the most of any online node")


def refuse_heap_beyond(node: str, total: int | None, memory_mb: int, why: str = "") -> None:
    """A heap larger than the node's whole memory cannot work, whoever asks for it (422)."""
    if total is not None and memory_mb > total:
        raise InvalidInput(
            f"memory_mb {memory_mb} is more than node {node} has ({total} MiB of memory){why}",
            field="memory_mb",
            allowed_range=[MEMORY_RANGE[0], total],
        )


def _full(
    online: Mapping[str, NodeInfo],
    usage: Mapping[str, NodeUsage],
    cordoned: set[str],
    memory_mb: int,
    ratio: float,
) -> NodeFull:
    free = {
        name: max(room_mb(info, usage.get(name, NodeUsage()), ratio) or 0, 0)
        for name, info in online.items()
        if name not in cordoned
    }
    if not free:
        return NodeFull("every online node is cordoned", cordoned=sorted(cordoned))
    return NodeFull(
        f"no online node has {memory_mb} MiB left for another server",
        free_mb=free,
    )


def choose_port(
    wanted: int | None,
    taken: set[int],
    port_range: tuple[int, int],
    node: str,
    check_range: bool,
    *,
    prefer: int | None = None,
) -> int:
    low, high = port_range
    if wanted is None and prefer is not None and low <= prefer <= high and prefer not in taken:
        return prefer
    if wanted is not None:
        validate_port(wanted)
        if check_range and not low <= wanted <= high:
            raise InvalidInput(
                f"port {wanted} is outside node {node}'s port range {low}-{high}; only an admin"
                " may choose a port outside it",
                field="port",
                allowed_range=[low, high],
            )
        if wanted in taken:
            raise PortUnavailable(
                f"port {wanted} is used by another server on node {node}", field="port"
            )
        return wanted
    for candidate in range(low, high + 1):
        if candidate not in taken:
            return candidate
    raise PortUnavailable(
        f"no free port left in node {node}'s range {low}-{high}; give one explicitly"
    )
