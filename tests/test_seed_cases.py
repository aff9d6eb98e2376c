"""The application cases of the seed articles give the reachability the articles describe.

Seed 002 ("网络策略应用案例", namespace ``testing``): myapp accepts only nginx on TCP/80 and
every pod of kube-system; nginx accepts anyone on TCP/80 (and kube-system on every port);
both may reach kube-system; everything else to and from testing is denied.

Seed 003 (``my-app-ns``): app1 reaches app2; app3 of ``my-app-ns2`` is meant to reach every
pod of ``my-app-ns`` on TCP/9000 but, as published, is NOT admitted (see the test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import npc
from npc import ir
from npc.analysis.explain import explain_flow
from npc.analysis.reach import Reach
from npc.analysis.semantics import Semantics
from npc.cli import main
from npc.flows import Endpoint, Flow, Probe
from tests.kube import render

ROOT = Path(__file__).resolve().parent.parent
SEED002 = ROOT / "golden" / "seed002-testing-app"
SEED003 = ROOT / "golden" / "seed003-my-app-ns"


def _load(case: Path, names: tuple[str, ...] = ("input.yaml", "cluster.yaml")) -> npc.Bundle:
    return npc.load(
        [npc.Source(str(case / n), (case / n).read_text(encoding="utf-8")) for n in names]
    )


def _matrix(b: npc.Bundle, probe: Probe, alias: dict[str, str]) -> str:
    """The matrix under short names; the oracle and the reach engine must agree."""
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)
    reach = Reach(b.policies, b.snapshot)
    pods = {short: b.snapshot.pod(key) for short, key in alias.items()}
    allowed = {}
    for s, src in pods.items():
        for d, dst in pods.items():
            assert src is not None and dst is not None
            want = sem.pod_allowed(src, dst, probe.protocol, probe.port)
            assert reach.allowed(src, dst, probe) == want
            allowed[s, d] = want
    return render(allowed, list(alias), list(alias))


SEED002_PODS = {
    "debug": "default/debug",
    "dns": "kube-system/coredns-5d78c9869d-7xk2p",
    "myapp": "testing/myapp-6d8d776547-5xz2q",
    "nginx": "testing/nginx-7c5ddbdf54-2wlqs",
}

SEED002_PORT_80 = """\
       debug  dns    myapp  nginx
debug  =      +      -      +
dns    +      =      +      +
myapp  -      +      =      +
nginx  +      +      +      ="""

# Every other port: nginx accepts only TCP/80 (and kube-system), so myapp's "egress to every
# port of nginx" is allowed on myapp's side and still refused by nginx's ingress.
SEED002_OTHER_PORTS = """\
       debug  dns    myapp  nginx
debug  =      +      -      -
dns    +      =      +      +
myapp  -      +      =      -
nginx  +      +      -      ="""


@pytest.mark.parametrize(
    ("case", "names"),
    [
        (SEED002, ("input.yaml", "cluster.yaml")),
        (ROOT / "examples" / "testing", ("policies.yaml", "cluster.yaml")),
    ],
    ids=["golden", "example"],
)
def test_seed002_application_case(case: Path, names: tuple[str, ...]) -> None:
    b = _load(case, names)
    assert _matrix(b, Probe(80), SEED002_PODS) == SEED002_PORT_80
    for probe in (
        Probe(53, ir.Protocol.UDP),
        Probe(53),
        Probe(9153),
        Probe(8080),
        Probe(443),
        Probe(80, ir.Protocol.UDP),
    ):
        assert _matrix(b, probe, SEED002_PODS) == SEED002_OTHER_PORTS, probe


def test_seed002_addresses_outside_the_cluster() -> None:
    b = _load(SEED002)
    assert b.snapshot is not None
    sem = Semantics(b.policies, b.snapshot)

    def pod(short: str) -> Endpoint:
        found = b.snapshot.pod(SEED002_PODS[short]) if b.snapshot else None
        assert found is not None
        return Endpoint.of_pod(found)

    outside = Endpoint.of_address("203.0.113.9")
    tcp, udp = ir.Protocol.TCP, ir.Protocol.UDP
    assert sem.allowed(Flow(outside, pod("nginx"), tcp, 80))  # anyone on TCP/80
    assert not sem.allowed(Flow(outside, pod("nginx"), tcp, 443))
    assert not sem.allowed(Flow(outside, pod("myapp"), tcp, 80))  # only nginx and kube-system
    assert sem.allowed(Flow(pod("nginx"), outside, udp, 53))  # nginx may send anywhere
    assert not sem.allowed(Flow(pod("myapp"), outside, udp, 53))


def test_seed002_reach_command_matches_the_article(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["reach", "-f", str(ROOT / "examples" / "testing"), "--port", "80", "-o", "json"])
    out, _ = capsys.readouterr()
    assert status == 0
    allowed = json.loads(out)["probes"][0]["allowed"]
    who_reaches_myapp = {s for s, row in allowed.items() if row[SEED002_PODS["myapp"]]}
    assert who_reaches_myapp == {SEED002_PODS[n] for n in ("dns", "myapp", "nginx")}
    who_reaches_nginx = {s for s, row in allowed.items() if row[SEED002_PODS["nginx"]]}
    assert who_reaches_nginx == set(SEED002_PODS.values())


SEED003_PODS = {"app1": "my-app-ns/app1", "app2": "my-app-ns/app2", "app3": "my-app-ns2/app3"}

SEED003_MATRIX = """\
      app1  app2  app3
app1  =     +     +
app2  -     =     +
app3  -     -     ="""


def test_seed003_app3_is_not_admitted() -> None:
    """Why app3 is NOT admitted to my-app-ns on TCP/9000, although the article says so:

    1. The last policy lists ``namespaceSelector`` and ``podSelector`` as two peers (two
       list items), so they are ORed, not ANDed.
    2. The namespace peer selects namespaces labelled ``name: my-app-ns2``; the article never
       adds that label (the API server only adds ``kubernetes.io/metadata.name``), so it
       matches no namespace.
    3. The pod peer, without a namespaceSelector, means pods of the policy's own namespace
       (my-app-ns) labelled app3-access; app3 lives in my-app-ns2.

    Meanwhile ``podSelector: {}`` makes that policy isolate app1 as well, so nothing reaches
    app1 any more; app1 reaches app2 on every port through the first policy."""
    b = _load(SEED003)
    for port in (9000, 80, 8080):
        assert _matrix(b, Probe(port), SEED003_PODS) == SEED003_MATRIX, port
    assert b.snapshot is not None
    app3 = b.snapshot.pod("my-app-ns2/app3")
    app2 = b.snapshot.pod("my-app-ns/app2")
    assert app3 is not None and app2 is not None
    why = explain_flow(b.policies, b.snapshot, app3, app2, Probe(9000), b.locate)
    assert not why.allowed
    reasons = {c.reason for c in why.families[0].ingress.checks}
    assert (
        "from[0] namespace my-app-ns2 (labels kubernetes.io/metadata.name=my-app-ns2) does not "
        "match `name=my-app-ns2`; from[1] my-app-ns2/app3 is in namespace my-app-ns2, not "
        "my-app-ns"
    ) in reasons


def test_seed003_as_intended_admits_app3_on_9000_only() -> None:
    """The fix: one peer (AND) selecting the namespace by the label the API server sets."""
    text = (SEED003 / "input.yaml").read_text(encoding="utf-8")
    fixed = text.replace(
        "    - namespaceSelector:\n        matchLabels:\n          name: my-app-ns2",
        "    - namespaceSelector:\n        matchLabels:\n"
        "          kubernetes.io/metadata.name: my-app-ns2",
    ).replace(
        "    - podSelector:\n        matchLabels:\n          app: app3-access",
        "      podSelector:\n        matchLabels:\n          app: app3-access",
    )
    assert fixed != text
    b = npc.load(
        [
            npc.Source("fixed.yaml", fixed),
            npc.Source("cluster.yaml", (SEED003 / "cluster.yaml").read_text(encoding="utf-8")),
        ]
    )
    assert _matrix(b, Probe(9000), SEED003_PODS) == SEED003_MATRIX.replace(
        "app3  -     -     =", "app3  +     +     ="
    )
    assert _matrix(b, Probe(80), SEED003_PODS) == SEED003_MATRIX
