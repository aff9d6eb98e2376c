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
from typing import Any

from npc.decode import did_you_mean
from npc.errors import Code, Path, Severity
from npc.source import Document, ObjectRef, Problem

__all__ = ["KnownKind", "RawObject", "split_objects"]

POLICY_API_VERSION = "networking.k8s.io/v1"


class KnownKind(enum.StrEnum):
    """Kinds npc reads."""

    NETWORK_POLICY = "NetworkPolicy"
    NAMESPACE = "Namespace"
    POD = "Pod"
    SERVICE = "Service"
    NODE = "Node"


_API_VERSIONS = {
    KnownKind.NETWORK_POLICY: POLICY_API_VERSION,
    KnownKind.NAMESPACE: "v1",
    KnownKind.POD: "v1",
    KnownKind.SERVICE: "v1",
    KnownKind.NODE: "v1",
}

# Real kinds that merely resemble ours; never reported as typos.
_OTHER_KINDS = frozenset(
    {
        "AdminNetworkPolicy",
        "BaselineAdminNetworkPolicy",
        "CiliumClusterwideNetworkPolicy",
        "CiliumNetworkPolicy",
        "ClusterNetworkPolicy",
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
    """Groups that belong to Kubernetes itself (a misversioned object there is a mistake)."""
    return group in ("", "extensions", "networking", "core") or group.endswith(".k8s.io")


def split_objects(doc: Document, problems: list[Problem]) -> Iterator[RawObject]:
    """Yield the known-kind objects of a document (unwrapping lists); report the rest."""
    if doc.data is None:
        return  # an empty document, e.g. after a trailing '---'
    yield from _split(doc.data, ObjectRef(doc.source, doc.index), (), None, problems)


def _split(
    data: Any,
    ref_base: ObjectRef,
    root: Path,
    inherited: tuple[str, str] | None,
    problems: list[Problem],
) -> Iterator[RawObject]:
    ref = ObjectRef(ref_base.source, ref_base.document, root)

    def report(
        code: Code,
        message: str,
        path: Path = (),
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
        *,
        at_key: bool = False,
    ) -> None:
        problems.append(Problem(code, message, ref, path, hint, at_key, severity))

    if not isinstance(data, dict):
        report(
            Code.NOT_AN_OBJECT,
            f"expected a Kubernetes object (a mapping with apiVersion and kind), got "
            f"{'a list' if isinstance(data, list) else type(data).__name__}",
        )
        return
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if inherited is not None:
        api_version = api_version if api_version is not None else inherited[0]
        kind = kind if kind is not None else inherited[1]
    if not isinstance(kind, str) or not kind:
        report(
            Code.MISSING_KIND,
            "Object 'Kind' is missing",
            ("kind",),
            "every object needs `apiVersion:` and `kind:`",
        )
        return
    if not isinstance(api_version, str) or not api_version:
        report(
            Code.MISSING_KIND,
            "Object 'apiVersion' is missing",
            ("apiVersion",),
            f"e.g. `apiVersion: {_API_VERSIONS.get(KnownKind(kind), 'v1')}`"
            if kind in KnownKind.__members__.values()
            else None,
        )
        return

    if kind in _LIST_KINDS or (kind.endswith("List") and "items" in data):
        items = data.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            report(Code.WRONG_TYPE, "expected a list", ("items",))
            return
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(items):
            inherit = (api_version, item_kind) if item_kind else None
            yield from _split(item, ref_base, (*root, "items", i), inherit, problems)
        return

    if kind in KnownKind.__members__.values():
        known = KnownKind(kind)
        expected = _API_VERSIONS[known]
        if api_version == expected:
            yield RawObject(known, ref, data)
            return
        group = _group(api_version)
        if known is KnownKind.NETWORK_POLICY and "projectcalico.org" in group:
            report(
                Code.SKIPPED_KIND,
                f"skipping a Calico NetworkPolicy ({api_version}); npc reads Kubernetes "
                f"NetworkPolicy ({POLICY_API_VERSION})",
                ("apiVersion",),
                severity=Severity.INFO,
            )
            return
        if _kubernetes_group(group):
            report(
                Code.WRONG_API_VERSION,
                f'{kind} is not served as "{api_version}"',
                ("apiVersion",),
                f"use `apiVersion: {expected}`",
            )
            return
        report(
            Code.SKIPPED_KIND,
            f"skipping {kind} of {api_version} (not a Kubernetes kind)",
            ("kind",),
            severity=Severity.INFO,
        )
        return

    if kind not in _OTHER_KINDS:
        guess = did_you_mean(kind, [k.value for k in KnownKind])
        if guess is not None:
            report(
                Code.UNKNOWN_KIND,
                f'unknown kind "{kind}"',
                ("kind",),
                f"did you mean `{guess}`?",
            )
            return
    report(
        Code.SKIPPED_KIND,
        f"skipping {kind} (npc reads NetworkPolicy, Namespace, Pod, Service and Node)",
        ("kind",),
        severity=Severity.INFO,
    )
