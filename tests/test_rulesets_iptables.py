"""The iptables judge (``npc.rulesets.iptables``): what it reads, how it decides, what it
refuses, and a kube-router node judged against the spec.

Its agreement with the kernel is in ``tests/kernel/test_judges_kernel.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lark
import netaddr
import pytest

import npc
from npc import ir
from npc.analysis.semantics import Semantics
from npc.errors import InputError
from npc.flows import Endpoint, Flow
from npc.rulesets import iptables
from npc.rulesets.base import Decision, Packet
from npc.rulesets.iptables.lines import parse_lines
from tests.flows import flows

DATA = Path(__file__).resolve().parent / "data" / "iptables"
KUBE_ROUTER = DATA / "kube-router"
A = netaddr.IPAddress


@dataclasses.dataclass(frozen=True)
class Text:
    name: str
    text: str


def judge(*texts: str, bridged: bool = False) -> iptables.IptablesJudge:
    return iptables.read([Text(f"f{i}.txt", t) for i, t in enumerate(texts)], bridged=bridged)


def tcp(src: str, dst: str, port: int) -> Packet:
    return Packet(A(src), A(dst), 6, port)


def table(*rules: str, chains: str = "", policy: str = "ACCEPT") -> str:
    declared = "".join(f":{c} - [0:0]\n" for c in chains.split())
    return (
        f"*filter\n:FORWARD {policy} [0:0]\n{declared}"
        + "".join(r + "\n" for r in rules)
        + "COMMIT\n"
    )


# -- a kube-router node -----------------------------------------------------------------------


def _kube_router() -> iptables.IptablesJudge:
    names = ("iptables-save.txt", "ip6tables-save.txt", "ipset-save.txt")
    return iptables.read([Text(n, (KUBE_ROUTER / n).read_text(encoding="utf-8")) for n in names])


def test_a_kube_router_node_is_judged_and_its_ipv6_slash_zero_is_a_difference() -> None:
    """Every flow between the pods and outside addresses, judged on node-a's dump and by the
    spec: they agree except where kube-router differs from the spec, which must show.

    kube-router turns an ipBlock ``::/0`` into ``2000::/3`` and ``fd00::/8`` (pkg/controllers/
    netpol/policy.go, evalIPBlockPeer), so sources outside those two, which ``::/0`` admits,
    are rejected on TCP/8080 of web."""
    bundle = npc.load(
        npc.read_sources([str(KUBE_ROUTER / "policies.yaml"), str(KUBE_ROUTER / "cluster.yaml")])
    )
    assert bundle.snapshot is not None
    sem = Semantics(bundle.policies, bundle.snapshot)
    j = _kube_router()
    outside = ("192.0.2.1", "192.0.2.200", "10.9.9.9", "2001:db8::1", "fc00::1", "4000::1")
    endpoints = [Endpoint.of_pod(p, a.version) for p in bundle.snapshot.pods for a in p.ips]
    endpoints += [Endpoint.of_address(a) for a in outside]
    differences = set()
    checked = 0
    for src in endpoints:
        for dst in endpoints:
            if src.address.version != dst.address.version or src.name == dst.name:
                continue
            for port in (80, 443, 8080, 12345):
                flow = Flow(src, dst, ir.Protocol.TCP, port)
                decision = j.decide(flow)
                checked += 1
                if decision.allowed != sem.allowed(flow):
                    differences.add((str(src), str(dst), port, sem.allowed(flow), decision.rule))
    assert checked > 200
    assert differences == {
        ("fc00::1", "default/web", 8080, True, "ip6tables-save.txt:34"),
        ("4000::1", "default/web", 8080, True, "ip6tables-save.txt:34"),
    }


def test_kube_router_marks_carry_through_the_traversal() -> None:
    j = _kube_router()
    # client -> web on 80: the client's chain marks (default policy), the web chain's policy
    # marks again, the explicit ACCEPT of mark 0x20000 decides
    assert j.decide_packet(tcp("10.1.0.3", "10.1.0.2", 80)) == Decision(
        True, "iptables-save.txt:49", "ACCEPT"
    )
    # the ipBlock's except is a nomatch entry of the hash:net set
    assert j.decide_packet(tcp("192.0.2.1", "10.1.0.2", 443)).allowed
    assert not j.decide_packet(tcp("192.0.2.200", "10.1.0.2", 443)).allowed
    # bridged traffic crosses the pod chains twice (physdev rule, then the plain one)
    bridged = iptables.read(
        [
            Text(n, (KUBE_ROUTER / n).read_text(encoding="utf-8"))
            for n in ("iptables-save.txt", "ipset-save.txt")
        ],
        bridged=True,
    )
    assert bridged.decide_packet(tcp("10.1.0.3", "10.1.0.2", 80)).allowed
    assert not bridged.decide_packet(tcp("10.1.0.3", "10.1.0.2", 443)).allowed


# -- rules of evaluation ------------------------------------------------------------------------


def test_return_from_the_base_chain_applies_its_policy() -> None:
    j = judge(table("-A FORWARD -d 10.0.0.2/32 -j RETURN", "-A FORWARD -j ACCEPT", policy="DROP"))
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 1)) == Decision(
        False, None, "chain FORWARD policy DROP"
    )
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.3", 1)).rule == "f0.txt:4"


def test_marks_set_xmark_set_mark_and_mark_tests() -> None:
    rules = (
        "-A FORWARD -j MARK --set-xmark 0x10000/0x10000",
        "-A FORWARD -d 10.0.0.2/32 -j MARK --xor-mark 0x10000",  # clears it again
        "-A FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT",
        '-A FORWARD -j MARK -m comment --comment "options after the target" --set-mark 0x3/0x3',
        "-A FORWARD -m mark --mark 0x3 -j DROP",
    )
    j = judge(table(*rules, policy="ACCEPT"))
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.9", 1)).rule == "f0.txt:5"
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 1)) == Decision(False, "f0.txt:7", "DROP")


def test_jump_returns_goto_does_not_and_log_continues() -> None:
    rules = (
        "-A LEAF -j RETURN",
        "-A MID -g LEAF",
        "-A MID -j DROP",
        '-A FORWARD -j LOG --log-prefix "seen " --log-level 4',
        "-A FORWARD -d 10.0.0.2/32 -j MID",
        "-A FORWARD -d 10.0.0.2/32 -j DROP",
        "-A FORWARD -j ACCEPT",
    )
    j = judge(table(*rules, chains="LEAF MID"))
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 1)).rule == "f0.txt:10"
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.3", 1)).rule == "f0.txt:11"


def test_new_connections_ports_protocols_and_negation() -> None:
    rules = (
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -m state --state INVALID -j ACCEPT",
        "-A FORWARD -p udp -m udp --dport 53 -j ACCEPT",
        "-A FORWARD -p tcp -m multiport --dports 80,8000:8100 -j ACCEPT",
        "-A FORWARD ! -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A FORWARD -m conntrack --ctstate NEW -p sctp --dport 9 -j ACCEPT",
    )
    j = judge(table(*rules, policy="DROP"))
    assert not j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 443)).allowed
    assert j.decide_packet(Packet(A("10.0.0.1"), A("10.0.0.2"), 17, 53)).rule == "f0.txt:5"
    assert not j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 53)).allowed
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 8050)).rule == "f0.txt:6"
    assert j.decide_packet(tcp("11.0.0.1", "10.0.0.2", 22)).rule == "f0.txt:7"
    assert not j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 22)).allowed
    assert j.decide_packet(Packet(A("10.0.0.1"), A("10.0.0.2"), 132, 9)).rule == "f0.txt:8"
    assert not j.decide_packet(Packet.icmp(A("10.0.0.1"), A("10.0.0.2"))).allowed


def test_ipsets_nomatch_and_ports() -> None:
    sets = "\n".join(
        (
            "create NETS hash:net family inet hashsize 1024 maxelem 65536",
            "add NETS 10.0.0.0/8",
            "add NETS 10.1.0.0/16 nomatch",
            "add NETS 10.1.2.0/24",
            "create SVC hash:ip,port family inet",
            "add SVC 10.0.0.2,tcp:80",
            "add SVC 10.0.0.2,udp:53",
            "add SVC 10.0.0.3,8080",
        )
    )
    rules = ("-A FORWARD -m set --match-set NETS src -m set --match-set SVC dst,dst -j ACCEPT",)
    j = judge(table(*rules, policy="DROP"), sets)
    assert j.decide_packet(tcp("10.9.0.1", "10.0.0.2", 80)).allowed
    assert not j.decide_packet(tcp("10.1.9.1", "10.0.0.2", 80)).allowed  # nomatch
    assert j.decide_packet(tcp("10.1.2.1", "10.0.0.2", 80)).allowed  # more specific again
    assert not j.decide_packet(tcp("10.9.0.1", "10.0.0.2", 53)).allowed  # udp only
    assert j.decide_packet(Packet(A("10.9.0.1"), A("10.0.0.2"), 17, 53)).allowed
    assert j.decide_packet(tcp("10.9.0.1", "10.0.0.3", 8080)).allowed  # port alone is TCP


def test_families_have_their_own_tables() -> None:
    v4 = table("-A FORWARD -d 10.0.0.2/32 -j DROP")
    v6 = "# Generated by ip6tables-save v1.8.9\n" + table("-A FORWARD -j DROP")
    assert judge(v4).decide_packet(tcp("fd00::1", "fd00::2", 1)).allowed  # nothing filters v6
    assert not judge(v4, v6).decide_packet(tcp("fd00::1", "fd00::2", 1)).allowed
    assert judge(v4, v6).decide_packet(tcp("10.0.0.1", "10.0.0.3", 1)).allowed


# -- refusing -------------------------------------------------------------------------------

REFUSED = {
    "interface": ("-A FORWARD -i eth0 -j DROP", 4, 12),
    "source port": ("-A FORWARD -p tcp --sport 80 -j DROP", 4, 19),
    "unknown match": ("-A FORWARD -m recent --rcheck -j DROP", 4, 15),
    "unknown option": ("-A FORWARD --frag -j DROP", 4, 12),
    "unknown target": ("-A FORWARD -j TPROXY", 4, 15),
    "undefined ipset": ("-A FORWARD -m set --match-set NOPE src -j DROP", 4, 31),
    "undeclared chain": ("-A NOPE -j DROP", 4, 4),
    "limit on a verdict": ("-A FORWARD -m limit --limit 1/s -j ACCEPT", 4, 21),
    "bad address": ("-A FORWARD -s 10.0.0.300 -j DROP", 4, 15),
    "MARK without a value": ("-A FORWARD -j MARK", 4, 15),
    "two targets": ("-A FORWARD -j ACCEPT -j DROP", 4, 22),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_it_cannot_model_is_an_error_at_its_position(case: str) -> None:
    rule, line, column = REFUSED[case]
    _assert_refused(table(rule, chains="X"), line, column)


def _assert_refused(text: str, line: int, column: int) -> None:
    with pytest.raises(InputError) as caught:
        iptables.read([Text("r.txt", text)])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.location is not None
    where = (diagnostic.location.file, diagnostic.location.line, diagnostic.location.column)
    assert where == ("r.txt", line, column), diagnostic.render()


def test_other_tables_must_leave_forwarded_traffic_alone() -> None:
    nat = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.0.0.9/32 -j DNAT\nCOMMIT\n"
    _assert_refused(nat, 3, 1)
    harmless = (
        "*nat\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n"
        "-A OUTPUT -j KUBE-SERVICES\n-A KUBE-SERVICES -d 10.96.0.1/32 -j DNAT\nCOMMIT\n"
    )
    assert judge(harmless, table()).decide_packet(tcp("10.0.0.1", "10.0.0.2", 1)).allowed


def test_jump_loops_are_refused() -> None:
    _assert_refused(table("-A X -j Y", "-A Y -j X", chains="X Y"), 6, 9)


def test_no_raw_lark_tree_survives_the_transformer() -> None:
    for path in sorted(KUBE_ROUTER.glob("*.txt")):
        lines = parse_lines(path.name, path.read_text(encoding="utf-8"))
        assert len(lines) > 5
        for words in lines:
            assert isinstance(words, tuple)
            for word in words:
                assert not isinstance(word, lark.Tree | lark.Token)
                assert isinstance(word.text, str) and type(word.text) is str


# -- partial restore files, one file for both families ----------------------------------------

PARTIAL = """# for --noflush: it declares its own chains; FORWARD jumps to NPC-FORWARD
# iptables-restore --noflush (IPv4)
*filter
:NPC-FORWARD - [0:0]
:NPC-I - [0:0]
-A NPC-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A NPC-FORWARD -d 10.0.0.2/32 -g NPC-I
-A NPC-I -p tcp -m tcp --dport 80 -j ACCEPT
-A NPC-I -j DROP
COMMIT

# ip6tables-restore --noflush (IPv6)
*filter
:NPC-FORWARD - [0:0]
-A NPC-FORWARD -j DROP
COMMIT
"""


def test_a_partial_restore_file_for_both_families() -> None:
    """The tool named in the comment before a table says its family; a table without a
    FORWARD chain is entered through its one chain nothing jumps to, and what that chain
    leaves undecided is accepted (FORWARD's policy is not in the file)."""
    j = judge(PARTIAL)
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 80)) == Decision(True, "f0.txt:8", "ACCEPT")
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.2", 81)).rule == "f0.txt:9"
    assert j.decide_packet(tcp("10.0.0.1", "10.0.0.3", 81)) == Decision(
        True,
        None,
        "chain FORWARD policy ACCEPT (no FORWARD chain in the file: taken as a jump to "
        "NPC-FORWARD, policy ACCEPT)",
    )
    assert j.decide_packet(tcp("fd00::1", "fd00::2", 80)).rule == "f0.txt:15"


def test_a_partial_file_with_two_entry_chains_is_refused() -> None:
    _assert_refused("*filter\n:A - [0:0]\n:B - [0:0]\n-A A -j DROP\nCOMMIT\n", 1, 1)


GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_IPTABLES = sorted(p.parent for p in GOLDEN.glob("*/expected.iptables"))


@pytest.mark.parametrize("case", GOLDEN_IPTABLES, ids=[c.name for c in GOLDEN_IPTABLES])
def test_golden_output_reads_back_and_agrees_with_the_reference_semantics(case: Path) -> None:
    """npc's iptables output (once the target exists) read by the judge, on every flow."""
    files = [str(case / "input.yaml")] + (
        [str(case / "cluster.yaml")] if (case / "cluster.yaml").exists() else []
    )
    bundle = npc.load(npc.read_sources(files))
    assert bundle.snapshot is not None
    names = ("expected.iptables", "expected.iptables.ipset")
    j = iptables.read([Text(n, (case / n).read_text(encoding="utf-8")) for n in names])
    sem = Semantics(bundle.policies, bundle.snapshot, bundle.cluster_policies)
    wrong = []
    outside = ("192.0.2.1", "10.77.9.9", "2001:db8::1", "fd77::9:9")
    for flow in flows(bundle.snapshot, bundle.policies, outside):
        local = any(
            e.pod is not None and sem.own_node(e.pod, other)
            for e, other in ((flow.src, flow.dst), (flow.dst, flow.src))
        )
        got = local or j.decide(flow).allowed  # own-node traffic never meets FORWARD
        if got != sem.allowed(flow):
            wrong.append(f"{flow.src} -> {flow.dst} {flow.protocol}/{flow.port}: {got}")
    assert not wrong, f"{len(wrong)} flows differ:\n" + "\n".join(wrong[:20])
