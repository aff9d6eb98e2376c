"""The nft judge (``npc.rulesets.nft``): what it reads, how it decides, what it refuses.

Its agreement with npc's own output over random clusters is in ``test_nftables_semantics``;
its agreement with the kernel is in ``tests/kernel/test_judges_kernel.py``.
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
from npc.errors import InputError, UnsupportedError
from npc.flows import Endpoint, Flow, pod_flows
from npc.rulesets import nft
from npc.rulesets.base import Decision, Packet
from npc.rulesets.nft.script import parse_script

DATA = Path(__file__).resolve().parent / "data" / "nft"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_NFT = sorted(p for p in GOLDEN.iterdir() if (p / "expected.nft").exists())
A = netaddr.IPAddress


@dataclasses.dataclass(frozen=True)
class Text:
    name: str
    text: str


def judge(*texts: str) -> nft.NftJudge:
    return nft.read([Text(f"f{i}.nft", t) for i, t in enumerate(texts)])


def tcp(src: str, dst: str, port: int) -> Packet:
    return Packet(A(src), A(dst), 6, port)


def decide(j: nft.NftJudge, packet: Packet) -> Decision:
    return j.decide_packet(packet)


# -- reading ------------------------------------------------------------------------------


FOREIGN = (DATA / "foreign.nft").read_text(encoding="utf-8")


def test_a_listing_of_several_tables_is_read_and_judged() -> None:
    j = nft.read([Text("foreign.nft", FOREIGN)])
    assert [str(t) for t in j.ruleset.tables] == ["table ip filter", "table inet x", "table ip6 y"]
    # ct state new: not established/related, not invalid; 10.1.1.1 is inside 10/8: no 443 rule
    assert decide(j, tcp("10.1.1.1", "11.9.9.9", 443)) == Decision(
        False, None, "table ip filter chain FORWARD: policy drop"
    )
    assert decide(j, tcp("11.1.1.1", "11.9.9.9", 8050)).allowed  # != 10/8, port in range
    assert decide(j, tcp("10.1.1.1", "11.9.9.9", 22)).rule == "foreign.nft:24"  # vmap drop
    assert decide(j, tcp("10.1.1.1", "11.9.9.9", 80)).rule == "foreign.nft:16"  # jump web
    assert decide(j, tcp("10.1.1.1", "11.9.9.9", 10)).rule == "foreign.nft:16"  # goto web
    assert decide(j, tcp("10.1.1.1", "11.9.9.9", 9)).rule == "foreign.nft:27"
    assert decide(j, tcp("10.1.1.1", "10.1.1.9", 12)).rule == "foreign.nft:25"  # reject
    assert decide(j, tcp("1.2.3.4", "9.9.9.9", 6)).rule == "foreign.nft:16"  # th dport != 5
    assert not decide(j, tcp("1.2.3.4", "9.9.9.9", 5)).allowed
    assert decide(j, tcp("10.1.1.1", "9.9.9.9", 25)).rule == "foreign.nft:30"  # concatenation
    assert not decide(j, Packet(A("9.1.1.1"), A("9.9.9.9"), 17, 53)).allowed  # udp 53 reject
    assert decide(j, Packet(A("9.1.1.1"), A("9.9.9.9"), 17, 54)).rule == "foreign.nft:31"
    # IPv6: the ip table never sees it; inet x drops one source; ip6 y runs after it
    assert decide(j, tcp("fd00::66", "fd00::1", 80)).rule == "foreign.nft:37"
    assert decide(j, tcp("fd00::67", "fd00::1", 7)).rule == "foreign.nft:48"
    six = decide(j, tcp("fd00::67", "fd00::1", 8))
    assert six.allowed and six.rule is None
    assert "table inet x chain f: policy accept" in six.note
    assert decide(j, Packet.icmp(A("fd00::67"), A("fd00::1"))).rule == "foreign.nft:47"


def test_npc_output_and_its_listing_read_the_same() -> None:
    """The kernel's listing of npc's output prints sets on one line; both read alike."""
    case = GOLDEN / "seed002-testing-app"
    written = judge((case / "expected.nft").read_text(encoding="utf-8"))
    listed = judge((DATA / "seed002-listing.nft").read_text(encoding="utf-8"))
    for src in ("10.244.0.2", "10.244.1.11", "10.244.1.10", "192.0.2.1"):
        for dst in ("10.244.1.10", "10.244.1.11", "192.0.2.1"):
            for port in (80, 443):
                if src != dst:
                    p = tcp(src, dst, port)
                    assert decide(written, p).allowed == decide(listed, p).allowed, (src, dst)


def test_the_preamble_replaces_the_table_and_files_run_in_order() -> None:
    old = "table inet t {\n chain f {\n type filter hook forward priority 0; policy drop;\n }\n}\n"
    new = (
        "table inet t\ndelete table inet t\n"
        "table inet t {\n chain f {\n type filter hook forward priority 0;\n }\n}\n"
    )
    assert not decide(judge(old), tcp("10.0.0.1", "10.0.0.2", 1)).allowed
    assert decide(judge(old, new), tcp("10.0.0.1", "10.0.0.2", 1)).allowed
    assert decide(judge(old, "flush ruleset\n"), tcp("10.0.0.1", "10.0.0.2", 1)).allowed
    extend = "table inet t {\n chain f {\n ip saddr 10.0.0.1 drop\n }\n}\n"
    assert decide(judge(new, extend), tcp("10.0.0.1", "10.0.0.2", 1)).rule == "f1.nft:3"
    assert decide(judge(new, extend, "flush table inet t"), tcp("10.0.0.1", "10.0.0.2", 1)).allowed


def test_a_drop_anywhere_is_final_and_accept_ends_only_its_base_chain() -> None:
    text = """
table inet early {
  chain f { type filter hook forward priority -5; accept; }
}
table ip late {
  chain f { type filter hook forward priority 10; ip daddr 10.0.0.2 drop; }
}
"""
    j = judge(text)
    assert decide(j, tcp("10.0.0.1", "10.0.0.2", 1)).rule == "f0.nft:6"
    assert decide(j, tcp("10.0.0.1", "10.0.0.3", 1)).rule == "f0.nft:3"


def test_goto_returns_past_its_caller_and_jump_comes_back() -> None:
    text = """table ip t {
  chain leaf { return; }
  chain mid { goto leaf; }
  chain f {
    type filter hook forward priority 0; policy drop;
    ip daddr 10.0.0.2 jump mid
    ip daddr 10.0.0.2 accept
    ip daddr 10.0.0.3 goto leaf
    accept
  }
}
"""
    j = judge(text)
    assert decide(j, tcp("10.0.0.1", "10.0.0.2", 1)).rule == "f0.nft:7"
    assert decide(j, tcp("10.0.0.1", "10.0.0.3", 1)).note.endswith("policy drop")
    assert decide(j, tcp("10.0.0.1", "10.0.0.4", 1)).rule == "f0.nft:9"


def test_a_new_connection_is_ct_state_new() -> None:
    text = """table inet t { chain f { type filter hook forward priority 0; policy drop;
      ct state vmap { established : accept, related : accept, invalid : drop }
      ct state != new drop
      ct state new accept
    }
}
"""
    assert decide(judge(text), tcp("10.0.0.1", "10.0.0.2", 1)).rule == "f0.nft:4"


def test_an_address_match_never_matches_the_other_family() -> None:
    text = (
        "table inet t { chain f { type filter hook forward priority 0;\n"
        "ip saddr != 10.0.0.1 drop; } }"
    )
    j = judge(text)
    assert decide(j, tcp("fd00::1", "fd00::2", 1)).allowed
    assert not decide(j, tcp("10.0.0.9", "10.0.0.2", 1)).allowed


def test_th_dport_of_a_packet_without_ports_is_not_guessed() -> None:
    j = judge("table inet t { chain f { type filter hook forward priority 0; th dport 80 drop; } }")
    with pytest.raises(UnsupportedError):
        decide(j, Packet.icmp(A("10.0.0.1"), A("10.0.0.2")))
    concat = judge(
        "table inet t { set s { type inet_proto . inet_service; elements = { tcp . 80 } }\n"
        "chain f { type filter hook forward priority 0; meta l4proto . th dport @s drop; } }"
    )
    assert decide(concat, Packet.icmp(A("10.0.0.1"), A("10.0.0.2"))).allowed


def test_decide_takes_flows() -> None:
    j = judge("table ip t { chain f { type filter hook forward priority 0; udp dport 53 drop; } }")
    flow = Flow(
        Endpoint.of_address("10.0.0.1"), Endpoint.of_address("10.0.0.2"), ir.Protocol.UDP, 53
    )
    assert j.decide(flow) == Decision(False, "f0.nft:1", "table ip t chain f: drop")


# -- refusing -----------------------------------------------------------------------------

REFUSED = {
    "unknown expression": ("table ip t {\n chain c {\n  ip ttl 3 drop\n }\n}", 3, 3),
    "source port": ("table ip t {\n chain c {\n  tcp sport 3 drop\n }\n}", 3, 3),
    "unknown statement": ("table ip t {\n chain c {\n  ip saddr 1.1.1.1 masquerade\n }\n}", 3, 20),
    "no such set": ("table ip t {\n chain c {\n  ip saddr @nope drop\n }\n}", 3, 13),
    "set type mismatch": (
        "table ip t {\n set s { type inet_service; }\n chain c {\n  ip saddr @s drop\n }\n}",
        4,
        13,
    ),
    "no such chain": ("table ip t {\n chain c {\n  jump nope\n }\n}", 3, 3),
    "jump loop": ("table ip t {\n chain a { jump b; }\n chain b {\n  jump a\n }\n}", 4, 3),
    "range without interval": (
        "table ip t {\n set s {\n  type ipv4_addr\n  elements = { 10.0.0.0/8 }\n }\n}",
        4,
        16,
    ),
    "bad value": ("table ip t {\n chain c {\n  tcp dport 70000 drop\n }\n}", 3, 13),
    "wrong family value": ("table ip t {\n chain c {\n  ip saddr fd00::1 drop\n }\n}", 3, 12),
    "prerouting rules": (
        "table ip t {\n chain c {\n  type filter hook prerouting priority 0; drop\n }\n}",
        3,
        3,
    ),
    "bridge base chain": (
        "table bridge t {\n chain c {\n  type filter hook forward priority 0;\n }\n}",
        3,
        3,
    ),
    "netdev base chain": (
        "table netdev t {\n chain c {\n  type filter hook ingress device eth0 priority 0;\n }\n}",
        3,
        3,
    ),
    "unknown family": ("table ipx t {\n}", 1, 7),
    "delete a missing table": ("delete table ip nope", 1, 1),
    "statement after a verdict": ("table ip t {\n chain c {\n  accept counter\n }\n}", 3, 10),
    "typeof": ("table ip t {\n set s {\n  typeof ip saddr\n }\n}", 3, 3),
    "non-verdict map": ("table ip t {\n map m {\n  type ipv4_addr : ipv4_addr\n }\n}", 3, 20),
    "unknown priority": (
        "table ip t {\n chain c {\n  type filter hook forward priority nice;\n }\n}",
        3,
        37,
    ),
    "define": ("define x = 1\n", 1, 1),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_it_cannot_model_is_an_error_at_its_position(case: str) -> None:
    text, line, column = REFUSED[case]
    with pytest.raises(InputError) as caught:
        nft.read([Text("r.nft", text)])
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.location is not None
    assert (diagnostic.location.file, diagnostic.location.line, diagnostic.location.column) == (
        "r.nft",
        line,
        column,
    ), diagnostic.render()


def test_ignored_tables_cannot_see_forwarded_ip_traffic() -> None:
    """arp tables, bridge/netdev tables without base chains, dormant tables, input/output
    chains: none of them changes a forwarded packet's verdict."""
    text = """table arp a { chain i { type filter hook input priority 0; policy drop; } }
table bridge b { chain c { drop; } }
table ip d { flags dormant; chain f { type filter hook forward priority 0; policy drop; } }
table ip e { chain i { type filter hook input priority 0; policy drop; }
  chain o { type filter hook output priority 0; policy drop; } }
"""
    decision = decide(judge(text), tcp("10.0.0.1", "10.0.0.2", 1))
    assert decision == Decision(True, None, "no base chain on the forward hook sees this packet")


# -- the syntax layer -----------------------------------------------------------------------


def _walk(value: object) -> list[object]:
    found = [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found += _walk(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            found += _walk(item)
    return found


@pytest.mark.parametrize(
    "path",
    [DATA / "foreign.nft", DATA / "seed002-listing.nft", *(c / "expected.nft" for c in GOLDEN_NFT)],
)
def test_no_raw_lark_tree_survives_the_transformer(path: Path) -> None:
    script = parse_script(path.name, path.read_text(encoding="utf-8"))
    values = _walk(script)
    assert len(values) > 20
    raw = [v for v in values if isinstance(v, lark.Tree | lark.Token)]
    assert not raw, raw[:3]
    assert all(not isinstance(v, list | dict) for v in values)  # frozen all the way down


# -- npc's own output, every golden case ------------------------------------------------------


def _boundaries(policies: ir.PolicySet) -> set[netaddr.IPAddress]:
    """Outside addresses at each ipBlock's edges: first, last and one beyond each side."""
    found: set[netaddr.IPAddress] = set()
    for policy in policies:
        for rules in (policy.ingress or (), policy.egress or ()):
            for rule in rules:
                if isinstance(rule.peers, ir.AnyPeer):
                    continue
                for peer in rule.peers:
                    if isinstance(peer, ir.AddressPeer):
                        for net in (peer.cidr, *peer.excepts):
                            if net is None:
                                continue
                            top = 2 ** (32 if net.version == 4 else 128) - 1
                            for value in (net.first - 1, net.first, net.last, net.last + 1):
                                if 0 <= value <= top:
                                    found.add(netaddr.IPAddress(value, net.version))
    return found


@pytest.mark.parametrize("case", GOLDEN_NFT, ids=[c.name for c in GOLDEN_NFT])
def test_golden_output_reads_back_and_agrees_with_the_reference_semantics(case: Path) -> None:
    files = [str(case / "input.yaml")] + (
        [str(case / "cluster.yaml")] if (case / "cluster.yaml").exists() else []
    )
    bundle = npc.load(npc.read_sources(files))
    assert bundle.snapshot is not None
    text = npc.compile(bundle, "nft").text
    assert text == (case / "expected.nft").read_text(encoding="utf-8")
    j = nft.read([Text("expected.nft", text)])
    sem = Semantics(bundle.policies, bundle.snapshot, bundle.cluster_policies)
    flows = []
    for src, dst, probe in pod_flows(bundle.snapshot):
        for version in sorted({a.version for a in src.ips} & {a.version for a in dst.ips}):
            flows.append(
                Flow(
                    Endpoint.of_pod(src, version),
                    Endpoint.of_pod(dst, version),
                    probe.protocol,
                    probe.port,
                )
            )
    probes = {(p.protocol, p.port) for _, _, p in pod_flows(bundle.snapshot)} or {
        (ir.Protocol.TCP, 80)
    }
    taken = {a for pod in bundle.snapshot.pods for a in pod.ips}
    taken |= {a for node in bundle.snapshot.nodes for _, a in node.addresses}
    outside = [Endpoint.of_address(a) for a in sorted(_boundaries(bundle.policies) - taken)]
    for pod in bundle.snapshot.pods:
        for address in pod.ips:
            here = Endpoint.of_pod(pod, address.version)
            for there in outside:
                if there.address.version == address.version:
                    for proto, port in sorted(probes):
                        flows += [Flow(here, there, proto, port), Flow(there, here, proto, port)]
    wrong = []
    for flow in flows:
        local = any(
            e.pod is not None and sem.own_node(e.pod, other)
            for e, other in ((flow.src, flow.dst), (flow.dst, flow.src))
        )
        got = local or j.decide(flow).allowed  # own-node traffic never meets the forward hook
        if got != sem.allowed(flow):
            wrong.append(f"{flow.src} -> {flow.dst} {flow.protocol}/{flow.port}: nft {got}")
    assert len(flows) > 10
    assert not wrong, f"{len(wrong)} of {len(flows)} flows differ:\n" + "\n".join(wrong[:20])


def test_handles_printed_by_nft_a_are_comments() -> None:
    """``nft -a list ruleset`` ends lines with ``# handle N``; they change nothing."""
    lines = FOREIGN.splitlines()
    handled = "\n".join(
        f"{line} # handle {i}" if line.rstrip().endswith(("{", "accept", "drop")) else line
        for i, line in enumerate(lines)
    )
    plain, with_handles = nft.read([Text("a.nft", FOREIGN)]), nft.read([Text("a.nft", handled)])
    for packet in (tcp("10.1.1.1", "11.9.9.9", 22), tcp("fd00::66", "fd00::1", 80)):
        assert decide(plain, packet) == decide(with_handles, packet)
