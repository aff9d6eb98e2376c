"""Strict decoding (unknown fields, duplicate keys, wrong types), kinds and apiVersions.

A test per rule, valid and invalid side by side, with exact path and position (conventions
and sources in :mod:`tests.validation_check`).
"""

from __future__ import annotations

import pytest

from npc.errors import Severity
from tests.validation_check import E, check, doc, load, only_policy, spec

# -- strict decoding: unknown fields, duplicate keys, wrong types --------------------------------


@pytest.mark.parametrize(
    ("line", "where", "path", "hint"),
    [
        ("Ingress: []", "8:3", "spec.Ingress", "did you mean `ingress`?"),
        ("podselector: {}", "8:3", "spec.podselector", "did you mean `podSelector`?"),
        ("policyType: [Ingress]", "8:3", "spec.policyType", "did you mean `policyTypes`?"),
        ("ports: []", "8:3", "spec.ports", "belongs inside a rule"),
        ("namespace: prod", "8:3", "spec.namespace", "belongs in `metadata:`"),
    ],
)
def test_unknown_spec_field(line: str, where: str, path: str, hint: str) -> None:
    check(
        spec(f"podSelector: {{}}\n{line}"),
        E(where, path, f'unknown field "{path.rsplit(".", maxsplit=1)[-1]}"', hint),
    )


@pytest.mark.parametrize(
    ("peer", "where", "path", "hint"),
    [
        ("{podSelector: {matchLabel: {a: b}}}", "10:22", "podSelector.matchLabel", "`matchLabels`"),
        ("{ipblock: {cidr: 10.0.0.0/8}}", "10:8", "ipblock", "`ipBlock`"),
        ("{ipBlock: {cidr: 10.0.0.0/8, excepts: []}}", "10:36", "ipBlock.excepts", "`except`"),
        ("{podSelector: {}, ports: [{port: 80}]}", "10:25", "ports", "belongs to the rule"),
        ("{podSelector: {app: web}}", "10:22", "podSelector.app", "go under `matchLabels:`"),
    ],
)
def test_unknown_peer_field(peer: str, where: str, path: str, hint: str) -> None:
    text = spec(f"podSelector: {{}}\ningress:\n- from:\n  - {peer}")
    field = path.rsplit(".", maxsplit=1)[-1]
    check(text, E(where, f"spec.ingress[0].from[0].{path}", f'unknown field "{field}"', hint))


def test_unknown_top_level_and_metadata_fields() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          nmespace: prod
        podSelector: {}
        spec:
          podSelector: {}
        """
    )
    check(
        text,
        E("5:3", "metadata.nmespace", 'unknown field "nmespace"', "did you mean `namespace`?"),
        E("6:1", "podSelector", 'unknown field "podSelector"', "belongs in `spec:`"),
    )


def test_duplicate_keys() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          name: prod
        spec:
          podSelector:
            matchLabels: {app: a, app: b}
        """
    )
    check(
        text,
        E(
            "5:3",
            "metadata.name",
            'duplicate key "name" (first at line 4)',
            "did you mean `namespace: prod`?",
        ),
        E(
            "8:27",
            "spec.podSelector.matchLabels[app]",
            'duplicate key "app" (first at line 8)',
            "only the last value counts",
        ),
    )


@pytest.mark.parametrize(
    ("body", "where", "path", "gist", "hint"),
    [
        (
            "podSelector:\n- matchLabels: {}",
            "8:3",
            "spec.podSelector",
            "expected a mapping, got a list",
            "remove the leading '- '",
        ),
        (
            "podSelector: {}\ningress:\n  from: []",
            "9:5",
            "spec.ingress",
            "expected a list, got a mapping",
            "start each item of a list with '- '",
        ),
        (
            "podSelector: {}\npolicyTypes: Ingress",
            "8:16",
            "spec.policyTypes",
            "expected a list, got a string ('Ingress')",
            None,
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - port: true",
            "10:13",
            "spec.ingress[0].ports[0].port",
            "expected a port number or a port name, got a boolean (true)",
            'quote the value if you mean the word: "true"',
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - port: 8.5",
            "10:13",
            "spec.ingress[0].ports[0].port",
            "got a decimal number (8.5)",
            'quote it to make it a string: "8.5"',
        ),
        (
            "podSelector: {}\ningress:\n- ports:\n  - {port: 80, endPort: '90'}",
            "10:27",
            "spec.ingress[0].ports[0].endPort",
            "expected an integer, got a string ('90')",
            "remove the quotes: 90",
        ),
        (
            "podSelector:\n  matchLabels: {version: 1.10}",
            "8:28",
            "spec.podSelector.matchLabels[version]",
            "expected a string, got a decimal number (1.10)",
            'quote it to make it a string: "1.10"',
        ),
    ],
)
def test_wrong_types(body: str, where: str, path: str, gist: str, hint: str | None) -> None:
    check(spec(body), E(where, path, gist, hint))


def test_a_broken_field_does_not_cascade() -> None:
    # Decoding failed for the peer list: no "must specify a peer" noise beneath it.
    check(
        spec("podSelector: {}\ningress:\n- from: {podSelector: {}}"),
        E("9:11", "spec.ingress[0].from", "expected a list, got a mapping", "start each item"),
    )


def test_name_as_number_shows_the_text_as_written() -> None:
    check(
        spec("podSelector: {}", name="0x1F"),
        E(
            "4:9",
            "metadata.name",
            "expected a string, got a number (0x1F)",
            'quote it to make it a string: "0x1F"',
        ),
    )


# -- kinds and apiVersions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "where", "path", "gist", "hint"),
    [
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworPolicy",
            "2:7",
            "kind",
            'unknown kind "NetworPolicy"',
            "did you mean `NetworkPolicy`?",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: networkpolicy",
            "2:7",
            "kind",
            "unknown kind",
            "`NetworkPolicy`",
        ),
        (
            "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            'NetworkPolicy is not served as "networking.k8s.io/v1beta1"',
            "use `apiVersion: networking.k8s.io/v1`",
        ),
        (
            "apiVersion: extensions/v1beta1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            "not served",
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: v1\nkind: NetworkPolicy",
            "1:13",
            "apiVersion",
            'not served as "v1"',
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: apps/v1\nkind: Pod",
            "1:13",
            "apiVersion",
            'Pod is not served as "apps/v1"',
            "use `apiVersion: v1`",
        ),
        (
            "kind: NetworkPolicy",
            "1:1",
            "apiVersion",
            "Object 'apiVersion' is missing",
            "networking.k8s.io/v1",
        ),
        (
            "apiVersion: networking.k8s.io/v1",
            "1:1",
            "kind",
            "Object 'Kind' is missing",
            "every object needs",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: [NetworkPolicy]",
            "2:7",
            "kind",
            "expected a string, got a list",
            None,
        ),
    ],
)
def test_kind_and_api_version(
    header: str, where: str, path: str, gist: str, hint: str | None
) -> None:
    check(
        f"{header}\nmetadata: {{name: web}}\nspec: {{podSelector: {{}}}}\n",
        E(where, path, gist, hint),
    )


@pytest.mark.parametrize(
    "header",
    [
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy",
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy",
        "apiVersion: apps/v1\nkind: Deployment",
        "apiVersion: example.com/v1\nkind: Pod",
    ],
)
def test_other_kinds_are_skipped_with_a_note(header: str) -> None:
    bundle, diagnostics = load(f"{header}\nmetadata: {{name: web}}\n")
    assert bundle is not None and len(bundle.policies) == 0
    (note,) = diagnostics
    assert note.severity is Severity.INFO and "skipping" in note.message


def test_list_items_need_a_kind_but_typed_list_items_do_not() -> None:
    text = doc(
        """
        apiVersion: v1
        kind: List
        items:
        - metadata: {name: a}
          spec: {podSelector: {}}
        """
    )
    check(text, E("4:3", "kind", "Object 'Kind' is missing", "items of a `kind: List` need"))
    typed = text.replace(
        "apiVersion: v1\nkind: List", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList"
    )
    assert only_policy(check(typed)).name == "a"


def test_paths_inside_a_list_are_relative_to_the_object() -> None:
    text = doc(
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata: {name: a}
          spec: {podSelector: {}}
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata:
            name: b
            name: c
          spec:
            podSelector: {}
            ingress:
            - from:
              - {}
        """
    )
    check(
        text,
        E("12:5", "metadata.name", 'duplicate key "name" (first at line 11)', "namespace: c"),
        E("17:9", "spec.ingress[0].from[0]", "must specify a peer", "leave `from:`/`to:` out"),
    )


def test_the_same_policy_twice_is_an_error() -> None:
    text = spec("podSelector: {}") + "---\n" + spec("podSelector: {}")
    check(
        text,
        E(
            "12:9",
            "metadata.name",
            "NetworkPolicy prod/web is defined twice (first at np.yaml:4:9)",
            "remove or rename",
        ),
    )


def test_all_problems_of_all_documents_are_reported_at_once() -> None:
    text = (
        spec("podSelector: {}\nIngress: []", name="a")
        + "---\n"
        + spec("podSelector: {}\ningress:\n- ports:\n  - port: 0", name="b")
    )
    check(
        text,
        E("8:3", "spec.Ingress", 'unknown field "Ingress"', "did you mean `ingress`?"),
        E("19:13", "spec.ingress[0].ports[0].port", "must be between 1 and 65535"),
    )


def test_a_misspelt_required_field_is_reported_once() -> None:
    # "cidr is required" / "must specify a peer" would only repeat the typo; other problems of
    # the same object still show.
    text = spec(
        """
        podSelector: {}
        ingress:
        - from:
          - {ipblock: {cidr: 10.0.0.0/8}}
          - {ipBlock: {cdir: 10.0.0.0/8}}
          - {bogus: 1}
        """
    )
    check(
        text,
        E("10:8", "spec.ingress[0].from[0].ipblock", 'unknown field "ipblock"', "`ipBlock`"),
        E("11:18", "spec.ingress[0].from[1].ipBlock.cdir", 'unknown field "cdir"', "`cidr`"),
        E("12:7", "spec.ingress[0].from[2]", "must specify a peer", "leave `from:`/`to:` out"),
        E("12:8", "spec.ingress[0].from[2].bogus", 'unknown field "bogus"'),
    )


def test_status_from_older_clusters_is_ignored() -> None:
    # `kubectl get networkpolicy -o yaml` on Kubernetes 1.24-1.27 prints `status: {}`.
    assert only_policy(check(spec("podSelector: {}") + "status: {}\n")).name == "web"
