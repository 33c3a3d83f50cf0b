"""k8s/ wires the node agent as meant: each worker listens where its advertised URL points,
through its headless Service; the API and the workers share the node secret; only the API
pods and the relay's reach the agent port while game ports stay open; only workers keep data
on a volume."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deployment import (
    Obj,
    config_data,
    containers,
    effective_env,
    env_value_from,
    is_k8s_worker,
    labels,
    name,
    namespace,
    selects,
)
from tests.k8s_references import env_entry, find, first_container, matching, pods_of, render


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return render()


def runs(pod: Obj, command: str) -> bool:
    return any(command in command_of(c) for c in containers(pod))


def command_of(container: Obj) -> str:
    return " ".join(
        str(word) for word in [*container.get("command", []), *container.get("args", [])]
    )


def sources(docs: list[Obj]) -> dict[tuple[str, str], dict[str, str | None]]:
    return {
        (obj["kind"], name(obj)): dict(config_data(obj))
        for obj in docs
        if obj["kind"] in ("ConfigMap", "Secret")
    }


def secret_ref(container: Obj) -> tuple[str | None, str | None]:
    """The Secret and key MCDASH_NODE_SECRET is read from by name (None, None: it is not)."""
    ref = (env_value_from(container, "MCDASH_NODE_SECRET") or {}).get("secretKeyRef") or {}
    return ref.get("name"), ref.get("key")


def opens(rule: Obj, port_name: str, number: int) -> bool:
    """Whether a NetworkPolicy rule lets traffic to this port through (no ports: all of them)."""
    ports = rule.get("ports")
    if not ports:
        return True
    for port in ports:
        target = port.get("port")
        if target is None or target == port_name:
            return True
        if isinstance(target, int) and target <= number <= port.get("endPort", target):
            return True
    return False


def agent_problems(docs: list[Obj]) -> list[str]:
    """Each worker listens where its advertised URL points, through its headless Service; the
    API, the relay and the workers read the same node secret; only the API and the relay reach
    the agent port, and game ports stay open; only workers have persistent volumes."""
    pods = pods_of(docs)
    by_key = {(obj["kind"], namespace(obj), name(obj)): obj for obj in docs}
    api_pods = [pod for _, pod in pods if runs(pod, "mcdash api")]
    relay_pods = [pod for _, pod in pods if runs(pod, "mcdash relay")]
    workers = [(obj, pod, c) for obj, pod in pods for c in containers(pod) if is_k8s_worker(c)]
    if not workers or not api_pods:
        return ["no worker or no api"]
    problems = []
    secrets: set[tuple[str | None, str | None]] = set()
    for obj, pod, worker in workers:
        where, ns = f"{obj['kind']}/{name(obj)}", namespace(obj)
        env = effective_env(obj, worker, sources(docs))
        host, _, port = env.get("MCDASH_NODE_LISTEN", "127.0.0.1:8765").rpartition(":")
        agent = next((p for p in worker.get("ports", []) if p.get("name") == "agent"), {})
        service_name = (obj.get("spec") or {}).get("serviceName", "")
        expected = f"http://{name(obj)}-0.{service_name}.{ns}.svc.cluster.local:{port}"
        if host != "0.0.0.0":
            problems.append(f"{where}: the agent listens on {host}, out of the API's reach")
        if agent.get("containerPort") != int(port):
            problems.append(f"{where}: container port `agent` is not the one it listens on")
        if obj["kind"] != "StatefulSet" or env.get("MCDASH_NODE_URL") != expected:
            problems.append(f"{where}: advertises {env.get('MCDASH_NODE_URL')}, not {expected}")
        service = by_key.get(("Service", ns, service_name)) or {}
        if not any(p.get("name") == "agent" for p in (service.get("spec") or {}).get("ports", [])):
            problems.append(f"{where}: its Service {service_name} has no `agent` port")
        secrets.add(secret_ref(worker))
        problems += policy_gaps(where, ns, docs, pod, api_pods, relay_pods, env, int(port))
        if not (obj.get("spec") or {}).get("volumeClaimTemplates"):
            problems.append(f"{where}: a worker without its own PersistentVolume")
    for obj, pod in pods:
        if not any(c for c in containers(pod) if is_k8s_worker(c)):
            claims = [
                v
                for v in (pod.get("spec") or {}).get("volumes", [])
                if "persistentVolumeClaim" in v
            ]
            if claims or (obj.get("spec") or {}).get("volumeClaimTemplates"):
                problems.append(f"{obj['kind']}/{name(obj)}: keeps data on a persistent volume")
    secrets |= {secret_ref(c) for pod in api_pods + relay_pods for c in containers(pod)}
    if len(secrets) != 1 or None in next(iter(secrets)):
        problems.append(
            f"the API, the relay and the workers read MCDASH_NODE_SECRET differently: {secrets}"
        )
    return problems


def policy_gaps(
    where: str,
    ns: str,
    docs: list[Obj],
    pod: Obj,
    api_pods: list[Obj],
    relay_pods: list[Obj],
    env: dict[str, str],
    port: int,
) -> list[str]:
    """The NetworkPolicies over a worker pod: the agent port open to the API and relay pods
    and to nothing else, the game port range (MCDASH_SERVER_PORT_RANGE_*) open to anyone."""
    pods = pods_of(docs)
    policies = [
        obj["spec"]
        for obj in docs
        if obj["kind"] == "NetworkPolicy"
        and namespace(obj) == ns
        and selects(obj["spec"].get("podSelector"), labels(pod))
        and "Ingress" in obj["spec"].get("policyTypes", ["Ingress"])
    ]
    if not policies:
        return [f"{where}: no NetworkPolicy guards its agent: every pod may call it"]
    problems = []
    reaching: list[Obj] = []
    first = int(env.get("MCDASH_SERVER_PORT_RANGE_START", 25565))
    last = int(env.get("MCDASH_SERVER_PORT_RANGE_END", 25665))
    game_open = False
    for policy in policies:
        for rule in policy.get("ingress", []):
            peers = rule.get("from", [])
            if not peers:
                game_open |= any(
                    p.get("port") == first and p.get("endPort", first) >= last
                    for p in rule.get("ports", [])
                )
            if not opens(rule, "agent", port):
                continue
            if not peers:
                problems.append(f"{where}: a rule opens the agent port to every source")
                reaching += api_pods + relay_pods
            for peer in peers:
                reached = matching(pods, ns, peer.get("podSelector"))
                if "ipBlock" in peer or "namespaceSelector" in peer or "podSelector" not in peer:
                    problems.append(f"{where}: the agent port is open to {peer}")
                elif any(p not in api_pods + relay_pods for p in reached):
                    problems.append(
                        f"{where}: the agent port is open to pods other than the API's and the"
                        " relay's"
                    )
                else:
                    reaching += reached
    if not any(p in reaching for p in api_pods):
        problems.append(f"{where}: the API pods cannot reach the agent port")
    if any(p not in reaching for p in relay_pods):
        problems.append(f"{where}: the relay pods cannot reach the agent port")
    if not game_open:
        problems.append(f"{where}: game ports {first}-{last} are not open to players")
    return problems


def test_only_the_api_reaches_the_node_agent(rendered: list[Obj]) -> None:
    assert agent_problems(rendered) == []


# ---------------------------------------------------------------- the checks catch mistakes


def _agent_open_to_all(docs: list[Obj]) -> None:
    del find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["ingress"][0]["from"]


def _agent_open_to_scheduler(docs: list[Obj]) -> None:
    rule = find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["ingress"][0]
    rule["from"][0]["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": "mcdash"}}


def _relay_cut_off(docs: list[Obj]) -> None:
    rule = find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["ingress"][0]
    rule["from"] = [peer for peer in rule["from"] if "relay" not in str(peer)]


def _relay_without_node_secret(docs: list[Obj]) -> None:
    env = first_container(docs, "Deployment", "mcdash-relay")["env"]
    env[:] = [e for e in env if e["name"] != "MCDASH_NODE_SECRET"]


def _game_ports_closed(docs: list[Obj]) -> None:
    find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["ingress"].pop(1)


def _url_names_another_service(docs: list[Obj]) -> None:
    entry = env_entry(docs, "StatefulSet", "mcdash-worker", "MCDASH_NODE_URL")
    entry["value"] = entry["value"].replace(".mcdash-worker.", ".mcdash-api.")


def _agent_on_loopback(docs: list[Obj]) -> None:
    env_entry(docs, "StatefulSet", "mcdash-worker", "MCDASH_NODE_LISTEN")["value"] = (
        "127.0.0.1:8765"
    )


def _api_gets_a_claim(docs: list[Obj]) -> None:
    spec = find(docs, "Deployment", "mcdash-api")["spec"]["template"]["spec"]
    spec["volumes"].append(
        {"name": "servers", "persistentVolumeClaim": {"claimName": "data-mcdash-worker-0"}}
    )


def _api_without_node_secret(docs: list[Obj]) -> None:
    env = first_container(docs, "Deployment", "mcdash-api")["env"]
    env[:] = [e for e in env if e["name"] != "MCDASH_NODE_SECRET"]


AGENT_BREAKS: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "agent-open-to-every-source": (_agent_open_to_all, "opens the agent port to every source"),
    "agent-open-to-the-scheduler": (_agent_open_to_scheduler, "pods other than the API's"),
    "relay-cut-off-from-the-agent": (_relay_cut_off, "the relay pods cannot reach the agent"),
    "relay-without-the-node-secret": (
        _relay_without_node_secret,
        "read MCDASH_NODE_SECRET differently",
    ),
    "game-ports-closed": (_game_ports_closed, "game ports 25565-25665 are not open"),
    "url-names-another-service": (
        _url_names_another_service,
        "advertises http://mcdash-worker-0.mcdash-api.",
    ),
    "agent-on-loopback": (_agent_on_loopback, "listens on 127.0.0.1"),
    "api-mounts-a-claim": (
        _api_gets_a_claim,
        "Deployment/mcdash-api: keeps data on a persistent volume",
    ),
    "api-without-the-node-secret": (
        _api_without_node_secret,
        "read MCDASH_NODE_SECRET differently",
    ),
}


@pytest.mark.parametrize("case", AGENT_BREAKS)
def test_a_wrongly_wired_agent_fails(rendered: list[Obj], case: str) -> None:
    docs = copy.deepcopy(rendered)
    breaks, expected = AGENT_BREAKS[case]
    breaks(docs)
    problems = agent_problems(docs)
    assert any(expected in problem for problem in problems), problems
