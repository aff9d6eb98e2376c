"""Validation rules of metadata: names, namespaces, label keys and values.

A test per rule, valid and invalid side by side, with exact path and position (conventions
and sources in :mod:`tests.validation_check`).
"""

from __future__ import annotations

import pytest

from tests.validation_check import E, check, doc, only_policy, spec

# -- metadata.name: a DNS-1123 subdomain -------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "web.allow-1", "0-a", "a" * 253, "a.b.c", '"1"'])
def test_name_valid(name: str) -> None:
    assert only_policy(check(spec("podSelector: {}", name=name))).name == name.strip('"')


@pytest.mark.parametrize(
    ("name", "gist"),
    [
        ("Web", "lowercase RFC 1123 subdomain"),
        ("-web", "must start and end with an alphanumeric"),
        ("web_1", "lowercase RFC 1123 subdomain"),
        ("web.", "lowercase RFC 1123 subdomain"),
        ("a" * 254, "must be no more than 253 characters"),
    ],
)
def test_name_invalid(name: str, gist: str) -> None:
    check(spec("podSelector: {}", name=name), E("4:9", "metadata.name", gist))


def test_name_required() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          namespace: prod
        spec:
          podSelector: {}
        """
    )
    # A missing field points at the mapping that lacks it.
    check(text, E("4:3", "metadata.name", "name is required"))


def test_name_required_mentions_generate_name() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          generateName: web-
        spec:
          podSelector: {}
        """
    )
    check(text, E("4:3", "metadata.name", "name is required", "generateName"))


def test_empty_name_is_required() -> None:
    check(spec("podSelector: {}", name='""'), E("4:9", "metadata.name", "name is required"))


# -- metadata.namespace: a DNS-1123 label, defaulting to `default` ------------------------------


@pytest.mark.parametrize("namespace", ["prod", "team-a", '"0"', "a" * 63])
def test_namespace_valid(namespace: str) -> None:
    policy = only_policy(check(spec("podSelector: {}", namespace=namespace)))
    assert policy.namespace == namespace.strip('"')


def test_namespace_defaults_to_default() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
        spec:
          podSelector: {}
        """
    )
    assert only_policy(check(text)).namespace == "default"


@pytest.mark.parametrize(
    ("namespace", "gist"),
    [
        ("Prod", "lowercase RFC 1123 label"),
        ("team.a", "lowercase RFC 1123 label"),
        ("-prod", "lowercase RFC 1123 label"),
        ("a" * 64, "must be no more than 63 characters"),
    ],
)
def test_namespace_invalid(namespace: str, gist: str) -> None:
    check(spec("podSelector: {}", namespace=namespace), E("5:14", "metadata.namespace", gist))


# -- label keys (optional DNS prefix + name) and values ----------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "app",
        "app.kubernetes.io/name",
        "example.com/a_b.c-d",
        "A1",
        "a" * 63,
        f"{'b' * 253}/x",
    ],
)
def test_label_key_valid(key: str) -> None:
    policy = only_policy(check(spec(f"podSelector:\n  matchLabels:\n    {key}: v")))
    assert policy.pod_selector.matches({key: "v"})


@pytest.mark.parametrize(
    ("key", "gist"),
    [
        ("/app", "prefix part must be non-empty"),
        ("Example.com/app", "prefix part a lowercase RFC 1123 subdomain"),
        ("a/b/c", "a qualified name must consist of"),
        ("-app", "name part must consist of"),
        ("app-", "name part must consist of"),
        ("example.com/", "name part must be non-empty"),
        ("a" * 64, "name part must be no more than 63 characters"),
        (f"{'b' * 254}/x", "prefix part must be no more than 253 characters"),
        ("'a b'", "name part must consist of"),
    ],
)
def test_label_key_invalid(key: str, gist: str) -> None:
    shown = key.strip("'")
    text = spec(f"podSelector:\n  matchLabels:\n    {key}: v")
    # Key problems point at the key (line 9, column 7).
    check(text, E("9:7", f"spec.podSelector.matchLabels[{shown}]", gist))


@pytest.mark.parametrize("value", ['""', "a", "a-b_c.d", "A.1", "a" * 63])
def test_label_value_valid(value: str) -> None:
    check(spec(f"podSelector:\n  matchLabels:\n    app: {value}"))


@pytest.mark.parametrize(
    ("value", "gist"),
    [
        ("-a", "a valid label must be an empty string or consist of alphanumeric"),
        ("a-", "must start and end with an alphanumeric"),
        ("a" * 64, "must be no more than 63 characters"),
        ("'a b'", "a valid label must be"),
        ("a/b", "a valid label must be"),
    ],
)
def test_label_value_invalid(value: str, gist: str) -> None:
    text = spec(f"podSelector:\n  matchLabels:\n    app: {value}")
    # Value problems point at the value (line 9, column 12).
    check(text, E("9:12", "spec.podSelector.matchLabels[app]", gist))


def test_metadata_labels_and_annotations_are_validated() -> None:
    text = doc(
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: web
          labels:
            good: yes-this
            bad_value: "-x"
          annotations:
            example.com/ok: anything at all, even spaces
            "bad key": v
        spec:
          podSelector: {}
        """
    )
    check(
        text,
        E("7:16", "metadata.labels[bad_value]", "invalid label value"),
        E("10:5", "metadata.annotations[bad key]", "invalid annotation key"),
    )


def test_annotations_total_size() -> None:
    big = "x" * (256 * 1024)
    check(
        spec("podSelector: {}").replace(
            "namespace: prod\n", f"namespace: prod\n  annotations:\n    a: {big}\n"
        ),
        E("7:5", "metadata.annotations", "may not exceed 262144 bytes"),
    )
