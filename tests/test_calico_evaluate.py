"""The Calico evaluator on hand-written Calico objects: tiers, order, actions, entities."""

from __future__ import annotations

import textwrap

import netaddr
import pytest

from npc import ir
from npc.flows import Endpoint, Flow
from npc.rulesets.calico.evaluate import CalicoSemantics
from npc.rulesets.calico.model import CalicoFormatError, load_objects
from npc.snapshot import ContainerPort, Namespace, Pod, Snapshot

TCP, UDP = ir.Protocol.TCP, ir.Protocol.UDP


def _pod(ns: str, name: str, ip: str, labels: dict[str, str], **kw: object) -> Pod:
    return Pod(ns, name, labels, (netaddr.IPAddress(ip),), **kw)  # type: ignore[arg-type]


SNAP = Snapshot(
    (
        Namespace("shop", {"kubernetes.io/metadata.name": "shop", "env": "prod"}),
        Namespace("ops", {"kubernetes.io/metadata.name": "ops", "env": "dev"}),
    ),
    (
        _pod("shop", "web", "10.0.0.2", {"app": "web"}, ports=(ContainerPort(8080, TCP, "http"),)),
        _pod("shop", "db", "10.0.0.3", {"app": "db"}),
        _pod("ops", "probe", "10.0.1.2", {"app": "probe"}),
        _pod("ops", "node-agent", "192.168.0.10", {"app": "agent"}, host_network=True),
    ),
)
EXTERNAL = Endpoint.of_address("203.0.113.9")


def ep(key: str) -> Endpoint:
    pod = SNAP.pod(key)
    assert pod is not None
    return Endpoint.of_pod(pod)


def calico(text: str) -> CalicoSemantics:
    return CalicoSemantics(load_objects(textwrap.dedent(text)), SNAP)


def allowed(
    sem: CalicoSemantics, src: Endpoint, dst: Endpoint, port: int = 80, proto: ir.Protocol = TCP
) -> bool:
    return sem.allowed(Flow(src, dst, proto, port))


def gnp(name: str, spec: str) -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip(), "  ")
    head = "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
    return f"{head}metadata:\n  name: {name}\nspec:\n{body}\n"


def test_unselected_endpoints_are_open_and_selected_ones_isolated() -> None:
    sem = calico(gnp("iso", "selector: app == 'db'\ntypes: [Ingress]"))
    assert not allowed(sem, ep("shop/web"), ep("shop/db"))
    assert allowed(sem, ep("shop/db"), ep("shop/web"))  # db's egress is not isolated
    assert allowed(sem, ep("shop/db"), ep("shop/db"))  # an endpoint to itself
    d = sem.decide(Flow(ep("shop/web"), ep("shop/db"), TCP, 80))
    assert "end of tier default" in d.ingress.reason


def test_order_then_name_and_first_match_decides() -> None:
    deny = gnp(
        "b-deny",
        "order: 10\nselector: app == 'db'\n"
        "ingress: [{action: Deny, source: {selector: app == 'web'}}]",
    )
    allow = gnp("a-allow", "order: 20\nselector: app == 'db'\ningress: [{action: Allow}]")
    assert not allowed(calico(deny + allow), ep("shop/web"), ep("shop/db"))
    assert allowed(calico(deny + allow), ep("ops/probe"), ep("shop/db"))
    # Same order: by name, a-allow first.
    same = deny.replace("order: 10", "order: 20")
    assert allowed(calico(same + allow), ep("shop/web"), ep("shop/db"))
    # No order sorts last.
    last = deny.replace("  order: 10\n", "")
    assert allowed(calico(last + allow), ep("shop/web"), ep("shop/db"))
    log_then_deny = gnp(
        "x", "selector: all()\ningress: [{action: Log}, {action: Deny}, {action: Allow}]"
    )
    assert not allowed(calico(log_then_deny), ep("shop/web"), ep("shop/db"))


def test_tiers_and_pass() -> None:
    tiers = """
    ---
    apiVersion: projectcalico.org/v3
    kind: Tier
    metadata: {name: security}
    spec: {order: 100}
    ---
    apiVersion: projectcalico.org/v3
    kind: Tier
    metadata: {name: platform}
    spec: {order: 200, defaultAction: Pass}
    """
    sec = gnp(
        "security.gate",
        "tier: security\nselector: all()\n"
        "ingress: [{action: Pass, source: {selector: app == 'web'}}]",
    )
    plat = gnp(
        "platform.p",
        "tier: platform\nselector: app == 'db'\n"
        "ingress: [{action: Deny, source: {selector: app == 'probe'}}]",
    )
    dflt = gnp(
        "last",
        "selector: app == 'db'\ningress: [{action: Allow, source: {selector: app == 'web'}}]",
    )
    sem = calico(textwrap.dedent(tiers) + sec + plat + dflt)
    # web: passed by security, platform has no match -> Pass (tier default), default allows.
    assert allowed(sem, ep("shop/web"), ep("shop/db"))
    # probe: security selects db but no rule matches -> end of tier security denies.
    assert not allowed(sem, ep("ops/probe"), ep("shop/db"))
    # a policy in an unknown tier is refused
    with pytest.raises(CalicoFormatError, match="tier 'nope' does not exist"):
        calico(gnp("nope.x", "tier: nope\nselector: all()"))


def test_namespaced_policy_scopes_selectors_to_its_namespace() -> None:
    text = """
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {name: p, namespace: shop}
    spec:
      selector: all()
      ingress:
      - action: Allow
        source: {selector: app == 'probe'}
      - action: Allow
        source: {notSelector: app == 'web'}
        protocol: UDP
      - action: Allow
        source: {nets: [10.0.1.0/24]}
        protocol: TCP
        destination: {ports: [9000]}
    """
    sem = calico(text)
    # probe is in ops: the selector is confined to shop.
    assert not allowed(sem, ep("ops/probe"), ep("shop/db"))
    # notSelector also confines to the namespace (libcalico getEndpointSelector).
    assert allowed(sem, ep("shop/web"), ep("shop/db"), proto=UDP) is False
    assert allowed(sem, ep("shop/db"), ep("shop/web"), proto=UDP)
    assert not allowed(sem, ep("ops/probe"), ep("shop/db"), proto=UDP)
    # nets alone are not confined.
    assert allowed(sem, ep("ops/probe"), ep("shop/db"), port=9000)
    # ops pods are not selected by a shop policy.
    assert allowed(sem, ep("shop/db"), ep("ops/probe"))


def test_namespace_selectors() -> None:
    spec = "selector: app == 'db'\ningress: [{action: Allow, source: {namespaceSelector: %s}}]"
    assert allowed(calico(gnp("a", spec % "env == 'dev'")), ep("ops/probe"), ep("shop/db"))
    assert not allowed(calico(gnp("a", spec % "env == 'prod'")), ep("ops/probe"), ep("shop/db"))
    assert allowed(
        calico(gnp("a", spec % "projectcalico.org/name == 'ops'")), ep("ops/probe"), ep("shop/db")
    )
    assert allowed(calico(gnp("a", spec % "all()")), ep("ops/probe"), ep("shop/db"))
    assert not allowed(calico(gnp("a", spec % "all()")), EXTERNAL, ep("shop/db"))
    assert not allowed(calico(gnp("a", spec % "global()")), ep("ops/probe"), ep("shop/db"))
    # the policy's own namespaceSelector
    scoped = gnp("b", "namespaceSelector: env == 'dev'\nselector: all()\ntypes: [Ingress]")
    assert not allowed(calico(scoped), ep("shop/db"), ep("ops/probe"))
    assert allowed(calico(scoped), ep("ops/probe"), ep("shop/db"))


def test_selectors_match_endpoints_only() -> None:
    any_source = gnp("a", "selector: app == 'db'\ningress: [{action: Allow, source: {}}]")
    all_endpoints = gnp(
        "a", "selector: app == 'db'\ningress: [{action: Allow, source: {selector: all()}}]"
    )
    assert allowed(calico(any_source), EXTERNAL, ep("shop/db"))
    assert not allowed(calico(all_endpoints), EXTERNAL, ep("shop/db"))
    # hostNetwork pods are not workload endpoints: matched by address only.
    assert not allowed(calico(all_endpoints), ep("ops/node-agent"), ep("shop/db"))
    nets = gnp(
        "a",
        "selector: app == 'db'\ningress: [{action: Allow, source: "
        "{nets: [192.168.0.0/24], notNets: [192.168.0.10/32]}}]",
    )
    assert not allowed(calico(nets), ep("ops/node-agent"), ep("shop/db"))
    assert allowed(
        calico(nets.replace("192.168.0.10/32", "192.168.0.11/32")),
        ep("ops/node-agent"),
        ep("shop/db"),
    )
    # policies never apply to hostNetwork pods
    everything = gnp("a", "selector: all()\ntypes: [Ingress, Egress]")
    assert allowed(calico(everything), ep("ops/node-agent"), EXTERNAL)


def test_ports_protocols_and_versions() -> None:
    rules = """
    selector: app == 'web'
    ingress:
    - action: Allow
      protocol: TCP
      destination: {ports: [http, "9000:9010"], notPorts: [9005]}
    - action: Allow
      protocol: 17
      ipVersion: 6
    - action: Allow
      notProtocol: TCP
      ipVersion: 4
      destination: {}
    """
    sem = calico(gnp("p", rules))
    src = ep("shop/db")
    assert allowed(sem, src, ep("shop/web"), 8080)  # named port of the destination
    assert not allowed(sem, src, ep("shop/web"), 8081)
    assert allowed(sem, src, ep("shop/web"), 9010)
    assert not allowed(sem, src, ep("shop/web"), 9005)
    assert allowed(sem, src, ep("shop/web"), 53, UDP)  # notProtocol TCP, IPv4
    assert not allowed(sem, src, ep("shop/web"), 53, ir.Protocol.TCP)
    named_egress = gnp(
        "e",
        "selector: app == 'db'\n"
        "egress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]",
    )
    assert allowed(calico(named_egress), src, ep("shop/web"), 8080)
    assert not allowed(calico(named_egress), src, EXTERNAL, 8080)  # no named port outside


BAD = [
    ("ingress: [{action: Allow, http: {methods: [GET]}}]", "HTTP"),
    ("ingress: [{action: Allow, source: {serviceAccounts: {names: [a]}}}]", "service accounts"),
    ("ingress: [{action: Allow, protocol: TCP, source: {ports: [80]}}]", "source ports"),
    ("ingress: [{action: Allow, destination: {ports: [80]}}]", "ports need protocol"),
    ("ingress: [{action: Accept}]", "must be one of"),
    (
        "ingress: [{action: Allow, source: {selector: 'app = x'}}]",
        "spec.ingress\\[0\\].source.selector",
    ),
    ("ingress: [{action: Allow, source: {nets: [10.0.0.0/33]}}]", "invalid CIDR"),
    (
        "ingress: [{action: Allow, protocol: TCP, destination: {ports: ['9:1']}}]",
        "invalid port range",
    ),
    ("preDNAT: true\napplyOnForward: true", "host-endpoint"),
    ("serviceAccountSelector: all()", "service accounts"),
    ("selectr: all()", "unknown field"),
]


@pytest.mark.parametrize(("spec", "message"), BAD, ids=[m for _, m in BAD])
def test_unmodelled_or_malformed_objects_are_refused(spec: str, message: str) -> None:
    with pytest.raises(CalicoFormatError, match=message):
        calico(gnp("bad", "selector: all()\n" + spec))


def test_other_kinds_and_versions_are_refused() -> None:
    with pytest.raises(CalicoFormatError, match="not modelled"):
        load_objects(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: x}\n"
        )
    with pytest.raises(CalicoFormatError, match="apiVersion"):
        load_objects(
            "apiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkPolicy\nmetadata: {name: x}\n"
        )
    listed = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n"
        "  kind: Tier\n  metadata: {name: t}\n  spec: {order: 5}\n"
    )
    assert [t.name for t in load_objects(listed).tiers] == ["default", "t"]


def test_types_default_from_rules() -> None:
    only_egress = gnp("e", "selector: app == 'db'\negress: [{action: Deny}]")
    sem = calico(only_egress)
    assert allowed(sem, ep("shop/web"), ep("shop/db"))  # types defaulted to [Egress]
    assert not allowed(sem, ep("shop/db"), ep("shop/web"))


def test_host_to_local_workloads_is_allowed_workload_to_host_meets_egress_policy() -> None:
    """Felix lets processes of a host (the node's addresses, hostNetwork pods there) reach
    the workloads on it whatever their ingress policy; workload-to-host traffic meets the
    workload's egress policy first."""
    snap = Snapshot(
        (Namespace("shop", {"kubernetes.io/metadata.name": "shop"}),),
        (
            _pod("shop", "web", "10.0.0.2", {"app": "web"}, node_name="n1"),
            _pod("shop", "agent", "192.168.0.1", {}, host_network=True, node_name="n1"),
            _pod("shop", "far", "192.168.0.2", {}, host_network=True, node_name="n2"),
        ),
    )
    deny = gnp("deny", "selector: all()\ntypes: [Ingress, Egress]")
    sem = CalicoSemantics(load_objects(textwrap.dedent(deny)), snap)
    agent, far, web = (Endpoint.of_pod(p) for p in snap.pods)  # sorted by name
    assert allowed(sem, agent, web)
    assert not allowed(sem, far, web)
    assert not allowed(sem, web, agent)
