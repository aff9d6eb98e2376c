"""The frontend: sources in, a :class:`Bundle` (policies as IR, cluster snapshot) out.

Reads every document of every source, sorts objects by kind, decodes strictly, validates as the
API server would, and lowers clean policies to the IR (:func:`npc.api.load` adds lint's
warnings). Every problem in every document is collected; if any is an error, :func:`load`
raises with all of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from npc import collector, ir, tiers
from npc.errors import (
    Code,
    Diagnostic,
    InputError,
    Key,
    Location,
    Path,
    Severity,
    ValidationError,
    format_path,
)
from npc.frontend.decode import Decoder
from npc.frontend.k8s import api, cnp_api
from npc.frontend.k8s.cluster import ClusterBuilder
from npc.frontend.k8s.cnp_validation import validate_cluster_network_policy
from npc.frontend.k8s.objects import KnownKind, split_objects
from npc.frontend.k8s.validation import validate_network_policy
from npc.frontend.lower import Memo, lower_network_policy
from npc.frontend.lower_cnp import lower_cluster_network_policy
from npc.frontend.positions import SourceMap
from npc.frontend.source import Document, ObjectRef, Problem, Source, parse
from npc.snapshot import Snapshot

__all__ = ["Bundle", "load"]


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything read from the input.

    ``cluster_policies`` holds the ClusterNetworkPolicies, in evaluation order.
    ``snapshot`` is None when the input held no Namespace, Pod, Service or Node at all
    (backends that resolve selectors then refuse to run). ``diagnostics`` holds the warnings
    and notes of a successful load.
    """

    policies: ir.PolicySet
    snapshot: Snapshot | None
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: tuple[Source, ...] = ()
    source_map: SourceMap | None = field(default=None, compare=False, repr=False)
    #: The ClusterNetworkPolicies (admin and baseline tiers), next to the NetworkPolicies.
    cluster_policies: tiers.ClusterPolicySet = tiers.EMPTY

    def locate(self, origin: ir.Origin | None) -> Location | None:
        """File position of an IR element's origin (computed on demand)."""
        if origin is None or self.source_map is None:
            return None
        return self.source_map.locate(origin.source, origin.document, origin.path)

    def locate_all(self, origins: Sequence[ir.Origin | None]) -> list[Location | None]:
        """:meth:`locate` for many origins, the paths of each source found in one walk of it
        (asking one at a time walks a big source once per origin)."""
        smap = self.source_map
        if smap is None:
            return [None] * len(origins)
        smap.prepare((o.source, o.document, o.path, False) for o in origins if o is not None)
        return [self.locate(o) for o in origins]


def _duplicate_hint(path: Path, value: str | None, data: object) -> str:
    if path == ("metadata", "name") and isinstance(data, dict):
        meta = data.get("metadata")
        if isinstance(meta, dict) and "namespace" not in meta and value:
            return f"did you mean `namespace: {value}`? YAML keeps only the last `name:`"
    return "only the last value counts; remove one of them"


def _object_root(data: Any, path: Path) -> tuple[Path, Any]:
    """The root of the object that ``path`` (in a document) lies in, and that object:
    ``("items", 3)`` inside a ``List``. Paths are printed relative to their object."""
    root: Path = ()
    node = data
    while (
        isinstance(node, dict)
        and isinstance(node.get("kind"), str)
        and node["kind"].endswith("List")
        and isinstance(node.get("items"), list)
        and path[len(root) : len(root) + 1] == ("items",)
        and len(path) > len(root) + 1
    ):
        index = path[len(root) + 1]
        if not isinstance(index, int) or index >= len(node["items"]):
            break
        node = node["items"][index]
        root = (*root, "items", index)
    return root, node


def _strip_bom(source: Source) -> Source:
    # Editors do not count a byte-order mark as a column; neither do positions.
    if source.text.startswith("\ufeff"):
        return Source(source.name, source.text[1:])
    return source


def load(sources: Iterable[Source]) -> Bundle:
    """Read, validate and lower all sources.

    Raises :class:`~npc.errors.InputError` (unreadable input) or
    :class:`~npc.errors.ValidationError` (invalid objects) carrying every diagnostic, in
    source order.
    """
    with collector.paused():  # see npc.collector: the data built here has no cycles
        return _load(tuple(_strip_bom(s) for s in sources))


def _load(srcs: tuple[Source, ...]) -> Bundle:
    smap = SourceMap(list(srcs))
    located: list[list[Diagnostic]] = [[] for _ in srcs]
    problems: list[Problem] = []
    policies: dict[tuple[str, str], tuple[ir.Policy, ObjectRef]] = {}
    repeated: list[tuple[ir.Policy, ObjectRef]] = []
    cluster = ClusterBuilder()
    cnps: dict[str, tuple[tiers.ClusterPolicy, ObjectRef]] = {}
    repeated_cnps: list[tuple[tiers.ClusterPolicy, ObjectRef]] = []
    saw_snapshot = False
    lowered = Memo()
    clean: set[Hashable] = set()  # see Decoder.validate_once

    for index, src in enumerate(srcs):
        result = parse(index, src)
        located[index].extend(result.problems)
        if not result.problems and all(doc.data is None for doc in result.documents):
            located[index].append(
                Diagnostic(
                    Code.EMPTY_SOURCE,
                    Severity.WARNING,
                    "no Kubernetes objects in this input",
                    location=Location(src.name, 1, 1),
                )
            )
        if result.json_spans is not None:
            smap.set_json_spans(index, result.json_spans)
        for doc in result.documents:
            if doc.has_duplicates:
                located[index].extend(_duplicate_keys(smap, doc))
            for obj in split_objects(doc, problems):
                out = Decoder(obj.ref, strict=obj.kind in _POLICY_KINDS, clean=clean)
                if obj.kind is KnownKind.CLUSTER_NETWORK_POLICY:
                    cnp = out.decode(cnp_api.ClusterNetworkPolicy, obj.data)
                    validate_cluster_network_policy(cnp, out)
                    if not out.failed:
                        cpolicy = lower_cluster_network_policy(cnp, obj.ref)
                        if cpolicy.name in cnps:
                            repeated_cnps.append((cpolicy, obj.ref))
                        else:
                            cnps[cpolicy.name] = (cpolicy, obj.ref)
                elif obj.kind is KnownKind.NETWORK_POLICY:
                    np = out.decode(api.NetworkPolicy, obj.data)
                    validate_network_policy(np, out)
                    if not out.failed:
                        policy = lower_network_policy(np, obj.ref, lowered)
                        key = (policy.namespace, policy.name)
                        if key in policies:
                            repeated.append((policy, obj.ref))
                        else:
                            policies[key] = (policy, obj.ref)
                else:
                    saw_snapshot = True
                    _add_snapshot_object(cluster, obj.kind, obj.data, out)
                problems.extend(out.problems)

    problems.extend(_repeated_policies(policies, repeated, smap))
    problems.extend(_repeated_cluster_policies(cnps, repeated_cnps, smap))
    cluster_policies = tiers.ClusterPolicySet(tuple(p for p, _ in cnps.values()))
    problems.extend(_same_priority(cluster_policies, cnps))
    snapshot = None
    if saw_snapshot:
        snapshot, cross = cluster.build()
        problems.extend(cross)
    for problem, diagnostic in zip(problems, smap.diagnostics(problems), strict=True):
        located[problem.ref.source].append(diagnostic)
    diagnostics = [d for per_source in located for d in per_source]
    if not srcs:
        diagnostics.append(
            Diagnostic(
                Code.NO_INPUT,
                Severity.ERROR,
                "no input given",
                hint="pass files or directories with -f",
            )
        )
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    if errors:
        input_stage = all(d.code.value.startswith("E1") for d in errors)
        raise (InputError if input_stage else ValidationError)(diagnostics)
    return Bundle(
        ir.PolicySet(tuple(p for p, _ in policies.values())),
        snapshot,
        tuple(diagnostics),
        srcs,
        smap,
        cluster_policies,
    )


# Fields whose keys are data (label maps), printed as `labels[app]`, not `labels.app`.
_MAP_FIELDS = frozenset({"labels", "annotations", "matchLabels", "selector", "nodeSelector"})


def _duplicate_keys(smap: SourceMap, doc: Document) -> list[Diagnostic]:
    out = []
    for dup in smap.duplicates(doc.source, doc.index):
        root, obj = _object_root(doc.data, dup.path)
        path = tuple(
            Key(seg) if i and isinstance(seg, str) and dup.path[i - 1] in _MAP_FIELDS else seg
            for i, seg in enumerate(dup.path)
        )[len(root) :]
        out.append(
            Diagnostic(
                Code.DUPLICATE_KEY,
                Severity.ERROR,
                f'duplicate key "{path[-1]}" (first at line {dup.first.line})',
                format_path(path),
                dup.where,
                _duplicate_hint(path, dup.value, obj),
            )
        )
    return out


def _repeated_policies(
    policies: dict[tuple[str, str], tuple[ir.Policy, ObjectRef]],
    repeated: list[tuple[ir.Policy, ObjectRef]],
    smap: SourceMap,
) -> list[Problem]:
    name: Path = ("metadata", "name")
    firsts = [policies[(p.namespace, p.name)][1] for p, _ in repeated]
    smap.prepare((f.source, f.document, (*f.root, *name), False) for f in firsts)
    out = []
    for (policy, ref), first in zip(repeated, firsts, strict=True):
        where = smap.locate(first.source, first.document, (*first.root, *name))
        out.append(
            Problem(
                Code.DUPLICATE_OBJECT,
                f"NetworkPolicy {policy.namespace}/{policy.name} is defined twice "
                f"(first at {where})",
                ref,
                name,
                "kubectl would let the last one win; remove or rename one of them",
            )
        )
    return out


def _repeated_cluster_policies(
    cnps: dict[str, tuple[tiers.ClusterPolicy, ObjectRef]],
    repeated: list[tuple[tiers.ClusterPolicy, ObjectRef]],
    smap: SourceMap,
) -> list[Problem]:
    name: Path = ("metadata", "name")
    out = []
    for policy, ref in repeated:
        first = cnps[policy.name][1]
        where = smap.locate(first.source, first.document, (*first.root, *name))
        out.append(
            Problem(
                Code.DUPLICATE_OBJECT,
                f"ClusterNetworkPolicy {policy.name} is defined twice (first at {where})",
                ref,
                name,
                "kubectl would let the last one win; remove or rename one of them",
            )
        )
    return out


def _same_priority(
    policies: tiers.ClusterPolicySet, cnps: dict[str, tuple[tiers.ClusterPolicy, ObjectRef]]
) -> list[Problem]:
    """Two policies of one tier at one priority: upstream leaves their order undefined."""
    out = []
    previous: tiers.ClusterPolicy | None = None
    for policy in policies:
        if (
            previous is not None
            and previous.tier is policy.tier
            and previous.priority == policy.priority
        ):
            out.append(
                Problem(
                    Code.SAME_PRIORITY,
                    f"ClusterNetworkPolicy {policy.name} has the same tier and priority as "
                    f"{previous.name} ({policy.tier} {policy.priority}); implementations may "
                    f"order them either way, npc evaluates {previous.name} first (by name)",
                    cnps[policy.name][1],
                    ("spec", "priority"),
                    "give each policy of a tier its own priority",
                    severity=Severity.WARNING,
                )
            )
        previous = policy
    return out


_POLICY_KINDS = frozenset({KnownKind.NETWORK_POLICY, KnownKind.CLUSTER_NETWORK_POLICY})


def _add_snapshot_object(
    cluster: ClusterBuilder, kind: KnownKind, data: dict[str, object], out: Decoder
) -> None:
    if kind is KnownKind.NAMESPACE:
        cluster.add_namespace(out.decode(api.Namespace, data), out)
    elif kind is KnownKind.POD:
        cluster.add_pod(out.decode(api.Pod, data), out)
    elif kind is KnownKind.SERVICE:
        cluster.add_service(out.decode(api.Service, data), out)
    elif kind is KnownKind.NODE:
        cluster.add_node(out.decode(api.Node, data), out)
