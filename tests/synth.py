"""Synthetic clusters and policies, for property tests, kernel tests and benchmarks.

Everything is seeded (``random.Random``), so a failing case can be replayed from its seed.
Labels, ports and addresses come from small vocabularies so that random selectors actually
match random pods, and ipBlocks overlap pod addresses. :func:`policy_yaml` and
:func:`cluster_yaml` render IR back into the Kubernetes YAML npc reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
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


# -- clusters at benchmark scale --------------------------------------------------------------

#: Pod addresses of :func:`cluster_at_scale`, by pod index (10,000 pods fit many times over).
SCALE_NET = netaddr.IPNetwork("10.64.0.0/10")
_TCP, _UDP = ir.Protocol.TCP, ir.Protocol.UDP
#: Deployments of :func:`cluster_at_scale`: app label and named container ports.
SCALE_APPS: tuple[tuple[str, tuple[tuple[str, ir.Protocol, int], ...]], ...] = (
    ("web", (("http", _TCP, 8080),)),
    ("api", (("http", _TCP, 8000), ("metrics", _TCP, 9090))),
    ("db", (("pg", _TCP, 5432), ("metrics", _TCP, 9187))),
    ("cache", (("redis", _TCP, 6379),)),
    ("worker", (("metrics", _TCP, 9090),)),
)
_PLATFORM = {
    "kube-system": ("coredns", (("dns", _UDP, 53), ("dns-tcp", _TCP, 53)), {"k8s-app": "kube-dns"}),
    "monitoring": ("prometheus", (("web", _TCP, 9090),), {"app": "prometheus"}),
    "ingress": ("controller", (("https", _TCP, 8443),), {"app": "ingress-controller"}),
}


def cluster_at_scale(rng: random.Random, namespaces: int = 1000, pods: int = 10000) -> Snapshot:
    """A large cluster: three platform namespaces (``kube-system``, ``monitoring``,
    ``ingress``), then team namespaces (labels ``team``, ``env``) each running a few
    deployments whose replicas share labels and named ports. Pod ``i`` has address
    ``SCALE_NET.first + 256 + i``; pods are spread evenly over namespaces and 50 nodes."""
    nss: list[Namespace] = []
    pod_list: list[Pod] = []
    per_ns = max(1, pods // namespaces)
    for n in range(namespaces):
        platform = list(_PLATFORM)[n] if n < len(_PLATFORM) else None
        name = platform or f"team-ns{n:04d}"
        labels = {"kubernetes.io/metadata.name": name}
        if platform is None:
            labels |= {"team": f"t{rng.randrange(20)}", "env": rng.choice(("prod", "dev"))}
            apps = [(a, p, {"app": a}) for a, p in rng.sample(SCALE_APPS, rng.randint(2, 4))]
        else:
            labels["role"] = "platform"
            apps = [_PLATFORM[platform]]
        nss.append(Namespace(name, frozen_labels(labels)))
        for k in range(per_ns):
            app, ports, pod_labels = apps[k % len(apps)]
            index = len(pod_list)
            pod_list.append(
                Pod(
                    namespace=name,
                    name=f"{app}-{k}",
                    labels=frozen_labels({**pod_labels, "pod-template-hash": f"h{n:04d}{app}"}),
                    ips=(netaddr.IPAddress(SCALE_NET.first + 256 + index),),
                    node_name=f"node{index % 50}",
                    ports=tuple(ContainerPort(num, proto, pname) for pname, proto, num in ports),
                )
            )
    return Snapshot(tuple(nss), tuple(pod_list))


def policies_at_scale(rng: random.Random, snapshot: Snapshot, count: int = 5000) -> ir.PolicySet:
    """``count`` policies as teams write them, over the team namespaces of
    :func:`cluster_at_scale`: default deny, same namespace, DNS egress, ingress controller to
    web, monitoring by named port, app to app by named port, other teams on a port range,
    internet egress with an except, a partner address range with an except."""
    teams = [ns.name for ns in snapshot.namespaces if ns.name.startswith("team-")]

    def app(name: str) -> ir.LabelSelector:
        return ir.LabelSelector.of({"app": name})

    def ns(name: str) -> ir.LabelSelector:
        return ir.LabelSelector.of({"kubernetes.io/metadata.name": name})

    def rule(peer: ir.Peer, *ports: tuple[ir.Protocol, int | str | tuple[int, int]]) -> ir.Rule:
        return ir.Rule((peer,), ir.PortSet.of(*ports) if ports else ir.ANY_PORT)

    dns = ir.PodPeer(ns("kube-system"), ir.LabelSelector.of({"k8s-app": "kube-dns"}))
    internet = ir.AddressPeer.block("0.0.0.0/0", "10.0.0.0/8")
    Kind = tuple[ir.LabelSelector, tuple[ir.Rule, ...] | None, tuple[ir.Rule, ...] | None]

    def partner() -> Kind:
        net = f"10.{rng.randrange(64, 128)}.{4 * rng.randrange(64)}"
        block = ir.AddressPeer.block(f"{net}.0/22", f"{net}.64/26")
        return app("api"), (rule(block, (_UDP, 4789)),), None

    def app_to_app() -> Kind:
        first, second = rng.sample([a for a, _ in SCALE_APPS], 2)
        peer = ir.PodPeer(ir.SAME_NAMESPACE, app(second))
        return app(first), None, (rule(peer, (_TCP, "http"), (_TCP, "pg")),)

    def from_team() -> Kind:
        first, second = rng.sample([a for a, _ in SCALE_APPS], 2)
        peer = ir.PodPeer(ir.LabelSelector.of({"team": f"t{rng.randrange(20)}"}), app(second))
        return app(first), (rule(peer, (_TCP, (8000, 8100))),), None

    kinds: dict[str, Callable[[], Kind]] = {
        "deny-all": lambda: (ir.EVERYTHING, (), ()),
        "same-namespace": lambda: (ir.EVERYTHING, (rule(ir.PodPeer(ir.SAME_NAMESPACE)),), None),
        "dns": lambda: (ir.EVERYTHING, None, (rule(dns, (_UDP, 53), (_TCP, 53)),)),
        "from-ingress": lambda: (
            app("web"),
            (rule(ir.PodPeer(ns("ingress")), (_TCP, "http")),),
            None,
        ),
        "monitoring": lambda: (
            ir.EVERYTHING,
            (rule(ir.PodPeer(ns("monitoring")), (_TCP, "metrics")),),
            None,
        ),
        "app-to-app": app_to_app,
        "from-team": from_team,
        "internet": lambda: (app("web"), None, (rule(internet, (_TCP, 443)),)),
        "partner": partner,
    }
    labels = sorted(kinds)
    policies: list[ir.Policy] = []
    for i in range(count):
        label = labels[rng.randrange(len(labels))]
        selector, ingress, egress = kinds[label]()
        policies.append(
            ir.Policy(
                teams[i % len(teams)], f"{label}-{i}", selector, ingress=ingress, egress=egress
            )
        )
    return ir.PolicySet(tuple(policies))
