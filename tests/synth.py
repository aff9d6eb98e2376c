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

from npc import ir, kubeyaml
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
    return kubeyaml.dump_all([policy_object(p) for p in policies], sort_keys=False)


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
    return kubeyaml.dump(
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


# -- clusters at scale: replicated workloads, templated policies -----------------------------

#: Workload kinds of :func:`scaled_cluster`: app label, tier, named container ports.
WORKLOADS: tuple[tuple[str, str, tuple[tuple[str | None, ir.Protocol, int], ...]], ...] = (
    ("web", "front", (("http", ir.Protocol.TCP, 8080),)),
    ("api", "back", (("http", ir.Protocol.TCP, 8000), ("metrics", ir.Protocol.TCP, 9090))),
    ("db", "data", (("postgres", ir.Protocol.TCP, 5432), ("metrics", ir.Protocol.TCP, 9187))),
    ("cache", "data", (("redis", ir.Protocol.TCP, 6379),)),
    ("worker", "back", (("metrics", ir.Protocol.TCP, 9090),)),
    ("gateway", "front", (("https", ir.Protocol.TCP, 8443), (None, ir.Protocol.UDP, 4789))),
)
SCALED_TEAMS = tuple(f"team{i}" for i in range(10))
SCALED_ENVS = ("prod", "staging", "dev")
#: Every pod address of :func:`scaled_cluster` is in this /10, by pod index.
SCALED_NET = netaddr.IPNetwork("10.64.0.0/10")


def _address(index: int) -> netaddr.IPAddress:
    return netaddr.IPAddress(SCALED_NET.first + 16 + index)


def scaled_cluster(
    rng: random.Random, namespaces: int = 1000, pods_per_namespace: int = 10
) -> Snapshot:
    """A large, realistic cluster: namespaces of 2-4 Deployments whose replicas share labels.

    Namespace 0 is ``kube-system`` (CoreDNS), namespace 1 ``monitoring``, namespace 2
    ``ingress-nginx``; the others belong to a team and an environment. Pod addresses are
    assigned by index in :data:`SCALED_NET` (``10.64.0.16`` upwards), so an ipBlock over a
    range of addresses covers a range of namespaces."""
    nss: list[Namespace] = []
    pods: list[Pod] = []
    for n in range(namespaces):
        special = {0: "kube-system", 1: "monitoring", 2: "ingress-nginx"}.get(n)
        name = special or f"ns{n:04d}"
        labels = {"kubernetes.io/metadata.name": name}
        if special is None:
            labels["team"] = rng.choice(SCALED_TEAMS)
            labels["env"] = rng.choice(SCALED_ENVS)
        else:
            labels["role"] = "platform"
        nss.append(Namespace(name, frozen_labels(labels)))
        if special == "kube-system":
            deployments: list[tuple[str, str, tuple[tuple[str | None, ir.Protocol, int], ...]]]
            deployments = [
                (
                    "coredns",
                    "platform",
                    (("dns", ir.Protocol.UDP, 53), ("dns-tcp", ir.Protocol.TCP, 53)),
                )
            ]
        else:
            deployments = rng.sample(WORKLOADS, rng.randint(2, 4))
        for k in range(pods_per_namespace):
            app, tier, ports = deployments[k % len(deployments)]
            labels = {"app": app, "tier": tier, "pod-template-hash": f"{n:04x}{app[:3]}"}
            if app == "coredns":
                labels = {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"}
            pods.append(
                Pod(
                    namespace=name,
                    name=f"{app}-{k}",
                    labels=frozen_labels(labels),
                    ips=(_address(len(pods)),),
                    node_name=f"node{len(pods) % 50}",
                    ports=tuple(
                        ContainerPort(number, proto, pname) for pname, proto, number in ports
                    ),
                )
            )
    return Snapshot(tuple(nss), tuple(pods))


def _app(name: str) -> ir.LabelSelector:
    return ir.LabelSelector.of({"app": name})


def _ns_name(name: str) -> ir.LabelSelector:
    return ir.LabelSelector.of({"kubernetes.io/metadata.name": name})


def _partner_block(rng: random.Random) -> ir.AddressPeer:
    """A /22 of pod addresses (about 100 namespaces) minus a /26 inside it."""
    base = 4 * rng.randint(0, 15)
    inner = base + rng.randint(0, 3)
    return ir.AddressPeer.block(f"10.64.{base}.0/22", f"10.64.{inner}.{64 * rng.randint(0, 3)}/26")


def scaled_policies(rng: random.Random, snapshot: Snapshot, count: int = 5000) -> ir.PolicySet:
    """``count`` policies from the templates teams actually write, spread over the
    namespaces of :func:`scaled_cluster` (default deny, same namespace, DNS egress, ingress
    controller, monitoring, app to database, team namespaces, ipBlocks with except)."""
    names = [ns.name for ns in snapshot.namespaces if ns.name.startswith("ns")]
    internet = ir.AddressPeer.block("0.0.0.0/0", str(SCALED_NET))
    dns = ir.PodPeer(_ns_name("kube-system"), ir.LabelSelector.of({"k8s-app": "kube-dns"}))
    templates = (
        ("deny-ingress", lambda: (ir.EVERYTHING, (), None)),
        ("deny-egress", lambda: (ir.EVERYTHING, None, ())),
        (
            "same-namespace",
            lambda: (ir.EVERYTHING, (ir.Rule((ir.PodPeer(ir.SAME_NAMESPACE),)),), None),
        ),
        (
            "dns-egress",
            lambda: (
                ir.EVERYTHING,
                None,
                (ir.Rule((dns,), ir.PortSet.of((ir.Protocol.UDP, 53), (ir.Protocol.TCP, 53))),),
            ),
        ),
        (
            "from-ingress",
            lambda: (
                _app("web"),
                (
                    ir.Rule(
                        (ir.PodPeer(_ns_name("ingress-nginx")),),
                        ir.PortSet.of((ir.Protocol.TCP, "http")),
                    ),
                ),
                None,
            ),
        ),
        (
            "monitoring",
            lambda: (
                ir.EVERYTHING,
                (
                    ir.Rule(
                        (ir.PodPeer(_ns_name("monitoring")),),
                        ir.PortSet.of((ir.Protocol.TCP, "metrics")),
                    ),
                ),
                None,
            ),
        ),
        (
            "api-to-db",
            lambda: (
                _app("db"),
                (
                    ir.Rule(
                        (ir.PodPeer(ir.SAME_NAMESPACE, _app("api")),),
                        ir.PortSet.of((ir.Protocol.TCP, "postgres")),
                    ),
                ),
                None,
            ),
        ),
        (
            "from-team",
            lambda: (
                _app(rng.choice(("api", "web", "gateway"))),
                (
                    ir.Rule(
                        (
                            ir.PodPeer(
                                ir.LabelSelector.of(
                                    {"team": rng.choice(SCALED_TEAMS)},
                                    ir.Requirement(
                                        "env", ir.Operator.NOT_IN, (rng.choice(SCALED_ENVS),)
                                    ),
                                ),
                                _app(rng.choice(("api", "web", "worker"))),
                            ),
                        ),
                        ir.PortSet.of((ir.Protocol.TCP, (8000, 8443))),
                    ),
                ),
                None,
            ),
        ),
        (
            "internet-egress",
            lambda: (
                ir.LabelSelector((), (ir.Requirement("tier", ir.Operator.IN, ("front", "back")),)),
                None,
                (ir.Rule((internet,), ir.PortSet.of((ir.Protocol.TCP, 443))),),
            ),
        ),
        (
            "partner-range",
            lambda: (
                _app("gateway"),
                (
                    ir.Rule(
                        (_partner_block(rng),),
                        ir.PortSet.of((ir.Protocol.UDP, 4789), (ir.Protocol.TCP, "https")),
                    ),
                ),
                None,
            ),
        ),
    )
    policies = []
    for i in range(count):
        namespace = names[i % len(names)]
        label, make = rng.choice(templates)
        selector, ingress, egress = make()
        policies.append(
            ir.Policy(namespace, f"{label}-{i}", selector, ingress=ingress, egress=egress)
        )
    return ir.PolicySet(tuple(policies))
