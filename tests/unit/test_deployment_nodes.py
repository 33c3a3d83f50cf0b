"""docker-compose.yml and k8s/ place servers only on nodes that one of their workers serves,
and each worker serves one valid node name of its own."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from tests.deployment import (
    COMPOSE_FILE,
    DEPLOYMENT_FILES,
    NODE_NAME,
    EnvEntry,
    Obj,
    compose_command,
    compose_environment,
    compose_literal,
    container_env,
    containers,
    entries_of,
    env_from_field,
    is_compose_worker,
    is_k8s_worker,
    is_mcdash_service,
    k8s_documents,
    load_compose,
    name,
    option,
    pod_template,
    relative,
)

# A server placed on a node (`"node": "b"`) or a worker started as one (`--node b`).
_NAMED_NODE = re.compile(r"\"node\"\s*:\s*\"(?P<json>[^\"]*)\"|--node[= ](?P<flag>[a-z0-9][\w-]*)")


def named_nodes(text: str, entries: Iterable[EnvEntry], workers: set[str]) -> list[str]:
    """Node names the file places something on: a node setting outside the workers' own env
    (MCDASH_NODE_NAME, any MCDASH_*_NODE) and placement examples in the text."""
    found = [
        entry.value
        for entry in entries
        if entry.value is not None
        and entry.where not in workers
        and (entry.name.upper() == "MCDASH_NODE_NAME" or entry.name.upper().endswith("_NODE"))
    ]
    found += [match["json"] or match["flag"] for match in _NAMED_NODE.finditer(text)]
    return found


def compose_workers(compose: Obj) -> dict[str, str | None]:
    """Each worker service and its node: `--node X`, else its MCDASH_NODE_NAME."""
    nodes: dict[str, str | None] = {}
    for service_name, service in compose["services"].items():
        if not (is_mcdash_service(service) and is_compose_worker(service)):
            continue
        node = option(compose_command(service), "--node")
        if node is None or "$" in node:
            node = compose_literal(compose_environment(service).get("MCDASH_NODE_NAME"))
        nodes[f"services.{service_name}"] = node
    return nodes


def k8s_workers(docs: Iterable[Obj]) -> dict[str, list[str] | None]:
    """Each worker container and the nodes its replicas serve; None when that cannot be told
    from the file (a pod name outside a StatefulSet changes with every pod)."""
    nodes: dict[str, list[str] | None] = {}
    for obj in docs:
        pod = pod_template(obj)
        for container in containers(pod) if pod else []:
            if not is_k8s_worker(container):
                continue
            where = f"{obj['kind']}/{name(obj)}/{container['name']}"
            replicas = int(obj.get("spec", {}).get("replicas", 1))
            node = option([*container.get("command", []), *container.get("args", [])], "--node")
            if node is None or "$" in node:
                env = {e.name: e.value for e in container_env(obj, container, where)}
                node = env.get("MCDASH_NODE_NAME")
                if env_from_field(container, "MCDASH_NODE_NAME") == "metadata.name":
                    stable = obj["kind"] == "StatefulSet"
                    nodes[where] = [f"{name(obj)}-{n}" for n in range(replicas)] if stable else None
                    continue
            nodes[where] = None if node is None else [node] * replicas
    return nodes


def served_nodes(label: str, text: str) -> tuple[list[str], set[str]]:
    """The nodes the workers of this deployment serve, and where those workers are."""
    if label == relative(COMPOSE_FILE):
        workers = compose_workers(load_compose(text))
        return [node or "" for node in workers.values()], set(workers)
    k8s = k8s_workers(k8s_documents())
    return [node for nodes in k8s.values() for node in nodes or [""]], set(k8s)


@pytest.mark.parametrize("label", DEPLOYMENT_FILES)
def test_every_node_named_is_served_by_a_worker(label: str) -> None:
    text = DEPLOYMENT_FILES[label].read_text()
    served, workers = served_nodes(label, text)
    unserved = [
        node for node in named_nodes(text, entries_of(label, text), workers) if node not in served
    ]
    assert unserved == []


def test_each_worker_serves_its_own_valid_node() -> None:
    compose = compose_workers(load_compose())
    k8s = k8s_workers(k8s_documents())
    assert compose, "docker-compose.yml runs no worker"
    assert k8s, "k8s/ runs no worker"
    for where, node in compose.items():
        assert node, f"{where} names no node"
        assert NODE_NAME.match(node), f"{where} serves no valid node: {node!r}"
    for where, nodes in k8s.items():
        assert nodes, f"{where}: which nodes it serves cannot be told from the file"
        assert all(NODE_NAME.match(node) for node in nodes), f"{where}: {nodes!r}"
    assert len(set(compose.values())) == len(compose), compose
    served_in_k8s = [node for nodes in k8s.values() for node in nodes or []]
    assert len(set(served_in_k8s)) == len(served_in_k8s), k8s


BROKEN = {
    "placement-example-on-node-c": ('"node": "b"', '"node": "c"', "c"),
    "default-node-nobody-serves": (
        "MCDASH_LOG_LEVEL: ${",
        "MCDASH_NODE_NAME: node-1\n  MCDASH_LOG_LEVEL: ${",
        "node-1",
    ),
    "worker-b-renamed-under-its-example": ("MCDASH_NODE_NAME: b\n", "MCDASH_NODE_NAME: c\n", "b"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_node_no_worker_serves_fails(case: str) -> None:
    old, new, unserved = BROKEN[case]
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = text.replace(old, new, 1)
    served, workers = served_nodes(relative(COMPOSE_FILE), broken)
    named = named_nodes(broken, entries_of(relative(COMPOSE_FILE), broken), workers)
    assert unserved in named
    assert unserved not in served


def test_a_worker_deployment_named_after_its_pod_fails() -> None:
    """Outside a StatefulSet a pod's name, and so the node, changes with every new pod."""
    statefulset = next(obj for obj in k8s_documents() if obj["kind"] == "StatefulSet")
    deployment = {**statefulset, "kind": "Deployment"}
    assert list(k8s_workers([deployment]).values()) == [None]
    assert list(k8s_workers([statefulset]).values()) == [["mcdash-worker-0"]]
