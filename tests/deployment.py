"""Reading the deployment files as compose and Kubernetes would: services, pod templates, env.

Shared by tests/unit/test_deployment_settings.py (names and values against `Settings`) and
tests/unit/test_kustomize.py (what `kubectl kustomize k8s/` renders).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "k8s"
EXAMPLE_SECRET = K8S_DIR / "secret.example.yaml"
NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

Obj = dict[str, Any]


@dataclass(frozen=True)
class EnvEntry:
    """One variable a file gives a process; `value` is None when it is not a literal."""

    where: str
    name: str
    value: str | None


# ---------------------------------------------------------------- compose


def load_compose(text: str | None = None) -> Obj:
    """The compose file (or this text of it) with its YAML anchors and `<<` merges resolved,
    as compose reads them."""
    data = yaml.safe_load(COMPOSE_FILE.read_text() if text is None else text)
    assert isinstance(data, dict)
    return data


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_]\w*))"
)


def compose_literal(value: object) -> str | None:
    """What compose gives the container when no variable is set: `${X:-default}` is its
    default, `$$` a `$`; None when a variable has no default (`${X}`, `${X:?error}`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    unresolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unresolved
        if match["escaped"]:
            return "$"
        if match["op"] in (":-", "-"):
            return match["arg"]
        unresolved = True
        return ""

    text = _INTERPOLATION.sub(substitute, str(value))
    return None if unresolved else text


def compose_environment(service: Obj) -> dict[str, object]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def compose_command(service: Obj) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def is_mcdash_service(service: Obj) -> bool:
    return str(service.get("image", "")).startswith("mcdash")


def is_compose_worker(service: Obj) -> bool:
    """A node worker: `mcdash worker`, or the worker image's default command."""
    command = compose_command(service)
    if command:
        return command[:2] == ["mcdash", "worker"]
    build = service.get("build") or {}
    return str(service.get("image", "")).startswith("mcdash-worker") or (
        isinstance(build, dict) and build.get("target") == "worker"
    )


def option(command: list[str], flag: str) -> str | None:
    """The value of `--flag X` or `--flag=X` in a command, also inside `sh -c "..."`."""
    words = [word for part in command for word in part.replace("=", " ").split()]
    for index, word in enumerate(words[:-1]):
        if word == flag:
            return words[index + 1].strip("\"'")
    return None


# ---------------------------------------------------------------- Kubernetes


def k8s_files() -> list[Path]:
    return sorted(K8S_DIR.glob("*.yaml"))


def load_documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def pod_template(obj: Obj) -> Obj | None:
    """The pod (metadata and spec) an object runs, if it runs one."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return obj
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return spec.get("template")
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return None


def containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", "default"))


def name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def selects(selector: Mapping[str, Any] | None, pod_labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions, or a Service's plain map)."""
    if not selector:
        return True
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    for key, value in (selector.get("matchLabels") or {}).items():
        if pod_labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in pod_labels
        if not {
            "In": present and pod_labels.get(key) in values,
            "NotIn": not present or pod_labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def config_data(obj: Obj) -> dict[str, str]:
    """The keys and values of a ConfigMap or Secret (data decoded)."""
    values = {key: str(value) for key, value in (obj.get("stringData") or {}).items()}
    for key, value in (obj.get("data") or {}).items():
        values[key] = base64.b64decode(value).decode() if obj["kind"] == "Secret" else str(value)
    return values


def is_k8s_worker(container: Obj) -> bool:
    words = " ".join(
        str(part) for part in [*container.get("command", []), *container.get("args", [])]
    )
    return "mcdash worker" in words or (
        not words and "mcdash-worker" in str(container.get("image", ""))
    )


def example_pod_name(obj: Obj) -> str:
    """The first pod's name: ordinal 0 for a StatefulSet, a generated suffix elsewhere."""
    return f"{name(obj)}-0" if obj.get("kind") == "StatefulSet" else f"{name(obj)}-7d4b9-x2x7k"


_EXPANSION = re.compile(r"\$\$|\$\((?P<var>[A-Za-z_][\w.-]*)\)")


def expand(raw: str, known: Mapping[str, str | None]) -> str | None:
    """`$(VAR)` replaced by an earlier variable's value, `$$` by `$`; None when a variable is
    unknown (the kubelet would then leave `$(VAR)` in the value as it is)."""
    missing = [
        m["var"] for m in _EXPANSION.finditer(raw) if m["var"] and known.get(m["var"]) is None
    ]
    if missing:
        return None
    return _EXPANSION.sub(lambda m: "$" if m["var"] is None else str(known[m["var"]]), raw)


def container_env(obj: Obj, container: Obj, where: str) -> Iterator[EnvEntry]:
    """The container's `env` in order, as the kubelet sets it: `$(VAR)` expanded from the
    entries before it, fieldRefs to the pod's name and namespace resolved; None for values
    from a Secret or ConfigMap key (and anything else not written in the file)."""
    known: dict[str, str | None] = {}
    fields = {"metadata.name": example_pod_name(obj), "metadata.namespace": namespace(obj)}
    for entry in container.get("env", []):
        if "value" in entry:
            value = expand(str(entry["value"]), known)
        else:
            field = (entry.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            value = fields.get(field) if field else None
        known[entry["name"]] = value
        yield EnvEntry(where, entry["name"], value)


def env_from_field(container: Obj, var: str) -> str | None:
    """The fieldPath a variable of the container's env is read from, if it is a fieldRef."""
    for entry in container.get("env", []):
        if entry["name"] == var:
            return (entry.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
    return None


def env_value_from(container: Obj, var: str) -> Obj | None:
    for entry in container.get("env", []):
        if entry["name"] == var:
            return entry.get("valueFrom")
    return None


def effective_env(
    obj: Obj, container: Obj, sources: Mapping[tuple[str, str], Mapping[str, str | None]]
) -> dict[str, str]:
    """The container's literal environment: its envFrom ConfigMaps and Secrets (from
    `sources`, by kind and name), then its own env, which wins; values not written in the
    files are left out."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                found = sources.get((kind, source[ref]["name"]), {})
                env |= {k: v for k, v in found.items() if v is not None}
    for entry in container_env(obj, container, ""):
        env.pop(entry.name, None)
        if entry.value is not None:
            env[entry.name] = entry.value
    return env


# ---------------------------------------------------------------- the variables the files set


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def compose_entries(compose: Obj) -> Iterator[EnvEntry]:
    for service_name, service in compose["services"].items():
        for key, raw in compose_environment(service).items():
            yield EnvEntry(f"services.{service_name}", key, compose_literal(raw))


def k8s_entries(docs: Iterable[Obj]) -> Iterator[EnvEntry]:
    """ConfigMap and Secret keys (each becomes a variable through envFrom) and container env.
    An empty value in a Secret is a placeholder the operator fills, not a setting."""
    for obj in docs:
        where = f"{obj['kind']}/{name(obj)}"
        if obj["kind"] in ("ConfigMap", "Secret"):
            for key, value in config_data(obj).items():
                literal = None if obj["kind"] == "Secret" and not value else value
                yield EnvEntry(where, key, literal)
        pod = pod_template(obj)
        for container in containers(pod) if pod else []:
            yield from container_env(obj, container, f"{where}/{container['name']}")


def entries_of(label: str, text: str) -> list[EnvEntry]:
    if label == relative(COMPOSE_FILE):
        return list(compose_entries(load_compose(text)))
    return list(k8s_entries(load_documents(text)))


def k8s_documents() -> list[Obj]:
    return [doc for path in k8s_files() for doc in load_documents(path.read_text())]


DEPLOYMENT_FILES = {relative(path): path for path in [COMPOSE_FILE, *k8s_files()]}
