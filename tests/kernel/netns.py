"""Network namespaces for kernel tests: one per pod, one per node routing between them.

Each pod namespace holds the pod's addresses on ``eth0`` (a /32 and a /128), a default route
through a link-local gateway and a permanent neighbour entry for it; its node holds a /32
(/128) route per pod and a permanent neighbour entry for it, and forwards. Static neighbours
are the "proxy ARP or equivalent" of real CNIs (Calico answers ARP for 169.254.1.1 by proxy
ARP): nothing waits for address resolution, so the first probe packet is never queued or lost.
With two nodes, a veth pair links them and each routes the other's pods across it.

Every namespace name starts with the run's unique prefix; :meth:`Lab.destroy` deletes all of
them (also the ones a failed set-up left behind), and fixtures call it from finalizers.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import netaddr

#: A host to build: (key, addresses, node).
HostSpec = tuple[str, Sequence[netaddr.IPAddress], str]

NETNS_DIR = Path("/var/run/netns")
GATEWAY4 = "169.254.1.1"
GATEWAY6 = "fe80::1"
NPC = Path(sys.executable).with_name("npc")


def run(
    *command: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its stderr on failure."""
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "kernel tests need root (they create network namespaces)"
    for tool in ("ip", "nft"):
        if run("sh", "-c", f"command -v {tool}", check=False).returncode != 0:
            return f"kernel tests need `{tool}` (install iproute2 and nftables; .ci/run does)"
    name = f"npck-check-{secrets.token_hex(4)}"
    done = run("ip", "netns", "add", name, check=False)
    if done.returncode != 0:
        return f"`ip netns add` failed: {done.stderr.strip()}"
    run("ip", "netns", "del", name, check=False)
    return None


def _mac(kind: int, index: int) -> str:
    return f"02:{kind:02x}:00:{index >> 16 & 0xFF:02x}:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


@dataclass(frozen=True, slots=True)
class Host:
    """A pod (or an external machine) living in its own namespace."""

    key: str
    netns: str
    ips: tuple[netaddr.IPAddress, ...]
    node: str

    def ip(self, version: int) -> netaddr.IPAddress | None:
        for a in self.ips:
            if a.version == version:
                return a
        return None


@dataclass(slots=True)
class Lab:
    """Namespaces created under one unique prefix; nodes by name, hosts by key."""

    prefix: str = field(default_factory=lambda: f"npck-{secrets.token_hex(3)}")
    nodes: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    _count: int = 0

    def _new_netns(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        run("ip", "netns", "add", name)
        return name

    def add_node(self, name: str) -> str:
        netns = self._new_netns(f"n{len(self.nodes)}")
        self.nodes[name] = netns
        run(
            "ip", "netns", "exec", netns, "sysctl", "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv6.conf.default.accept_dad=0",
        )  # fmt: skip
        run("ip", "-n", netns, "link", "set", "lo", "up")
        return netns

    def add_host(self, key: str, ips: Sequence[netaddr.IPAddress], node: str) -> Host:
        """A namespace for ``key`` with ``ips``, wired to ``node`` (which must exist)."""
        self._count += 1
        index = self._count
        netns = self._new_netns(f"h{index}")
        node_ns = self.nodes[node]
        node_mac, host_mac, veth = _mac(1, index), _mac(2, index), f"v{index}"
        node_cmds = [
            f"link add {veth} address {node_mac} type veth peer name eth0 address {host_mac} "
            f"netns {netns}",
            f"link set {veth} up",
        ]
        host_cmds = ["link set lo up", "link set eth0 up"]
        for a in ips:
            plen = 32 if a.version == 4 else 128
            node_cmds += [
                f"route add {a}/{plen} dev {veth}",
                f"neigh replace {a} lladdr {host_mac} dev {veth} nud permanent",
            ]
            host_cmds.append(f"addr add {a}/{plen} dev eth0" + (" nodad" if a.version == 6 else ""))
        if any(a.version == 4 for a in ips):
            host_cmds += [
                f"route add {GATEWAY4} dev eth0 scope link",
                f"route add default via {GATEWAY4} dev eth0",
                f"neigh replace {GATEWAY4} lladdr {node_mac} dev eth0 nud permanent",
            ]
        if any(a.version == 6 for a in ips):
            host_cmds += [
                f"route add default via {GATEWAY6} dev eth0",
                f"neigh replace {GATEWAY6} lladdr {node_mac} dev eth0 nud permanent",
            ]
        run("ip", "-n", node_ns, "-batch", "-", stdin="\n".join(node_cmds) + "\n")
        run("ip", "-n", netns, "-batch", "-", stdin="\n".join(host_cmds) + "\n")
        host = Host(key, netns, tuple(ips), node)
        self.hosts[key] = host
        return host

    def link_nodes(self, a: str, b: str) -> None:
        """Connect two nodes and route each one's hosts through the other."""
        ns_a, ns_b = self.nodes[a], self.nodes[b]
        mac_a, mac_b = _mac(3, 1), _mac(3, 2)
        run(
            "ip", "-n", ns_a, "link", "add", "peer0", "address", mac_a, "type", "veth",
            "peer", "name", "peer0", "address", mac_b, "netns", ns_b,
        )  # fmt: skip
        for here, there_mac, there in ((ns_a, mac_b, b), (ns_b, mac_a, a)):
            cmds = ["link set peer0 up"]
            for host in self.hosts.values():
                if host.node != there:
                    continue
                for addr in host.ips:
                    plen = 32 if addr.version == 4 else 128
                    cmds += [
                        f"route add {addr}/{plen} dev peer0",
                        f"neigh replace {addr} lladdr {there_mac} dev peer0 nud permanent",
                    ]
            run("ip", "-n", here, "-batch", "-", stdin="\n".join(cmds) + "\n")

    def nft(self, node: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run nft in a node's namespace and return its output."""
        done = run("ip", "netns", "exec", self.nodes[node], "nft", *args, stdin=stdin, check=check)
        return done.stdout

    def npc(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the real ``npc`` command line inside a node's namespace."""
        return run("ip", "netns", "exec", self.nodes[node], str(NPC), *args, check=False)

    def destroy(self) -> None:
        """Delete every namespace of this lab (ours only: they carry the unique prefix)."""
        names = [p.name for p in NETNS_DIR.glob(f"{self.prefix}-*")] if NETNS_DIR.exists() else []
        for name in names:
            run("ip", "netns", "del", name, check=False)
        self.nodes.clear()
        self.hosts.clear()


def build(hosts: Iterable[HostSpec], lab: Lab | None = None) -> Lab:
    """A lab with the given (key, addresses, node) hosts; nodes are created as named and
    linked when there are two."""
    lab = lab if lab is not None else Lab()
    items = list(hosts)
    for _, _, node in items:
        if node not in lab.nodes:
            lab.add_node(node)
    for key, ips, node in items:
        lab.add_host(key, ips, node)
    names = sorted(lab.nodes)
    if len(names) == 2:
        lab.link_nodes(*names)
    elif len(names) > 2:
        raise ValueError("kernel labs link at most two nodes")
    return lab
