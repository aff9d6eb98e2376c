"""``npc explain``: what policies say, in plain language; why a connection is allowed or not."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence

import click
import netaddr

from npc import ir, tiers
from npc.cli.app import (
    cli,
    cni_option,
    input_options,
    load_inputs,
    parse_probes,
    print_diagnostics,
    service_reach,
)
from npc.errors import InputError, snapshot_required
from npc.snapshot import Pod, Snapshot

_EPILOG = """\b
Examples:
  npc explain -f examples/testing/
  npc explain -f policies/ testing/myapp-policy -o json
  npc explain -f examples/testing/ --from default/debug --to testing/myapp-6d8d776547-5xz2q \\
      --port 80/TCP
  npc explain -f policies/ -f cluster.yaml --from 203.0.113.7 --to shop/web-0 --port 443
  npc explain -f policies/ -f cluster.yaml --from 10.2.3.4 --to svc/shop/web:443 --cni calico
"""


def _policies(
    policies: ir.PolicySet, cluster: tiers.ClusterPolicySet, names: Sequence[str]
) -> tuple[list[ir.Policy], list[tiers.ClusterPolicy]]:
    """Policies named ``NAMESPACE/NAME`` or ``NAME`` (a NetworkPolicy in any namespace, or a
    ClusterNetworkPolicy), NetworkPolicies by key, ClusterNetworkPolicies in evaluation order."""
    if not names:
        return list(policies), list(cluster)
    chosen: list[ir.Policy] = []
    chosen_cluster: list[tiers.ClusterPolicy] = []
    for name in names:
        found = [p for p in policies if name in (p.key, p.name)]
        found_cluster = [p for p in cluster if p.name == name]
        if not found and not found_cluster:
            keys = [p.key for p in policies] + [p.name for p in cluster]
            close = difflib.get_close_matches(name, keys, n=1) or difflib.get_close_matches(
                name, [p.name for p in policies], n=1
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise click.BadParameter(f"no policy {name!r} in the input{hint}", param_hint="POLICY")
        chosen.extend(p for p in found if p not in chosen)
        chosen_cluster.extend(p for p in found_cluster if p not in chosen_cluster)
    return sorted(chosen, key=lambda p: (p.namespace, p.name)), [
        p for p in cluster if p in chosen_cluster
    ]


def _endpoint(snapshot: Snapshot, text: str, option: str) -> Pod | str:
    """``NAMESPACE/POD``, or an IP address (the pod that has it, if exactly one does)."""
    try:
        address = netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, ValueError):
        address = None
    if address is not None:
        owners = [p for p in snapshot.pods if address in p.ips and not p.host_network]
        return owners[0] if len(owners) == 1 else str(address)
    pod = snapshot.pod(text)
    if pod is not None:
        return pod
    close = difflib.get_close_matches(text, [p.key for p in snapshot.pods], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise click.BadParameter(
        f"no pod {text!r} in the snapshot (give NAMESPACE/POD or an IP address){hint}",
        param_hint=f"'{option}'",
    )


@cli.command("explain", epilog=_EPILOG)
@input_options
@click.argument("names", nargs=-1, metavar="[POLICY]...")
@click.option("--from", "from_text", metavar="NS/POD|IP", help="Explain a connection from here.")
@click.option(
    "--to",
    "to_text",
    metavar="NS/POD|IP|svc/NS/NAME[:PORT]",
    help="... to here (a Service: the client at --from, outside the cluster, through it).",
)
@click.option("--port", "port", metavar="PORT[/PROTO]", help="... on this port (default TCP).")
@cni_option
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain-language text, or JSON.",
)
def explain_command(
    paths: tuple[str, ...],
    names: tuple[str, ...],
    from_text: str | None,
    to_text: str | None,
    port: str | None,
    cni: str | None,
    fmt: str,
) -> None:
    """Explain policies, or the verdict on one connection.

    Without --from/--to: every policy (or each POLICY given as NAMESPACE/NAME or NAME) as
    numbered statements: which pods it isolates, who may connect to them on which ports,
    what is excluded; for a ClusterNetworkPolicy, its subject and tier, then each rule in
    order with its action. With a cluster snapshot, each statement also says which pods it
    comes to.

    With --from, --to and --port: whether that connection is allowed, which policies
    isolate each end, and which rule admits it (file:line), or why none does.

    With --to svc/NAMESPACE/NAME[:PORT] (--port optional): every path a client at --from
    takes through that Service, which address the policies see on each and why.
    """
    from npc.analysis.cluster_explain import explain_cluster_policy  # noqa: PLC0415
    from npc.analysis.explain import explain_flow, explain_policy  # noqa: PLC0415

    if to_text is not None and to_text.startswith("svc/") and not names:
        bundle = load_inputs(paths)
        print_diagnostics(bundle.diagnostics)
        answers = service_reach(
            bundle, from_text, to_text, cni, parse_probes([port] if port else [])
        )
        if fmt == "json":
            click.echo(json.dumps({"services": [a.to_json() for a in answers]}, indent=2))
        else:
            click.echo("".join(a.text(detail=True) for a in answers), nl=False)
        return
    flow_options = [o for o, v in (("--from", from_text), ("--to", to_text), ("--port", port)) if v]
    if flow_options and len(flow_options) < 3:
        missing = [o for o in ("--from", "--to", "--port") if o not in flow_options]
        raise click.UsageError(
            f"explaining a connection needs --from, --to and --port; missing {', '.join(missing)}"
        )
    if flow_options and names:
        raise click.UsageError("give either POLICY names or --from/--to/--port, not both")
    probes = parse_probes([port]) if port else []
    bundle = load_inputs(paths)
    print_diagnostics(bundle.diagnostics)
    if not flow_options:
        chosen, chosen_cluster = _policies(bundle.policies, bundle.cluster_policies, names)
        explanations = [explain_policy(p, bundle.snapshot, bundle.locate) for p in chosen]
        explanations.extend(
            explain_cluster_policy(p, bundle.snapshot, bundle.locate) for p in chosen_cluster
        )
        if fmt == "json":
            data = {"policies": [e.to_json() for e in explanations]}
            click.echo(json.dumps(data, indent=2))
        elif not explanations:
            click.echo("no NetworkPolicy in the input")
        else:
            click.echo("\n".join(e.text() for e in explanations), nl=False)
        return
    snapshot = bundle.snapshot
    if snapshot is None:
        raise InputError(snapshot_required("npc explain --from/--to"))
    assert from_text is not None and to_text is not None
    src = _endpoint(snapshot, from_text, "--from")
    dst = _endpoint(snapshot, to_text, "--to")
    result = explain_flow(
        bundle.policies, snapshot, src, dst, probes[0], bundle.locate, bundle.cluster_policies
    )
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(result.text(), nl=False)
