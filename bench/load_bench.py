"""Loader benchmark: ``npc.load`` against plain libyaml and plain ``json`` on a big snapshot.

Generates what ``kubectl get ns,pods -A -o yaml`` (and ``-o json``) prints for a cluster of
10,000 pods, with the usual noise (managedFields, status conditions, many labels and
annotations, owner references, projected volumes), writes it to a temporary file and reports,
measured in this one run:

* plain ``yaml.load(CSafeLoader)`` time, ``npc.load`` time and their ratio (target ~1.3x);
* the same for JSON (``json.loads`` against ``npc.load``);
* the cost of the slow path: locating a diagnostic in the last pod of the file.

Each figure is the best of ``--repeat`` runs (the minimum is the least noisy estimate on a
shared machine). Usage: ``python bench/load_bench.py [--pods N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import npc
from npc.frontend.yamlread import resolve_plain

APPS = ("web", "api", "worker", "cache", "db", "auth", "search", "billing", "mail", "queue")
TEAMS = ("payments", "platform", "search", "growth", "core")
ENVS = ("prod", "staging", "dev")
CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _stamp(rng: random.Random) -> str:
    month, day = rng.randint(1, 9), rng.randint(10, 28)
    hour, minute, second = rng.randint(10, 23), rng.randint(10, 59), rng.randint(10, 59)
    return f"2024-0{month}-{day}T{hour}:{minute}:{second}Z"


def namespace(name: str, rng: random.Random) -> dict[str, Any]:
    """A Namespace as ``kubectl get ns -o yaml`` prints it."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "creationTimestamp": _stamp(rng),
            "labels": {
                "kubernetes.io/metadata.name": name,
                "team": rng.choice(TEAMS),
                "env": rng.choice(ENVS),
            },
            "name": name,
            "resourceVersion": str(rng.randint(100, 10**6)),
            "uid": _uid(rng),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _managed_fields(labels: dict[str, str], container: str, port: int, stamp: str) -> list[Any]:
    spec_fields = {
        "f:containers": {
            f'k:{{"name":"{container}"}}': {
                ".": {},
                "f:env": {
                    ".": {},
                    'k:{"name":"LOG_LEVEL"}': {".": {}, "f:name": {}, "f:value": {}},
                },
                "f:image": {},
                "f:imagePullPolicy": {},
                "f:name": {},
                "f:ports": {
                    ".": {},
                    f'k:{{"containerPort":{port},"protocol":"TCP"}}': {
                        ".": {},
                        "f:containerPort": {},
                        "f:name": {},
                        "f:protocol": {},
                    },
                },
                "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}},
                "f:terminationMessagePath": {},
                "f:terminationMessagePolicy": {},
            }
        },
        "f:dnsPolicy": {},
        "f:enableServiceLinks": {},
        "f:restartPolicy": {},
        "f:schedulerName": {},
        "f:securityContext": {},
        "f:terminationGracePeriodSeconds": {},
    }
    status_fields = {
        "f:conditions": {
            f'k:{{"type":"{c}"}}': {
                ".": {},
                "f:lastProbeTime": {},
                "f:lastTransitionTime": {},
                "f:status": {},
                "f:type": {},
            }
            for c in CONDITIONS
        },
        "f:containerStatuses": {},
        "f:hostIP": {},
        "f:phase": {},
        "f:podIP": {},
        "f:podIPs": {".": {}, 'k:{"ip":"10.0.0.1"}': {".": {}, "f:ip": {}}},
        "f:startTime": {},
    }
    return [
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:generateName": {},
                    "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}},
                    "f:ownerReferences": {".": {}, 'k:{"uid":"x"}': {}},
                },
                "f:spec": spec_fields,
            },
            "manager": "kube-controller-manager",
            "operation": "Update",
            "time": stamp,
        },
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": status_fields},
            "manager": "kubelet",
            "operation": "Update",
            "subresource": "status",
            "time": stamp,
        },
    ]


def pod(i: int, ns: str, rng: random.Random) -> dict[str, Any]:
    """A running Pod as ``kubectl get pods -o yaml`` prints it."""
    app = rng.choice(APPS)
    rs_hash = _hex(rng, 10)
    name = f"{app}-{rs_hash}-{_hex(rng, 5)}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    node = f"worker-{i % 50}"
    port = rng.choice((80, 8080, 9090, 5432, 6379))
    stamp = _stamp(rng)
    labels = {
        "app": app,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": f"{app}-{ns}",
        "app.kubernetes.io/version": f"1.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        "app.kubernetes.io/component": rng.choice(("frontend", "backend", "database")),
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/managed-by": "helm",
        "pod-template-hash": rs_hash,
        "team": rng.choice(TEAMS),
        "env": rng.choice(ENVS),
        "tier": rng.choice(("front", "back")),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {
                "cni.projectcalico.org/containerID": _hex(rng, 64),
                "cni.projectcalico.org/podIP": f"{ip}/32",
                "cni.projectcalico.org/podIPs": f"{ip}/32",
                "kubectl.kubernetes.io/restartedAt": stamp,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(port),
            },
            "creationTimestamp": stamp,
            "generateName": f"{app}-{rs_hash}-",
            "labels": labels,
            "managedFields": _managed_fields(labels, app, port, stamp),
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "ReplicaSet",
                    "name": f"{app}-{rs_hash}",
                    "uid": _uid(rng),
                }
            ],
            "resourceVersion": str(rng.randint(10**5, 10**8)),
            "uid": _uid(rng),
        },
        "spec": {
            "containers": [
                {
                    "env": [{"name": "LOG_LEVEL", "value": "info"}],
                    "image": f"registry.example.com/shop/{app}:1.{rng.randint(0, 30)}",
                    "imagePullPolicy": "IfNotPresent",
                    "name": app,
                    "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "512Mi"},
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [
                        {
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "name": f"kube-api-access-{_hex(rng, 5)}",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "nodeName": node,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {
                    "effect": "NoExecute",
                    "key": f"node.kubernetes.io/{what}",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                }
                for what in ("not-ready", "unreachable")
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                    "name": "kube-root-ca.crt",
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                            "path": "namespace",
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                }
            ],
        },
        "status": {
            "conditions": [
                {
                    "lastProbeTime": None,
                    "lastTransitionTime": stamp,
                    "status": "True",
                    "type": c,
                }
                for c in CONDITIONS
            ],
            "containerStatuses": [
                {
                    "containerID": f"containerd://{_hex(rng, 64)}",
                    "image": f"registry.example.com/shop/{app}:1.2",
                    "imageID": f"registry.example.com/shop/{app}@sha256:{_hex(rng, 64)}",
                    "lastState": {},
                    "name": app,
                    "ready": True,
                    "restartCount": rng.choice((0, 0, 0, 1, 3)),
                    "started": True,
                    "state": {"running": {"startedAt": stamp}},
                }
            ],
            "hostIP": f"192.168.0.{i % 50 + 10}",
            "hostIPs": [{"ip": f"192.168.0.{i % 50 + 10}"}],
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "startTime": stamp,
        },
    }


def cluster_list(pods: int, seed: int = 1) -> dict[str, Any]:
    """``kubectl get ns,pods -A -o yaml``: one List of namespaces, then pods."""
    rng = random.Random(seed)
    names = [f"team-{i:02d}" for i in range(max(1, pods // 200))]
    items = [namespace(n, rng) for n in names]
    items += [pod(i, names[i % len(names)], rng) for i in range(pods)]
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


class _KubectlDumper(yaml.CSafeDumper):
    """Quotes every string that kubectl (goyaml v2) would read as something else.

    PyYAML's dumper only knows YAML 1.1 as PyYAML resolves it, so it writes a pod-template-hash
    such as 0907761820 unquoted, which kubectl reads as the number 907761820."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if value and resolve_plain(value) != value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_KubectlDumper.add_representer(str, _represent_str)


def _cpu(func: Callable[[], object]) -> float:
    """CPU seconds of one call (process time: other engineers' jobs on a shared machine do
    not count against it, as wall-clock time would)."""
    gc.collect()
    start = time.process_time()
    func()
    return time.process_time() - start


def _compare(
    plain: Callable[[], object], ours: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Best of ``repeat`` for each, interleaved so both see the same machine conditions."""
    best_plain = best_ours = float("inf")
    for _ in range(repeat):
        best_plain = min(best_plain, _cpu(plain))
        best_ours = min(best_ours, _cpu(ours))
    return best_plain, best_ours


def _json_without_gc(text: str) -> object:
    gc.disable()
    try:
        return json.loads(text)
    finally:
        gc.enable()


def _broken(text: str) -> str:
    """The text with containerPort 0 in the last pod: one error, at the very end."""
    last = text.rfind("containerPort")
    return text[:last] + re.sub(r"\d+", "0", text[last:], count=1)


def _expect_error(source: npc.Source) -> Callable[[], None]:
    def run() -> None:
        try:
            npc.load([source])
        except npc.NpcError as exc:
            (error,) = exc.errors
            assert error.location is not None and error.path.endswith("containerPort")
        else:
            raise AssertionError("the broken input was accepted")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = cluster_list(args.pods)
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path = Path(tmp) / "cluster.yaml"
        json_path = Path(tmp) / "cluster.json"
        yaml_path.write_text(
            yaml.dump(data, Dumper=_KubectlDumper, default_flow_style=False), encoding="utf-8"
        )
        json_path.write_text(json.dumps(data, indent=4), encoding="utf-8")
        del data
        # The same reading path as the CLI (read_sources), checked once.
        for path in (yaml_path, json_path):
            bundle = npc.load(npc.read_sources([str(path)]))
            assert bundle.snapshot is not None and len(bundle.snapshot.pods) == args.pods
            del bundle
        yaml_text = yaml_path.read_text(encoding="utf-8")
        json_text = json_path.read_text(encoding="utf-8")

    digest = hashlib.sha256(yaml_text.encode()).hexdigest()[:12]
    print(
        f"input: `kubectl get ns,pods -A` of {args.pods} pods: YAML {len(yaml_text) / 1e6:.1f} MB, "
        f"JSON {len(json_text) / 1e6:.1f} MB (sha256 {digest}); CPU seconds, best of {args.repeat}"
    )
    yaml_source = npc.Source("cluster.yaml", yaml_text)
    json_source = npc.Source("cluster.json", json_text)
    rows = [
        (
            "YAML",
            "yaml.load(CSafeLoader)",
            *_compare(
                lambda: yaml.load(yaml_text, Loader=yaml.CSafeLoader),
                lambda: npc.load([yaml_source]),
                args.repeat,
            ),
        ),
        (
            "JSON",
            "json.loads",
            *_compare(lambda: json.loads(json_text), lambda: npc.load([json_source]), args.repeat),
        ),
    ]
    for fmt, what, plain, ours in rows:
        print(
            f"{fmt}: {what:24} {plain:8.3f} s   npc.load {ours:8.3f} s   ratio {ours / plain:5.2f}x"
        )
    no_gc, ours = _compare(
        lambda: _json_without_gc(json_text), lambda: npc.load([json_source]), args.repeat
    )
    print(
        f"JSON: json.loads, GC paused   {no_gc:8.3f} s   npc.load {ours:8.3f} s   ratio "
        f"{ours / no_gc:5.2f}x   (npc.load pauses the cyclic GC while it builds)"
    )
    # The slow path: one error in the last pod makes npc walk the file again for its position.
    for fmt, source, plain in (
        ("YAML", npc.Source("cluster.yaml", _broken(yaml_text)), rows[0][2]),
        ("JSON", npc.Source("cluster.json", _broken(json_text)), rows[1][2]),
    ):
        slow = min(_cpu(_expect_error(source)) for _ in range(args.repeat))
        print(
            f"{fmt}: one error in the last pod (position recovered): npc.load {slow:8.3f} s   "
            f"ratio {slow / plain:5.2f}x of plain"
        )


if __name__ == "__main__":
    main()
