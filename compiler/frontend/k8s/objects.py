"""Splitting documents into Kubernetes objects and sorting them by kind.

Accepts what kubectl accepts: single objects, ``kind: List`` and typed ``*List`` wrappers
(whose items may omit apiVersion and kind, as the API returns them). NetworkPolicy objects
are policies; Namespace, Pod, Service and Node objects form the cluster snapshot; any other
kind is skipped with a note. A kind or apiVersion that looks like a typo of one npc reads is an
error, not a silent skip: a skipped ``NetworPolicy`` would leave pods unprotected.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from npc.errors import Code, Path, Severity
from npc.frontend.decode import did_you_mean, type_name
from npc.frontend.source import Document, ObjectRef, Problem

__all__ = ["KnownKind", "RawObject", "split_objects"]

POLICY_API_VERSION = "networking.k8s.io/v1"
CNP_API_VERSION = "policy.networking.k8s.io/v1alpha2"


class KnownKind(enum.StrEnum):
    """Kinds npc reads."""

    NETWORK_POLICY = "NetworkPolicy"
    NAMESPACE = "Namespace"
    POD = "Pod"
    SERVICE = "Service"
    NODE = "Node"
    CLUSTER_NETWORK_POLICY = "ClusterNetworkPolicy"


_API_VERSIONS = {
    KnownKind.NETWORK_POLICY: POLICY_API_VERSION,
    KnownKind.NAMESPACE: "v1",
    KnownKind.POD: "v1",
    KnownKind.SERVICE: "v1",
    KnownKind.NODE: "v1",
    KnownKind.CLUSTER_NETWORK_POLICY: CNP_API_VERSION,
}

# The v1alpha1 kinds ClusterNetworkPolicy replaced (network-policy-api v0.2.0, NPEP-285).
_OBSOLETE_KINDS = MappingProxyType(
    {"AdminNetworkPolicy": "Admin", "BaselineAdminNetworkPolicy": "Baseline"}
)

# Real kinds that merely resemble ours; never reported as typos.
_OTHER_KINDS = frozenset(
    {
        "CiliumClusterwideNetworkPolicy",
        "CiliumNetworkPolicy",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CronJob",
        "CustomResourceDefinition",
        "DaemonSet",
        "Deployment",
        "EndpointSlice",
        "Endpoints",
        "Event",
        "GlobalNetworkPolicy",
        "GlobalNetworkSet",
        "HorizontalPodAutoscaler",
        "HostEndpoint",
        "Ingress",
        "IngressClass",
        "Job",
        "Lease",
        "LimitRange",
        "NetworkSet",
        "NodeMetrics",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "PodMetrics",
        "PodSecurityPolicy",
        "PodTemplate",
        "PriorityClass",
        "ReplicaSet",
        "ReplicationController",
        "ResourceQuota",
        "Role",
        "RoleBinding",
        "Secret",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
        "StorageClass",
        "Tier",
    }
)
#: The known kinds by name (a lookup, not a scan of the enum, for each of many objects).
_KNOWN = MappingProxyType({k.value: k for k in KnownKind})
_LIST_KINDS = ("List", *(f"{k}List" for k in KnownKind))


@dataclass(frozen=True, slots=True)
class RawObject:
    """One object of a known kind, not decoded yet."""

    kind: KnownKind
    ref: ObjectRef
    data: dict[str, Any]


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _kubernetes_group(group: str) -> bool:
    """Groups that belong to Kubernetes itself (a misversioned object there is a mistake).

    Every third-party group has a dot in its name (CRD groups must); the built-in groups
    without one (``apps``, ``batch``, ``policy``, ``extensions``, ...) and ``*.k8s.io`` are
    Kubernetes'."""
    return "." not in group or group.endswith(".k8s.io")


def split_objects(doc: Document, problems: list[Problem]) -> Iterator[RawObject]:
    """Yield the known-kind objects of a document (unwrapping lists); report the rest."""
    if doc.data is None:
        return  # an empty document, e.g. after a trailing '---'
    # Lists may nest; walk them with a stack (input depth is not bounded by our recursion).
    pending: list[tuple[Any, Path, tuple[str, str | None] | None]] = [(doc.data, (), None)]
    while pending:
        data, root, inherited = pending.pop()
        ref = ObjectRef(doc.source, doc.index, root)
        if type(data) is dict:
            # The common case, decided as _classify decides it: a known kind at its version
            # (both written: what an item of a typed List inherits counts only when absent).
            kind = data.get("kind")
            known = _KNOWN.get(kind) if type(kind) is str else None
            if known is not None and data.get("apiVersion") == _API_VERSIONS[known]:
                yield RawObject(known, ref, data)
                continue
        found = _classify(data, ref, inherited, problems)
        if isinstance(found, RawObject):
            yield found
        elif found:
            pending.extend(reversed(found))


def _classify(
    data: Any,
    ref: ObjectRef,
    inherited: tuple[str, str | None] | None,
    problems: list[Problem],
) -> RawObject | list[tuple[Any, Path, tuple[str, str | None] | None]] | None:
    """One object: a known kind to decode, the items of a list, or nothing (reported)."""

    def report(
        code: Code,
        message: str,
        path: Path = (),
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        problems.append(Problem(code, message, ref, path, hint, False, severity))

    if not isinstance(data, dict):
        report(
            Code.NOT_AN_OBJECT,
            f"expected a Kubernetes object (a mapping with apiVersion and kind), got "
            f"{type_name(data)}",
            hint="each document (or List item) must be one object",
        )
        return None
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if inherited is not None:
        api_version = api_version if api_version is not None else inherited[0]
        kind = kind if kind is not None else inherited[1]
    for field, value in (("kind", kind), ("apiVersion", api_version)):
        if value is not None and not isinstance(value, str):
            report(Code.WRONG_TYPE, f"expected a string, got {type_name(value)}", (field,))
            return None
    if not kind:
        report(
            Code.MISSING_KIND,
            "Object 'Kind' is missing",
            ("kind",),
            "items of a `kind: List` need their own `kind:` and `apiVersion:`"
            if ref.root
            else "every object needs `apiVersion:` and `kind:`",
        )
        return None
    assert isinstance(kind, str)
    if not api_version:
        report(
            Code.MISSING_KIND,
            "Object 'apiVersion' is missing",
            ("apiVersion",),
            f"e.g. `apiVersion: {_API_VERSIONS.get(KnownKind(kind), 'v1')}`"
            if kind in KnownKind.__members__.values()
            else None,
        )
        return None
    assert isinstance(api_version, str)

    if kind in _LIST_KINDS or (kind.endswith("List") and "items" in data):
        items = data.get("items")
        if items is None:
            return None
        if not isinstance(items, list):
            report(Code.WRONG_TYPE, f"expected a list, got {type_name(items)}", ("items",))
            return None
        item_kind = kind[: -len("List")] if kind != "List" else None
        inherit = (api_version, item_kind) if item_kind else None
        return [(item, (*ref.root, "items", i), inherit) for i, item in enumerate(items)]

    known = _KNOWN.get(kind)
    if known is not None:
        expected = _API_VERSIONS[known]
        if api_version == expected:
            return RawObject(known, ref, data)
        group = _group(api_version)
        if known is KnownKind.NETWORK_POLICY and "projectcalico.org" in group:
            report(
                Code.SKIPPED_KIND,
                f"skipping a Calico NetworkPolicy ({api_version}); npc reads Kubernetes "
                f"NetworkPolicy ({POLICY_API_VERSION})",
                ("apiVersion",),
                severity=Severity.INFO,
            )
            return None
        if _kubernetes_group(group):
            report(
                Code.WRONG_API_VERSION,
                f'{kind} is not served as "{api_version}"',
                ("apiVersion",),
                f"use `apiVersion: {expected}`",
            )
            return None
        report(
            Code.SKIPPED_KIND,
            f"skipping {kind} of {api_version} (not a Kubernetes kind)",
            ("kind",),
            severity=Severity.INFO,
        )
        return None

    if kind in _OBSOLETE_KINDS and _group(api_version) == "policy.networking.k8s.io":
        tier = _OBSOLETE_KINDS[kind]
        report(
            Code.OBSOLETE_KIND,
            f"{kind} ({api_version}) was replaced by ClusterNetworkPolicy "
            f"({CNP_API_VERSION}); npc does not read the v1alpha1 kinds",
            ("kind",),
            f"rewrite it as `apiVersion: {CNP_API_VERSION}`, `kind: ClusterNetworkPolicy`, "
            f"`spec.tier: {tier}`"
            + (", `spec.priority` as it was" if tier == "Admin" else ", a `spec.priority`")
            + ", `spec.subject` as it was, and each `action: Allow` as `Accept`",
        )
        return None
    if kind not in _OTHER_KINDS:
        guess = did_you_mean(kind, [k.value for k in KnownKind])
        if guess is not None:
            report(
                Code.UNKNOWN_KIND,
                f'unknown kind "{kind}"',
                ("kind",),
                f"did you mean `{guess}`?",
            )
            return None
    report(
        Code.SKIPPED_KIND,
        f"skipping {kind} (npc reads NetworkPolicy, Namespace, Pod, Service and Node)",
        ("kind",),
        severity=Severity.INFO,
    )
    return None
