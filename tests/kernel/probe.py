"""Concurrent connection probes between network namespaces, from one process.

A socket belongs to the network namespace in which it was created, so the prober enters a
namespace (``setns``), creates the socket, and returns: thousands of probes then run at once
on non-blocking sockets, and the whole matrix costs one timeout rather than one per probe.

* TCP: a listener on the destination; the probe is allowed when ``connect`` completes.
* UDP: a bound socket on the destination; allowed when the datagram (carrying the probe's
  number) arrives.
* ICMP: an echo request from a raw socket; allowed when the echo reply comes back (the
  destination's kernel answers; the reply is conntrack-established, so only the request is
  filtered).
* SCTP: the kernel may lack the SCTP module (then ``socket(..., IPPROTO_SCTP)`` fails), but
  raw sockets need no module: the probe sends an SCTP INIT with a correct CRC32c (conntrack
  checks it) from a raw socket, and a raw socket on the destination sees it arrive.

Every probe binds its own source port, unique within the process, so a probe never reuses a
conntrack entry of an earlier one (an established entry would bypass the ruleset).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import resource
import select
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from tests.kernel.netns import NETNS_DIR

_CLONE_NEWNET = 0x40000000
_IPPROTO_SCTP = 132
_libc = ctypes.CDLL(None, use_errno=True)
_source_ports = itertools.cycle(range(20000, 60000))


@dataclass(frozen=True, slots=True)
class Probe:
    """A connection attempt from ``src`` (a namespace) at ``src_addr`` to ``dst``."""

    src: str
    src_addr: str
    dst: str
    dst_addr: str
    protocol: str  # TCP, UDP, SCTP or ICMP
    port: int = 0  # ignored for ICMP


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block in network namespace ``netns`` (this thread only), then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_init(sport: int, dport: int, tag: int) -> bytes:
    """An SCTP packet holding one INIT chunk (RFC 9260 3.3.2) with initiate tag ``tag``."""
    chunk = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 1, 1, tag)
    header = struct.pack("!HHII", sport, dport, 0, 0)
    checksum = crc32c(header + chunk)
    # the CRC32c goes on the wire little-endian (RFC 9260 appendix A)
    return struct.pack("!HHI", sport, dport, 0) + struct.pack("<I", checksum) + chunk


def icmp_echo(version: int, ident: int) -> bytes:
    """An ICMP (or ICMPv6) echo request; the kernel fills in the ICMPv6 checksum."""
    kind = 8 if version == 4 else 128
    body = struct.pack("!BBHHH", kind, 0, 0, ident, 1) + b"npc-probe"
    if version == 6:
        return body
    padded = body + b"\0" * (len(body) % 2)
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return body[:2] + struct.pack("!H", ~total & 0xFFFF) + body[4:]


def _family(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def sctp_supported() -> bool:
    """Whether this kernel has SCTP sockets (only a note: probes use raw sockets)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, _IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def run(
    probes: Sequence[Probe],
    expected: Sequence[bool] | None = None,
    *,
    timeout: float = 3.0,
    grace: float = 0.25,
) -> list[bool]:
    """Run every probe at once; True where the connection (or datagram) got through.

    Waits up to ``timeout``; when ``expected`` is given, stops ``grace`` seconds after every
    probe expected to pass has passed (a wrongly allowed probe passes as fast as a rightly
    allowed one, so the grace is what catches leaks)."""
    _raise_fd_limit(2 * len(probes) + 256)
    session = _Session(probes)
    try:
        session.listen()
        for index, probe in enumerate(probes):
            session.start(index, probe)
        want = {i for i, e in enumerate(expected or ()) if e}
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while True:
            now = time.monotonic()
            if settle is None and expected is not None and all(session.done[i] for i in want):
                settle = now + grace
            stop = deadline if settle is None else min(deadline, settle)
            if now >= stop:
                break
            for fd, _ in session.poll.poll(stop - now):
                session.event(fd)
    finally:
        session.close()
    return session.done


class _Session:
    """Sockets of one run: servers, clients, and which probe each event belongs to."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self.probes = probes
        self.done = [False] * len(probes)
        self.poll = select.epoll()
        self.sockets: dict[int, socket.socket] = {}
        self.kinds: dict[int, tuple[str, int]] = {}  # fd -> (kind, probe index or -1)

    def _socket(self, netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
        with inside(netns):
            s = socket.socket(family, kind, proto)
        self.sockets[s.fileno()] = s
        s.setblocking(False)
        return s

    def _watch(self, s: socket.socket, events: int, kind: str, index: int = -1) -> None:
        self.poll.register(s.fileno(), events)
        self.kinds[s.fileno()] = (kind, index)

    def listen(self) -> None:
        servers = sorted(
            {
                (p.dst, p.dst_addr, p.protocol, p.port)
                for p in self.probes
                if p.protocol in ("TCP", "UDP")
            }
        )
        for netns, addr, proto, port in servers:
            kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
            s = self._socket(netns, _family(addr), kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            if proto == "TCP":
                s.listen(4096)
            else:
                self._watch(s, select.EPOLLIN, "udp-server")
        raw = sorted({(p.dst, p.dst_addr) for p in self.probes if p.protocol == "SCTP"})
        for netns, addr in raw:
            s = self._socket(netns, _family(addr), socket.SOCK_RAW, _IPPROTO_SCTP)
            self._watch(s, select.EPOLLIN, f"sctp-server{4 if s.family == socket.AF_INET else 6}")

    def start(self, index: int, probe: Probe) -> None:
        family = _family(probe.dst_addr)
        sport = next(_source_ports)
        if probe.protocol == "ICMP":
            v6 = family == socket.AF_INET6
            proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
            s = self._socket(probe.src, family, socket.SOCK_RAW, proto)
            s.bind((probe.src_addr, 0))
            s.sendto(icmp_echo(6 if v6 else 4, index & 0xFFFF), (probe.dst_addr, 0))
            self._watch(s, select.EPOLLIN, f"icmp-client{6 if v6 else 4}", index)
            return
        if probe.protocol == "SCTP":
            s = self._socket(probe.src, family, socket.SOCK_RAW, _IPPROTO_SCTP)
            s.bind((probe.src_addr, 0))
            s.sendto(sctp_init(sport, probe.port, index + 1), (probe.dst_addr, 0))
            return
        kind = socket.SOCK_STREAM if probe.protocol == "TCP" else socket.SOCK_DGRAM
        s = self._socket(probe.src, family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((probe.src_addr, sport))
        if probe.protocol == "UDP":
            s.sendto(b"npc-probe %d" % index, (probe.dst_addr, probe.port))
            return
        # closing sends a reset, so no connection lingers in conntrack as established
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        code = s.connect_ex((probe.dst_addr, probe.port))
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"connect {probe}: {os.strerror(code)}")
        self._watch(s, select.EPOLLOUT, "tcp-client", index)

    def event(self, fd: int) -> None:
        kind, index = self.kinds[fd]
        sock = self.sockets[fd]
        if kind == "tcp-client":
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                self.done[index] = True
            self.poll.unregister(fd)
            return
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                return
            if kind == "udp-server":
                if data.startswith(b"npc-probe "):
                    self.done[int(data.split()[1])] = True
            elif kind.startswith("icmp-client"):
                self._echo_reply(data, kind.endswith("4"), index)
            else:
                self._sctp_arrived(data, kind.endswith("4"))

    def _sctp_arrived(self, data: bytes, ipv4: bool) -> None:
        if ipv4:  # IPv4 raw sockets see the IP header, IPv6 ones do not
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 20 or data[12] != 1:
            return
        dport = struct.unpack("!H", data[2:4])[0]
        index = struct.unpack("!I", data[16:20])[0] - 1
        if 0 <= index < len(self.probes) and self.probes[index].port == dport:
            self.done[index] = True

    def _echo_reply(self, data: bytes, ipv4: bool, index: int) -> None:
        if ipv4:
            data = data[(data[0] & 0x0F) * 4 :]
        reply = 0 if ipv4 else 129
        if len(data) >= 8 and data[0] == reply and data[4:6] == struct.pack("!H", index & 0xFFFF):
            self.done[index] = True

    def close(self) -> None:
        self.poll.close()
        for s in self.sockets.values():
            s.close()
