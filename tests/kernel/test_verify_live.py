"""``npc verify --live`` reads the ruleset of the network namespace it runs in (``nft list
ruleset``): in a lab node's namespace, npc's applied ruleset verifies as equivalent, and a
foreign table that drops, added by hand, is caught with its counterexample."""

from __future__ import annotations

import json
from pathlib import Path

import netaddr

from tests.kernel.conftest import MakeLab

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "testing"

FOREIGN = """table ip foreign {
	chain block {
		type filter hook forward priority -10; policy accept;
		ip daddr 10.244.1.11 tcp dport 80 drop
	}
}
"""


def test_verify_live_reads_this_namespace(make_lab: MakeLab) -> None:
    lab = make_lab([("probe", [netaddr.IPAddress("10.250.9.2")], "node")])
    applied = lab.npc("node", "apply", "--target", "nft", "-f", str(EXAMPLE))
    assert applied.returncode == 0, applied.stderr
    done = lab.npc("node", "verify", "--target", "nft", "--live", "-f", str(EXAMPLE), "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"equivalent": True, "differences": []}
    lab.nft("node", "-f", "-", stdin=FOREIGN)
    done = lab.npc("node", "verify", "--target", "nft", "--live", "-f", str(EXAMPLE), "-o", "json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)["differences"]
    assert found and all(
        d["to"] == "testing/nginx-7c5ddbdf54-2wlqs"
        and d["port"] == 80
        and d["spec"]
        and not d["ruleset"]
        for d in found
    )
    assert all(d["rule"].startswith("<nft list ruleset>:") for d in found)
