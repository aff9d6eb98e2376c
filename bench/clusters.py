"""The benchmark clusters of issue 13: deterministic, at any number of namespaces.

    .venv/bin/python bench/clusters.py 1000 /tmp/c1000     # writes {cluster,policies}.{json,yaml}

A cluster of ``namespaces`` namespaces holds ten pods each (replicated Deployments of
:func:`tests.synth.scaled_cluster`: web, api, db, cache, worker, gateway; CoreDNS in
``kube-system``), spread round-robin over 100 nodes (``node000`` ...), and five
NetworkPolicies per namespace, as teams write them:

* ``default-deny``: every pod isolated in both directions;
* ``allow-dns``: every pod may reach CoreDNS (``kube-system``, ``k8s-app=kube-dns``) on
  UDP and TCP 53;
* ``web``: ``app=web`` admits the ingress controller's namespace on the named port ``http``
  and may reach its namespace's ``app=api`` on the named port ``http`` (resolved per
  destination pod);
* ``api``: ``app=api`` admits its namespace's ``app=web`` on ``http`` and gateways of one
  team's namespaces outside one environment (``namespaceSelector`` with ``NotIn``) on
  TCP 8000-8443 (``endPort``); it may reach its namespace's ``app=db`` on ``postgres`` and
  the internet on TCP 443 (``0.0.0.0/0`` except the pod network);
* ``db``: ``app=db`` admits its namespace's ``app=api`` on ``postgres``, the monitoring
  namespace on ``metrics``, and a backup range (a /22 of pod addresses except a /26 in it)
  on TCP 5432-5433.

1,000 namespaces make the 10,000-pod, 5,000-policy cluster of the issue. Everything derives
from ``seed``, so every run (and every size) writes the same bytes.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.synth (the generators live with the tests)

from npc import ir, kubeyaml  # noqa: E402
from npc.snapshot import Snapshot  # noqa: E402
from tests.synth import (  # noqa: E402
    SCALED_ENVS,
    SCALED_NET,
    SCALED_TEAMS,
    cluster_objects,
    policy_object,
    scaled_cluster,
)

__all__ = ["NODES", "bench_cluster", "namespace_policies", "write_cluster"]

#: Nodes the pods are spread over (``--node`` keeps one of them).
NODES = 100
PODS_PER_NAMESPACE = 10

_TCP, _UDP = ir.Protocol.TCP, ir.Protocol.UDP


def _labels(**labels: str) -> ir.LabelSelector:
    return ir.LabelSelector.of({k.replace("_", "-"): v for k, v in labels.items()})


def _ns(name: str) -> ir.LabelSelector:
    return ir.LabelSelector.of({"kubernetes.io/metadata.name": name})


def namespace_policies(rng: random.Random, namespace: str) -> list[ir.Policy]:
    """The five policies of one namespace (see the module docstring)."""
    same = ir.SAME_NAMESPACE
    dns = ir.PodPeer(_ns("kube-system"), _labels(k8s_app="kube-dns"))
    team = ir.LabelSelector.of(
        {"team": rng.choice(SCALED_TEAMS)},
        ir.Requirement("env", ir.Operator.NOT_IN, (rng.choice(SCALED_ENVS),)),
    )
    base = 4 * rng.randint(0, 15)  # a /22 of pod addresses (about 100 namespaces) ...
    inner = base + rng.randint(0, 3)  # ... minus a /26 inside it
    backup = ir.AddressPeer.block(
        f"10.64.{base}.0/22", f"10.64.{inner}.{64 * rng.randint(0, 3)}/26"
    )
    internet = ir.AddressPeer.block("0.0.0.0/0", str(SCALED_NET))

    def policy(
        name: str,
        selector: ir.LabelSelector,
        ingress: tuple[ir.Rule, ...] | None = None,
        egress: tuple[ir.Rule, ...] | None = None,
    ) -> ir.Policy:
        return ir.Policy(namespace, name, selector, ingress=ingress, egress=egress)

    return [
        policy("default-deny", ir.EVERYTHING, (), ()),
        policy(
            "allow-dns",
            ir.EVERYTHING,
            egress=(ir.Rule((dns,), ir.PortSet.of((_UDP, 53), (_TCP, 53))),),
        ),
        policy(
            "web",
            _labels(app="web"),
            (ir.Rule((ir.PodPeer(_ns("ingress-nginx")),), ir.PortSet.of((_TCP, "http"))),),
            (ir.Rule((ir.PodPeer(same, _labels(app="api")),), ir.PortSet.of((_TCP, "http"))),),
        ),
        policy(
            "api",
            _labels(app="api"),
            (
                ir.Rule((ir.PodPeer(same, _labels(app="web")),), ir.PortSet.of((_TCP, "http"))),
                ir.Rule(
                    (ir.PodPeer(team, _labels(app="gateway")),),
                    ir.PortSet.of((_TCP, (8000, 8443))),
                ),
            ),
            (
                ir.Rule((ir.PodPeer(same, _labels(app="db")),), ir.PortSet.of((_TCP, "postgres"))),
                ir.Rule((internet,), ir.PortSet.of((_TCP, 443))),
            ),
        ),
        policy(
            "db",
            _labels(app="db"),
            (
                ir.Rule((ir.PodPeer(same, _labels(app="api")),), ir.PortSet.of((_TCP, "postgres"))),
                ir.Rule((ir.PodPeer(_ns("monitoring")),), ir.PortSet.of((_TCP, "metrics"))),
                ir.Rule((backup,), ir.PortSet.of((_TCP, (5432, 5433)))),
            ),
        ),
    ]


def bench_cluster(namespaces: int, seed: int = 13) -> tuple[Snapshot, ir.PolicySet]:
    """The snapshot and policies of the ``namespaces``-namespace benchmark cluster."""
    rng = random.Random(seed)
    snapshot = scaled_cluster(rng, namespaces, PODS_PER_NAMESPACE)
    pods = tuple(
        replace(pod, node_name=f"node{i % NODES:03d}") for i, pod in enumerate(snapshot.pods)
    )
    snapshot = Snapshot(snapshot.namespaces, pods)
    policies = [p for ns in snapshot.namespaces for p in namespace_policies(rng, ns.name)]
    return snapshot, ir.PolicySet(tuple(policies))


def _as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``kubectl get -o json`` prints: a ``List`` of the objects."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def write_cluster(namespaces: int, directory: Path, seed: int = 13) -> dict[str, Path]:
    """Write ``cluster`` and ``policies`` as JSON (``kubectl get -o json``) and YAML
    (``-o yaml``) into ``directory``; returns ``{"cluster.json": path, ...}``."""
    snapshot, policies = bench_cluster(namespaces, seed)
    documents = {
        "cluster": _as_list(cluster_objects(snapshot)),
        "policies": _as_list([policy_object(p) for p in policies]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for stem, doc in documents.items():
        for suffix, text in (
            ("json", json.dumps(doc, indent=4) + "\n"),
            ("yaml", kubeyaml.dump(doc, sort_keys=False)),
        ):
            path = directory / f"{stem}.{suffix}"
            path.write_text(text, encoding="utf-8")
            written[path.name] = path
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} NAMESPACES DIRECTORY")
    for path in write_cluster(int(sys.argv[1]), Path(sys.argv[2])).values():
        print(f"{path}  {path.stat().st_size:,} bytes")
