"""Selectors that the snapshot shows to be wrong.

* W606 (golden/seed002-*, seed003-*): a namespaceSelector on a label no namespace of the snapshot
  carries. ``name: my-app-ns2`` is the classic: the API server labels every namespace with
  ``kubernetes.io/metadata.name`` (Kubernetes 1.21 and later), never with ``name``. An ``In``
  or ``Exists`` term on such a label matches no namespace; a ``NotIn`` or ``DoesNotExist``
  term matches every one (golden/seed004-nodeport-snat's ``region NotIn [bar]`` then admits
  bar too). Path: the namespaceSelector.
* W604: a podSelector that selects no pod of its namespace, when that namespace has pods
  (an empty namespace's default-deny is a safety net, not a mistake). Path: ``spec.podSelector``.
* W609: a peer that matches no pod: no namespace matches its namespaceSelector, or the
  namespaces it draws from have pods but none matches its podSelector. Not repeated for a
  peer W606 already explains.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from npc import ir
from npc.analysis.lint.finding import Finding
from npc.errors import Code, Path
from npc.snapshot import METADATA_NAME_LABEL, Pod, Snapshot
from npc.wording import plural

__all__ = ["check"]

_ABSENT_MATCHES = (ir.Operator.NOT_IN, ir.Operator.DOES_NOT_EXIST)


def _pods(snapshot: Snapshot, namespace: str) -> tuple[Pod, ...]:
    return tuple(p for p in snapshot.pods_in(namespace) if not p.host_network)


def _label_hint(
    snapshot: Snapshot, key: str, requirements: tuple[ir.Requirement, ...], keys: set[str]
) -> str:
    names = {n.name for n in snapshot.namespaces}
    values = sorted({v for r in requirements if r.key == key for v in r.values})
    hint = f"the API server sets `{METADATA_NAME_LABEL}: <namespace name>` on every namespace"
    if values and set(values) <= names:
        shown = values[0] if len(values) == 1 else f"In {values}"
        return f"{hint}: did you mean `{METADATA_NAME_LABEL}: {shown}`?"
    close = difflib.get_close_matches(key, sorted(keys), n=1)
    if close:
        return f"did you mean the label `{close[0]}`? ({hint})"
    return f"label the namespaces, or select them by name ({hint})"


def _unknown_labels(
    policy: ir.Policy, peer: ir.PodPeer, path: Path, snapshot: Snapshot, keys: set[str]
) -> Finding | None:
    selector = peer.namespaces
    if not isinstance(selector, ir.LabelSelector):
        return None
    missing = sorted(k for k in selector.keys if k not in keys)
    if not missing:
        return None
    key = missing[0]
    terms = [r for r in selector.requirements if r.key in missing]
    if all(r.operator in _ABSENT_MATCHES for r in terms):
        effect = "its NotIn/DoesNotExist terms hold for every namespace, so it excludes none"
    else:
        effect = "so it matches no namespace"
    labels = ", ".join(f'"{k}"' for k in missing)
    return Finding.at(
        Code.UNKNOWN_NAMESPACE_LABEL,
        policy,
        (*path, "namespaceSelector"),
        f"no namespace of the snapshot has the label {labels}: {effect}",
        _label_hint(snapshot, key, selector.requirements, keys),
    )


class _Matches:
    """Which namespaces a selector picks, and whether a pod selector matches a pod of some
    namespaces: cached, as thousands of policies repeat a few selectors."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._namespaces: dict[ir.LabelSelector, tuple[str, ...]] = {}
        self._pods: dict[tuple[tuple[str, ...], ir.LabelSelector], tuple[bool, bool]] = {}

    def namespaces(self, selector: ir.LabelSelector) -> tuple[str, ...]:
        found = self._namespaces.get(selector)
        if found is None:
            found = tuple(n.name for n in self.snapshot.namespaces if selector.matches(n.labels))
            self._namespaces[selector] = found
        return found

    def pods(self, namespaces: tuple[str, ...], selector: ir.LabelSelector) -> tuple[bool, bool]:
        """(some pod in ``namespaces``, some of them matches ``selector``)."""
        key = (namespaces, selector)
        found = self._pods.get(key)
        if found is None:
            pods = [p for ns in namespaces for p in _pods(self.snapshot, ns)]
            found = (bool(pods), any(selector.matches(p.labels) for p in pods))
            self._pods[key] = found
        return found


def _peer_matches_nothing(
    policy: ir.Policy, peer: ir.PodPeer, path: Path, matches: _Matches
) -> Finding | None:
    if isinstance(peer.namespaces, ir.SameNamespace):
        namespaces: tuple[str, ...] = (policy.namespace,)
    else:
        selector = peer.namespaces
        namespaces = matches.namespaces(selector)
        if not namespaces:
            return Finding.at(
                Code.PEER_MATCHES_NOTHING,
                policy,
                (*path, "namespaceSelector"),
                f"matches no namespace of the snapshot (`{selector}`): this peer admits nothing",
            )
    if peer.pods.is_everything:
        return None
    some, matched = matches.pods(namespaces, peer.pods)
    if not some or matched:
        return None
    where = "the policy's namespace" if len(namespaces) == 1 else f"{len(namespaces)} namespaces"
    return Finding.at(
        Code.PEER_MATCHES_NOTHING,
        policy,
        (*path, "podSelector"),
        f"no pod of {where} ({', '.join(namespaces[:3])}{', ...' if len(namespaces) > 3 else ''}) "
        f"matches `{peer.pods}`: this peer admits nothing",
    )


def _selects_nothing(policy: ir.Policy, snapshot: Snapshot) -> Finding | None:
    if policy.pod_selector.is_everything or snapshot.namespace(policy.namespace) is None:
        return None
    pods = _pods(snapshot, policy.namespace)
    if not pods or any(policy.pod_selector.matches(p.labels) for p in pods):
        return None
    return Finding.at(
        Code.SELECTS_NOTHING,
        policy,
        ("spec", "podSelector"),
        f"selects no pod: none of the {plural(len(pods), 'pod')} of namespace {policy.namespace} "
        f"matches `{policy.pod_selector}`",
        f"check the labels against `kubectl get pods -n {policy.namespace} --show-labels`",
    )


def check(policies: ir.PolicySet, snapshot: Snapshot) -> Iterator[Finding]:
    """W606, W604 and W609 over the snapshot."""
    keys = {k for n in snapshot.namespaces for k in n.labels}
    matches = _Matches(snapshot)
    for policy in policies:
        if snapshot.pods:
            found = _selects_nothing(policy, snapshot)
            if found is not None:
                yield found
        for direction in (ir.Direction.INGRESS, ir.Direction.EGRESS):
            for index, rule in enumerate(policy.rules(direction) or ()):
                if not isinstance(rule.peers, tuple):
                    continue
                for j, peer in enumerate(rule.peers):
                    if not isinstance(peer, ir.PodPeer):
                        continue
                    path: Path = ("spec", direction.value, index, direction.peer_field, j)
                    unknown = None
                    if snapshot.namespaces:
                        unknown = _unknown_labels(policy, peer, path, snapshot, keys)
                    if unknown is not None:
                        yield unknown
                        continue
                    if snapshot.namespaces:
                        nothing = _peer_matches_nothing(policy, peer, path, matches)
                        if nothing is not None:
                            yield nothing
