"""Calico's own namespaced form: ``projectcalico.org/v3`` NetworkPolicy, as libcalico-go's
converter (``K8sNetworkPolicyToCalico``) produces it from a Kubernetes NetworkPolicy.

Reproduced: name and namespace as in Kubernetes (the ``knp.default.`` prefix is gone from
current Calico), ``order: 1000``, tier ``default``, the converter's selector text, one
rule per (protocol, peer) with protocols sorted and peers in order, ``protocol`` only when
the rule has ports, ports merged into ranges, ``source``/``destination`` always present
(``{}`` for any peer), ``nets``/``notNets`` for ipBlocks, ``types`` from policyTypes. Keys
are sorted, as ``calicoctl get -o yaml`` prints them, so the two can be diffed.

Also as the converter does (libcalico-go ``k8sRuleToCalico`` and ``SimplifyPorts``), from the
ports as written (:class:`~npc.ir.WrittenPort`): per protocol, the entries in written order,
an entry without a port making the protocol allow every port; then ``SimplifyPorts`` returns
them untouched (unsorted, duplicates kept) when there are fewer than two numeric ports,
and otherwise the named ports in written order followed by the numbers merged into sorted
ranges. Rules of a direction the policy does not isolate (``egress`` rules without
``Egress`` in policyTypes) are kept, as the converter keeps them (Calico ignores them: its
``types`` leave that direction out).

Limits are not split here (that would no longer be the converter's form): a policy beyond
them is refused, pointing at ``--calico-scope global``.
"""

from __future__ import annotations

from typing import Any

from npc import ir
from npc.backends.calico.common import (
    API_VERSION,
    MAX_NETS,
    MAX_PORTS,
    MAX_RULES,
    ORCHESTRATOR_TERM,
    Problems,
    as_written,
    check_length,
    namespace_selector_text,
    pod_selector_terms,
    protocol_entries,
    rule_path,
)
from npc.errors import Path

__all__ = ["namespaced_policies"]

_SPLIT_HINT = "the global scope (`--calico-scope global`) splits policies to fit"


def _peer(
    policy: ir.Policy, peer: ir.Peer, path: Path, problems: Problems
) -> dict[str, Any] | None:
    if isinstance(peer, ir.AddressPeer):
        if peer.cidr is None or not as_written(peer):
            if not peer.addresses:
                return None  # matches nothing
            entity: dict[str, Any] = {"nets": [str(c) for c in peer.addresses.cidrs]}
        else:
            entity = {"nets": [str(peer.cidr)]}
            if peer.excepts:
                entity["notNets"] = [str(e) for e in peer.excepts]
        for key in ("nets", "notNets"):
            if len(entity.get(key, ())) > MAX_NETS:
                problems.add(
                    policy,
                    (*path, "ipBlock"),
                    f"{len(entity[key])} {key} in one rule (Calico allows {MAX_NETS})",
                    _SPLIT_HINT,
                )
        return entity
    terms = [
        ORCHESTRATOR_TERM,
        *pod_selector_terms(peer.pods, policy, (*path, "podSelector"), problems),
    ]
    entity = {
        "selector": check_length(" && ".join(terms), policy, (*path, "podSelector"), problems)
    }
    if isinstance(peer.namespaces, ir.LabelSelector):
        text = namespace_selector_text(
            peer.namespaces, policy, (*path, "namespaceSelector"), problems
        )
        entity["namespaceSelector"] = check_length(
            text, policy, (*path, "namespaceSelector"), problems
        )
    return entity


def _port_value(port: ir.WrittenPort) -> int | str:
    if isinstance(port.port, str):
        return port.port
    assert port.port is not None
    return port.port if port.end_port is None else f"{port.port}:{port.end_port}"


def simplify_ports(ports: list[int | str]) -> list[int | str]:
    """libcalico-go ``SimplifyPorts``: named ports as they come, numbers merged into sorted
    ranges; the input untouched when it holds fewer than two numeric ports."""
    if len(ports) <= 1:
        return ports
    named: list[int | str] = []
    numbers: list[int] = []
    for port in ports:
        if isinstance(port, int):
            numbers.append(port)
        elif ":" in port and port.replace(":", "").isdigit():
            first, last = (int(x) for x in port.split(":"))
            numbers.extend(range(first, last + 1))
        else:
            named.append(port)
    if len(numbers) <= 1:
        return ports
    numbers.sort()
    out = named
    start = end = numbers[0]
    for n in numbers[1:]:
        if n > end + 1:
            out.append(start if start == end else f"{start}:{end}")
            start = n
        end = n
    out.append(start if start == end else f"{start}:{end}")
    return out


def converter_ports(rule: ir.Rule) -> list[tuple[str | None, list[Any]]]:
    """(protocol, ports) per Calico rule as the converter groups a rule's written ports;
    the IR's canonical ports when the rule keeps no written form."""
    if rule.written is None:
        return protocol_entries(rule.ports)
    if not rule.written:
        return [(None, [])]
    by_protocol: dict[str, list[int | str] | None] = {}
    for port in rule.written:
        protocol = str(port.protocol)
        if port.port is None:
            by_protocol[protocol] = None  # every port of the protocol
        elif protocol not in by_protocol or by_protocol[protocol]:
            by_protocol.setdefault(protocol, [])
            listed = by_protocol[protocol]
            assert listed is not None
            listed.append(_port_value(port))
    return [(p, simplify_ports(by_protocol[p] or [])) for p in sorted(by_protocol)]


def _rules(policy: ir.Policy, direction: str, problems: Problems) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    peer_field = ir.Direction(direction).peer_field
    rules = policy.rules(direction)
    if rules is None:
        rules = policy.ignored_ingress if direction == "ingress" else policy.ignored_egress
    for index, rule in enumerate(rules):
        path = rule_path(policy, direction, index, rule)
        if isinstance(rule.peers, ir.AnyPeer):
            entities: list[dict[str, Any]] = [{}]
        else:
            entities = [
                e
                for i, p in enumerate(rule.peers)
                if (e := _peer(policy, p, (*path, peer_field, i), problems)) is not None
            ]
        for protocol, ports in converter_ports(rule):
            if len(ports) > MAX_PORTS:
                problems.add(
                    policy,
                    (*path, "ports"),
                    f"{len(ports)} {protocol} ports in one rule (Calico allows {MAX_PORTS})",
                    _SPLIT_HINT,
                )
            for entity in entities:
                item: dict[str, Any] = {"action": "Allow"}
                if protocol is not None:
                    item["protocol"] = protocol
                port_part = {"ports": ports} if ports else {}
                if direction == "ingress":
                    item["source"] = entity
                    item["destination"] = port_part
                else:
                    item["source"] = {}
                    item["destination"] = {**entity, **port_part}
                out.append(item)
    if len(out) > MAX_RULES:
        problems.add(
            policy,
            ("spec", direction),
            f"{len(out)} {direction} rules (Calico allows {MAX_RULES} per policy)",
            _SPLIT_HINT,
        )
    return out


def namespaced_policies(policies: ir.PolicySet) -> list[dict[str, Any]]:
    """One Calico NetworkPolicy per NetworkPolicy; raises listing every problem."""
    problems = Problems()
    docs: list[dict[str, Any]] = []
    for policy in policies:
        types = [
            t for t, r in (("Ingress", policy.ingress), ("Egress", policy.egress)) if r is not None
        ]
        if not types:
            continue  # isolates nothing: no effect (the API server never stores this)
        terms = pod_selector_terms(policy.pod_selector, policy, ("spec", "podSelector"), problems)
        selector = " && ".join([ORCHESTRATOR_TERM, *terms])
        spec: dict[str, Any] = {
            "order": 1000,
            "selector": check_length(selector, policy, ("spec", "podSelector"), problems),
            "tier": "default",
            "types": types,
        }
        for direction in ("ingress", "egress"):
            rules = _rules(policy, direction, problems)
            if rules:
                spec[direction] = rules
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "NetworkPolicy",
                "metadata": {"name": policy.name, "namespace": policy.namespace},
                "spec": spec,
            }
        )
    problems.raise_if_any()
    return docs
