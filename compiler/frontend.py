"""The frontend: sources in, a :class:`Bundle` (policies as IR, cluster snapshot) out.

Reads every document of every source, sorts objects by kind, decodes strictly, validates as the
API server would, lints, and lowers clean policies to the IR. Every problem in every document
is collected; if any is an error, :func:`load` raises with all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from npc import ir
from npc.decode import Decoder
from npc.errors import (
    Code,
    Diagnostic,
    InputError,
    Location,
    Severity,
    ValidationError,
    format_path,
)
from npc.k8s import api
from npc.k8s.cluster import ClusterBuilder
from npc.k8s.lint import lint_network_policy
from npc.k8s.objects import KnownKind, split_objects
from npc.k8s.validation import validate_network_policy
from npc.lower import lower_network_policy
from npc.snapshot import Snapshot
from npc.source import ObjectRef, Problem, Source, SourceMap, parse

__all__ = ["Bundle", "load"]


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything read from the input.

    ``snapshot`` is None when the input held no Namespace, Pod, Service or Node at all
    (backends that resolve selectors then refuse to run). ``diagnostics`` holds the warnings
    and notes of a successful load.
    """

    policies: ir.PolicySet
    snapshot: Snapshot | None
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: tuple[Source, ...] = ()
    source_map: SourceMap | None = field(default=None, compare=False, repr=False)

    def locate(self, origin: ir.Origin | None) -> Location | None:
        """File position of an IR element's origin (computed on demand)."""
        if origin is None or self.source_map is None:
            return None
        return self.source_map.locate(origin.source, origin.document, origin.path)


def _duplicate_hint(path: tuple[str | int, ...], value: str | None, data: object) -> str:
    if path == ("metadata", "name") and isinstance(data, dict):
        meta = data.get("metadata")
        if isinstance(meta, dict) and "namespace" not in meta and value:
            return f"did you mean `namespace: {value}`? YAML keeps only the last `name:`"
    return "YAML keeps only the last value; remove one of them"


def load(sources: Iterable[Source]) -> Bundle:
    """Read, validate and lower all sources.

    Raises :class:`~npc.errors.InputError` (unreadable input) or
    :class:`~npc.errors.ValidationError` (invalid objects) carrying every diagnostic.
    """
    srcs = tuple(sources)
    smap = SourceMap(list(srcs))
    located: list[Diagnostic] = []
    problems: list[Problem] = []
    policies: dict[tuple[str, str], tuple[ir.Policy, ObjectRef]] = {}
    cluster = ClusterBuilder()
    saw_snapshot = False

    for index, src in enumerate(srcs):
        result = parse(index, src)
        located.extend(result.problems)
        if result.json_offsets is not None:
            smap.set_document_offsets(index, result.json_offsets)
        for doc in result.documents:
            if doc.has_duplicates:
                for path, where, first, value in smap.duplicates(index, doc.index):
                    located.append(
                        Diagnostic(
                            Code.DUPLICATE_KEY,
                            Severity.ERROR,
                            f'duplicate key "{path[-1]}" (first at line {first.line})',
                            format_path(path),
                            where,
                            _duplicate_hint(path, value, doc.data),
                        )
                    )
            for obj in split_objects(doc, problems):
                out = Decoder(obj.ref, strict=obj.kind is KnownKind.NETWORK_POLICY)
                if obj.kind is KnownKind.NETWORK_POLICY:
                    np = out.decode(api.NetworkPolicy, obj.data)
                    validate_network_policy(np, out)
                    if not out.failed:
                        lint_network_policy(np, out)
                        policy = lower_network_policy(np, obj.ref)
                        _add_policy(policies, policy, out, smap)
                else:
                    saw_snapshot = True
                    _add_snapshot_object(cluster, obj.kind, obj.data, out)
                problems.extend(out.problems)

    snapshot = None
    if saw_snapshot:
        snapshot, cross = cluster.build()
        problems.extend(cross)
    if not srcs:
        located.append(
            Diagnostic(
                Code.NO_INPUT,
                Severity.ERROR,
                "no input given",
                hint="pass files or directories with -f",
            )
        )
    diagnostics = located + [smap.diagnostic(p) for p in problems]
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
    )


def _add_policy(
    policies: dict[tuple[str, str], tuple[ir.Policy, ObjectRef]],
    policy: ir.Policy,
    out: Decoder,
    smap: SourceMap,
) -> None:
    key = (policy.namespace, policy.name)
    if key in policies:
        first = policies[key][1]
        where = smap.locate(first.source, first.document, (*first.root, "metadata", "name"))
        out.problem(
            Code.DUPLICATE_OBJECT,
            f"NetworkPolicy {policy.namespace}/{policy.name} is defined twice (first at {where})",
            ("metadata", "name"),
            "kubectl would let the last one win; remove or rename one of them",
        )
        return
    policies[key] = (policy, out.ref)


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
