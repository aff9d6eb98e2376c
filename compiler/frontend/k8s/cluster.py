"""Building the cluster :class:`~npc.snapshot.Snapshot` from decoded v1 objects.

Checks what the snapshot relies on and reports problems like policy problems: names,
namespaces that pods refer to, duplicate objects, IP addresses, container ports.
"""

from __future__ import annotations

from collections.abc import Callable

import netaddr

from npc import snapshot as snap
from npc.errors import Code, Path
from npc.frontend.decode import Decoder
from npc.frontend.k8s import api, names
from npc.frontend.k8s.validation import DEFAULT_NAMESPACE, PROTOCOLS, validate_labels
from npc.frontend.source import ObjectRef, Problem
from npc.ir import Protocol

__all__ = ["ClusterBuilder"]

_GONE_PHASES = ("Succeeded", "Failed")


def _ip_path(status: api.PodStatus, i: int) -> Path:
    """Where the ``i``-th address of a pod's status is written."""
    return ("status", "podIPs", i, "ip") if status.pod_ips else ("status", "podIP")


class ClusterBuilder:
    """Collects snapshot objects one by one, then builds the snapshot."""

    def __init__(self) -> None:
        self.namespaces: dict[str, snap.Namespace] = {}
        self.pods: dict[tuple[str, str], snap.Pod] = {}
        self.services: dict[tuple[str, str], snap.Service] = {}
        self.nodes: dict[str, snap.Node] = {}
        self._pod_refs: dict[tuple[str, str], ObjectRef] = {}
        self._seen: dict[tuple[str, str, str], ObjectRef] = {}
        # Labels repeat across thousands of pods; each distinct one is checked once.
        self._valid_labels: set[tuple[str, str]] = set()
        self._valid_values: set[tuple[Callable[[str], list[str]], str]] = set()
        # Container ports repeat too (every replica of a deployment declares the same ones):
        # each distinct clean one is checked and built once.
        self._ports: dict[api.ContainerPort, snap.ContainerPort] = {}

    # -- one object at a time ------------------------------------------------------------

    def _invalid(self, check: Callable[[str], list[str]], value: str) -> list[str]:
        """``check(value)``, remembering values that passed: a snapshot repeats namespaces
        and port names thousands of times."""
        key = (check, value)
        if key in self._valid_values:
            return []
        msgs = check(value)
        if not msgs:
            self._valid_values.add(key)
        return msgs

    def _identity(
        self, kind: str, meta: api.SnapshotMeta, out: Decoder, namespaced: bool
    ) -> tuple[str, str] | None:
        ok = True
        if not meta.name:
            out.problem(Code.SNAPSHOT_INVALID, f"{kind} has no name", ("metadata", "name"))
            ok = False
        else:
            check = names.is_dns1123_label if kind == "Namespace" else names.is_dns1123_subdomain
            if msgs := self._invalid(check, meta.name):
                out.problem(
                    Code.SNAPSHOT_INVALID,
                    f'invalid name "{meta.name}": {"; ".join(msgs)}',
                    ("metadata", "name"),
                )
                ok = False
        namespace = (meta.namespace or DEFAULT_NAMESPACE) if namespaced else ""
        if (
            namespaced
            and meta.namespace
            and (msgs := self._invalid(names.is_dns1123_label, meta.namespace))
        ):
            out.problem(
                Code.SNAPSHOT_INVALID,
                f'invalid namespace "{meta.namespace}": {"; ".join(msgs)}',
                ("metadata", "namespace"),
            )
            ok = False
        labels = meta.labels or {}
        unchecked = {k: v for k, v in labels.items() if (k, v) not in self._valid_labels}
        if unchecked:
            before = len(out.problems)
            validate_labels(unchecked, ("metadata", "labels"), out)
            if len(out.problems) == before:
                self._valid_labels.update(unchecked.items())
        if not ok or out.failed:
            return None
        key = (kind, namespace, meta.name or "")
        first = self._seen.get(key)
        if first is not None:
            what = f"{namespace}/{meta.name}" if namespaced else meta.name
            out.problem(
                Code.DUPLICATE_OBJECT,
                f"{kind} {what} appears twice in the snapshot",
                ("metadata", "name"),
                "remove one of the two copies",
            )
            return None
        self._seen[key] = out.ref
        return namespace, meta.name or ""

    def add_namespace(self, obj: api.Namespace, out: Decoder) -> None:
        meta = obj.metadata or api.SnapshotMeta()
        ident = self._identity("Namespace", meta, out, namespaced=False)
        if ident is None:
            return
        name = ident[1]
        labels = dict(meta.labels or {})
        labels[snap.METADATA_NAME_LABEL] = name  # enforced by the API server
        self.namespaces[name] = snap.Namespace(name, snap.frozen_labels(labels), out.ref.origin())

    def add_pod(self, obj: api.Pod, out: Decoder) -> None:
        meta = obj.metadata or api.SnapshotMeta()
        ident = self._identity("Pod", meta, out, namespaced=True)
        # Check the rest even when the identity is bad: every problem at once.
        spec = obj.spec or api.PodSpec()
        status = obj.status or api.PodStatus()
        ips = self._pod_ips(status, out)
        ports = self._container_ports(spec, out)
        if ident is None or out.failed:
            return
        if not ips or status.phase in _GONE_PHASES:
            return  # no address, or gone: no enforcement point sees its traffic
        self.pods[ident] = snap.Pod(
            namespace=ident[0],
            name=ident[1],
            labels=snap.frozen_labels(meta.labels),
            ips=ips,
            host_network=bool(spec.host_network),
            node_name=spec.node_name,
            ports=ports,
            origin=out.ref.origin(),
        )
        self._pod_refs[ident] = out.ref

    def _pod_ips(self, status: api.PodStatus, out: Decoder) -> tuple[netaddr.IPAddress, ...]:
        found: list[netaddr.IPAddress] = []
        texts: list[str]
        if status.pod_ips:
            texts = [p.ip or "" for p in status.pod_ips]
        elif status.pod_ip:
            texts = [status.pod_ip]
        else:
            return ()
        for i, text in enumerate(texts):
            addr, _ = names.parse_ip(text)
            if addr is None:
                out.problem(
                    Code.SNAPSHOT_INVALID, f'"{text}" is not an IP address', _ip_path(status, i)
                )
                continue
            if not found:
                found.append(addr)
                continue
            if addr in found:
                continue
            if any(a.version == addr.version for a in found):
                # As the API server: one address per family (dual-stack at most).
                out.problem(
                    Code.SNAPSHOT_INVALID,
                    f'"{text}": may specify no more than one IP for each IP family',
                    _ip_path(status, i),
                )
                continue
            found.append(addr)
        return tuple(found)

    def _container_ports(self, spec: api.PodSpec, out: Decoder) -> tuple[snap.ContainerPort, ...]:
        result: list[snap.ContainerPort] = []
        groups: list[tuple[str, tuple[api.Container, ...]]] = [
            ("containers", spec.containers or ()),
            ("initContainers", spec.init_containers or ()),
        ]
        for field_name, containers in groups:
            for i, container in enumerate(containers):
                # Init containers only listen while the pod runs when they are sidecars.
                if field_name == "initContainers" and container.restart_policy != "Always":
                    continue
                for j, port in enumerate(container.ports or ()):
                    path: Path = ("spec", field_name, i, "ports", j)
                    cp = self._container_port(port, path, out)
                    if cp is not None:
                        result.append(cp)
        return tuple(result)

    def _container_port(
        self, port: api.ContainerPort, path: Path, out: Decoder
    ) -> snap.ContainerPort | None:
        found = self._ports.get(port)
        if found is not None:
            return found  # a clean port: nothing to report
        ok = True
        if port.container_port is None:
            out.problem(
                Code.SNAPSHOT_INVALID, "containerPort is required", (*path, "containerPort")
            )
            return None
        for msg in names.is_valid_port_num(port.container_port):
            out.problem(
                Code.SNAPSHOT_INVALID, f"{port.container_port}: {msg}", (*path, "containerPort")
            )
            ok = False
        protocol = port.protocol or "TCP"
        if protocol not in PROTOCOLS:
            out.problem(
                Code.SNAPSHOT_INVALID,
                f'unsupported protocol "{protocol}": supported values: "TCP", "UDP", "SCTP"',
                (*path, "protocol"),
            )
            ok = False
        if port.name and (msgs := self._invalid(names.is_valid_port_name, port.name)):
            out.problem(
                Code.SNAPSHOT_INVALID,
                f'invalid port name "{port.name}": {"; ".join(msgs)}',
                (*path, "name"),
            )
            ok = False
        if not ok:
            return None
        built = snap.ContainerPort(port.container_port, Protocol(protocol), port.name or None)
        self._ports[port] = built
        return built

    def add_service(self, obj: api.Service, out: Decoder) -> None:
        meta = obj.metadata or api.SnapshotMeta()
        ident = self._identity("Service", meta, out, namespaced=True)
        spec = obj.spec or api.ServiceSpec()
        ips: list[netaddr.IPAddress] = []
        for text in spec.cluster_ips or ((spec.cluster_ip,) if spec.cluster_ip else ()):
            addr, _ = names.parse_ip(text)
            if addr is not None:
                ips.append(addr)  # "None" (headless) and the like are not addresses
        ports = []
        for i, p in enumerate(spec.ports or ()):
            if p.port is None:
                out.problem(Code.SNAPSHOT_INVALID, "port is required", ("spec", "ports", i, "port"))
                continue
            proto = p.protocol or "TCP"
            if proto not in PROTOCOLS:
                out.problem(
                    Code.SNAPSHOT_INVALID,
                    f'unsupported protocol "{proto}"',
                    ("spec", "ports", i, "protocol"),
                )
                continue
            ports.append(
                snap.ServicePort(p.port, Protocol(proto), p.name, p.target_port, p.node_port)
            )
        ranges = []
        for i, text in enumerate(spec.load_balancer_source_ranges or ()):
            parsed = names.parse_cidr(text.strip())
            if parsed is None:
                out.problem(
                    Code.SNAPSHOT_INVALID,
                    f'"{text}" is not a CIDR',
                    ("spec", "loadBalancerSourceRanges", i),
                )
                continue
            ranges.append(parsed.network)
        parsed_ips = (names.parse_ip(text)[0] for text in spec.external_ips or ())
        external = [addr for addr in parsed_ips if addr is not None]
        if ident is None or out.failed:
            return
        self.services[ident] = snap.Service(
            ident[0],
            ident[1],
            spec.type or "ClusterIP",
            snap.frozen_labels(spec.selector) if spec.selector is not None else None,
            tuple(ips),
            tuple(ports),
            spec.external_traffic_policy,
            out.ref.origin(),
            internal_traffic_policy=spec.internal_traffic_policy,
            load_balancer_source_ranges=tuple(ranges),
            external_ips=tuple(external),
        )

    def add_node(self, obj: api.Node, out: Decoder) -> None:
        meta = obj.metadata or api.NodeMeta()
        ident = self._identity("Node", meta, out, namespaced=False)
        status = obj.status or api.NodeStatus()
        spec = obj.spec or api.NodeSpec()
        addresses = []
        for a in status.addresses or ():
            addr, _ = names.parse_ip(a.address or "")
            if addr is not None:
                addresses.append((a.type or "", addr))  # hostnames are not addresses
        cidrs = []
        for i, text in enumerate(spec.pod_cidrs or ((spec.pod_cidr,) if spec.pod_cidr else ())):
            parsed = names.parse_cidr(text)
            if parsed is None:
                out.problem(
                    Code.SNAPSHOT_INVALID, f'"{text}" is not a CIDR', ("spec", "podCIDRs", i)
                )
                continue
            cidrs.append(parsed.network)
        if ident is None or out.failed:
            return
        self.nodes[ident[1]] = snap.Node(
            ident[1],
            snap.frozen_labels(meta.labels),
            tuple(addresses),
            tuple(cidrs),
            out.ref.origin(),
            snap.frozen_labels(
                {k: v for k, v in (meta.annotations or {}).items() if k in snap.NODE_ANNOTATIONS}
            ),
        )

    # -- the whole snapshot ----------------------------------------------------------------

    def build(self) -> tuple[snap.Snapshot, list[Problem]]:
        """The snapshot, plus the problems that involve several objects (a pod whose
        namespace is not in the snapshot)."""
        problems: list[Problem] = []
        # In (namespace, name) order; the keys are distinct, so sorting them sorts the pods.
        for namespace, name in sorted(k for k in self._pod_refs if k[0] not in self.namespaces):
            problems.append(
                Problem(
                    Code.MISSING_NAMESPACE,
                    f'pod {namespace}/{name} is in namespace "{namespace}", which is not '
                    f"in the snapshot",
                    self._pod_refs[namespace, name],
                    ("metadata", "namespace"),
                    "include the namespaces: `kubectl get ns,pods -A -o yaml`",
                )
            )
        for key in [k for k in self.pods if k[0] not in self.namespaces]:
            del self.pods[key]
        snapshot = snap.Snapshot(
            tuple(self.namespaces.values()),
            tuple(self.pods.values()),
            tuple(self.services.values()),
            tuple(self.nodes.values()),
        )
        return snapshot, problems
