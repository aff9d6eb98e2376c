"""Random and mutated Kubernetes inputs for the differential test (bench/redteam.py).

Random clusters (namespaces, nodes, pods with named ports, duplicate or missing addresses,
hostNetwork pods, a Service) and random NetworkPolicies and ClusterNetworkPolicies over
them, from small vocabularies so that selectors match; the golden cases as seeds; and
mutations: one field deleted, nulled, retyped or replaced by an odd string, CIDR, port,
protocol or operator; unknown fields; odd label keys; an invalid copy next to a valid one;
the same object in many namespaces; YAML scalars that the YAML reader types (``0x50``,
``yes``, ``~``, anchors); duplicate keys in YAML and JSON text.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

LABEL_KEYS = ("app", "tier", "team", "env", "kubernetes.io/metadata.name", "k8s-app", "x.io/role")
LABEL_VALUES = ("web", "db", "api", "front", "a", "b", "prod", "dev", "")
ODD_STRINGS = (
    "",
    " ",
    "a b",
    "-x",
    "x-",
    "A" * 64,
    "a" * 63,
    "é",
    "ü/x",
    'a"b',
    "a\\b",
    "a\nb",
    "\x00",
    "\t",
    "x\u2028y",
    "'",
    "{",
    "a/b/c",
    "/a",
    "a/",
    "UPPER",
    "1.2.3.4",
    "x" * 254,
    "😀",
    "a_b",
    "a.b",
    "..",
    "-",
    "kubernetes.io/",
    "a" * 253 + "/b",
)
CIDRS = (
    "10.0.0.0/8",
    "10.40.0.0/16",
    "10.40.0.11/32",
    "0.0.0.0/0",
    "010.0.0.0/8",
    "10.0.0.1/8",
    "10.0.0.0/33",
    "10.0.0.0",
    "fd40::/64",
    "fd40::11/128",
    "::/0",
    "FD40::/64",
    "::ffff:10.0.0.0/104",
    "10.040.0.0/16",
    "10.0.0.0/08",
    "1.2.3.4/0",
    "fd40:0::/64",
    "256.0.0.0/8",
    "10.0.0.0/-1",
    " 10.0.0.0/8",
    "10.0.0.0/8 ",
    "fe80::1%eth0/64",
    "::/128",
    "0.0.0.0/32",
    "192.168.0.0/16",
)
PORTS: tuple[Any, ...] = (
    80,
    443,
    53,
    0,
    65535,
    65536,
    -1,
    "http",
    "dns",
    "pg",
    "metrics",
    "HTTP",
    "a" * 16,
    "80",
    "1-x",
    "x--y",
    "9x",
    8080,
    True,
    None,
    1.5,
    [80],
    {"a": 1},
)
PROTOCOLS: tuple[Any, ...] = ("TCP", "UDP", "SCTP", "tcp", "ICMP", "", None, 6)
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "in", "Equals", "", None, "Gt")
JUNK: tuple[Any, ...] = (None, 0, 1, -1, True, False, "", "x", [], {}, [None], {"x": 1}, 1.5)


# --- random inputs -------------------------------------------------------------------------


def rand_labels(rng: random.Random, n: int = 3) -> dict[str, str]:
    return {
        rng.choice(LABEL_KEYS[:4]): rng.choice(LABEL_VALUES[:-1]) for _ in range(rng.randint(0, n))
    }


def rand_selector(rng: random.Random) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    r = rng.random()
    if r < 0.3:
        return sel
    if r < 0.8:
        sel["matchLabels"] = rand_labels(rng, 2)
    if rng.random() < 0.4:
        exprs = []
        for _ in range(rng.randint(1, 2)):
            op = rng.choice(OPERATORS[:4])
            e: dict[str, Any] = {"key": rng.choice(LABEL_KEYS[:4]), "operator": op}
            if op in ("In", "NotIn"):
                e["values"] = rng.sample(LABEL_VALUES[:-1], rng.randint(1, 3))
            exprs.append(e)
        sel["matchExpressions"] = exprs
    return sel


def rand_peer(rng: random.Random, nss: list[str]) -> dict[str, Any]:
    r = rng.random()
    if r < 0.25:
        cidr = rng.choice(("10.40.0.0/16", "0.0.0.0/0", "10.0.0.0/8", "fd40::/64"))
        block: dict[str, Any] = {"cidr": cidr}
        if rng.random() < 0.5:
            inside = (
                ("fd40::/120", "fd40::10/124")
                if ":" in cidr
                else ("10.40.0.0/28", "10.40.0.16/28", "10.40.1.0/24")
            )
            block["except"] = [rng.choice(inside)]
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if r < 0.65:
        peer["podSelector"] = rand_selector(rng)
    if r > 0.45:
        if rng.random() < 0.5 and nss:
            peer["namespaceSelector"] = {
                "matchLabels": {"kubernetes.io/metadata.name": rng.choice(nss)}
            }
        else:
            peer["namespaceSelector"] = rand_selector(rng)
    return peer


def rand_port(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if rng.random() < 0.7:
        p["protocol"] = rng.choice(("TCP", "TCP", "UDP", "SCTP"))
    if rng.random() < 0.85:
        p["port"] = rng.choice((80, 443, 53, 5432, 8080, "http", "dns", "pg", "metrics"))
        if isinstance(p["port"], int) and rng.random() < 0.3:
            p["endPort"] = p["port"] + rng.randint(0, 100)
    return p


def rand_rule(rng: random.Random, nss: list[str], key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if rng.random() < 0.85:
        rule[key] = [rand_peer(rng, nss) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        rule["ports"] = [rand_port(rng) for _ in range(rng.randint(0, 3))]
    return rule


def rand_np(rng: random.Random, name: str, ns: str, nss: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": rand_selector(rng)}
    types = rng.choice(([], ["Ingress"], ["Egress"], ["Ingress", "Egress"], None))
    if types is not None:
        spec["policyTypes"] = types
    if rng.random() < 0.8:
        spec["ingress"] = [rand_rule(rng, nss, "from") for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        spec["egress"] = [rand_rule(rng, nss, "to") for _ in range(rng.randint(0, 3))]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def rand_cnp(rng: random.Random, name: str, nss: list[str]) -> dict[str, Any]:
    tier = rng.choice(("Admin", "Baseline"))
    actions = ("Accept", "Deny", "Pass") if tier == "Admin" else ("Accept", "Deny")
    subject: dict[str, Any]
    if rng.random() < 0.5:
        subject = {"namespaces": rand_selector(rng)}
    else:
        subject = {
            "pods": {"namespaceSelector": rand_selector(rng), "podSelector": rand_selector(rng)}
        }

    def peers(direction: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 2)):
            r = rng.random()
            if r < 0.4:
                out.append({"namespaces": rand_selector(rng)})
            elif r < 0.8 or direction == "from":
                out.append(
                    {
                        "pods": {
                            "namespaceSelector": rand_selector(rng),
                            "podSelector": rand_selector(rng),
                        }
                    }
                )
            else:
                out.append(
                    {"networks": [rng.choice(("10.40.0.0/16", "0.0.0.0/0", "10.41.0.0/24"))]}
                )
        return out

    def rules(direction: str) -> list[dict[str, Any]]:
        out = []
        for i in range(rng.randint(0, 3)):
            rule: dict[str, Any] = {
                "name": f"r{i}",
                "action": rng.choice(actions),
                direction: peers(direction),
            }
            if rng.random() < 0.4:
                proto = rng.choice(("tcp", "udp", "sctp"))
                rule["protocols"] = [
                    {proto: {"destinationPort": {"number": rng.choice((80, 53, 5432))}}}
                ]
            out.append(rule)
        return out

    spec: dict[str, Any] = {"tier": tier, "priority": rng.randint(0, 50), "subject": subject}
    if rng.random() < 0.8:
        spec["ingress"] = rules("from")
    if rng.random() < 0.6:
        spec["egress"] = rules("to")
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def rand_cluster(rng: random.Random) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    large = rng.random() < 0.2  # enough pods for several words of bits, many classes
    nss = [f"ns{i}" for i in range(rng.randint(1, 8 if large else 4))]
    nodes = [f"node{i}" for i in range(rng.randint(1, 3))]
    items: list[dict[str, Any]] = []
    for ns in nss:
        labels = rand_labels(rng, 2)
        if rng.random() < 0.8:
            labels["kubernetes.io/metadata.name"] = ns
        items.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
        )
    for i, node in enumerate(nodes):
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node},
                "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.0.{i + 10}"}]},
                "spec": {"podCIDR": f"10.40.{i}.0/24"},
            }
        )
    ip = 10
    for i in range(rng.randint(20, 90) if large else rng.randint(1, 9)):
        ns = rng.choice(nss)
        hostnet = rng.random() < 0.1
        containers = [{"name": "c", "image": "x", "ports": []}]
        for name, proto, numbers in (
            ("http", "TCP", (80, 8080)),
            ("dns", "UDP", (53,)),
            ("pg", "TCP", (5432,)),
            ("metrics", "TCP", (9100,)),
        ):
            if rng.random() < 0.4:
                port: dict[str, Any] = {"name": name, "containerPort": rng.choice(numbers)}
                if proto != "TCP" or rng.random() < 0.3:
                    port["protocol"] = proto
                containers[0]["ports"].append(port)
        if rng.random() < 0.1:
            containers[0]["ports"].append(
                {"name": "repl", "containerPort": 7000, "protocol": "SCTP"}
            )
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": ns, "labels": rand_labels(rng)},
            "spec": {"nodeName": rng.choice(nodes), "containers": containers},
        }
        if hostnet:
            pod["spec"]["hostNetwork"] = True
        r = rng.random()
        if r < 0.08:
            pod["status"] = {"phase": "Pending"}
        else:
            if r < 0.15:
                ip -= 1  # a duplicate address
            ip += 1
            v4 = f"10.40.{rng.randint(0, 1)}.{ip}" if not hostnet else "192.168.0.10"
            ips = [{"ip": v4}]
            if rng.random() < 0.2:
                ips.append({"ip": f"fd40::{ip:x}"})
            pod["status"] = {
                "phase": rng.choice(("Running", "Running", "Running", "Succeeded")),
                "podIP": v4,
                "podIPs": ips,
            }
        items.append(pod)
    if rng.random() < 0.3:
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "svc", "namespace": nss[0]},
                "spec": {
                    "type": "NodePort",
                    "selector": rand_labels(rng, 1),
                    "ports": [
                        {"port": 80, "targetPort": rng.choice((80, "http")), "nodePort": 30080}
                    ],
                    "externalTrafficPolicy": rng.choice(("Cluster", "Local")),
                },
            }
        )
    return items, nss, nodes


def rand_policies(rng: random.Random, nss: list[str]) -> list[dict[str, Any]]:
    docs = []
    for i in range(rng.randint(1, 5 + len(nss))):
        docs.append(rand_np(rng, f"np{i}", rng.choice(nss), nss))
    if rng.random() < 0.3:
        for i in range(rng.randint(1, 2)):
            docs.append(rand_cnp(rng, f"cnp{i}", nss))
    if rng.random() < 0.3:  # the same policy in every namespace: the memos' case
        base = rand_np(rng, "same", nss[0], nss)
        for ns in nss:
            d = copy.deepcopy(base)
            d["metadata"]["namespace"] = ns
            docs.append(d)
    return docs


# --- mutations -----------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def mutate(rng: random.Random, docs: list[dict[str, Any]]) -> None:
    if not docs:
        return
    kind = rng.random()
    if kind < 0.25:  # an invalid copy after (or before) a valid one
        i = rng.randrange(len(docs))
        d = copy.deepcopy(docs[i])
        if rng.random() < 0.6:
            mutate_part(rng, d)
        else:
            mutate_value(rng, d)
        d.setdefault("metadata", {})
        if isinstance(d["metadata"], dict):
            d["metadata"]["name"] = f"{d['metadata'].get('name', 'x')}-copy"
        docs.insert(i + rng.choice((0, 1)), d)
        return
    if kind < 0.33:  # the same object in many namespaces
        i = rng.randrange(len(docs))
        for n in range(rng.randint(2, 5)):
            d = copy.deepcopy(docs[i])
            if isinstance(d.get("metadata"), dict):
                d["metadata"]["namespace"] = f"ns{n}"
            docs.append(d)
        return
    if kind < 0.37:  # an exact duplicate
        docs.append(copy.deepcopy(rng.choice(docs)))
        return
    mutate_value(rng, rng.choice(docs))


#: What to put in a part a load remembers (a selector, a port, an ipBlock), by field name.
_PART_VALUES: dict[str, tuple[Any, ...]] = {
    "cidr": CIDRS,
    "except": CIDRS,
    "port": PORTS,
    "endPort": (0, 1, 79, 80, 65536, "x", None),
    "protocol": PROTOCOLS,
    "operator": OPERATORS,
    "values": (*ODD_STRINGS, None, 1),
    "key": ODD_STRINGS,
    "matchLabels": ODD_STRINGS,
}


def mutate_part(rng: random.Random, doc: Any) -> None:
    """One leaf inside a selector, port or ipBlock made odd, the rest of ``doc`` kept: the
    same part is then valid in one object and not in its copy (or the other way round)."""
    leaves = []
    for path in _paths(doc):
        names = [p for p in path if isinstance(p, str)]
        if names and names[-1] in _PART_VALUES and not isinstance(_get(doc, path), dict | list):
            leaves.append((path, names[-1]))
        elif len(path) >= 2 and path[-2] == "matchLabels":
            leaves.append((path, "matchLabels"))
    if not leaves:
        mutate_value(rng, doc)
        return
    path, name = rng.choice(leaves)
    parent = _get(doc, path[:-1])
    if name == "matchLabels" and isinstance(parent, dict) and rng.random() < 0.5:
        parent[rng.choice(ODD_STRINGS)] = parent.pop(path[-1])  # an odd key
        return
    parent[path[-1]] = rng.choice(_PART_VALUES[name])


def mutate_value(rng: random.Random, doc: Any) -> None:
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return
    path = rng.choice(paths)
    parent = _get(doc, path[:-1])
    key = path[-1]
    value = parent[key]
    r = rng.random()
    if (r < 0.12 and isinstance(parent, dict)) or (r < 0.22 and isinstance(parent, list)):
        del parent[key]
    elif r < 0.3:
        parent[key] = rng.choice(JUNK)
    elif r < 0.36 and isinstance(parent, dict):
        parent[
            rng.choice(
                (
                    "unknownField",
                    "ports",
                    "from",
                    "to",
                    "except",
                    "endPort",
                    "namespace",
                    "labels",
                    "ipBlock",
                    "podSelector",
                    "values",
                )
            )
        ] = rng.choice((*JUNK, "x"))
    elif r < 0.5:
        parent[key] = rng.choice(ODD_STRINGS)
    elif r < 0.6:
        parent[key] = rng.choice(CIDRS)
    elif r < 0.7:
        parent[key] = rng.choice(PORTS)
    elif r < 0.76:
        parent[key] = rng.choice(PROTOCOLS)
    elif r < 0.82:
        parent[key] = rng.choice(OPERATORS)
    elif r < 0.88 and isinstance(value, dict):
        odd_key: Any = rng.choice((*ODD_STRINGS, 1, True, None, 1.5))
        value[odd_key] = rng.choice(ODD_STRINGS + LABEL_VALUES)
    elif r < 0.92 and isinstance(value, list) and value:
        value.append(copy.deepcopy(rng.choice(value)))
    elif r < 0.96 and isinstance(parent, dict):
        # a label key or value that is odd
        parent[key] = {rng.choice(ODD_STRINGS + LABEL_KEYS): rng.choice(ODD_STRINGS + LABEL_VALUES)}
    else:
        parent[key] = copy.deepcopy(rng.choice(JUNK))


YAML_SCALARS = (
    "0x50",
    "080",
    "0o17",
    "1_000",
    "80.0",
    "+80",
    "1e2",
    "yes",
    "no",
    "on",
    "off",
    "~",
    "null",
    "2020-01-01",
    ".inf",
    "-.nan",
    "'80'",
    '"80"',
    "!!str 80",
    "!!int '80'",
    "'\\x'",
    '"\\t"',
    '"\\u00e9"',
    '"a\\\\b"',
    "[]",
    "{}",
    "''",
    "&x 80",
    "*x",
    "|\n  a\n",
    "-0",
    "99999999999999999999",
)


def yaml_text_mutation(rng: random.Random, text: str) -> str:
    """Replace one scalar value of a YAML text by a YAML-special literal (as the YAML reader
    sees it, not as Python would dump it)."""
    lines = text.splitlines()
    valued = [i for i, line in enumerate(lines) if ": " in line and not line.rstrip().endswith(":")]
    if not valued:
        return text
    i = rng.choice(valued)
    head = lines[i].split(": ", 1)[0]
    lines[i] = f"{head}: {rng.choice(YAML_SCALARS)}"
    return "\n".join(lines) + "\n"


def odd_names(rng: random.Random, docs: list[Any]) -> None:
    """Odd strings where free text may go: ClusterNetworkPolicy rule names, annotations."""
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
            continue
        for direction in ("ingress", "egress"):
            rules = doc["spec"].get(direction)
            if isinstance(rules, list):
                for rule in rules:
                    if isinstance(rule, dict) and "name" in rule and rng.random() < 0.5:
                        rule["name"] = rng.choice(ODD_STRINGS)
        if isinstance(doc.get("metadata"), dict) and rng.random() < 0.3:
            doc["metadata"]["annotations"] = {"description": rng.choice(ODD_STRINGS)}


def render(rng: random.Random, docs: list[Any], as_list: bool) -> tuple[str, str]:
    """Text and file suffix: YAML documents, a YAML or JSON List, sometimes with a duplicate key."""
    r = rng.random()
    if r < 0.3:
        text = json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": docs}, indent=rng.choice((None, 1))
        )
        if rng.random() < 0.1:  # a duplicate key, which json.dumps cannot write
            for key in ('"name": ', '"port": ', '"cidr": ', '"app": ', '"podIP": '):
                at = text.find(key)
                if at >= 0:
                    end = text.find(",", at)
                    if end > 0:
                        text = text[:end] + ", " + text[at:end] + text[end:]
                        break
        return text, ".json"
    if as_list or r < 0.45:
        text = yaml.safe_dump(
            {"apiVersion": "v1", "kind": "List", "items": docs},
            allow_unicode=rng.random() < 0.5,
            sort_keys=False,
        )
    else:
        text = yaml.safe_dump_all(docs, allow_unicode=rng.random() < 0.5, sort_keys=False)
    if rng.random() < 0.08:
        lines = text.splitlines()
        keyed = [
            i for i, line in enumerate(lines) if ": " in line and not line.strip().startswith("- ")
        ]
        if keyed:
            i = rng.choice(keyed)
            lines.insert(i + 1, lines[i])
            text = "\n".join(lines) + "\n"
    if rng.random() < 0.1:
        text = yaml_text_mutation(rng, text)
    return text, ".yaml"


def load_seeds() -> list[tuple[list[Any], list[Any]]]:
    seeds = []
    for case in sorted((ROOT / "golden").iterdir()):
        inp = case / "input.yaml"
        if not inp.exists():
            continue
        try:
            pol = [d for d in yaml.safe_load_all(inp.read_text()) if d is not None]
        except yaml.YAMLError:
            continue
        clu: list[Any] = []
        cpath = case / "cluster.yaml"
        if cpath.exists():
            data = yaml.safe_load(cpath.read_text())
            clu = (
                list(data.get("items", []))
                if isinstance(data, dict) and data.get("kind") == "List"
                else [data]
            )
        seeds.append((pol, clu))
    return seeds
