"""Synthetic clusters and policies, for property tests, kernel tests and benchmarks.

Everything is seeded (``random.Random``), so a failing case can be replayed from its seed.
Labels, ports and addresses come from small vocabularies so that random selectors actually
match random pods, and ipBlocks overlap pod addresses. :func:`policy_yaml` and
:func:`cluster_yaml` render IR back into the Kubernetes YAML npc reads.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import netaddr
import yaml

from npc import ir
from npc.snapshot import ContainerPort, Namespace, Pod, Snapshot, frozen_labels

APPS = ("web", "db", "cache", "api")
TIERS = ("front", "back")
TEAMS = ("a", "b", "c")
NS_ENVS = ("prod", "dev")
NUMERIC_PORTS = (80, 443, 5432, 8080, 9000)
NAMED = (
    ("http", ir.Protocol.TCP, (80, 8080)),
    ("dns", ir.Protocol.UDP, (53, 5353)),
    ("metrics", ir.Protocol.TCP, (9000, 9100)),
)


def random_cluster(
    rng: random.Random,
    namespaces: int = 3,
    pods: int = 8,
    *,
    ipv6: bool = False,
    host_network: bool = False,
    base: str = "10.77",
) -> Snapshot:
    """A small cluster: pods spread over namespaces, with labels, named ports and IPs.

    Pod i gets ``<base>.<ns>.<i+2>`` (and ``fd77::<ns>:<i+2>`` with ``ipv6``)."""
    nss = []
    for n in range(namespaces):
        name = f"ns{n}"
        labels = {"kubernetes.io/metadata.name": name}
        if rng.random() < 0.7:
            labels["env"] = rng.choice(NS_ENVS)
        if rng.random() < 0.5:
            labels["team"] = rng.choice(TEAMS)
        nss.append(Namespace(name, frozen_labels(labels)))
    pod_list = []
    for i in range(pods):
        ns_index = i % namespaces
        labels: dict[str, str] = {}
        if rng.random() < 0.9:
            labels["app"] = rng.choice(APPS)
        if rng.random() < 0.5:
            labels["tier"] = rng.choice(TIERS)
        if rng.random() < 0.2:
            labels["canary"] = "true"
        ips = [netaddr.IPAddress(f"{base}.{ns_index}.{i + 2}")]
        if ipv6:
            ips.append(netaddr.IPAddress(f"fd77::{ns_index}:{i + 2}"))
        ports = []
        for name, proto, numbers in NAMED:
            if rng.random() < 0.5:
                ports.append(ContainerPort(rng.choice(numbers), proto, name))
        if rng.random() < 0.3:
            ports.append(ContainerPort(rng.choice(NUMERIC_PORTS)))
        pod_list.append(
            Pod(
                namespace=f"ns{ns_index}",
                name=f"pod{i}",
                labels=frozen_labels(labels),
                ips=tuple(ips),
                host_network=host_network and rng.random() < 0.1,
                node_name=f"node{i % 2}",
                ports=tuple(ports),
            )
        )
    return Snapshot(tuple(nss), tuple(pod_list))


def random_selector(rng: random.Random, pod: bool = True) -> ir.LabelSelector:
    if rng.random() < 0.25:
        return ir.EVERYTHING
    terms: list[ir.Requirement] = []
    labels: dict[str, str] = {}
    keys = ("app", "tier", "canary") if pod else ("env", "team", "kubernetes.io/metadata.name")
    vocab = {
        "app": APPS,
        "tier": TIERS,
        "canary": ("true",),
        "env": NS_ENVS,
        "team": TEAMS,
        "kubernetes.io/metadata.name": ("ns0", "ns1", "ns2"),
    }
    for _ in range(rng.randint(1, 2)):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.5:
            labels[key] = rng.choice(vocab[key])
        elif roll < 0.7:
            terms.append(
                ir.Requirement(
                    key, ir.Operator.IN, tuple(rng.sample(vocab[key], min(2, len(vocab[key]))))
                )
            )
        elif roll < 0.8:
            terms.append(ir.Requirement(key, ir.Operator.NOT_IN, (rng.choice(vocab[key]),)))
        elif roll < 0.9:
            terms.append(ir.Requirement(key, ir.Operator.EXISTS))
        else:
            terms.append(ir.Requirement(key, ir.Operator.DOES_NOT_EXIST))
    return ir.LabelSelector(tuple(labels.items()), tuple(terms))


def random_block(rng: random.Random, base: str = "10.77", ipv6: bool = False) -> ir.AddressPeer:
    if ipv6 and rng.random() < 0.3:
        cidr = netaddr.IPNetwork(f"fd77::{rng.randint(0, 2)}:0/{rng.choice((112, 120))}")
        if rng.random() < 0.5:
            return ir.AddressPeer.block(cidr, netaddr.IPNetwork(f"{cidr.network + 2}/127"))
        return ir.AddressPeer.block(cidr)
    roll = rng.random()
    if roll < 0.2:
        cidr = netaddr.IPNetwork("0.0.0.0/0")
    elif roll < 0.5:
        cidr = netaddr.IPNetwork(f"{base}.0.0/16")
    else:
        cidr = netaddr.IPNetwork(f"{base}.{rng.randint(0, 2)}.0/{rng.choice((24, 28, 30))}")
    excepts = []
    if rng.random() < 0.5 and cidr.prefixlen < 30:
        inner = list(cidr.subnet(min(cidr.prefixlen + rng.randint(2, 8), 32)))
        pick = rng.choice(inner[:64])
        excepts.append(pick)
    if cidr.prefixlen == 0 and rng.random() < 0.7:
        excepts = [netaddr.IPNetwork(f"{base}.{rng.randint(0, 2)}.0/24")]
    return ir.AddressPeer.block(cidr, *excepts)


def random_ports(rng: random.Random) -> ir.Ports:
    if rng.random() < 0.3:
        return ir.ANY_PORT
    items: list[tuple[ir.Protocol | str, int | str | tuple[int, int] | None]] = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.45:
            items.append((ir.Protocol.TCP, rng.choice(NUMERIC_PORTS)))
        elif roll < 0.6:
            start = rng.choice(NUMERIC_PORTS)
            items.append((ir.Protocol.TCP, (start, start + rng.choice((0, 1, 100, 1000)))))
        elif roll < 0.8:
            name, proto, _ = rng.choice(NAMED)
            items.append((proto, name))
        elif roll < 0.9:
            items.append((ir.Protocol.UDP, rng.choice((53, 5353, 9000))))
        else:
            items.append((rng.choice((ir.Protocol.UDP, ir.Protocol.SCTP)), None))
    return ir.PortSet.of(*items)


def random_peers(rng: random.Random, ipv6: bool = False) -> ir.Peers:
    if rng.random() < 0.2:
        return ir.ANY_PEER
    peers: list[ir.Peer] = []
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.3:
            peers.append(random_block(rng, ipv6=ipv6))
        elif roll < 0.6:
            peers.append(ir.PodPeer(ir.SAME_NAMESPACE, random_selector(rng)))
        elif roll < 0.8:
            peers.append(ir.PodPeer(random_selector(rng, pod=False), ir.EVERYTHING))
        else:
            peers.append(ir.PodPeer(random_selector(rng, pod=False), random_selector(rng)))
    return tuple(peers)


def random_policies(
    rng: random.Random, snapshot: Snapshot, count: int = 4, *, ipv6: bool = False
) -> ir.PolicySet:
    names = [ns.name for ns in snapshot.namespaces]
    policies = []
    for i in range(count):
        directions: dict[str, tuple[ir.Rule, ...] | None] = {"ingress": None, "egress": None}
        kinds = rng.choice((("ingress",), ("egress",), ("ingress", "egress")))
        for d in kinds:
            directions[d] = tuple(
                ir.Rule(random_peers(rng, ipv6), random_ports(rng))
                for _ in range(rng.choice((0, 1, 1, 2, 3)))
            )
        policies.append(
            ir.Policy(
                namespace=rng.choice(names),
                name=f"policy{i}",
                pod_selector=random_selector(rng),
                ingress=directions["ingress"],
                egress=directions["egress"],
            )
        )
    return ir.PolicySet(tuple(policies))


# -- rendering back to Kubernetes YAML ------------------------------------------------------


def _selector(sel: ir.LabelSelector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sel.match_labels:
        out["matchLabels"] = dict(sel.match_labels)
    if sel.match_expressions:
        out["matchExpressions"] = [
            {
                "key": r.key,
                "operator": str(r.operator),
                **({"values": list(r.values)} if r.values else {}),
            }
            for r in sel.match_expressions
        ]
    return out


def _peer(peer: ir.Peer) -> dict[str, Any]:
    if isinstance(peer, ir.AddressPeer):
        assert peer.cidr is not None, "render needs the ipBlock as written"
        block: dict[str, Any] = {"cidr": str(peer.cidr)}
        if peer.excepts:
            block["except"] = [str(e) for e in peer.excepts]
        return {"ipBlock": block}
    out: dict[str, Any] = {}
    if isinstance(peer.namespaces, ir.LabelSelector):
        out["namespaceSelector"] = _selector(peer.namespaces)
        if not peer.pods.is_everything:
            out["podSelector"] = _selector(peer.pods)
    else:
        out["podSelector"] = _selector(peer.pods)
    return out


def _ports(ports: ir.Ports) -> list[dict[str, Any]]:
    if isinstance(ports, ir.AnyPort):
        return []
    out: list[dict[str, Any]] = []
    for e in ports.entries:
        if e.all_ports:
            out.append({"protocol": str(e.protocol)})
            continue
        for r in e.ranges:
            item: dict[str, Any] = {"protocol": str(e.protocol), "port": r.start}
            if r.end != r.start:
                item["endPort"] = r.end
            out.append(item)
        out.extend({"protocol": str(e.protocol), "port": n} for n in e.named)
    return out


def _rules(rules: tuple[ir.Rule, ...], peer_key: str) -> list[dict[str, Any]]:
    out = []
    for r in rules:
        item: dict[str, Any] = {}
        if isinstance(r.peers, tuple):
            item[peer_key] = [_peer(p) for p in r.peers]
        ports = _ports(r.ports)
        if ports:
            item["ports"] = ports
        out.append(item)
    return out


def policy_object(p: ir.Policy) -> dict[str, Any]:
    types = [t for t, r in (("Ingress", p.ingress), ("Egress", p.egress)) if r is not None]
    spec: dict[str, Any] = {"podSelector": _selector(p.pod_selector), "policyTypes": types}
    if p.ingress:
        spec["ingress"] = _rules(p.ingress, "from")
    if p.egress:
        spec["egress"] = _rules(p.egress, "to")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": p.name, "namespace": p.namespace},
        "spec": spec,
    }


def policy_yaml(policies: ir.PolicySet) -> str:
    return yaml.safe_dump_all([policy_object(p) for p in policies], sort_keys=False)


def cluster_objects(snapshot: Snapshot) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns.name, "labels": dict(ns.labels)},
        }
        for ns in snapshot.namespaces
    ]
    for p in snapshot.pods:
        container: dict[str, Any] = {"name": "main", "image": "busybox"}
        if p.ports:
            container["ports"] = [
                {
                    "containerPort": cp.port,
                    "protocol": str(cp.protocol),
                    **({"name": cp.name} if cp.name else {}),
                }
                for cp in p.ports
            ]
        spec: dict[str, Any] = {"containers": [container]}
        if p.node_name:
            spec["nodeName"] = p.node_name
        if p.host_network:
            spec["hostNetwork"] = True
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels)},
                "spec": spec,
                "status": {
                    "phase": "Running",
                    "podIP": str(p.ips[0]),
                    "podIPs": [{"ip": str(a)} for a in p.ips],
                },
            }
        )
    return items


def cluster_yaml(snapshot: Snapshot) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "List", "items": cluster_objects(snapshot)}, sort_keys=False
    )


def probe_ports(snapshot: Snapshot, policies: ir.PolicySet) -> Sequence[tuple[ir.Protocol, int]]:
    """(protocol, port) pairs worth probing: every container port and every port policies name."""
    found: set[tuple[ir.Protocol, int]] = {
        (cp.protocol, cp.port) for p in snapshot.pods for cp in p.ports
    }
    for pol in policies:
        for rules in (pol.ingress or (), pol.egress or ()):
            for r in rules:
                if isinstance(r.ports, ir.PortSet):
                    for e in r.ports.entries:
                        for rng_ in e.ranges:
                            if rng_ != ir.ALL_PORTS:
                                found.add((e.protocol, rng_.start))
                                found.add((e.protocol, rng_.end))
    found.add((ir.Protocol.TCP, 12345))
    return sorted(found)


def large_policy(
    snapshot: Snapshot,
    *,
    rules: int = 1100,
    ports: int = 120,
    blocks: int = 20,
    excepts: int = 300,
) -> ir.Policy:
    """One ingress policy beyond per-object limits of enforcement points (Calico allows
    1,024 rules per direction, 50 ports per rule, 256 nets per rule), in the first namespace:

    * ``rules`` rules, rule i admitting pods of the namespace with ``app: APPS[i % 4]`` on
      TCP port ``5000 + i``;
    * one rule admitting the policy's namespace on ``ports`` TCP ports 1000, 1002, 1004...;
    * one rule with ``blocks`` ipBlock peers ``10.98.<k // 200>.<k % 200>/32``, any port;
    * one rule admitting ``10.99.0.0/16`` except ``excepts`` odd addresses
      ``10.99.<k // 128>.<2 * (k % 128) + 1>``, on UDP/53.
    """
    tcp, udp = ir.Protocol.TCP, ir.Protocol.UDP
    out = [
        ir.Rule(
            (ir.PodPeer(ir.SAME_NAMESPACE, ir.LabelSelector.of({"app": APPS[i % len(APPS)]})),),
            ir.PortSet.of((tcp, 5000 + i)),
        )
        for i in range(rules)
    ]
    out.append(
        ir.Rule(
            (ir.PodPeer(ir.SAME_NAMESPACE),),
            ir.PortSet.of(*((tcp, 1000 + 2 * k) for k in range(ports))),
        )
    )
    out.append(
        ir.Rule(
            tuple(ir.AddressPeer.block(f"10.98.{k // 200}.{k % 200}/32") for k in range(blocks))
        )
    )
    holes = [f"10.99.{k // 128}.{2 * (k % 128) + 1}/32" for k in range(excepts)]
    out.append(ir.Rule((ir.AddressPeer.block("10.99.0.0/16", *holes),), ir.PortSet.of((udp, 53))))
    return ir.Policy(snapshot.namespaces[0].name, "large", ir.EVERYTHING, tuple(out), None)
