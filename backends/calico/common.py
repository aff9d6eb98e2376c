"""What both Calico forms share: selector text from IR selectors, ports, limits, problems.

Selectors are written the way libcalico-go's converter writes them (``k8sSelectorToCalico``):
the orchestrator term first for pod selectors, matchLabels sorted as ``k == 'v'``, then
matchExpressions as written (``k in { 'a', 'b' }``, ``k not in { ... }``, ``has(k)``,
``! has(k)``), joined with ``&&``; an empty namespace selector is ``all()``. Keys and values
go through :func:`~npc.rulesets.calico.syntax.check_key` /
:func:`~npc.rulesets.calico.syntax.quote`, so a value that Calico cannot spell is refused
instead of changing meaning.

Some label keys mean something else to Calico than to Kubernetes: Calico overwrites
``projectcalico.org/namespace``, ``/orchestrator`` and ``/serviceaccount`` on every workload
endpoint, endpoints inherit their namespace's labels as ``pcns.*`` (and service-account
labels as ``pcsa.*``), and ``projectcalico.org/name`` on a namespace is replaced by its name.
A selector on such a key would select other pods under Calico than under Kubernetes, so it
is refused. For the same reason, when a snapshot is given, a pod carrying ``pcns.<key>`` for a
key that namespaceSelectors use is refused: its own label would beat its namespace's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from npc import ir, tiers
from npc.errors import Code, Diagnostic, Key, Path, Severity, UnsupportedError, format_path
from npc.rulesets.calico.syntax import SelectorQuotingError, check_key, quote
from npc.snapshot import Snapshot

__all__ = [
    "API_VERSION",
    "MAX_NETS",
    "MAX_PORTS",
    "MAX_RULES",
    "MAX_SELECTOR",
    "ORCHESTRATOR_TERM",
    "Owner",
    "Problems",
    "as_written",
    "check_namespace_label_spoofing",
    "chunks",
    "namespace_selector_text",
    "pod_selector_terms",
    "port_items",
    "rule_path",
]

API_VERSION = "projectcalico.org/v3"
#: Limits of the projectcalico.org/v3 CRDs (GlobalNetworkPolicy and NetworkPolicy alike).
MAX_RULES = 1024
MAX_PORTS = 50
MAX_NETS = 256
MAX_SELECTOR = 1024
ORCHESTRATOR_TERM = "projectcalico.org/orchestrator == 'k8s'"
#: Calico copies namespace labels onto endpoints with this prefix.
NAMESPACE_PREFIX = "pcns."
TARGET = "calico"

#: Whose selectors and rules are being written: a NetworkPolicy or a ClusterNetworkPolicy.
Owner = ir.Policy | tiers.ClusterPolicy

_RESERVED_POD_PREFIXES = ("projectcalico.org/", "pcns.", "pcsa.")
_RESERVED_NAMESPACE_KEYS = ("projectcalico.org/name",)

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (one empty slice for no items)."""
    if not items:
        yield items
        return
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Problems:
    """Everything one emit cannot express, raised together (never a partial output)."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, policy: Owner, path: Path, message: str, hint: str | None = None) -> None:
        kind = (
            "ClusterNetworkPolicy" if isinstance(policy, tiers.ClusterPolicy) else "NetworkPolicy"
        )
        self.items.append(
            Diagnostic(
                Code.UNSUPPORTED,
                Severity.ERROR,
                f"{kind} {policy.key}: target {TARGET} cannot express {message}",
                format_path(path),
                None,
                hint or "nothing was emitted: changing it would change who may connect",
                policy.origin.child(path) if policy.origin is not None else None,
            )
        )

    def raise_if_any(self) -> None:
        if self.items:
            raise UnsupportedError(self.items)


def rule_path(policy: ir.Policy, direction: str, index: int, rule: ir.Rule) -> Path:
    """The rule's field path in its NetworkPolicy (its origin when known, else its index)."""
    if rule.origin is not None and policy.origin is not None:
        root = policy.origin.path
        if rule.origin.path[: len(root)] == root:
            return rule.origin.path[len(root) :]
    return ("spec", direction, index)


def _expression(req: ir.Requirement) -> str:
    key = check_key(req.key)
    if req.operator is ir.Operator.EXISTS:
        return f"has({key})"
    if req.operator is ir.Operator.DOES_NOT_EXIST:
        return f"! has({key})"
    values = "{ " + ", ".join(quote(v) for v in req.values) + " }" if req.values else "{}"
    op = "in" if req.operator is ir.Operator.IN else "not in"
    return f"{key} {op} {values}"


def _terms(
    selector: ir.LabelSelector,
    reserved: tuple[str, ...],
    exact: bool,
    policy: Owner,
    path: Path,
    problems: Problems,
) -> list[str]:
    terms: list[str] = []
    for key, value in selector.match_labels:
        try:
            terms.append(f"{check_key(key)} == {quote(value)}")
        except SelectorQuotingError as exc:
            problems.add(policy, (*path, "matchLabels"), str(exc))
    for req in selector.match_expressions:
        try:
            terms.append(_expression(req))
        except SelectorQuotingError as exc:
            problems.add(policy, (*path, "matchExpressions"), str(exc))
    for req in selector.requirements:
        hit = req.key in reserved if exact else req.key.startswith(reserved)
        if hit:
            problems.add(
                policy,
                path,
                f"a selector on label {req.key!r}: Calico sets or rewrites that label itself",
                "rename the label: under Calico this selector would match other pods",
            )
    return terms


def pod_selector_terms(
    selector: ir.LabelSelector, policy: Owner, path: Path, problems: Problems
) -> list[str]:
    """The terms of a pod selector, without the orchestrator term."""
    return _terms(selector, _RESERVED_POD_PREFIXES, False, policy, path, problems)


def namespace_selector_text(
    selector: ir.LabelSelector, policy: Owner, path: Path, problems: Problems
) -> str:
    """A peer's namespaceSelector: ``all()`` when empty."""
    terms = _terms(selector, _RESERVED_NAMESPACE_KEYS, True, policy, path, problems)
    return " && ".join(terms) if terms else "all()"


def check_length(
    text: str, policy: Owner, path: Path, problems: Problems, what: str = "selector"
) -> str:
    """``text`` itself; a problem when longer than Calico's 1,024-character limit."""
    if len(text) > MAX_SELECTOR:
        problems.add(
            policy,
            path,
            f"a {what} of {len(text)} characters (Calico allows {MAX_SELECTOR})",
            "split the selector's values over several peers or policies",
        )
    return text


def as_written(peer: ir.AddressPeer) -> bool:
    """Whether the block as written (cidr minus excepts) still says exactly what the peer
    allows; a peer built or rewritten without it is emitted from its addresses instead."""
    if peer.cidr is None:
        return False
    return ir.AddressSet.from_block(peer.cidr, peer.excepts) == peer.addresses


def port_items(entry: ir.ProtocolPorts) -> list[Any]:
    """Calico ``ports`` for one protocol: named ports first (sorted), then numbers and
    ``"a:b"`` ranges ascending (``SimplifyPorts`` order). Empty for every port."""
    if entry.all_ports:
        return []
    items: list[Any] = list(entry.named)
    for r in entry.ranges:
        items.append(r.start if r.start == r.end else f"{r.start}:{r.end}")
    return items


def protocol_entries(ports: ir.Ports) -> list[tuple[str | None, list[Any]]]:
    """(protocol, ports) per Calico rule, protocols sorted; ``(None, [])`` for any port.

    A protocol entry that allows no port at all is left out: written as a Calico rule
    without ports it would allow every port."""
    if isinstance(ports, ir.AnyPort):
        return [(None, [])]
    out: list[tuple[str | None, list[Any]]] = []
    for entry in sorted(ports.entries, key=lambda e: str(e.protocol)):
        items = port_items(entry)
        if items or entry.all_ports:
            out.append((str(entry.protocol), items))
    return out


def check_namespace_label_spoofing(policies: ir.PolicySet, snapshot: Snapshot | None) -> None:
    """Refuse when a snapshot pod carries ``pcns.<key>`` for a key namespaceSelectors use.

    Calico gives a pod's own labels precedence over those inherited from its namespace
    profile, so such a pod matches ``namespaceSelector`` terms on ``<key>`` as if its
    namespace had its value: more than Kubernetes admits."""
    if snapshot is None:
        return
    used: dict[str, str] = {}
    for policy in policies:
        for rules in (policy.ingress or (), policy.egress or ()):
            for rule in rules:
                for peer in rule.peers if isinstance(rule.peers, tuple) else ():
                    if isinstance(peer, ir.PodPeer) and isinstance(
                        peer.namespaces, ir.LabelSelector
                    ):
                        for req in peer.namespaces.requirements:
                            used.setdefault(req.key, policy.key)
    problems = [
        Diagnostic(
            Code.UNSUPPORTED,
            Severity.ERROR,
            f"Pod {pod.key} carries label {label!r}; under Calico it overrides its namespace's "
            f"label {label[len(NAMESPACE_PREFIX) :]!r}, which namespaceSelectors use "
            f"(NetworkPolicy {used[label[len(NAMESPACE_PREFIX) :]]}): target {TARGET} would "
            "admit this pod as if its namespace had that label",
            format_path(("metadata", "labels", Key(label))),
            None,
            "remove the label from the pod (Calico reserves the pcns. prefix)",
        )
        for pod in snapshot.pods
        for label in pod.labels
        if label.startswith(NAMESPACE_PREFIX) and label[len(NAMESPACE_PREFIX) :] in used
    ]
    if problems:
        raise UnsupportedError(problems)
