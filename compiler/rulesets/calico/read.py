"""The Calico judge's reader: ruleset sources (npc's output, or what ``calicoctl get -o yaml``
prints) into :class:`CalicoJudge`, with every refusal at ``file:line:col``.

YAML is composed into nodes first so each field keeps its position (a side table keyed by
document and field path, never inside the data); :mod:`.model` then types the data and
names the path of anything it cannot model, which is looked up here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import netaddr
import yaml

from npc.errors import Code, Diagnostic, InputError, Location, Severity, snapshot_required
from npc.flows import Endpoint, Flow, node_addresses
from npc.rulesets.base import Decision, Text, address_signatures
from npc.rulesets.calico.evaluate import CalicoSemantics, SideDecision
from npc.rulesets.calico.model import CalicoFormatError, CalicoObjects, merge_objects, parse_objects
from npc.snapshot import Snapshot

__all__ = ["CalicoJudge", "read"]

#: (document index, field path) -> (line, column), both from 1.
_Marks = dict[tuple[int, str], tuple[int, int]]

_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _walk(node: yaml.Node, document: int, path: str, marks: _Marks) -> None:
    marks.setdefault((document, path), (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            child = f"{path}.{name}" if path else name
            marks[(document, child)] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _walk(value, document, child, marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, document, f"{path}[{i}]", marks)


def _parents(path: str) -> list[str]:
    """``a.b[0].c`` -> [``a.b[0].c``, ``a.b[0]``, ``a.b``, ``a``, ``""``]."""
    parts = [m.group(0) for m in _SEGMENT.finditer(path)]
    out = ["".join(parts[:n]).lstrip(".") for n in range(len(parts), -1, -1)]
    return out


@dataclass(frozen=True, slots=True)
class _Located:
    name: str
    marks: _Marks

    def location(self, document: int | None, path: str) -> Location:
        if document is not None:
            for candidate in _parents(path):
                found = self.marks.get((document, candidate))
                if found is not None:
                    return Location(self.name, *found)
        return Location(self.name, 1, 1)


def _load(source: Text, index: int) -> tuple[CalicoObjects, _Located]:
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    marks: _Marks = {}
    docs: list[object] = []
    loader = loader_cls(source.text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            _walk(node, len(docs), "", marks)
            docs.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(source.name, mark.line + 1, mark.column + 1) if mark else None
        raise InputError(
            Diagnostic(Code.YAML_SYNTAX, Severity.ERROR, f"invalid YAML: {exc.problem}", "", where)
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(
            Diagnostic(
                Code.YAML_SYNTAX,
                Severity.ERROR,
                f"invalid YAML: {exc}",
                "",
                Location(source.name, 1, 1),
            )
        ) from None
    finally:
        loader.dispose()
    located = _Located(source.name, marks)
    try:
        return parse_objects(docs, index), located
    except CalicoFormatError as exc:
        raise _input_error(exc, located) from None


def _input_error(exc: CalicoFormatError, located: _Located) -> InputError:
    return InputError(
        Diagnostic(
            Code.UNSUPPORTED
            if "not modelled" in exc.message or "cannot" in exc.message
            else Code.INVALID_VALUE,
            Severity.ERROR,
            exc.message,
            exc.path,
            located.location(exc.document, exc.path),
            hint="the Calico judge reads projectcalico.org/v3 GlobalNetworkPolicy, "
            "NetworkPolicy and Tier objects, and refuses what it cannot evaluate exactly",
        )
    )


@dataclass(slots=True)
class CalicoJudge:
    """Calico's verdicts (:class:`~npc.rulesets.calico.evaluate.CalicoSemantics`) as
    :class:`~npc.rulesets.base.Decision` values naming the deciding rule's position."""

    objects: CalicoObjects
    snapshot: Snapshot
    sources: tuple[_Located, ...]
    _semantics: CalicoSemantics = field(init=False, repr=False)

    _signature: Callable[[int, int], int] = field(init=False, repr=False)
    _hosts: Mapping[netaddr.IPAddress, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._semantics = CalicoSemantics(self.objects, self.snapshot)
        self._signature = address_signatures(_net_spans(self.objects))
        self._hosts = node_addresses(self.snapshot)

    def key(self, endpoint: Endpoint) -> Hashable:
        """Calico tells endpoints apart by their labels (namespace and profile included),
        their declared ports (named ports), the nets that hold their address, and their
        host; everything else about them is invisible to its rules."""
        address = endpoint.address
        labels = self._semantics.endpoint_labels(address)
        pod = endpoint.pod
        return (
            None if labels is None else frozenset(labels.items()),
            None if pod is None else (pod.node_name, frozenset(pod.ports)),
            self._signature(address.version, int(address)),
            self._hosts.get(address),
        )

    def _rule(self, side: SideDecision) -> str | None:
        if side.policy is None or side.index is None or side.policy.origin is None:
            return None
        source, document, prefix = side.policy.origin
        path = f"spec.{side.direction}[{side.index}]"
        loc = self.sources[source].location(document, f"{prefix}.{path}" if prefix else path)
        return f"{loc.file}:{loc.line}"

    def decide(self, flow: Flow) -> Decision:
        """Calico's verdict; the rule is the denying side's (or, when allowed, the
        ingress side's, else the egress side's)."""
        found = self._semantics.decide(flow)
        note = f"egress: {found.egress.reason}; ingress: {found.ingress.reason}"
        if not found.egress.allowed:
            return Decision(False, self._rule(found.egress), note)
        if not found.ingress.allowed:
            return Decision(False, self._rule(found.ingress), note)
        return Decision(True, self._rule(found.ingress) or self._rule(found.egress), note)


def _net_spans(objects: CalicoObjects) -> Iterator[tuple[int, int, int]]:
    for policy in objects.policies:
        for rule in (*policy.ingress, *policy.egress):
            for entity in (rule.source, rule.destination):
                for net in (*entity.nets, *entity.not_nets):
                    yield net.version, net.first, net.last


def read(sources: Sequence[Text], snapshot: Snapshot | None) -> CalicoJudge:
    """Read Calico YAML sources into a judge over ``snapshot`` (required: selectors are
    resolved against its pods). Raises :class:`~npc.errors.InputError` at file:line:col
    for anything malformed or not modelled."""
    if snapshot is None:
        raise InputError(snapshot_required("the calico judge (it resolves selectors to pods)"))
    parts: list[CalicoObjects] = []
    located: list[_Located] = []
    for i, source in enumerate(sources):
        objects, where = _load(source, i)
        parts.append(objects)
        located.append(where)
    try:
        merged = merge_objects(parts)
    except CalicoFormatError as exc:
        failing = next(
            (
                p.origin[0]
                for part in parts
                for p in part.policies
                if p.origin and p.key == exc.where
            ),
            0,
        )
        raise _input_error(exc, located[failing] if located else _Located("<calico>", {})) from None
    return CalicoJudge(merged, snapshot, tuple(located))
