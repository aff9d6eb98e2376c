"""The cluster snapshot: which pods take part, and errors reported like a compiler's."""

from __future__ import annotations

from tests.helpers import diagnostics, rendered
from tests.kube import bundle, namespace, pod


def test_snapshot_keeps_only_pods_taking_part_in_networking() -> None:
    """No IP, or phase Succeeded/Failed: not in the snapshot. Named ports come from every
    container and from init containers that run as sidecars (restartPolicy Always)."""
    sidecar = pod("a", "sidecar", "10.0.0.5")
    sidecar["spec"]["initContainers"] = [
        {
            "name": "proxy",
            "restartPolicy": "Always",
            "ports": [{"containerPort": 15001, "name": "proxy"}],
        },
        {"name": "setup", "ports": [{"containerPort": 9999, "name": "setup"}]},
    ]
    sidecar["spec"]["containers"].append(
        {"name": "second", "ports": [{"containerPort": 8081, "name": "admin"}]}
    )
    b = bundle(
        "",
        namespace("a"),
        pod("a", "pending", []),
        pod("a", "done", "10.0.0.2", phase="Succeeded"),
        pod("a", "crashed", "10.0.0.3", phase="Failed"),
        pod("a", "running", "10.0.0.4"),
        sidecar,
    )
    assert b.snapshot is not None
    assert [p.key for p in b.snapshot.pods] == ["a/running", "a/sidecar"]
    ports = {(p.name, p.port) for p in b.snapshot.pods[1].ports}
    assert ports == {("proxy", 15001), ("admin", 8081)}
    assert b.snapshot.namespace_labels("a") == {"kubernetes.io/metadata.name": "a"}


# -- snapshot errors: compiler-style, with file:line:col and field path ---------------------

SNAPSHOT_HEAD = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
"""


def test_pod_in_a_namespace_missing_from_the_snapshot() -> None:
    text = rendered(
        SNAPSHOT_HEAD
        + """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shpo
        status:
          podIP: 10.0.0.1
        """.replace("\n        ", "\n")
    )
    assert text == (
        'input.yaml:11:14: error: metadata.namespace: pod shpo/web is in namespace "shpo", '
        "which is not in the snapshot\n"
        "  hint: include the namespaces: `kubectl get ns,pods -A -o yaml`"
    )


def test_duplicate_pods() -> None:
    pod_text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n"
    text = rendered(
        SNAPSHOT_HEAD
        + pod_text
        + "status: {podIP: 10.0.0.1}\n---\n"
        + pod_text
        + "status: {podIP: 10.0.0.2}\n"
    )
    assert text == (
        "input.yaml:16:9: error: metadata.name: Pod shop/web appears twice in the snapshot\n"
        "  hint: remove one of the two copies"
    )


def test_malformed_pod_addresses() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "status:\n"
        "  podIPs:\n"
        "  - ip: 10.0.0.300\n"
        "  - ip: 10.0.0.1\n"
        "  - ip: 10.0.0.2\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop}\n"
        "status: {podIP: 'fd00::1::2'}\n"
    )
    assert text == (
        'input.yaml:11:9: error: status.podIPs[0].ip: "10.0.0.300" is not an IP address\n'
        'input.yaml:13:9: error: status.podIPs[2].ip: "10.0.0.2": may specify no more than one '
        "IP for each IP family\n"
        'input.yaml:18:17: error: status.podIP: "fd00::1::2" is not an IP address'
    )


def test_malformed_container_ports() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n"
        "  containers:\n"
        "  - name: main\n"
        "    ports:\n"
        "    - containerPort: 0\n"
        "    - containerPort: 80\n"
        "      name: HTTP_port\n"
        "    - containerPort: 53\n"
        "      protocol: ICMP\n"
        "    - name: metrics\n"
        "status: {podIP: 10.0.0.1}\n"
    )
    assert text == (
        "input.yaml:13:22: error: spec.containers[0].ports[0].containerPort: 0: must be "
        "between 1 and 65535, inclusive\n"
        "input.yaml:15:13: error: spec.containers[0].ports[1].name: invalid port name "
        '"HTTP_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)\n'
        "input.yaml:17:17: error: spec.containers[0].ports[2].protocol: unsupported protocol "
        '"ICMP": supported values: "TCP", "UDP", "SCTP"\n'
        "input.yaml:18:7: error: spec.containers[0].ports[3].containerPort: containerPort is "
        "required"
    )


def test_container_port_of_the_wrong_type() -> None:
    text = rendered(
        SNAPSHOT_HEAD + "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
        "spec:\n"
        "  containers:\n"
        "  - name: main\n"
        "    ports: [{containerPort: http}]\n"
        "status: {podIP: 10.0.0.1}\n"
    )
    assert text == (
        "input.yaml:12:29: error: spec.containers[0].ports[0].containerPort: expected an "
        "integer, got a string ('http')"
    )


def test_a_pod_with_a_bad_name_still_reports_its_other_problems() -> None:
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: ns}
- apiVersion: v1
  kind: Pod
  metadata: {name: Bad_Name, namespace: ns}
  spec:
    containers:
    - name: c
      ports: [{containerPort: 70000}]
  status: {podIP: 10.0.0.300}
"""
    diags = diagnostics(text)
    paths = sorted(d.path for d in diags)
    assert paths == ["metadata.name", "spec.containers[0].ports[0].containerPort", "status.podIP"]
